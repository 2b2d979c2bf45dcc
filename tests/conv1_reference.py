"""Caffe's conv1 by its definition (scipy correlation of the 100-pixel zero-padded image,
stride 4), and the part of it the model computes as a convolution."""

import numpy as np
from scipy import signal

FCN_PAD, KERNEL, STRIDE = 100, 11, 4


def correlate_conv1(image, filters_hwio, bias, out_channel):
  """Output channel ``out_channel`` of conv1 on ``image [H, W, 3]``, every output pixel."""
  padded = np.pad(image, [(FCN_PAD, FCN_PAD), (FCN_PAD, FCN_PAD), (0, 0)])
  return sum(signal.correlate(padded[..., c], filters_hwio[:, :, c, out_channel], mode="valid")
             for c in range(3))[::STRIDE, ::STRIDE] + bias[out_channel]


def reached(output, image_shape):
  """The rows and columns of ``output`` whose 11-pixel window overlaps the image (the model's
  conv1 call computes these; the others see only padding)."""
  keep = [[i for i in range(n_out)
           if any(STRIDE * i <= FCN_PAD + r < STRIDE * i + KERNEL for r in range(size))]
          for n_out, size in zip(output.shape, image_shape[:2])]
  return output[np.ix_(*keep)]
