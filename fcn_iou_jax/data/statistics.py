"""Background:object pixel ratios per category (the paper's Table 2), void excluded."""

from __future__ import annotations

import numpy as np


def class_pixel_counts(examples, num_classes: int) -> np.ndarray:
  """``[num_classes]`` pixel counts over raw examples; void and other ids are not counted."""
  counts = np.zeros(num_classes, np.int64)
  for example in examples.as_numpy_iterator():
    values = example["label"].reshape(-1)
    counts += np.bincount(values[values < num_classes], minlength=num_classes)[:num_classes]
  return counts


def background_to_object_ratios(counts: np.ndarray, names) -> dict[str, float]:
  """``(valid pixels - category pixels) / category pixels`` for every named category."""
  total = counts.sum()
  return {name: (float((total - counts[i]) / counts[i]) if counts[i] else float("inf"))
          for i, name in enumerate(names) if name != "background"}


def median_frequency_weights(counts: np.ndarray) -> np.ndarray:
  """Median-frequency balancing (Eigen & Fergus 2015): ``w_c = median(f) / f_c``.

  ``f_c`` is class ``c``'s share of the counted pixels; the median runs over the classes that
  occur, and a class that never occurs gets weight 0.
  """
  frequencies = counts / max(counts.sum(), 1)
  present = frequencies > 0
  weights = np.zeros(len(counts), np.float64)
  weights[present] = np.median(frequencies[present]) / frequencies[present]
  return weights
