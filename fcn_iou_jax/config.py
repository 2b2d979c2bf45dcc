"""Every setting of a training run, with one documented default each.

Defaults are the paper's (Rahman & Wang 2016, Sec. 4.1): SGD, learning rate 1e-4, momentum
0.99, weight decay 5e-4, FCN-32s/AlexNet in the Caffe layout, the dataset's training size.
Only :func:`fcn_iou_jax.train.train_and_evaluate` sees the whole config.
"""

from __future__ import annotations

import dataclasses

from fcn_iou_jax.data import categories
from fcn_iou_jax.errors import UserError

# Names of data.sources.DATASETS, here so that command lines can check --dataset before they
# import TensorFlow (whose start-up lines would otherwise come before a flag error).
DATASET_NAMES = ("voc2010", "voc2011", "voc2012", "camvid", "synthetic")
# The same for the model's --backbone (models.BACKBONES) and --fc6_kernel, without JAX.
BACKBONE_NAMES = ("caffe", "torchvision")
FC6_KERNELS = (1, 6)  # 1: the paper's literal 1x1 C6; 6: Long et al.'s (ImageNet fc6 fits)


def setting(default, help_text: str, *, choices=None, valid=None):
  """A Config field: its default, the help its flag shows, its allowed values (if few) and
  its range (``valid``: a test of the value and what it says, checked when a Config is made)."""
  return dataclasses.field(default=default, metadata={"help": help_text, "choices": choices,
                                                      "valid": valid})


# Ranges of settings: (test, what a value must be).
POSITIVE = (lambda value: value > 0, "positive")
ZERO_OR_POSITIVE = (lambda value: value >= 0, "0 or positive")
FRACTION = (lambda value: 0 <= value < 1, "in [0, 1)")


