"""``sum(x)`` and ``sum(a * b)`` in blocked forms that XLA:CPU spreads over its threads: the
values of ``jnp.sum`` up to float rounding, about 3x faster on the losses' large batches
(``experiments/bench.py --only=loss``).
"""

from __future__ import annotations

import math

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
