"""Dataset-level IoU (Eq. 1) from accumulated counts, against NumPy, and per-image IoU."""

import numpy as np
import pytest

from fcn_iou_jax import metrics


def _numpy_iou(probs, labels, mask):
  predicted, positive, valid = probs > 0.5, labels == 1, mask > 0
  tp = np.sum(predicted & positive & valid)
  fp = np.sum(predicted & ~positive & valid)
  fn = np.sum(~predicted & positive & valid)
  return tp / (tp + fp + fn)


def test_accumulated_iou_equals_numpy_over_the_whole_set():
  rng = np.random.default_rng(0)
  probs = rng.uniform(size=(6, 9, 7))
  labels = (rng.uniform(size=(6, 9, 7)) < 0.3).astype(np.int32)
  mask = (rng.uniform(size=(6, 9, 7)) < 0.9).astype(np.int32)
  accumulator = metrics.IoUAccumulator()
  for start in range(0, 6, 2):  # three batches, summed
    batch = slice(start, start + 2)
    accumulator.add(metrics.confusion_counts(probs[batch], labels[batch], mask[batch],
                                             per_image=True))
  result = accumulator.result()
  assert result["iou"] == pytest.approx(_numpy_iou(probs, labels, mask))
  assert result["tp"] + result["fp"] + result["fn"] + result["tn"] == mask.sum()
  assert result["images"] == 6


def test_dataset_iou_differs_from_mean_of_per_image_iou():
  # Image 0: a big object found perfectly. Image 1: a tiny object missed (and 1 FP pixel).
  labels = np.zeros((2, 10, 10), np.int32)
  labels[0, :6, :6] = 1
  labels[1, 0, 0] = 1
  probs = labels.astype(np.float64).copy()
  probs[1] = 0
  probs[1, 9, 9] = 1
  accumulator = metrics.IoUAccumulator()
  accumulator.add(metrics.confusion_counts(probs, labels, per_image=True))
  result = accumulator.result()
  assert result["iou"] == pytest.approx(36 / 38)
  assert result["per_image_iou"] == pytest.approx((1.0 + 0.0) / 2)


def test_empty_images_are_left_out_of_per_image_mean_and_padding_never_counts():
  labels = np.zeros((3, 4, 4), np.int32)
  probs = np.zeros((3, 4, 4))
  labels[0, 0, :2] = 1
  probs[0, 0, :1] = 1  # IoU 0.5; image 1 empty & predicted empty; image 2 is batch padding
  probs[2] = 1
  labels[2] = 1
  accumulator = metrics.IoUAccumulator()
  accumulator.add(metrics.confusion_counts(probs, labels, per_image=True),
                  valid_images=np.array([1, 1, 0]))
  result = accumulator.result()
  assert result["per_image_iou"] == pytest.approx(0.5)
  assert (result["tp"], result["fn"], result["images"]) == (1, 1, 2)


def test_threshold_is_strictly_greater_than_half():
  counts = metrics.confusion_counts(np.array([[0.5, 0.51]]), np.array([[1, 1]]))
  assert (int(counts["tp"]), int(counts["fn"])) == (1, 1)


def test_class_counts_are_one_against_the_rest_under_the_mask():
  labels = np.array([[0, 0, 1, 2], [2, 2, 1, 3]])
  predictions = np.array([[0, 1, 1, 2], [2, 0, 3, 3]])
  mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]])  # the last pixel (3 as 3) does not count
  counts = metrics.class_confusion_counts(predictions, labels, mask, num_classes=4)
  # class 0: predicted at (0,0) right and (1,1) wrong; label 0 at (0,0), (0,1).
  # class 1: predicted at (0,1) wrong, (0,2) right; label 1 at (0,2), (1,2).
  # class 2: predicted at (0,3), (1,0) right; label 2 also at (1,1).
  # class 3: predicted at (1,2) wrong; the only label 3 is masked.
  np.testing.assert_array_equal(counts["tp"], [1, 1, 2, 0])
  np.testing.assert_array_equal(counts["fp"], [1, 1, 0, 1])
  np.testing.assert_array_equal(counts["fn"], [1, 1, 1, 0])