@dataclasses.dataclass(frozen=True)
class Config:
  """One field per setting; run.py's flags, their help and their choices come from here."""
  # Data.
  dataset: str = setting("voc2012", "which dataset to train and evaluate on",
                         choices=DATASET_NAMES)
  category: str = setting(
      "", "object category (required), e.g. person, pole, sign_symbol; or all: one multi-class "
      "model of every class (VOC: 21 with background; CamVid: 11)")
  data_dir: str | None = setting(
      None, "raw dataset folder (default $FCN_IOU_DATA_DIR/<dataset>; downloaded there when "
      "online)")
  prepared_dir: str | None = setting(
      None, "TFDS records folder (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
  image_size: tuple[int, int] | None = setting(
      None, "training size HxW, e.g. 180x240 (default: the paper's size)")
  crop_size: tuple[int, int] | None = setting(
      None, "random training crop HxW taken after the resize, e.g. 180x240 (default: none)")
  scale_jitter: float = setting(
      0.0, "not in the paper: rescale each training image by a random factor in "
      "[1/(1+s), 1+s] before the crop (needs --crop_size; default 0: off)",
      valid=ZERO_OR_POSITIVE)
  colour_jitter: float = setting(
      0.0, "not in the paper: random brightness shift (up to this share of the range), "
      "contrast and saturation factors in [1-s, 1+s] (default 0: off)", valid=FRACTION)
  class_aware_crops: bool = setting(
      False, "--category=all with --crop_size: centre each crop on a pixel of a class drawn "
      "uniformly among the image's classes (default: uniform crops)")
  synthetic_ratio: float = setting(
      8.0, "synthetic data only: background:object pixel ratio of the disks", valid=POSITIVE)
  synthetic_bar_ratio: float = setting(
      47.0, "synthetic data only: background:object pixel ratio of the bars (the second "
      "object kind; 47: bars 4 rows high in a 96-row image)", valid=POSITIVE)
  # Model.
  backbone: str = setting("caffe", "AlexNet layout: caffe (Long et al.'s FCN) or torchvision",
                          choices=BACKBONE_NAMES)
  width_mult: float = setting(
      1.0, "scales every channel count (below 1: a narrower, faster network)", valid=POSITIVE)
  fc6_kernel: int = setting(
      6, "fc6 kernel: 6 (Long et al.; ImageNet fc6 weights fit) or 1 (the paper's literal 1x1 "
      "C6)", choices=FC6_KERNELS)
  dropout_rate: float = setting(0.5, "dropout after fc6 and fc7 in training", valid=FRACTION)
  learn_upsampling: bool = setting(
      False, "train the stride-32 deconvolution instead of keeping it bilinear")
  init: str = setting(
      "scratch", "scratch, ImageNet AlexNet weights (.npz, .pth, MatConvNet .mat or "
      ".caffemodel; experiments/convert_weights.py), or the folder of a run (its best conv1-fc7)")
  input_mean: tuple[float, float, float] | None = setting(
      None, "caffe layout: B,G,R mean subtracted from the 0-255 input (default: the mean that "
      "came with the --init weights, else Caffe's ImageNet mean)")
  # Objective and optimiser.
  loss: str = setting(
      "iou", "iou: soft IoU (Eq. 5, FCN_IoU; per class with --category=all); lovasz: Lovász "
      "hinge, or Lovász-Softmax with --category=all (Berman et al. 2018); softmax: per-pixel "
      "cross-entropy (FCN_acc); softmax+iou: their sum")
  class_weighting: str = setting(
      "none", "--category=all: per-class loss weights; median_frequency: median class share "
      "over the class's share of the training pixels (Eigen & Fergus 2015); not for lovasz",
      choices=("none", "median_frequency"))
  optimizer: str = setting("sgd", "sgd (with momentum, the paper's) or adam",
                           choices=("sgd", "adam"))
  learning_rate: float = setting(1e-4, "step size, fixed unless --warmup_steps",
                                  valid=POSITIVE)
  warmup_steps: int = setting(
      0, "not in the paper: raise the learning rate linearly from 0 over this many steps "
      "(default 0: the paper's fixed rate)", valid=ZERO_OR_POSITIVE)
  momentum: float = setting(0.99, "SGD momentum (unused by adam)", valid=FRACTION)
  weight_decay: float = setting(5e-4, "L2 penalty on convolution kernels (not biases)",
                                valid=ZERO_OR_POSITIVE)
  batch_size: int = setting(
      8, "global batch; binary runs: every batch holds at least one image with the category",
      valid=POSITIVE)
  train_steps: int = setting(2000, "optimiser steps in all (a resumed run may raise it)",
                             valid=POSITIVE)
  seed: int = setting(0, "initialisation, dropout and data order")
  # Evaluation, logging, parallelism.
  eval_every: int = setting(
      200, "steps between evaluations on the selection split (the best is kept)",
      valid=POSITIVE)
  eval_batch_size: int = setting(4, "images per evaluation batch", valid=POSITIVE)
  log_every: int = setting(20, "steps between training-loss log lines", valid=POSITIVE)
  checkpoint_minutes: float = setting(
      10.0, "also save the latest state this often, so that a killed run loses at most this "
      "much (0: only at evaluations); SIGINT and SIGTERM save at once, then stop",
      valid=ZERO_OR_POSITIVE)
  parallel: str = setting(
      "auto", "pmap (one replica per device), jit (a NamedSharding data mesh), or auto: jit "
      "where JAX has one device (the faster step there), pmap on several")
  dtype: str = setting(
      "auto", "operand dtype of the convolutions: bfloat16 (float32 accumulation, activations "
      "and weights), float32 (the paper's), or auto: bfloat16 on a CPU with AMX, a GPU or a "
      "TPU, where it is faster and scores alike, float32 elsewhere",
      choices=("auto", "float32", "bfloat16"))
  conv_forms: str = setting(
      "tuned", "how convolutions are computed: tuned (fastest on CPUs, and on an H100 in "
      "float32) or native (one XLA convolution per layer, meant for TPUs); the same function "
      "either way")

  def __post_init__(self):
    for field in dataclasses.fields(self):
      valid, value = field.metadata["valid"], getattr(self, field.name)
      if valid and not valid[0](value):
        raise UserError(f"`{field.name}`={value} must be {valid[1]}")
    labels = categories.BY_DATASET.get(self.dataset)
    if self.category and labels:  # no category: the default, for a command line to set
      labels.target(self.category, dataset=self.dataset)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


# Settings a resumed run may change without invalidating its checkpoints.
RESUMABLE_CHANGES = ("data_dir", "prepared_dir", "train_steps", "eval_every", "log_every",
                     "eval_batch_size", "parallel", "conv_forms", "checkpoint_minutes")


def incompatible_keys(saved: dict, current: dict) -> list[str]:
  """Keys whose values differ between a saved and a current config (ignoring safe ones).

  A key missing from ``saved`` (a setting added after the run started) counts as its default.
  """
  defaults = Config().to_dict()
  normalise = lambda v: list(v) if isinstance(v, tuple) else v
  return sorted(key for key in set(saved) | set(current)
                if key not in RESUMABLE_CHANGES
                and normalise(saved.get(key, defaults.get(key))) != normalise(current.get(key)))
