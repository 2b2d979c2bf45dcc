"""The sum over a window of neighbouring channels (LRN's), as shifted slices with the same
window sum as its gradient."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def window_sum(x, size: int):
  """``y_c = sum_{|c' - c| <= size // 2} x_c'`` over the last axis (zero beyond its ends).

  A symmetric band operator, so its VJP is the same window sum of the cotangent. As ``size``
  shifted slices it is one fused pass, forward and backward; a 0/1 band matmul does
  ``channels / size`` times the work, and autodiff of the slices pads each one back.
  """
  return _shifted_slices_sum(x, size)


def _shifted_slices_sum(x, size: int):
  half = size // 2
  padded = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(half, half)])
  return sum(padded[..., shift:shift + x.shape[-1]] for shift in range(2 * half + 1))


window_sum.defvjp(lambda x, size: (_shifted_slices_sum(x, size), None),
                  lambda size, _, cotangent: (_shifted_slices_sum(cotangent, size),))
