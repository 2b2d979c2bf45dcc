"""Reading one image/label pair from disk, with a clear error for each way it can be bad."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from fcn_iou_jax.errors import UserError


def read_label_png(path: str) -> np.ndarray:
  """Class ids ``[H, W]`` uint8 of a label PNG: palette indices for VOC's 'P' images.

  Pillow keeps palette PNGs as indices (``tf.io.decode_png`` would expand them to colours).
  """
  try:
    with Image.open(path) as image:
      if image.mode not in ("P", "L"):
        raise UserError(f"{path}: label image has mode {image.mode}, expected palette (P) or "
                        "greyscale (L) class indices")
      return np.array(image, dtype=np.uint8)
  except FileNotFoundError as error:
    raise UserError(f"{path}: label file is listed but missing") from error
  except (OSError, SyntaxError) as error:
    raise UserError(f"{path}: corrupt or unreadable label image ({error})") from error


def image_size(path: str) -> tuple[int, int]:
  """``(height, width)`` of an image file, fully decoded so corruption is caught here."""
  try:
    with Image.open(path) as image:
      image.load()
      return image.height, image.width
  except FileNotFoundError as error:
    raise UserError(f"{path}: image file is listed but missing") from error
  except (OSError, SyntaxError) as error:
    raise UserError(f"{path}: corrupt or unreadable image ({error})") from error


def read_checked_pair(image_path: str, label_path: str, *, num_classes: int, void: int,
                      max_size: tuple[int, int]) -> np.ndarray:
  """Label ``[H, W, 1]`` after checking both files and that they agree.

  Raises :class:`UserError` naming the file for: a missing or corrupt file, an image larger
  than ``max_size`` (the dataset's evaluation size), an image and label of different sizes,
  or a label value that is neither a class id nor ``void``.
  """
  height, width = image_size(image_path)
  if height > max_size[0] or width > max_size[1]:
    raise UserError(f"{image_path}: {width}x{height} is larger than this dataset's "
                    f"evaluation size {max_size[1]}x{max_size[0]}; resize it (and its label) "
                    "or leave it out of the list")
  label = read_label_png(label_path)
  if label.shape != (height, width):
    raise UserError(f"{label_path}: label is {label.shape[1]}x{label.shape[0]} but its image "
                    f"{os.path.basename(image_path)} is {width}x{height}")
  bad = (label >= num_classes) & (label != void)
  if bad.any():
    raise UserError(f"{label_path}: label value {int(label[bad][0])} is out of range "
                    f"(classes 0..{num_classes - 1}, void {void})")
  return label[..., None]


def read_list(path: str) -> list[str]:
  """Non-empty lines of a split list; UserError if the file is empty or lists a line twice."""
  with open(path, encoding="utf-8") as handle:
    numbered = [(number, line.strip()) for number, line in enumerate(handle, 1) if line.strip()]
  if not numbered:
    raise UserError(f"{path}: split list is empty")
  first = {}
  for number, line in numbered:
    if line in first:
      raise UserError(f"{path}: line {number} repeats line {first[line]} ({line!r}); list each "
                      "example once")
    first[line] = number
  return [line for _, line in numbered]
