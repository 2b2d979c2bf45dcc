"""2-D convolution in the forms XLA compiles fastest: im2col patches times a matmul, 1x1
kernels as one matmul, groups as separate convolutions, bfloat16 operands through
:mod:`kernels.mixed_precision`; or one native XLA convolution. Each form computes
``y[b,i,j,o] = sum_{u,v,c} x[b, s*i+u-p, s*j+v-p, c] * kernel[u,v,c,o]`` (tests/test_fast_path.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fcn_iou_jax.kernels import mixed_precision


def _offset_view(x, offset: int, kernel: int, stride: int, *, axis: int):
  """What window offset ``offset`` reads along ``axis`` at each of the positions of a
  ``kernel``-wide window sliding by ``stride``: ``x[offset + stride * i]``."""
  count = (x.shape[axis] - kernel) // stride + 1
  return jax.lax.slice_in_dim(x, offset, offset + stride * (count - 1) + 1, stride, axis)


def _patches(x, kernel: int, stride: int):
  """Patches (im2col) of NHWC ``x``, ``[B, H', W', k*k*C]``, ordered (row, column, channel)
  like HWIO."""
  return jnp.concatenate([
      _offset_view(_offset_view(x, i, kernel, stride, axis=1), j, kernel, stride, axis=2)
      for i in range(kernel) for j in range(kernel)], axis=-1)


CONV_FORMS = ("tuned", "native")

# Outputs (per group) from which a convolution runs as patches times a matmul: in float32 the
# large stride-1 kernels (fc6's 6x6), in bfloat16 every kernel. With fewer outputs (the
# CPU protocol's width 0.25: conv1 24, conv2 and conv5 32, conv4 48 per group) XLA's own
# float32 convolution is faster: the float32 train step 9% faster, the bfloat16 one (on
# rounded operands, :func:`mixed_precision.rounded_bilinear`) 17-30% (Xeon, batch 8,
# 180x240); at width 1 (96 outputs and more) nothing changes.
PATCH_MATMUL_MIN_OUTPUTS = 64
# Kernel size from which a float32 stride-1 convolution with enough outputs runs as patches
# times a matmul (fc6's 6x6); smaller float32 kernels, and strided ones (conv1's 11x11 in
# space-to-depth blocks, :func:`_xla_convolution`), run as XLA's convolution.
FLOAT32_PATCH_MATMUL_MIN_KERNEL = 6


def conv2d(x, kernel, *, stride: int = 1, pad: int = 0, groups: int = 1,
           operand_dtype=jnp.float32, forms: str = "tuned"):
  """``y[b,i,j,o] = sum_{u,v,c} x[b, s*i+u-p, s*j+v-p, c] * kernel[u,v,c,o]`` (NHWC, HWIO),
  with ``groups`` independent channel groups (``kernel`` is ``[kh, kw, C_in / groups, C_out]``).

  ``forms`` picks how it is computed; both compute the same function, up to the operands'
  rounding (tested):
    * ``tuned`` (default): groups as separate convolutions; 1x1 kernels as one matmul; kernels
      with at least :data:`PATCH_MATMUL_MIN_OUTPUTS` outputs as patches times a matmul where
      that is faster (float32: the large stride-1 kernels, fc6's 6x6; a low ``operand_dtype``
      (bfloat16): all, as patches of the rounded input times a mixed-precision matmul,
      :func:`mixed_precision.rearranged_matmul`, the form that reaches AMX); the rest as XLA
      convolutions, strided ones in space-to-depth blocks (in bfloat16 on rounded operands,
      :func:`mixed_precision.rounded_bilinear`). Fastest on XLA:CPU, and on an H100 in
      float32 (in bfloat16 the two are close; ``experiments/bench.py``, README
      "Performance"). Where the backend does not multiply ``operand_dtype`` natively
      (:func:`mixed_precision.multiplies_natively`: XLA:CPU without AMX), the float32 forms
      on the rounded operands (:func:`mixed_precision.rounded_bilinear`), at about float32's speed.
    * ``native``: one XLA convolution with ``feature_group_count``, operands and result in
      ``operand_dtype`` (cuDNN and TPU convolutions accumulate bfloat16 in float32), the result
      returned as float32: what XLA compiles best where its convolutions are fast (TPUs; not
      measured here).
  """
  if forms not in CONV_FORMS:
    raise ValueError(f"unknown conv forms {forms!r}; choose from {CONV_FORMS}")
  if forms == "native":
    y = jax.lax.conv_general_dilated(
        x.astype(operand_dtype), kernel.astype(operand_dtype), (stride, stride),
        [(pad, pad)] * 2, dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups)
    return y.astype(jnp.float32)
  if not mixed_precision.multiplies_natively(operand_dtype):
    in_float32 = functools.partial(conv2d, stride=stride, pad=pad, groups=groups)
    return mixed_precision.rounded_bilinear(in_float32, x, kernel, operand_dtype)
  if groups > 1:
    in_per_group, out_per_group = x.shape[-1] // groups, kernel.shape[-1] // groups
    return jnp.concatenate([
        _tuned_conv2d(x[..., g * in_per_group:(g + 1) * in_per_group],
                      kernel[..., g * out_per_group:(g + 1) * out_per_group],
                      stride, pad, operand_dtype)
        for g in range(groups)], axis=-1)
  return _tuned_conv2d(x, kernel, stride, pad, operand_dtype)


def _tuned_conv2d(x, kernel, stride, pad, operand_dtype):
  """One group of :func:`conv2d` in the ``tuned`` forms."""
  size = kernel.shape[0]
  matrix = kernel.reshape(-1, kernel.shape[-1])
  if size == 1 and stride == 1 and not pad:
    return mixed_precision.matmul(x, matrix, operand_dtype)
  if kernel.shape[-1] >= PATCH_MATMUL_MIN_OUTPUTS and (
      operand_dtype != jnp.float32 or (size >= FLOAT32_PATCH_MATMUL_MIN_KERNEL and stride == 1)):
    padded_patches = functools.partial(_padded_patches, kernel=size, stride=stride, pad=pad)
    patch_rows = functools.partial(_padded_patch_rows, kernel=size, stride=stride, pad=pad)
    return mixed_precision.rearranged_matmul(padded_patches, patch_rows, x, matrix,
                                             operand_dtype)
  xla_convolution = functools.partial(_xla_convolution, stride=stride, pad=pad)
  if operand_dtype == jnp.float32:
    return xla_convolution(x, kernel)
  return mixed_precision.rounded_bilinear(xla_convolution, x, kernel, operand_dtype)


def _xla_convolution(x, kernel, *, stride: int, pad: int):
  """One XLA convolution of ``x`` zero-padded by ``pad``; a strided one (conv1) as the stride-1
  convolution of both operands in space-to-depth blocks (:func:`_space_to_depth`): conv1 at
  360x480 with 96 outputs, forward and weight gradient, 1.7-3.6x faster on XLA:CPU than the
  strided convolution or patches times a matmul; with 24 outputs (180x240) even (AMD Zen 3,
  docs/performance.md)."""
  if stride == 1:
    return jax.lax.conv_general_dilated(_zero_pad(x, pad), kernel, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  size = kernel.shape[0]
  blocks = -(-size // stride)  # the kernel's extent in blocks
  extent = [((side + 2 * pad - size) // stride + blocks) * stride for side in x.shape[1:3]]
  return jax.lax.conv_general_dilated(
      _space_to_depth(x, stride, pad, extent), _space_to_depth_kernel(kernel, stride, blocks),
      (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _space_to_depth(x, block: int, pad: int, extent):
  """``x [B, H, W, C]`` zero-padded by ``pad`` on each side, cut or zero-filled at the bottom
  and right to ``extent`` (multiples of ``block``), in blocks of ``block x block`` pixels:
  ``[B, h / s, w / s, s*s*C]`` with ``z[b, i, j, (u, v, c)] = x_padded[b, s*i+u, s*j+v, c]``."""
  batch, height, width, channels = x.shape
  padded = jax.lax.pad(x, jnp.zeros((), x.dtype), [
      (0, 0, 0), (pad, extent[0] - height - pad, 0), (pad, extent[1] - width - pad, 0),
      (0, 0, 0)])
  rows, columns = extent[0] // block, extent[1] // block
  blocked = padded.reshape(batch, rows, block, columns, block, channels)
  return blocked.transpose(0, 1, 3, 2, 4, 5).reshape(batch, rows, columns, -1)


def _space_to_depth_kernel(kernel, block: int, blocks: int):
  """``kernel [k, k, C, O]`` zero-filled to ``blocks * block`` offsets, in the blocks of
  :func:`_space_to_depth`: ``[blocks, blocks, s*s*C, O]`` with
  ``K[p, q, (u, v, c), o] = kernel[s*p+u, s*q+v, c, o]``."""
  size, _, channels, outputs = kernel.shape
  filled = jnp.pad(kernel, [(0, blocks * block - size)] * 2 + [(0, 0), (0, 0)])
  blocked = filled.reshape(blocks, block, blocks, block, channels, outputs)
  return blocked.transpose(0, 2, 1, 3, 4, 5).reshape(blocks, blocks, -1, outputs)


def _zero_pad(x, pad: int):
  """``x [B, H, W, C]`` with ``pad`` zero rows and columns on each side."""
  return jnp.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])


def _windows(x, kernel: int, stride: int, *, axis: int, stack_axis: int):
  """The ``kernel`` offsets' views of ``x`` along ``axis`` (:func:`_offset_view`),
  concatenated along ``stack_axis`` in offset order."""
  return jnp.concatenate([_offset_view(x, i, kernel, stride, axis=axis) for i in range(kernel)],
                         axis=stack_axis)


# Stride-1 kernels from this size on (fc6's 6x6) gather their patches in two passes, like the
# weight gradient's rows: the column offsets first, then the row offsets of that. The backward
# pass's transpose (adding the copies back) then runs in two passes too, which XLA:CPU fuses
# with pool5's gradient in fewer passes: the CPU protocol's float32 step 3-6% faster (Xeon,
# width 0.25, batch 8, 180x240), width 1 even in float32 and even to 8% faster in bfloat16
# (docs/performance.md). Smaller kernels keep one concatenation (mixed in bfloat16).
TWO_PASS_MIN_KERNEL = 6


def _padded_patches(x, *, kernel: int, stride: int, pad: int):
  """:func:`_patches` of ``x`` zero-padded by ``pad`` on each side; for stride-1 kernels of
  :data:`TWO_PASS_MIN_KERNEL` or more built in two passes (the same array)."""
  padded = _zero_pad(x, pad)
  if stride == 1 and kernel >= TWO_PASS_MIN_KERNEL:
    columns = _windows(padded, kernel, stride, axis=2, stack_axis=-1)
    return _windows(columns, kernel, stride, axis=1, stack_axis=-1)
  return _patches(padded, kernel, stride)


def _padded_patch_rows(x, *, kernel: int, stride: int, pad: int):
  """:func:`_padded_patches` as a ``[k*k*C, B*H'*W']`` matrix, built from ``x`` channels-first
  in two passes: the column offsets stacked first (``[k*C, B, H, W']``), then the row offsets
  of that, which gives the (row, column, channel) order. XLA:CPU copies this 2.5x faster than
  one concatenation of all k*k windows for conv2 (5x5 on 48 channels), 1.3-2x for the 3x3
  kernels (docs/performance.md)."""
  channels_first = jnp.pad(jnp.moveaxis(x, -1, 0), [(0, 0), (0, 0), (pad, pad), (pad, pad)])
  columns = _windows(channels_first, kernel, stride, axis=3, stack_axis=0)
  rows = _windows(columns, kernel, stride, axis=2, stack_axis=0)
  return rows.reshape(kernel * kernel * x.shape[-1], -1)
