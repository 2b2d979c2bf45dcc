"""Matrix products with low-precision operands and float32 accumulation.

On CPUs with AMX (and on TPUs) a bfloat16 x bfloat16 -> float32 product runs several times
faster than a float32 one, while a bfloat16 result, or a mixed float32/bfloat16 pair, falls
back to the slow path. :func:`matmul` therefore rounds both operands, in the forward pass and
in both gradients, and keeps every result in float32. :func:`rearranged_matmul` does the same
for a product whose left operand is first rearranged (im2col patches): it rearranges the
rounded values, half the bytes of float32. :func:`rounded_bilinear` computes any bilinear
function (a narrow convolution) of rounded operands with float32 kernels instead.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fcn_iou_jax import precision

# Output width from which a float32 weight gradient transposes its input first on a CPU
# without AVX-512 (see _weight_gradient): fc6 and fc7 at the paper's width, 4096, where the
# float32 train step gets 9-12% faster on AMD Zen 3 (batch 4 and 1, 360x480); at widths
# 0.25-0.5 (1024-2048 outputs) the copy costs about what it saves, and conv1-conv5 (96-384
# outputs) run slower with it. On a Xeon with AVX-512 the batch-4 step is 13% slower with it.
WIDE_OUTPUT = 4096


# Rows (images x output positions) from which such a float32 product (fc6, fc7) computes its
# weight gradient first and its input gradient after it, not both at once: XLA:CPU runs two
# independent ops side by side, each YNNPACK dot then on its share of the cores, slower than
# one after the other. AMD Zen 3 at 360x480, both forms alternating step by step in one
# process (results/bench/float32_serial_gradients.py): batch 4 (768 rows) up to 11% faster
# (median 2.81 against 3.18 s) or even, batch 3 (576 rows) 3-4% faster in two runs, batch 8
# even; batch 2 even, batch 1 (192 rows) 2-12% slower.
SERIAL_MIN_ROWS = 576


def transposed_copy_pays() -> bool:
  """Whether float32 weight gradients of :data:`WIDE_OUTPUT` outputs read ``x^T`` written out:
  on XLA:CPU without AVX-512 (measured, above); never on GPUs and TPUs, whose matmuls read
  transposed operands as they lie."""
  return jax.default_backend() == "cpu" and not precision.cpu_has("avx512f")


def multiplies_natively(operand_dtype) -> bool:
  """Whether this backend multiplies ``operand_dtype`` operands in its own units: float32
  everywhere, bfloat16 where ``--dtype=auto`` picks it (:func:`precision.multiplies_bfloat16`).
  Elsewhere (XLA:CPU without AMX) the float32 product of the rounded operands computes the
  same function (:func:`rounded_bilinear`) faster: the bfloat16 train step 1.5x faster at
  360x480, 1.2x at the CPU protocol's size, about as fast as float32 (AMD Zen 3,
  results/bench/bfloat16_without_amx.py)."""
  return operand_dtype == jnp.float32 or precision.multiplies_bfloat16(jax.default_backend)


def _product(x, w):
  """``y[..., o] = sum_k x[..., k] w[k, o]``, accumulated in float32."""
  return jnp.einsum("...k,ko->...o", x, w, preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def matmul(x, w, operand_dtype):
  """``y = r(x) @ r(w)`` with ``r`` rounding to ``operand_dtype``; float32 accumulation.

  Gradients (cotangent ``g`` of ``y``): ``dx = r(g) @ r(w)^T``, ``dw = r(x)^T @ r(g)``, also
  accumulated in float32: the float32 gradient of the product, with each operand rounded.
  """
  return _matmul_forward(x, w, operand_dtype)[0]


def _matmul_forward(x, w, operand_dtype):
  x_low, w_low = x.astype(operand_dtype), w.astype(operand_dtype)
  return _product(x_low, w_low), (x_low, w_low)


def _matmul_backward(operand_dtype, residuals, g):
  x_low, w_low = residuals
  g_low = g.astype(operand_dtype)
  dw = _weight_gradient(x_low, g_low)
  return _input_gradient(_after_weight_gradient(g_low, dw), w_low), dw


def _after_weight_gradient(g_low, dw):
  """``g_low`` for the input gradient, made to wait for the weight gradient ``dw`` where one
  after the other is faster (:func:`_wide_float32` products of :data:`SERIAL_MIN_ROWS` rows or
  more): ``g + 0 * dw[0, 0]``, the same values (a non-finite ``dw[0, 0]`` makes them NaN: the
  step has diverged then anyway)."""
  if not _wide_float32(g_low) or g_low.size // g_low.shape[-1] < SERIAL_MIN_ROWS:
    return g_low
  return g_low + 0 * dw[0, 0]


def _wide_float32(g_low) -> bool:
  """Whether a product with cotangent ``g_low`` is float32 with :data:`WIDE_OUTPUT` outputs or
  more on a CPU where :func:`transposed_copy_pays`: fc6 and fc7 at width 1 on AVX2 CPUs."""
  return (g_low.dtype == jnp.float32 and g_low.shape[-1] >= WIDE_OUTPUT
          and transposed_copy_pays())


def _input_gradient(g_low, w_low):
  """``dx[..., k] = sum_o g[..., o] w[k, o]``, accumulated in float32."""
  return jnp.einsum("...o,ko->...k", g_low, w_low, preferred_element_type=jnp.float32)


def _weight_gradient(x_low, g_low):
  """``dw[k, o] = sum_m x[m, k] g[m, o]`` over all leading axes ``m``, accumulated in float32,
  in the form XLA:CPU (jax 0.10, YNNPACK dots) runs fastest for the operands' dtype and width:

    * bfloat16: a second, size-1 contracting axis. A bfloat16 dot whose left operand
      contracts its leading axis goes to neither YNNPACK nor oneDNN, which converts both
      operands to float32 first; with two contracting axes XLA canonicalises the dot
      (transposing x) and keeps the bfloat16 operands, 2-2.6x faster for these shapes.
    * float32, ``o`` at least :data:`WIDE_OUTPUT` (fc6, fc7) where
      :func:`transposed_copy_pays`: ``x^T`` written out first, then a dot contracting its
      last axis (1.2-1.6x faster than the dot on ``x`` as it lies, for these layers alone, on
      AMD Zen 3); the optimisation barrier keeps XLA from folding the transpose back;
    * float32 otherwise: the dot on ``x`` as it lies.
  """
  x_rows = x_low.reshape(-1, x_low.shape[-1])
  g_rows = g_low.reshape(-1, g_low.shape[-1])
  if x_low.dtype != jnp.float32:
    return jnp.einsum("bmk,bmo->ko", x_rows[None], g_rows[None],
                      preferred_element_type=jnp.float32)
  if _wide_float32(g_rows):
    return jnp.einsum("km,mo->ko", jax.lax.optimization_barrier(x_rows.T), g_rows)
  return jnp.einsum("mk,mo->ko", x_rows, g_rows)


matmul.defvjp(_matmul_forward, _matmul_backward)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 4))
def rearranged_matmul(rearrange, rearrange_rows, x, w, operand_dtype):
  """``y = rearrange(r(x)) @ r(w)``, float32 accumulation, for a ``rearrange`` that only moves,
  copies or zero-pads elements (so ``rearrange(r(x)) == r(rearrange(x))``: the same function
  as ``matmul(rearrange(x), w)``); ``rearrange_rows(x)`` is the same rearrangement as a
  ``[K, M]`` matrix, ``rearrange(x).reshape(-1, K).T``.

  Gradients: ``dx = rearrange^T(r(g) @ r(w)^T)`` with the transpose (adding the copies) in
  float32, ``dw = rearrange_rows(r(x)) @ r(g)``, both accumulated in float32. A float32
  backward pass reads ``rearrange(x)`` kept from the forward pass instead (see
  :func:`_weight_gradient`); a bfloat16 one rebuilds the rows from the rounded input, which
  costs less than XLA:CPU's transpose of the kept matrix.
  """
  return _rearranged_forward(rearrange, rearrange_rows, x, w, operand_dtype)[0]


def _rearranged_forward(rearrange, rearrange_rows, x, w, operand_dtype):
  del rearrange_rows  # used by the backward pass
  x_low = x.astype(operand_dtype)
  y, (rearranged, w_low) = _matmul_forward(_on_bits(rearrange, x_low), w, operand_dtype)
  kept = rearranged if operand_dtype == jnp.float32 else x_low
  x_shape = jnp.zeros(x.shape + (0,), x.dtype)  # empty: carries x's shape and dtype only
  return y, (kept, w_low, x_shape)


def _rearranged_backward(rearrange, rearrange_rows, operand_dtype, residuals, g):
  kept, w_low, x_shape = residuals
  g_low = g.astype(operand_dtype)
  if operand_dtype == jnp.float32:
    dw = _weight_gradient(kept, g_low)
  else:
    dw = jnp.einsum("km,mo->ko", _on_bits(rearrange_rows, kept),
                    g_low.reshape(-1, g_low.shape[-1]), preferred_element_type=jnp.float32)
  x_like = jax.ShapeDtypeStruct(x_shape.shape[:-1], x_shape.dtype)
  (dx,) = jax.linear_transpose(rearrange, x_like)(
      _input_gradient(_after_weight_gradient(g_low, dw), w_low))
  return dx, dw


def _on_bits(rearrange, x):
  """``rearrange(x)`` for a ``rearrange`` that only moves, copies or zero-pads elements, done on
  ``x``'s bits as unsigned integers of its width where ``x`` is not float32: XLA:CPU copies
  bfloat16 arrays through float32 (a conversion each way), integers as they are. Zero bits
  are +0.0."""
  if x.dtype == jnp.float32:
    return rearrange(x)
  bits = jax.lax.bitcast_convert_type(x, jnp.dtype(f"uint{8 * x.dtype.itemsize}"))
  return jax.lax.bitcast_convert_type(rearrange(bits), x.dtype)


rearranged_matmul.defvjp(_rearranged_forward, _rearranged_backward)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 3))
def rounded_bilinear(f, x, w, operand_dtype):
  """``y = f(r(x), r(w))`` computed in float32, for a bilinear ``f`` (a convolution): the
  product of two rounded values is exact in float32, so this is ``f`` on ``operand_dtype``
  operands with float32 accumulation, computed by float32 kernels.

  Gradients: ``f``'s float32 gradients at the rounded operands, with the cotangent rounded:
  ``dx = (df/dx)^T r(g)``, ``dw = (df/dw)^T r(g)``, as :func:`matmul`'s.
  """
  return _rounded_forward(f, x, w, operand_dtype)[0]


def _rounded_forward(f, x, w, operand_dtype):
  x_low, w_low = x.astype(operand_dtype), w.astype(operand_dtype)
  return f(x_low.astype(jnp.float32), w_low.astype(jnp.float32)), (x_low, w_low)


def _rounded_backward(f, operand_dtype, residuals, g):
  x_low, w_low = residuals
  _, gradients = jax.vjp(f, x_low.astype(jnp.float32), w_low.astype(jnp.float32))
  return gradients(g.astype(operand_dtype).astype(jnp.float32))


rounded_bilinear.defvjp(_rounded_forward, _rounded_backward)
