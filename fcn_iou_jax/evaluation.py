"""Dataset-level evaluation: counts over every image of a split, divided once at the end."""

from __future__ import annotations

import math

import jax
import numpy as np

from fcn_iou_jax import metrics
from fcn_iou_jax.data import pipeline


def evaluate_split(steps, params, source, split: str, *, category_id: int | None,
                   batch_size: int, backbone: str, input_scale: float = 1.0,
                   input_mean=None) -> dict:
  """Scores of ``params`` on ``split``: binary (one category) or multi-class (``None``).

  Binary: ``{iou, per_image_iou, tp, fp, fn, tn, images}``. Multi-class (``steps`` of
  :func:`steps.parallel_steps` built with ``multiclass=True``): :func:`multiclass_scores` of
  the split's confusion matrix.

  Images keep their original resolution, padded to the dataset's static eval shape with
  ``mask = 0``. Each process evaluates its own shard; counts are gathered from all.
  ``batch_size`` is the global eval batch; ``input_scale`` resizes the network's input
  (for models trained on resized images), never the labels; ``input_mean`` is the caffe
  layout's BGR input mean (``None``: Caffe's ImageNet mean).
  """
  processes = jax.process_count()
  local_batch = batch_size // processes
  pad_to = source.spec.eval_size
  dataset = pipeline.make_eval_dataset(
      source.examples(split, shard_index=jax.process_index(), shard_count=processes),
      category_id=category_id, void=source.spec.labels.void, pad_to=pad_to,
      batch_size=local_batch, backbone=backbone, input_scale=input_scale, input_mean=input_mean)
  # Every process runs the same number of steps (shards may differ by one image).
  batches = math.ceil(math.ceil(source.num_examples(split) / processes) / local_batch)
  empty = {"image": np.zeros((0, *pipeline.scaled_size(pad_to, input_scale), 3), np.float32),
           "label": np.zeros((0, *pad_to), np.uint8), "mask": np.zeros((0, *pad_to), np.uint8)}
  names = source.spec.labels.names
  accumulator = (metrics.IoUAccumulator() if category_id is not None
                 else metrics.ConfusionAccumulator(len(names)))
  iterator = dataset.as_numpy_iterator()
  for _ in range(batches):
    batch = next(iterator, empty)
    batch = {key: batch[key] for key in ("image", "label", "mask")}
    batch, valid = pipeline.pad_batch(batch, local_batch)  # padding: mask 0
    batch["valid"] = valid.astype(np.int32)
    output = steps.eval(params, steps.put_batch(batch))
    if category_id is None:
      accumulator.add(steps.first(output))  # summed over every device and process
    else:
      counts = steps.gather_counts(output)
      accumulator.add(counts, counts["valid"])
  if category_id is None:
    return dict(multiclass_scores(accumulator.matrix, names),
                images=source.num_examples(split))
  return accumulator.result()


def multiclass_scores(confusion, names) -> dict:
  """:func:`metrics.segmentation_scores` with the per-class IoUs named:
  ``{miou, per_class_iou: {name: IoU or None}, pixel_accuracy, mean_class_accuracy,
  frequency_weighted_iou, confusion}``."""
  scores = metrics.segmentation_scores(confusion)
  return dict(scores, per_class_iou=dict(zip(names, scores["per_class_iou"])))
