"""The sums every loss is built from, and their reduction across a mapped device axis.

``total`` and ``dot_total`` give the values of ``jnp.sum(x)`` and ``jnp.sum(a * b)`` (up to
float rounding) in blocked forms that XLA:CPU spreads over its threads: about 3x faster on
large batches (``experiments/bench.py --only=loss``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _blocks(x):
  """``x`` flattened to ``[rows, block]`` (``block`` divides its size), or ``None`` if small."""
  flat = x.reshape(-1)
  block = math.gcd(flat.size, 4096)
  return None if block < 64 else flat.reshape(-1, block)


def total(x):
  """``sum(x)`` over all elements, reduced in blocks first."""
  rows = _blocks(x)
  return jnp.sum(x) if rows is None else jnp.sum(jnp.sum(rows, axis=1))


def dot_total(a, b):
  """``sum(a * b)`` as row-wise dot products: one read of each array."""
  a_rows, b_rows = _blocks(a), _blocks(b)
  if a_rows is None:
    return jnp.vdot(a.reshape(-1), b.reshape(-1))
  return jnp.sum(jnp.einsum("rk,rk->r", a_rows, b_rows))


def mask_or_ones(mask, shape, dtype):
  """``mask`` as ``dtype``, or ones of ``shape`` when it is ``None`` (every pixel counts)."""
  return jnp.ones(shape, dtype) if mask is None else jnp.asarray(mask).astype(dtype)


def psum_if(value, axis_name):
  """``value`` summed across the mapped axis ``axis_name`` (unchanged when it is ``None``)."""
  return value if axis_name is None else jax.lax.psum(value, axis_name)


def replicated_cotangent(cotangent, axis_name):
  """The cotangent of a loss that every device of ``axis_name`` holds the same copy of.

  Each device seeds its own copy's cotangent, so the global loss's cotangent is their sum:
  what autodiff gives through a ``psum`` (the step then averages gradients with ``pmean``).
  """
  return psum_if(cotangent, axis_name)
