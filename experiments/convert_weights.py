"""Convert ImageNet AlexNet weights to the .npz that --init reads without torch or SciPy.

The source's format is read from its extension:
  .pth         a torchvision AlexNet state dict (needs torch): --backbone=torchvision
  .mat         a MatConvNet simplenn model, e.g. imagenet-caffe-alex.mat (the paper's
               weights); its input mean is kept in the .npz: --backbone=caffe
  .caffemodel  a BVLC Caffe model, e.g. bvlc_alexnet.caffemodel (FCN-AlexNet's start):
               --backbone=caffe

  python experiments/convert_weights.py imagenet-caffe-alex.mat alexnet.npz
  python experiments/reproduce.py --protocol=paper --init=alexnet.npz
  python experiments/convert_weights.py alexnet.pth alexnet_tv.npz
  python experiments/run.py --backbone=torchvision --init=alexnet_tv.npz --category=person
"""

import os
import sys

import numpy as np

from fcn_iou_jax import cli, pretrained
from fcn_iou_jax.errors import UserError


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("source", help=".pth, .mat or .caffemodel AlexNet weights")
  parser.add_argument("target", help=".npz to write")
  args = parser.parse_args(argv)
  if not args.target.endswith(".npz"):
    raise UserError(f"{args.target}: the target must end in .npz")
  cli.check_output_folder(os.path.dirname(args.target), args.target)
  state = pretrained.read_state_dict(args.source)
  missing = [f"{key}.weight" for key in pretrained.LAYER_KEYS.values()
             if f"{key}.weight" not in state]
  if missing:
    raise UserError(f"{args.source}: not an AlexNet state dict (missing {missing})")
  temporary = f"{args.target}.tmp.npz"
  np.savez(temporary, **state)
  os.replace(temporary, args.target)
  mean = pretrained.input_mean(state)
  with_mean = f", with the BGR input mean {tuple(round(v, 2) for v in mean)}" if mean else ""
  print(f"wrote {len(state)} arrays to {args.target}{with_mean}")


if __name__ == "__main__":
  sys.exit(cli.run(main))
