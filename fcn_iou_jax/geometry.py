"""Spatial geometry of FCN-32s: feature-map sizes and the crop offset of the score map.

Each spatial layer maps an output coordinate ``y`` to the input coordinate of its receptive
field centre, ``x = stride * y + (kernel - 1) / 2 - pad`` (Caffe's coordinate maps). The
stride-32 deconvolution inverts such a map. Composing them tells where each upsampled score
lies in the input image; the crop offset is that displacement, rounded down. Deriving it
from the layer list (instead of hard-coding Caffe's number) keeps it right for every layout
and for the fc6 kernel option.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class SpatialLayer:
  """A convolution or pooling seen only through its geometry."""
  kernel: int
  stride: int = 1
  pad: int = 0
  ceil_mode: bool = False  # pooling rounds the output size up (Caffe) or down (Flax, torch)

  def output_size(self, size: int) -> int:
    span = size + 2 * self.pad - self.kernel
    steps = math.ceil(span / self.stride) if self.ceil_mode else span // self.stride
    return steps + 1


def feature_size(layers, size: int) -> int:
  """Output size of ``layers`` (applied in order) for an input of ``size`` pixels."""
  for layer in layers:
    size = layer.output_size(size)
    if size < 1:
      raise ValueError(f"input of {size} pixels is too small for this network")
  return size


def crop_offset(layers, upsample_kernel: int, upsample_stride: int) -> int:
  """Offset at which the deconvolved score map lines up with the input image.

  With ``x = a * y + b`` for the composed layers and ``y = (z - c) / s`` for the
  deconvolution (``c = (k - 1) / 2``), score ``z`` sits at input ``z - offset`` with
  ``offset = c - b`` when ``a == s``. For the Caffe AlexNet layout with a 6x6 fc6 this is
  18.5; we round down to 18 (Caffe's crop needs an integer and cannot express the half).
  """
  scale, shift = 1.0, 0.0
  for layer in layers:
    # x_in = stride * x_out + (kernel - 1)/2 - pad, composed from the input side.
    shift += scale * ((layer.kernel - 1) / 2 - layer.pad)
    scale *= layer.stride
  if scale != upsample_stride:
    raise ValueError(f"network stride {scale} differs from the upsampling stride "
                     f"{upsample_stride}")
  return math.floor((upsample_kernel - 1) / 2 - shift)
