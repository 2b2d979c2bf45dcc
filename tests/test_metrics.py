"""Dataset-level IoU (Eq. 1) from accumulated counts, against NumPy, and per-image IoU; the
C-class confusion matrix and its scores against bincount and per-class loops."""

import jax
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


def _random_segmentation(seed, shape, num_classes, void=255):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, num_classes, shape)
  labels[rng.uniform(size=shape) < 0.15] = void
  predictions = rng.integers(0, num_classes, shape)
  return predictions, labels, (labels != void).astype(np.uint8)


def test_confusion_matrix_equals_bincount_without_void():
  predictions, labels, mask = _random_segmentation(0, (3, 17, 23), num_classes=5)
  confusion = np.asarray(jax.jit(metrics.confusion_matrix, static_argnums=3)(
      predictions, labels, mask, 5))
  valid = mask > 0
  expected = np.bincount(labels[valid] * 5 + predictions[valid], minlength=25).reshape(5, 5)
  np.testing.assert_array_equal(confusion, expected)
  assert confusion.sum() == valid.sum()


def test_segmentation_scores_against_per_class_loops():
  predictions, labels, mask = _random_segmentation(1, (2, 30, 30), num_classes=6)
  predictions[predictions == 4] = 0  # class 4: labelled but never predicted
  labels[labels == 5] = 255          # class 5: predicted but never labelled
  mask = (labels != 255).astype(np.uint8)
  accumulator = metrics.ConfusionAccumulator(7)  # class 6: in neither
  for image in range(2):
    accumulator.add(metrics.confusion_matrix(predictions[image], labels[image], mask[image], 7))
  scores = metrics.segmentation_scores(accumulator.matrix)
  valid = mask > 0
  y, p = labels[valid], predictions[valid]
  ious, accuracies, weighted = [], [], 0.0
  for c in range(7):
    tp = np.sum((p == c) & (y == c))
    fp, fn = np.sum((p == c) & (y != c)), np.sum((p != c) & (y == c))
    if tp + fp + fn == 0:
      assert scores["per_class_iou"][c] is None
      continue
    ious.append(tp / (tp + fp + fn))
    assert scores["per_class_iou"][c] == pytest.approx(ious[-1])
    if np.sum(y == c):
      accuracies.append(tp / np.sum(y == c))
      weighted += np.sum(y == c) / y.size * ious[-1]
  assert scores["per_class_iou"][4] == 0.0 and scores["per_class_iou"][5] == 0.0
  assert scores["miou"] == pytest.approx(np.mean(ious))  # 6 of 7 classes appear
  assert scores["pixel_accuracy"] == pytest.approx(np.mean(y == p))
  assert scores["mean_class_accuracy"] == pytest.approx(np.mean(accuracies))
  assert scores["frequency_weighted_iou"] == pytest.approx(weighted)


def test_counts_past_int32_stay_exact_on_the_host_and_across_hosts():
  # VOC val at full size is 1,449 x 500 x 500 = 3.6e8 pixels; sum past 2^31 to be sure.
  per_batch = np.array([[2**30, 3], [5, 2**30 - 1]], np.int32)
  accumulator = metrics.ConfusionAccumulator(2)
  for _ in range(8):
    accumulator.add(per_batch)
  assert accumulator.matrix[0, 0] == 8 * 2**30 and accumulator.matrix[1, 1] == 8 * (2**30 - 1)
  high, low = metrics.split_int64(accumulator.matrix)
  assert high.dtype == low.dtype == np.int32
  np.testing.assert_array_equal(metrics.join_int64(high, low), accumulator.matrix)
  assert metrics.segmentation_scores(accumulator.matrix)["per_class_iou"][0] == pytest.approx(
      2**30 / (2**30 + 3 + 5))


def test_trivial_baselines_and_degenerate_models_against_their_predictions():
  rng = np.random.default_rng(3)
  labels = (rng.uniform(size=(4, 20, 30)) < 0.1).astype(np.int32)
  mask = (rng.uniform(size=labels.shape) < 0.9).astype(np.int32)

  def scores(prediction):
    counts = {k: int(v) for k, v in metrics.confusion_counts(
        prediction.astype(np.float32), labels, mask).items()}
    return counts, metrics.iou_from_counts(counts["tp"], counts["fp"], counts["fn"])

  everything, everything_iou = scores(np.ones(labels.shape))
  nothing, nothing_iou = scores(np.zeros(labels.shape))
  perfect, _ = scores(labels)
  for counts in (everything, nothing, perfect):  # the baselines depend on the labels only
    assert metrics.trivial_baselines(**counts) == {
        "all_foreground": pytest.approx(everything_iou), "all_background": nothing_iou}
  assert metrics.degenerate(**everything) == "all_foreground"
  assert metrics.degenerate(**nothing) == "all_background"
  assert metrics.degenerate(**perfect) is None
  # Half the objects found, nothing else: IoU 0.5, far above both baselines.
  half = labels * (rng.uniform(size=labels.shape) < 0.5)
  assert metrics.degenerate(**scores(half)[0]) is None
  # The margin: an IoU just above the all-foreground baseline is still degenerate.
  noisy = np.where(rng.uniform(size=labels.shape) < 0.97, 1, labels)
  counts, iou = scores(noisy)
  assert everything_iou < iou < everything_iou + metrics.DEGENERATE_MARGIN
  assert metrics.degenerate(**counts) == "all_foreground"
