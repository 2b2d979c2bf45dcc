"""Every setting of a training run, with one documented default each.

Defaults are the paper's (Rahman & Wang 2016, Sec. 4.1): SGD, learning rate 1e-4, momentum
0.99, weight decay 5e-4, FCN-32s/AlexNet in the Caffe layout, the dataset's training size.
Only :func:`fcn_iou_jax.train.train_and_evaluate` sees the whole config.
"""

from __future__ import annotations

import dataclasses

# Names of data.sources.DATASETS, here so that command lines can check --dataset before they
# import TensorFlow (whose start-up lines would otherwise come before a flag error).
DATASET_NAMES = ("voc2010", "voc2011", "voc2012", "camvid", "synthetic")
# The same for the model's --backbone (models.BACKBONES) and --fc6_kernel, without JAX.
BACKBONE_NAMES = ("caffe", "torchvision")
FC6_KERNELS = (1, 6)  # 1: the paper's literal 1x1 C6; 6: Long et al.'s (ImageNet fc6 fits)


@dataclasses.dataclass(frozen=True)
class Config:
  # Data.
  dataset: str = "voc2012"  # voc2010 | voc2011 | voc2012 | camvid | synthetic
  category: str = ""  # the object category (names and aliases of the dataset), or all
  data_dir: str | None = None  # raw dataset folder (default: $FCN_IOU_DATA_DIR/<dataset>)
  prepared_dir: str | None = None  # TFDS records (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)
  image_size: tuple[int, int] | None = None  # training resize (H, W); None: the paper's size
  crop_size: tuple[int, int] | None = None  # random (H, W) crop after the resize; None: none
  scale_jitter: float = 0.0  # not in the paper: random rescale in [1/(1+s), 1+s] before the crop
  colour_jitter: float = 0.0  # not in the paper: random brightness/contrast/saturation strength
  class_aware_crops: bool = False  # multi-class: crops centred on a pixel of a random present class
  synthetic_ratio: float = 8.0  # synthetic data only: background:object pixel ratio
  # Model.
  backbone: str = "caffe"  # caffe | torchvision AlexNet layout
  width_mult: float = 1.0  # scales every channel count
  fc6_kernel: int = 6  # 6: Long et al. (ImageNet fc6 transplants); 1: the paper's literal 1x1
  dropout_rate: float = 0.5
  learn_upsampling: bool = False  # the stride-32 bilinear deconvolution stays fixed by default
  init: str = "scratch"  # scratch | ImageNet AlexNet weights (.npz, .pth, .mat, .caffemodel)
  # caffe layout's BGR input mean; None: the --init weights' own, else Caffe's ImageNet mean.
  input_mean: tuple[float, float, float] | None = None
  # Objective and optimiser.
  loss: str = "iou"  # iou (soft IoU, Eq. 5) | lovasz | softmax (FCN_acc) | softmax+iou
  class_weighting: str = "none"  # multi-class: none | median_frequency (of the training pixels)
  optimizer: str = "sgd"  # sgd (with momentum) | adam
  learning_rate: float = 1e-4
  warmup_steps: int = 0  # not in the paper: linear learning-rate warm-up from 0 (0: none)
  momentum: float = 0.99
  weight_decay: float = 5e-4  # on convolution kernels (not biases)
  batch_size: int = 8  # global batch; every batch holds >= 1 image with the category
  train_steps: int = 2000
  seed: int = 0
  # Evaluation, logging, parallelism.
  eval_every: int = 200  # steps between evaluations on the selection split
  eval_batch_size: int = 4
  log_every: int = 20
  checkpoint_minutes: float = 10.0  # also save the latest state this often (0: never)
  parallel: str = "pmap"  # pmap | jit (NamedSharding data mesh)
  dtype: str = "float32"  # convolution operands: float32 | bfloat16 (float32 accumulation, weights)
  conv_forms: str = "tuned"  # tuned | native: how convolutions are computed (models.conv2d)

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
