"""kernels.convolution's tuned forms against a float64 NumPy convolution summed kernel offset by
kernel offset: the product and both gradients, in float32 and with bfloat16 operands."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from fcn_iou_jax.kernels import convolution, mixed_precision


def _rounded(a, dtype):
  """``a`` rounded to ``dtype`` (round to nearest even), back in float64."""
  return np.asarray(a).astype(dtype).astype(np.float64)


def _reference(x, kernel, g, stride, pad):
  """``y``, ``dx``, ``dw`` of ``y[b,i,j,o] = sum_{u,v,c} xp[b, s*i+u, s*j+v, c] k[u,v,c,o]``
  (``xp``: ``x`` zero-padded by ``pad``) for the cotangent ``g``, one offset ``(u, v)`` at a
  time."""
  size = kernel.shape[0]
  xp = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
  height, width = g.shape[1:3]
  y = np.zeros(g.shape)
  dxp = np.zeros(xp.shape)
  dw = np.zeros(kernel.shape)
  for u in range(size):
    for v in range(size):
      rows = slice(u, u + stride * (height - 1) + 1, stride)
      cols = slice(v, v + stride * (width - 1) + 1, stride)
      y += xp[:, rows, cols, :] @ kernel[u, v]
      dxp[:, rows, cols, :] += g @ kernel[u, v].T
      dw[u, v] = np.einsum("bijc,bijo->co", xp[:, rows, cols, :], g)
  return y, dxp[:, pad:pad + x.shape[1], pad:pad + x.shape[2], :], dw


FORMS = [(3, 1, 1), (5, 1, 2), (11, 4, 0), (11, 4, 3), (3, 2, 1), (6, 1, 0)]  # (size, stride, pad)
# Narrow kernels run as XLA convolutions (bfloat16: on rounded operands; strided ones in
# space-to-depth blocks), wide ones as patches times a matmul (float32: the large stride-1
# kernels only; strided ones as XLA convolutions in blocks).
OUTPUTS = [6, convolution.PATCH_MATMUL_MIN_OUTPUTS]
# bfloat16 in both of its forms, whatever this machine's: products of bfloat16 operands (with
# AMX, on GPUs and TPUs) and float32 products of the rounded operands (elsewhere).
OPERANDS = [(jnp.float32, True), (jnp.bfloat16, True), (jnp.bfloat16, False)]


@pytest.mark.parametrize("size,stride,pad,outputs,dtype,native",
                         [(*form, outputs, *operands) for form in FORMS for outputs in OUTPUTS
                          for operands in OPERANDS])
def test_tuned_convolution_and_gradients_are_the_sum_over_kernel_offsets(
    size, stride, pad, outputs, dtype, native, monkeypatch):
  monkeypatch.setattr(mixed_precision, "multiplies_natively",
                      lambda operand_dtype: native or operand_dtype == jnp.float32)
  rng = np.random.default_rng(size)
  x = rng.standard_normal((2, 17, 14, 5)).astype(np.float32)
  kernel = rng.standard_normal((size, size, 5, outputs)).astype(np.float32)
  y, pullback = jax.vjp(lambda a, k: convolution.conv2d(
      a, k, stride=stride, pad=pad, operand_dtype=dtype), x, kernel)
  g = rng.standard_normal(y.shape).astype(np.float32)
  dx, dw = pullback(jnp.asarray(g))
  low = ml_dtypes.bfloat16 if dtype == jnp.bfloat16 else np.float32
  expected = _reference(_rounded(x, low), _rounded(kernel, low), _rounded(g, low), stride, pad)
  magnitudes = _reference(np.abs(_rounded(x, low)), np.abs(_rounded(kernel, low)),
                          np.abs(_rounded(g, low)), stride, pad)
  for name, actual, want, scale in zip(("y", "dx", "dw"), (y, dx, dw), expected, magnitudes):
    assert actual.dtype == jnp.float32
    # float32 accumulation of exact products: within 8 float32 epsilons of the sum of their
    # magnitudes; a misplaced patch element misses by O(1).
    assert np.all(np.abs(np.asarray(actual) - want) <= 1e-6 * scale + 1e-30), name
