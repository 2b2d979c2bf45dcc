"""A synthetic segmentation dataset with controlled background:object ratios.

Each image is a textured background (smooth random colour fields plus noise) with objects
of two kinds, ``disk`` and ``bar``, drawn in their own noisy colour. Each kind's pixel share
is set by its background:object ratio (the paper's Table 2 spans ~25 to ~340), so the
dataset serves as smoke-test data, as the instrument for an imbalance sweep (binary runs on
``disk``) and as a three-class problem (``--category=all``). Every image is a pure function
of ``(seed, split, index)``.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib

import numpy as np

from fcn_iou_jax.data import categories

SPLIT_SIZES = {"train": 160, "val": 40, "test": 40}
DISK_RATE = 0.8  # share of images with a disk
BAR_RATE = 0.5  # share of images with a bar


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
  height: int = 96
  width: int = 128
  background_to_object: float = 8.0  # target ratio of background to ``disk`` pixels
  bar_background_to_object: float = 47.0  # the same for ``bar`` pixels (4 rows of 96)
  seed: int = 0


def _smooth_field(rng, height, width, cells=4):
  coarse = rng.uniform(0, 1, (cells + 1, cells + 1, 3))
  rows = np.linspace(0, cells, height)
  cols = np.linspace(0, cells, width)
  r0 = np.floor(rows).astype(int).clip(0, cells - 1)
  c0 = np.floor(cols).astype(int).clip(0, cells - 1)
  fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
  top = coarse[r0][:, c0] * (1 - fc) + coarse[r0][:, c0 + 1] * fc
  bottom = coarse[r0 + 1][:, c0] * (1 - fc) + coarse[r0 + 1][:, c0 + 1] * fc
  return top * (1 - fr) + bottom * fr


def make_example(spec: SyntheticSpec, split: str, index: int):
  """``(image [H, W, 3] uint8, label [H, W] uint8)`` for one image."""
  rng = np.random.default_rng([spec.seed, zlib.crc32(split.encode()), index])
  height, width = spec.height, spec.width
  image = 0.6 * _smooth_field(rng, height, width) + 0.15 * rng.uniform(size=(height, width, 3))
  label = np.zeros((height, width), np.uint8)
  rows, cols = np.mgrid[:height, :width]
  # A bar (class 2) in about half the images, a distractor of another category: full-width
  # rows, as many as give the requested ratio, 0.5 * rows / H = 1 / (1 + ratio).
  if rng.uniform() < BAR_RATE:
    bar_rows = max(1, round(height / (1.0 + spec.bar_background_to_object) / BAR_RATE))
    row = rng.integers(0, height - bar_rows)
    bar = (rows >= row) & (rows < row + bar_rows)
    label[bar] = 2
    image[bar] = [0.2, 0.2, 0.9] + 0.1 * rng.uniform(size=(int(bar.sum()), 3))
  # A disk (class 1) in 80% of the images, sized so that the ratio over the split is the
  # requested one: 0.8 * area = H * W / (1 + ratio).
  if rng.uniform() < DISK_RATE:
    area = height * width / (1.0 + spec.background_to_object) / DISK_RATE
    radius = min(np.sqrt(area / np.pi) * rng.uniform(0.8, 1.2), min(height, width) / 2 - 1)
    centre = rng.uniform([radius, radius], [height - radius, width - radius])
    disk = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
    label[disk] = 1
    image[disk] = [0.9, 0.5, 0.1] + 0.15 * rng.uniform(size=(int(disk.sum()), 3))
  return (np.clip(image, 0, 1) * 255).astype(np.uint8), label


@functools.lru_cache(maxsize=16)  # an imbalance sweep: 5 ratios x 3 splits
def generate(spec: SyntheticSpec, split: str) -> tuple[dict, ...]:
  """The example dicts ``{image, label [H, W, 1], image_id}`` of ``split``, read-only, made
  once per process (a run reads a split again at every evaluation)."""
  examples = []
  for index in range(SPLIT_SIZES[split]):
    image, label = make_example(spec, split, index)
    label = label[..., None]
    image.flags.writeable = label.flags.writeable = False
    examples.append({"image": image, "label": label, "image_id": f"{split}_{index:04d}"})
  return tuple(examples)


LABELS = categories.SYNTHETIC
