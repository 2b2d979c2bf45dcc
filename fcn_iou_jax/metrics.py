"""IoU as the paper measures it (Eq. 1), from confusion counts that add up; and its C-class form.

Counts are sufficient statistics: per-batch sums that can be added across batches, devices
and hosts; the ratio is taken once at the end, over the whole evaluated set. Per-image IoU
(mean over images) is provided beside it because it is a common, different aggregation.
For C classes the counts are a confusion matrix, accumulated in int64 on the host.
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


# A model must beat the better trivial prediction by this much IoU not to be called degenerate.
DEGENERATE_MARGIN = 0.05


def trivial_baselines(tp, fp, fn, tn) -> dict:
  """Eq. 1's IoU of the two predictions that need no model, from a model's counts:
  ``all_foreground`` (every pixel the category: IoU = positives / pixels) and
  ``all_background`` (no pixel: TP = 0, so IoU = 0)."""
  pixels = tp + fp + fn + tn
  return {"all_foreground": float((tp + fn) / pixels) if pixels else 0.0, "all_background": 0.0}


def degenerate(tp, fp, fn, tn, margin: float = DEGENERATE_MARGIN) -> str | None:
  """``"all_foreground"`` or ``"all_background"`` when the model's IoU is not ``margin``
  above the better trivial baseline, named by the trivial prediction nearer to the model's
  (predicting at least half the pixels as the category: all-foreground); else ``None``."""
  baselines = trivial_baselines(tp, fp, fn, tn)
  if iou_from_counts(tp, fp, fn) > max(baselines.values()) + margin:
    return None
  pixels = tp + fp + fn + tn
  return "all_foreground" if pixels and (tp + fp) / pixels >= 0.5 else "all_background"


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
    """``{iou, per_image_iou, tp, fp, fn, tn, images, baselines, degenerate}``
    (:func:`trivial_baselines`, :func:`degenerate`)."""
    per_image = {n: np.concatenate(v or [np.zeros(0, np.int64)])
                 for n, v in self._per_image.items()}
    totals = {name: int(values.sum()) for name, values in per_image.items()}
    return {
        "iou": iou_from_counts(totals["tp"], totals["fp"], totals["fn"]),
        "per_image_iou": per_image_iou(per_image["tp"], per_image["fp"], per_image["fn"]),
        **totals,
        "images": int(per_image["tp"].size),
        "baselines": trivial_baselines(*(totals[name] for name in COUNT_NAMES)),
        "degenerate": degenerate(*(totals[name] for name in COUNT_NAMES)),
    }


def confusion_matrix(predictions, labels, mask, num_classes: int):
  """``[C, C]`` int32 counts: entry ``[i, j]`` is the number of pixels labelled ``i`` and
  predicted ``j`` where ``mask > 0`` (jit-able; one batch stays far below 2^31 pixels).

  A pixel whose label is not a class id in ``[0, C)`` is not counted: give void pixels
  ``mask = 0``.
  """
  valid = (mask > 0) & (labels >= 0) & (labels < num_classes)
  cells = jnp.where(valid, labels.astype(jnp.int32) * num_classes + predictions, num_classes**2)
  counts = jnp.bincount(cells.reshape(-1), length=num_classes**2 + 1)[:-1]
  return counts.reshape(num_classes, num_classes).astype(jnp.int32)


class ConfusionAccumulator:
  """Adds confusion matrices (of batches, devices or hosts) in int64: a split of any size
  (VOC val, 1,449 images of up to 500x500, is 3.6e8 pixels) stays exact."""

  def __init__(self, num_classes: int):
    self.matrix = np.zeros((num_classes, num_classes), np.int64)

  def add(self, confusion):
    """Adds ``[..., C, C]`` counts (leading axes, such as devices, are summed)."""
    self.matrix += np.asarray(confusion).astype(np.int64).reshape(-1, *self.matrix.shape).sum(0)


def split_int64(values):
  """int64 counts (below 2^62) as two int32 arrays ``(high, low)``, for collectives that run
  without 64-bit integers: ``values = high * 2^31 + low``."""
  values = np.asarray(values, np.int64)
  return (values >> 31).astype(np.int32), (values & (2**31 - 1)).astype(np.int32)


def join_int64(high, low):
  """Inverse of :func:`split_int64`."""
  return np.asarray(high).astype(np.int64) * 2**31 + np.asarray(low).astype(np.int64)


def segmentation_scores(confusion) -> dict:
  r"""The usual C-class scores of a ``[C, C]`` confusion matrix (rows: labels, columns:
  predictions), each class one against the rest.

  * ``per_class_iou[c]`` = TP_c / (TP_c + FP_c + FN_c); ``None`` for a class that appears in
    neither the labels nor the predictions (undefined).
  * ``miou``: the mean of the defined per-class IoUs, i.e. over the classes that appear in
    the split's labels or predictions.
  * ``pixel_accuracy`` = sum_c TP_c / (valid pixels).
  * ``mean_class_accuracy``: mean over classes with labelled pixels of TP_c / (pixels labelled c).
  * ``frequency_weighted_iou`` = sum_c (pixels labelled c / valid pixels) IoU_c.
  """
  confusion = np.asarray(confusion, np.int64)
  true_positive = np.diag(confusion).astype(np.float64)
  labelled = confusion.sum(axis=1).astype(np.float64)
  predicted = confusion.sum(axis=0).astype(np.float64)
  denominator = labelled + predicted - true_positive
  defined = denominator > 0
  iou = np.divide(true_positive, denominator, out=np.zeros_like(true_positive), where=defined)
  present = labelled > 0
  total = labelled.sum()
  return {
      "per_class_iou": [float(v) if d else None for v, d in zip(iou, defined)],
      "miou": float(iou[defined].mean()) if defined.any() else 0.0,
      "pixel_accuracy": float(true_positive.sum() / total) if total else 0.0,
      "mean_class_accuracy": (float(np.mean(true_positive[present] / labelled[present]))
                              if present.any() else 0.0),
      "frequency_weighted_iou": float(np.sum(labelled * iou) / total) if total else 0.0,
      "confusion": confusion.tolist(),
  }
