"""Convert a torchvision AlexNet state dict (.pth) to the .npz that --init reads without torch.

  pip install torch   # CPU build is enough
  python -c "import torch, torchvision; torch.save(torchvision.models.alexnet(
      weights='IMAGENET1K_V1').state_dict(), 'alexnet.pth')"
  python experiments/convert_weights.py alexnet.pth alexnet.npz
  python experiments/run.py --backbone=torchvision --init=alexnet.npz --category=person
"""

import os
import sys

import numpy as np

from fcn_iou_jax import cli, pretrained
from fcn_iou_jax.errors import UserError


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("source", help=".pth state dict")
  parser.add_argument("target", help=".npz to write")
  args = parser.parse_args(argv)
  if not args.target.endswith(".npz"):
    raise UserError(f"{args.target}: the target must end in .npz")
  state = pretrained.read_state_dict(args.source)
  missing = [f"{key}.weight" for key in pretrained.LAYER_KEYS.values()
             if f"{key}.weight" not in state]
  if missing:
    raise UserError(f"{args.source}: not an AlexNet state dict (missing {missing})")
  temporary = f"{args.target}.tmp.npz"
  np.savez(temporary, **state)
  os.replace(temporary, args.target)
  print(f"wrote {len(state)} arrays to {args.target}")


if __name__ == "__main__":
  sys.exit(cli.run(main))
