"""Segment image files with the best checkpoint of a run: mask PNGs and overlays.

  python experiments/predict.py --workdir=runs/voc2012-person-iou photo1.jpg photo2.png --out=masks
For each IMAGE writes OUT/<name>_mask.png (255 = object) and OUT/<name>_overlay.png.
"""

import os
import sys

import numpy as np
from PIL import Image

from fcn_iou_jax import cli
from fcn_iou_jax.errors import UserError

OVERLAY_COLOUR = np.array([255, 40, 40], np.float32)


def _read_rgb(path: str) -> np.ndarray:
  try:
    with Image.open(path) as image:
      return np.array(image.convert("RGB"))
  except FileNotFoundError as error:
    raise UserError(f"{path}: no such image") from error
  except OSError as error:
    raise UserError(f"{path}: not a readable image ({error})") from error


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("--workdir", required=True, help="a run folder of run.py (its best model)")
  parser.add_argument("--out", required=True, help="folder for the PNGs (created)")
  parser.add_argument("--threshold", type=float, default=0.5,
                      help="probability above which a pixel is the object")
  parser.add_argument("images", nargs="+", help="image files, any size")
  args = parser.parse_args(argv)
  # After parsing: these import TensorFlow, whose start-up lines would precede a flag error.
  from fcn_iou_jax import inference, train  # pylint: disable=import-outside-toplevel
  cli.hide_accelerators_from_tensorflow()
  images = {path: _read_rgb(path) for path in args.images}  # fail before any work
  config = inference.load_config(args.workdir)
  model, params = inference.load_best_params(args.workdir, config)
  cli.check_output_folder(args.out, f"--out={args.out}")
  for path, image in images.items():
    probs = inference.predict_probabilities(model, params, image, config.backbone,
                                            train.eval_input_scale(config), config.input_mean)
    mask = probs > args.threshold
    name = os.path.splitext(os.path.basename(path))[0]
    Image.fromarray((mask * 255).astype(np.uint8)).save(os.path.join(args.out, f"{name}_mask.png"))
    overlay = image.astype(np.float32)
    overlay[mask] = 0.5 * overlay[mask] + 0.5 * OVERLAY_COLOUR
    Image.fromarray(overlay.astype(np.uint8)).save(os.path.join(args.out, f"{name}_overlay.png"))
    print(f"{path}: {mask.mean():.1%} of pixels are {config.category}")


if __name__ == "__main__":
  sys.exit(cli.run(main))
