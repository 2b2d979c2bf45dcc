"""Score maps fitted to labels: what the fixed stride-32 output can and cannot draw."""

import json

import numpy as np

from fcn_iou_jax import metrics, models, output_bound
from fcn_iou_jax.data import sources, statistics

import output_bound as output_bound_script

HEIGHT, WIDTH = 96, 128


def _iou(counts):
  return metrics.iou_from_counts(counts["tp"], counts["fp"], counts["fn"])


def test_masks_the_output_can_draw_are_recovered():
  scores_size = models.score_size("caffe", 6, HEIGHT, WIDTH)
  rows, cols = models.upsampling_matrices("caffe", 6, scores_size, (HEIGHT, WIDTH))
  ious = []
  for seed in range(3):
    scores = np.random.default_rng(seed).normal(size=scores_size)
    labels = (rows @ scores @ cols.T > 0).astype(np.uint8)
    assert 0.2 < labels.mean() < 0.8
    ious.append(_iou(output_bound.bound_counts(labels, np.ones_like(labels))))
  # A local optimum, not an exact solver: all close, most nearly exact.
  assert min(ious) > 0.9 and sorted(ious)[1] > 0.99, ious


def test_a_thin_band_is_drawn_only_at_a_score_cell_centre():
  # The fixed bilinear deconvolution is piecewise linear between score-cell centres 32 px
  # apart, so a drawn region must reach a centre: a 3-px band 16 px from the nearest one is
  # drawn at least ~18 px wide, IoU <= 3/18; one on a centre can be drawn exactly.
  scores_size = models.score_size("caffe", 6, HEIGHT, WIDTH)
  _, cols = models.upsampling_matrices("caffe", 6, scores_size, (HEIGHT, WIDTH))
  centre = int(np.argmax(cols[:, 1]))  # where one column of score cells peaks

  def band(left, width):
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    labels[:, left:left + width] = 1
    return _iou(output_bound.bound_counts(labels, np.ones_like(labels)))

  assert band(centre - 1, 3) > 0.9
  assert band(centre + 16 - 1, 3) < 3 / 18
  assert band(centre - 24, 48) > 0.9


def test_only_unmasked_pixels_count():
  labels = np.zeros((HEIGHT, WIDTH), np.uint8)
  labels[20:70, 10:110] = 1
  mask = np.ones_like(labels)
  mask[:, :64] = 0  # void: the left half of the object does not count
  counts = output_bound.bound_counts(labels, mask)
  assert counts["tp"] + counts["fn"] == int(labels[:, 64:].sum())
  assert _iou(counts) > 0.8


def test_script_scores_every_object_pixel_of_the_split(tmp_path):
  out = tmp_path / "bound.json"
  output_bound_script.main(["--dataset=synthetic", "--split=val", "--categories=disk,bar",
                            f"--out={out}"])
  results = json.loads(out.read_text())["categories"]
  counts = statistics.class_pixel_counts(sources.Source("synthetic").examples("val"), 3)
  for category_id, name in ((1, "disk"), (2, "bar")):
    assert results[name]["tp"] + results[name]["fn"] == counts[category_id]
  assert results["bar"]["iou"] < results["disk"]["iou"]  # the thin bars are harder to draw
