"""Bilinear upsampling as FCN's fixed deconvolution, in kernel and in matrix form.

FCN initialises its stride-``s`` transposed convolution (kernel ``k = 2s``) with the
bilinear filter ``f(i) = 1 - |i - c| / s``, ``c = (k - 1) / 2``. When it stays frozen the
layer is separable, so it equals ``U_h @ S @ U_w^T`` with 1-D interpolation matrices
``U[z, y] = f(z - s*y)`` (0 outside the kernel). The matrix form, restricted to the cropped
rows, is what the model uses: exact, and far cheaper than a 64x64 transposed convolution.
"""

from __future__ import annotations

import numpy as np


def bilinear_filter_1d(kernel_size: int) -> np.ndarray:
  """``f(i) = 1 - |i - c| / factor`` for ``i`` in ``[0, kernel_size)`` (Long et al. 2015)."""
  factor = (kernel_size + 1) // 2
  centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
  offsets = np.arange(kernel_size, dtype=np.float64)
  return 1.0 - np.abs(offsets - centre) / factor


def bilinear_kernel(kernel_size: int, channels: int) -> np.ndarray:
  """``[k, k, C, C]`` transposed-convolution kernel: the 2-D bilinear filter per channel."""
  filter_1d = bilinear_filter_1d(kernel_size)
  kernel = np.zeros((kernel_size, kernel_size, channels, channels), np.float32)
  for channel in range(channels):
    kernel[:, :, channel, channel] = np.outer(filter_1d, filter_1d)
  return kernel


def upsampling_matrix(in_size: int, stride: int, kernel_size: int, offset: int,
                      out_size: int) -> np.ndarray:
  """``[out_size, in_size]`` rows ``offset .. offset + out_size`` of the 1-D deconvolution.

  Row ``z`` holds the weights ``f(z + offset - stride * y)`` given to input ``y``.
  """
  filter_1d = bilinear_filter_1d(kernel_size)
  positions = np.arange(out_size)[:, None] + offset - stride * np.arange(in_size)[None, :]
  inside = (positions >= 0) & (positions < kernel_size)
  weights = np.where(inside, filter_1d[np.clip(positions, 0, kernel_size - 1)], 0.0)
  return weights.astype(np.float32)
