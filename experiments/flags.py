"""Command-line flags of experiments/run.py: one flag per Config field, plus the run's place."""

from __future__ import annotations

import dataclasses
import os

from fcn_iou_jax import cli, config as config_lib, losses, models
from fcn_iou_jax.errors import UserError

CHOICES = {
    "dataset": sorted(config_lib.DATASET_NAMES), "loss": losses.LOSS_NAMES,
    "backbone": list(config_lib.BACKBONE_NAMES), "optimizer": ["sgd", "adam"],
    "parallel": ["pmap", "jit"], "dtype": ["float32", "bfloat16"],
    "fc6_kernel": list(config_lib.FC6_KERNELS),
    "conv_forms": list(models.CONV_FORMS),
    "class_weighting": ["none", "median_frequency"],
}
HELP = {
    "dataset": "which dataset to train and evaluate on",
    "category": "object category (required), e.g. person, pole, sign_symbol; or all: one "
                "multi-class model of every class (VOC: 21 with background; CamVid: 11)",
    "data_dir": "raw dataset folder (default $FCN_IOU_DATA_DIR/<dataset>; downloaded there "
                "when online)",
    "prepared_dir": "TFDS records folder (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)",
    "image_size": "training size HxW, e.g. 180x240 (default: the paper's size)",
    "crop_size": "random training crop HxW taken after the resize, e.g. 180x240 (default: none)",
    "scale_jitter": "not in the paper: rescale each training image by a random factor in "
                    "[1/(1+s), 1+s] before the crop (needs --crop_size; default 0: off)",
    "colour_jitter": "not in the paper: random brightness shift (up to this share of the "
                     "range), contrast and saturation factors in [1-s, 1+s] (default 0: off)",
    "class_aware_crops": "--category=all with --crop_size: centre each crop on a pixel of a class "
                         "drawn uniformly among the image's classes (default: uniform crops)",
    "synthetic_ratio": "synthetic data only: background:object pixel ratio of the disks",
    "backbone": "AlexNet layout: caffe (Long et al.'s FCN) or torchvision",
    "width_mult": "scales every channel count (below 1: a narrower, faster network)",
    "fc6_kernel": "fc6 kernel: 6 (Long et al.; ImageNet fc6 weights fit) or 1 (the paper's "
                  "literal 1x1 C6)",
    "dropout_rate": "dropout after fc6 and fc7 in training",
    "learn_upsampling": "train the stride-32 deconvolution instead of keeping it bilinear",
    "init": "scratch, or ImageNet AlexNet weights: .npz, .pth, MatConvNet .mat or .caffemodel "
            "(experiments/convert_weights.py)",
    "input_mean": "caffe layout: B,G,R mean subtracted from the 0-255 input (default: the "
                  "mean that came with the --init weights, else Caffe's ImageNet mean)",
    "loss": ("iou: soft IoU (Eq. 5, FCN_IoU; per class with --category=all); lovasz: Lovász "
             "hinge, or Lovász-Softmax with --category=all (Berman et al. 2018); softmax: "
             "per-pixel cross-entropy (FCN_acc); softmax+iou: their sum"),
    "class_weighting": "--category=all: per-class loss weights; median_frequency: median "
                       "class share over the class's share of the training pixels (Eigen & "
                       "Fergus 2015); not for lovasz",
    "optimizer": "sgd (with momentum, the paper's) or adam",
    "learning_rate": "step size, fixed unless --warmup_steps",
    "momentum": "SGD momentum (unused by adam)",
    "weight_decay": "L2 penalty on convolution kernels (not biases)",
    "batch_size": "global batch; binary runs: every batch holds at least one image with the "
                  "category",
    "train_steps": "optimiser steps in all (a resumed run may raise it)",
    "seed": "initialisation, dropout and data order",
    "eval_every": "steps between evaluations on the selection split (the best is kept)",
    "eval_batch_size": "images per evaluation batch",
    "log_every": "steps between training-loss log lines",
    "checkpoint_minutes": "also save the latest state this often, so that a killed run loses at "
                          "most this much (0: only at evaluations); SIGINT and SIGTERM save at "
                          "once, then stop",
    "parallel": "pmap (one replica per device) or jit (a NamedSharding data mesh)",
    "warmup_steps": "not in the paper: raise the learning rate linearly from 0 over this many "
                    "steps (default 0: the paper's fixed rate)",
    "dtype": "operand dtype of the convolutions; bfloat16 (float32 accumulation, activations "
             "and weights) is faster on CPUs with AMX, on GPUs and on TPUs",
    "conv_forms": "how convolutions are computed: tuned (fastest on CPUs, and on an H100 in "
                  "float32) or native (one XLA convolution per layer, meant for TPUs); the "
                  "same function either way",
}


def _bool(text: str) -> bool:
  if text.lower() in ("1", "true", "yes"):
    return True
  if text.lower() in ("0", "false", "no"):
    return False
  raise UserError(f"expected true or false, got {text!r}")


def _parse_mean(text: str) -> tuple[float, float, float]:
  try:
    values = tuple(float(v) for v in text.split(","))
  except ValueError as error:
    raise UserError(f"--input_mean={text!r} is not B,G,R, e.g. 104,117,123") from error
  if len(values) != 3:
    raise UserError(f"--input_mean={text!r} needs 3 values, B,G,R")
  return values


def parse_run_flags(argv, description):
  """``(Config, workdir)`` from ``--flag=value`` arguments; UserError on any bad flag."""
  parser = cli.make_parser(description)
  defaults = config_lib.Config()
  for field in dataclasses.fields(config_lib.Config):
    default = getattr(defaults, field.name)
    kind = {bool: _bool, int: int, float: float}.get(type(default), str)
    if field.name in ("image_size", "crop_size"):
      kind = cli.parse_size(field.name)
    if field.name == "input_mean":
      kind = _parse_mean
    parser.add_argument(f"--{field.name}", type=kind, default=default,
                        choices=CHOICES.get(field.name), help=HELP[field.name])
  parser.add_argument("--workdir", default=None,
                      help="run folder (default runs/<dataset>-<category>-<loss>)")
  parser.add_argument("--coordinator_address", default=None,
                      help="multi-host: host:port of process 0 (or set JAX's environment)")
  parser.add_argument("--num_processes", type=int, default=None,
                      help="multi-host: how many processes (or set JAX's environment)")
  parser.add_argument("--process_id", type=int, default=None,
                      help="multi-host: this process's index (or set JAX's environment)")
  args = parser.parse_args(argv)
  if not args.category:
    raise UserError("--category is required, e.g. --category=person")
  if args.coordinator_address or args.num_processes:
    import jax  # pylint: disable=import-outside-toplevel
    jax.distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
  cli.hide_accelerators_from_tensorflow()
  values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_lib.Config)}
  config = config_lib.Config(**values)
  given = {arg.split("=", 1)[0] for arg in argv}
  if config.init == "scratch" and not given & {"--optimizer", "--learning_rate"}:
    print(f"note: the paper's SGD at learning rate {config.learning_rate:g} (the default) "
          "assumes ImageNet weights (--init); from scratch it seldom learns in a short run: "
          f"pass {cli.SCRATCH_RECIPE}", flush=True)
  workdir = args.workdir or os.path.join("runs", f"{config.dataset}-{config.category}-"
                                                 f"{config.loss}")
  cli.check_output_folder(workdir, f"--workdir={workdir}", make=False)
  return config, workdir
