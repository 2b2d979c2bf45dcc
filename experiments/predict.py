"""Segment image files with the best checkpoint of a run: mask PNGs and overlays.

  python experiments/predict.py --workdir=runs/voc2012-person-iou photo1.jpg photo2.png --out=masks
A binary run (one category) writes OUT/<name>_mask.png (255 = object) and
OUT/<name>_overlay.png. A multi-class run (--category=all) writes OUT/<name>_mask.png as a
palette PNG of class ids in the dataset's own colours (VOC's colour map, CamVid's 11
colours), OUT/<name>_overlay.png, and OUT/legend.png naming each colour.

Images of up to 250 megapixels are read. One whose longer side exceeds --max_side (default
2048) is segmented at that size; its mask is scaled back (nearest) to the image's own size,
and its overlay is drawn at the reduced size.
"""

import os
import sys

import numpy as np
from PIL import Image, ImageDraw

from fcn_iou_jax import cli, run_log
from fcn_iou_jax.errors import UserError

OVERLAY_COLOUR = np.array([255, 40, 40], np.float32)
MAX_PIXELS = 250_000_000  # the largest image read (Pillow refuses more as a decompression bomb)
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# A mask covering less or more than this share of an image is reported as a likely failure.
NEARLY_NOTHING, NEARLY_EVERYTHING = 0.001, 0.98


def _read_rgb(path: str) -> np.ndarray:
  try:
    with Image.open(path) as image:
      return np.array(image.convert("RGB"))
  except FileNotFoundError as error:
    raise UserError(f"{path}: no such image") from error
  except Image.DecompressionBombError as error:
    raise UserError(f"{path}: more than {MAX_PIXELS // 10**6} megapixels; downscale it "
                    "first") from error
  except OSError as error:
    raise UserError(f"{path}: not a readable image ({error})") from error


def palette_image(class_ids: np.ndarray, colours) -> Image.Image:
  """A palette ('P') PNG image of ``class_ids [H, W]`` whose palette is ``colours``."""
  image = Image.fromarray(class_ids.astype(np.uint8), mode="P")
  image.putpalette([channel for colour in colours for channel in colour])
  return image


def legend_image(names, colours, swatch: int = 16) -> Image.Image:
  """One row per class: its colour swatch and its name."""
  image = Image.new("RGB", (200, swatch * len(names) + 4), "white")
  draw = ImageDraw.Draw(image)
  for row, (name, colour) in enumerate(zip(names, colours)):
    top = 2 + row * swatch
    draw.rectangle([2, top, 2 + swatch - 2, top + swatch - 2], fill=tuple(colour))
    draw.text((swatch + 8, top + 2), name, fill="black")
  return image


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
  """``image`` downscaled (bilinear) so that its longer side is at most ``max_side``."""
  height, width = image.shape[:2]
  scale = max_side / max(height, width)
  if scale >= 1:
    return image
  size = (max(1, round(width * scale)), max(1, round(height * scale)))
  return np.array(Image.fromarray(image).resize(size, Image.BILINEAR))


def _read_reduced(path: str, max_side: int):
  """``(image fitted within max_side, the image's own (height, width))``."""
  image = _read_rgb(path)
  return fit_within(image, max_side), image.shape[:2]


def _full_size(mask: np.ndarray, shape) -> Image.Image:
  """A uint8 mask (class ids or 0/255) brought to ``shape = (height, width)`` (nearest)."""
  image = Image.fromarray(mask.astype(np.uint8))
  return image if mask.shape == tuple(shape) else image.resize(shape[::-1], Image.NEAREST)


def _coverage_warning(share: float, what: str) -> str:
  if share >= NEARLY_EVERYTHING:
    return f" (warning: {what} covers almost the whole image: a model that learned nothing?)"
  if share <= NEARLY_NOTHING:
    return f" (warning: {what} covers almost none of the image)"
  return ""


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("--workdir", required=True, help="a run folder of run.py (its best model)")
  parser.add_argument("--out", required=True, help="folder for the PNGs (created)")
  parser.add_argument("--threshold", type=float, default=0.5,
                      help="binary runs: probability above which a pixel is the object")
  parser.add_argument("--max_side", type=cli.positive(int, "max_side"), default=2048,
                      help="images whose longer side is larger are segmented at this size")
  parser.add_argument("images", nargs="+", help="image files, up to 250 megapixels")
  args = parser.parse_args(argv)
  images = {path: _read_reduced(path, args.max_side) for path in args.images}  # fail first
  config = run_log.read_config(args.workdir)
  # After the checks: these import TensorFlow, whose start-up lines would precede an error.
  from fcn_iou_jax import build, inference
  cli.hide_accelerators_from_tensorflow()
  task = build.build_task(config)
  labels = build.build_source(config).spec.labels if task.multiclass else None
  model, params = build.load_best_params(args.workdir, config)
  cli.check_output_folder(args.out, f"--out={args.out}")
  if task.multiclass:
    legend_image(labels.names, labels.colours).save(os.path.join(args.out, "legend.png"))
  for path, (image, full_shape) in images.items():
    probs = inference.predict_probabilities(model, params, image, config.backbone,
                                            build.eval_input_scale(config), config.input_mean)
    name = os.path.splitext(os.path.basename(path))[0]
    overlay = image.astype(np.float32)
    if task.multiclass:
      class_ids = probs.argmax(-1)
      palette_image(np.array(_full_size(class_ids, full_shape)), labels.colours).save(
          os.path.join(args.out, f"{name}_mask.png"))
      overlay = 0.5 * overlay + 0.5 * np.asarray(labels.colours, np.float32)[class_ids]
      shares = np.bincount(class_ids.reshape(-1), minlength=len(labels.names)) / class_ids.size
      top = np.argsort(shares)[::-1][:3]
      summary = ", ".join(f"{shares[c]:.1%} {labels.names[c]}" for c in top if shares[c] > 0)
      summary += _coverage_warning(shares.max(), labels.names[top[0]])
    else:
      mask = probs > args.threshold
      _full_size(mask * 255, full_shape).save(os.path.join(args.out, f"{name}_mask.png"))
      overlay[mask] = 0.5 * overlay[mask] + 0.5 * OVERLAY_COLOUR
      summary = (f"{mask.mean():.1%} of pixels are {config.category}"
                 + _coverage_warning(mask.mean(), "the mask"))
    Image.fromarray(overlay.astype(np.uint8)).save(os.path.join(args.out, f"{name}_overlay.png"))
    print(f"{path}: {summary}")


if __name__ == "__main__":
  sys.exit(cli.run(main))
