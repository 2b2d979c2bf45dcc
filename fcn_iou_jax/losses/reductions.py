"""What every loss shares: its pixel mask, and its sums' reduction across a mapped device axis."""

from __future__ import annotations

import jax
import jax.numpy as jnp


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
