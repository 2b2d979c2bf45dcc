"""FCN-32s on an AlexNet backbone (Long et al. 2015), as used by Rahman & Wang (2016).

Layers C1-C5 are AlexNet's convolutions, C6/C7 its fc6/fc7 as convolutions, C8 a 1x1
scoring convolution, then a stride-32 bilinear deconvolution cropped back to the input's
height and width. The sigmoid of the output gives the pixel probabilities X of the paper.

Two backbone layouts:
  * ``caffe`` (default, the paper's MatConvNet/Caffe AlexNet): 96/256/384/384/256 channels,
    groups of 2 on conv2/4/5, local response normalisation after conv1/2.
  * ``torchvision``: 64/192/384/256/256 channels, no groups, no LRN, so that torchvision's
    ImageNet weights fit.

Both pool in ceil mode, as Caffe does (Flax and torch round down). At ImageNet's 224x224 the
two modes give the same 6x6 pool5, so pretrained weights mean the same thing; at other sizes
ceil mode keeps a border window that floor mode drops, and it is what lets the 32x-upsampled
score map cover every input size after the crop (with floor mode the torchvision layout
falls short of a 375x500 input).
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from fcn_iou_jax import geometry, upsample
from fcn_iou_jax.kernels import convolution, dropout, pooling, response_norm, zero_padding

INPUT_PAD = 100  # FCN pads conv1's input by 100 px so that small inputs still score.
UPSAMPLE_STRIDE = 32
UPSAMPLE_KERNEL = 64
FC_FEATURES = 4096
# Typical per-channel standard deviation of each layout's normalised input: the caffe layout
# sees mean-subtracted 0-255 pixels, torchvision unit-variance ones. A scratch conv1 is
# scaled by its inverse so that activations start at unit scale (pretrained weights already
# are); without it the first updates saturate the sigmoid and the IoU gradient vanishes.
INPUT_STD = {"caffe": 60.0, "torchvision": 1.0}


@dataclasses.dataclass(frozen=True)
class ConvSpec:
  name: str
  features: int
  kernel: int
  stride: int = 1
  pad: int = 0
  groups: int = 1
  lrn: bool = False
  pool: bool = False


BACKBONES = {
    "caffe": (
        ConvSpec("conv1", 96, 11, stride=4, lrn=True, pool=True),
        ConvSpec("conv2", 256, 5, pad=2, groups=2, lrn=True, pool=True),
        ConvSpec("conv3", 384, 3, pad=1),
        ConvSpec("conv4", 384, 3, pad=1, groups=2),
        ConvSpec("conv5", 256, 3, pad=1, groups=2, pool=True),
    ),
    "torchvision": (
        ConvSpec("conv1", 64, 11, stride=4, pad=2, pool=True),
        ConvSpec("conv2", 192, 5, pad=2, pool=True),
        ConvSpec("conv3", 384, 3, pad=1),
        ConvSpec("conv4", 256, 3, pad=1),
        ConvSpec("conv5", 256, 3, pad=1, pool=True),
    ),
}


def scaled_channels(channels: int, width_mult: float, groups: int = 1) -> int:
  """``channels * width_mult`` rounded to a positive multiple of ``groups``."""
  return max(groups, int(round(channels * width_mult / groups)) * groups)


def spatial_layers(backbone: str, fc6_kernel: int):
  """The geometry of every spatial layer up to fc6, in order (see :mod:`geometry`)."""
  layers = []
  for index, spec in enumerate(BACKBONES[backbone]):
    pad = spec.pad + (INPUT_PAD if index == 0 else 0)
    layers.append(geometry.SpatialLayer(spec.kernel, spec.stride, pad))
    if spec.pool:
      layers.append(pooling.WINDOW)
  layers.append(geometry.SpatialLayer(fc6_kernel))
  return tuple(layers)


def score_size(backbone: str, fc6_kernel: int, height: int, width: int) -> tuple[int, int]:
  """Size of the score map (C8's output) for a ``height x width`` input."""
  layers = spatial_layers(backbone, fc6_kernel)
  return geometry.feature_size(layers, height), geometry.feature_size(layers, width)


def upsampling_matrices(backbone: str, fc6_kernel: int, scores_size, out_size):
  """``(rows, cols)`` with ``logits = rows @ scores @ cols.T``: the fixed stride-32 bilinear
  deconvolution of a ``scores_size`` map, cropped to ``out_size`` (see :mod:`upsample`)."""
  offset = geometry.crop_offset(spatial_layers(backbone, fc6_kernel), UPSAMPLE_KERNEL,
                                UPSAMPLE_STRIDE)
  return tuple(upsample.upsampling_matrix(n_in, UPSAMPLE_STRIDE, UPSAMPLE_KERNEL, offset, n_out)
               for n_in, n_out in zip(scores_size, out_size))


def _normalized(x, lrn: bool):
  return response_norm.local_response_norm(x) if lrn else x


class Conv(nn.Module):
  """2-D convolution (NHWC, HWIO kernel ``[kh, kw, C_in / groups, C_out]``) plus bias, computed
  by :func:`kernels.convolution.conv2d` in the given ``forms``."""
  features: int
  kernel: int
  stride: int = 1
  pad: int = 0
  groups: int = 1
  dtype: jnp.dtype = jnp.float32  # the convolution's operand dtype (float32 accumulation)
  forms: str = "tuned"
  kernel_init: callable = nn.initializers.kaiming_normal()

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", self.kernel_init,
                        (self.kernel, self.kernel, x.shape[-1] // self.groups, self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return convolution.conv2d(x, kernel, stride=self.stride, pad=self.pad, groups=self.groups,
                  operand_dtype=self.dtype, forms=self.forms) + bias


class FCN32s(nn.Module):
  """FCN-32s/AlexNet. ``__call__(images [B, H, W, 3], train) -> logits``.

  Logits are ``[B, H, W]`` when ``num_classes == 1`` (the paper's binary setting) and
  ``[B, H, W, num_classes]`` otherwise, for any input height and width.

  Attributes:
    backbone: ``caffe`` or ``torchvision`` (see module docstring).
    width_mult: scales every channel count (conv1-5, fc6, fc7), for fast CPU runs.
    num_classes: outputs of the scoring layer C8.
    fc6_kernel: 6 (Long et al.; ImageNet fc6 weights transplant) or 1 (the paper's
      literal "1x1 convolution" reading).
    dropout_rate: dropout after fc6 and fc7 in training (:func:`kernels.dropout.dropout`).
    learn_upsampling: train the deconvolution (initialised bilinear) instead of keeping it
      a fixed bilinear interpolation.
    dtype: operand dtype of every convolution (bfloat16: AMX/GPU/TPU speed, see
      :func:`conv2d`); accumulation, activations and parameters stay float32.
    conv_forms: how convolutions are computed, ``tuned`` or ``native`` (:func:`conv2d`).
  """
  backbone: str = "caffe"
  width_mult: float = 1.0
  num_classes: int = 1
  fc6_kernel: int = 6
  dropout_rate: float = 0.5
  learn_upsampling: bool = False
  dtype: jnp.dtype = jnp.float32
  conv_forms: str = "tuned"

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    if self.backbone not in BACKBONES:
      raise ValueError(f"unknown backbone {self.backbone!r}; choose from {sorted(BACKBONES)}")
    height, width = images.shape[1:3]
    x = images
    runs = ((0, 0), (0, 0))  # rows, columns of copies at each end of x (zero_padding)
    for index, spec in enumerate(BACKBONES[self.backbone]):
      pad = spec.pad + (INPUT_PAD if index == 0 else 0)
      init = nn.initializers.variance_scaling(
          2.0 / (INPUT_STD[self.backbone] ** 2 if index == 0 else 1.0), "fan_in", "normal")
      conv = Conv(scaled_channels(spec.features, self.width_mult, spec.groups), spec.kernel,
                  spec.stride, 0, spec.groups, self.dtype, self.conv_forms, kernel_init=init,
                  name=spec.name)
      layer = lambda z, conv=conv, lrn=spec.lrn: _normalized(nn.relu(conv(z)), lrn)
      # conv1's wide zero padding: computed only where the input reaches, and conv2 on the
      # unreached rows and columns cut to a few copies (zero_padding).
      sizes = x.shape[1:3]
      if spec.stride == 1:
        x = zero_padding.on_repeated_border(layer, x, runs=runs, kernel=spec.kernel, pad=pad)
      else:
        x = zero_padding.on_zero_padded(layer, x, pad=pad, kernel=spec.kernel,
                                        stride=spec.stride)
      runs = tuple(zero_padding.unreached_runs(n, pad=pad, kernel=spec.kernel, stride=spec.stride)
                   for n in sizes)
      if spec.pool:
        runs = tuple(zero_padding.runs_after_window(r, n, pooling.WINDOW)
                     for r, n in zip(runs, x.shape[1:3]))
        x = pooling.max_pool(x)
    fc_features = scaled_channels(FC_FEATURES, self.width_mult)
    for name, kernel in (("fc6", self.fc6_kernel), ("fc7", 1)):
      x = nn.relu(Conv(fc_features, kernel, dtype=self.dtype, forms=self.conv_forms,
                       name=name)(x))
      if train and self.dropout_rate:
        x = dropout.dropout(x, self.dropout_rate, self.make_rng("dropout"))
    scores = Conv(self.num_classes, 1, dtype=self.dtype, forms=self.conv_forms,
                  kernel_init=nn.initializers.zeros, name="score")(x)
    logits = self._upsample(scores, height, width)
    return logits[..., 0] if self.num_classes == 1 else logits

  def _upsample(self, scores, height, width):
    offset = geometry.crop_offset(spatial_layers(self.backbone, self.fc6_kernel),
                                  UPSAMPLE_KERNEL, UPSAMPLE_STRIDE)
    if self.learn_upsampling:
      kernel = upsample.bilinear_kernel(UPSAMPLE_KERNEL, self.num_classes)
      full = nn.ConvTranspose(self.num_classes, (UPSAMPLE_KERNEL, UPSAMPLE_KERNEL),
                              strides=(UPSAMPLE_STRIDE, UPSAMPLE_STRIDE), padding="VALID",
                              use_bias=False, kernel_init=lambda *_: jnp.asarray(kernel),
                              name="upscore")(scores)
      _check_covers(full.shape[1:3], offset, height, width)
      return full[:, offset:offset + height, offset:offset + width]
    rows, cols = upsampling_matrices(self.backbone, self.fc6_kernel, scores.shape[1:3],
                                     (height, width))
    _check_covers([(n - 1) * UPSAMPLE_STRIDE + UPSAMPLE_KERNEL for n in scores.shape[1:3]],
                  offset, height, width)
    return jnp.einsum("zy,byxc,wx->bzwc", rows, scores, cols)


def _check_covers(upsampled_shape, offset, height, width):
  if any(n < offset + size for n, size in zip(upsampled_shape, (height, width))):
    raise ValueError(f"input {height}x{width} is too small: the upsampled score map "
                     f"{tuple(upsampled_shape)} does not cover it after the crop offset {offset}")


def init_params(model: FCN32s, rng, image_shape=(1, 224, 224, 3)):
  """Initial parameters (from scratch) for ``model``; spatial size does not matter."""
  return _compiled_init(model, image_shape)(rng)


@functools.lru_cache(maxsize=8)
def _compiled_init(model: FCN32s, image_shape):
  """``init_params``' jitted function, one per model and shape: the runs of a grid, which
  share their model, trace and compile it once."""
  return jax.jit(lambda key: model.init({"params": key}, jnp.zeros(image_shape, jnp.float32),
                                        train=False)["params"])
