"""Dataset-level evaluation: counts over every image of a split, divided once at the end."""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
from jax.experimental import multihost_utils

from fcn_iou_jax import metrics
from fcn_iou_jax.data import pipeline


def evaluate_split(steps, params, source, split: str, *, category_id: int, batch_size: int,
                   backbone: str, input_scale: float = 1.0, input_mean=None) -> dict:
  """``{iou, per_image_iou, tp, fp, fn, tn, images}`` of ``params`` on ``split``.

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
  accumulator = metrics.IoUAccumulator()
  iterator = dataset.as_numpy_iterator()
  for _ in range(batches):
    batch = next(iterator, empty)
    batch = {key: batch[key] for key in ("image", "label", "mask")}
    batch, valid = pipeline.pad_batch(batch, local_batch)
    batch["valid"] = valid.astype(np.int32)
    counts = steps.gather_counts(steps.eval(params, steps.put_batch(batch, split_devices=True)))
    accumulator.add(counts, counts["valid"])
  return accumulator.result()


def split_confusion(model, params, source, split: str, *, backbone: str,
                    input_scale: float = 1.0, batch_size: int = 4,
                    input_mean=None) -> np.ndarray:
  """The ``[C, C]`` int64 confusion matrix (rows: labels) of the argmax of a multi-class
  ``model`` on ``split``, counted on original-resolution labels without void pixels.

  Each process counts its own shard of the split; the matrices of all processes are summed
  (as int32 halves, so that they stay exact without 64-bit collectives).
  """
  num_classes = len(source.spec.labels.names)
  processes = jax.process_count()
  dataset = pipeline.make_eval_dataset(
      source.examples(split, shard_index=jax.process_index(), shard_count=processes),
      category_id=None, void=source.spec.labels.void, pad_to=source.spec.eval_size,
      batch_size=batch_size, backbone=backbone, input_scale=input_scale, input_mean=input_mean)

  @functools.partial(jax.jit, static_argnums=2)
  def count(params, batch, label_shape):
    logits = model.apply({"params": params}, batch["image"])
    logits = jax.image.resize(logits, (*label_shape, num_classes), "bilinear")
    return metrics.confusion_matrix(logits.argmax(-1), batch["label"], batch["mask"],
                                    num_classes)

  accumulator = metrics.ConfusionAccumulator(num_classes)
  for batch in dataset.as_numpy_iterator():
    batch = {key: batch[key] for key in ("image", "label", "mask")}
    accumulator.add(count(params, batch, batch["label"].shape))
  if processes == 1:
    return accumulator.matrix
  halves = multihost_utils.process_allgather(metrics.split_int64(accumulator.matrix))
  return metrics.join_int64(*halves).sum(axis=0)
