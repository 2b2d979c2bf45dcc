"""IoU as the paper measures it (Eq. 1), from confusion counts that add up.

Counts are sufficient statistics: per-batch sums that can be added across batches, devices
and hosts; the ratio is taken once at the end, over the whole evaluated set. Per-image IoU
(mean over images) is provided beside it because it is a common, different aggregation.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

COUNT_NAMES = ("tp", "fp", "fn", "tn")


def confusion_counts(probs, labels, mask=None, *, threshold=0.5, per_image=False):
  """TP, FP, FN, TN of the binary prediction ``probs > threshold`` under ``mask``.

  Args:
    probs: ``[B, H, W]`` foreground probabilities.
    labels: ``[B, H, W]`` in {0, 1}.
    mask: ``[B, H, W]``, 1 where a pixel counts (void and padding are 0).
    threshold: a pixel is predicted foreground when its probability exceeds this.
    per_image: return ``[B]`` counts instead of scalars summed over the batch.

  Returns:
    Dict ``{tp, fp, fn, tn}`` of int32 scalars (or ``[B]`` arrays).
  """
  predicted = probs > threshold
  positive = labels == 1
  valid = jnp.ones_like(predicted) if mask is None else mask > 0
  axes = tuple(range(1, predicted.ndim)) if per_image else None

  def count(selection):
    return jnp.sum(selection & valid, axis=axes, dtype=jnp.int32)

  return {
      "tp": count(predicted & positive),
      "fp": count(predicted & ~positive),
      "fn": count(~predicted & positive),
      "tn": count(~predicted & ~positive),
  }


def class_confusion_counts(predictions, labels, mask, num_classes: int):
  """Per class ``c``, one class against the rest: ``{tp, fp, fn}`` as ``[num_classes]`` arrays.

  ``TP_c = #{pred = c, label = c}``, ``FP_c = #{pred = c, label != c}``,
  ``FN_c = #{pred != c, label = c}``, over the pixels where ``mask > 0`` (NumPy, host side).
  """
  valid = np.asarray(mask) > 0
  pairs = (np.asarray(labels)[valid].astype(np.int64) * num_classes
           + np.asarray(predictions)[valid].astype(np.int64))
  confusion = np.bincount(pairs, minlength=num_classes ** 2).reshape(num_classes, num_classes)
  tp = np.diag(confusion)
  return {"tp": tp, "fp": confusion.sum(axis=0) - tp, "fn": confusion.sum(axis=1) - tp}


def iou_from_counts(tp, fp, fn):
  """Eq. 1: ``IoU = TP / (TP + FP + FN)``; 0 when the denominator is 0 (nothing to find)."""
  denominator = tp + fp + fn
  return float(tp / denominator) if denominator > 0 else 0.0


def per_image_iou(tp, fp, fn):
  """Mean over images of each image's IoU.

  Rule for an image whose prediction and label are both empty (``TP + FP + FN = 0``): it is
  left out of the mean, since IoU is undefined there (counting it as 1 would reward a model
  for each image that lacks the category). Returns 0.0 when every image is empty.
  """
  tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
  denominator = tp + fp + fn
  defined = denominator > 0
  if not defined.any():
    return 0.0
  return float(np.mean(tp[defined] / denominator[defined]))


class IoUAccumulator:
  """Adds per-image counts over an evaluation and reports both IoU aggregations."""

  def __init__(self):
    self._per_image = {name: [] for name in COUNT_NAMES}

  def add(self, counts, valid_images=None):
    """Adds ``[B]`` per-image counts; ``valid_images`` drops padded batch entries."""
    for name in COUNT_NAMES:
      values = np.asarray(counts[name]).reshape(-1)
      if valid_images is not None:
        values = values[np.asarray(valid_images).reshape(-1) > 0]
      self._per_image[name].append(values.astype(np.int64))

  def result(self):
    """``{iou, per_image_iou, tp, fp, fn, tn, images}``."""
    per_image = {n: np.concatenate(v or [np.zeros(0, np.int64)])
                 for n, v in self._per_image.items()}
    totals = {name: int(values.sum()) for name, values in per_image.items()}
    return {
        "iou": iou_from_counts(totals["tp"], totals["fp"], totals["fn"]),
        "per_image_iou": per_image_iou(per_image["tp"], per_image["fp"], per_image["fn"]),
        **totals,
        "images": int(per_image["tp"].size),
    }
