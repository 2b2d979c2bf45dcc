"""Dropout whose mask takes as few random bits per element as its rate allows."""

from __future__ import annotations

import jax
import jax.numpy as jnp

WORD_BITS = 32  # the random words the fields are cut from
FIELD_BITS = (1, 2, 4, 8)  # widths of the uniform fields a mask may be drawn from


def field_bits(keep: float) -> int | None:
  """The narrowest width ``b`` of :data:`FIELD_BITS` with ``keep * 2**b`` a whole number (the
  paper's rate 0.5: 1 bit), or None where there is none (rate 0.3)."""
  return next((bits for bits in FIELD_BITS if float(keep * 2**bits).is_integer()), None)


def dropout(x, rate: float, key):
  """``y = m * x / keep``, ``keep = 1 - rate``, ``m`` independent Bernoulli(keep) per element.

  Where ``keep * 2^b`` is a whole number ``n`` for a width ``b`` of :data:`FIELD_BITS`,
  ``m_i = [u_i < n]`` with ``u_i`` the ``i``-th ``b``-bit field (row-major order of ``x``,
  lowest bits of each word first) of uniform random 32-bit words: exactly Bernoulli(keep),
  from ``32 / b`` elements per word where ``jax.random.bernoulli`` draws a word per element
  (the CPU protocol's train step 4% faster at rate 0.5, docs/performance.md). Other rates
  use ``jax.random.bernoulli``.
  """
  keep = 1.0 - rate
  bits = field_bits(keep)
  if bits is None:
    kept = jax.random.bernoulli(key, keep, x.shape)
  else:
    per_word = WORD_BITS // bits
    words = jax.random.bits(key, (-(-x.size // per_word),), jnp.uint32)[:, None]
    shifts = jnp.arange(0, WORD_BITS, bits, dtype=jnp.uint32)
    fields = (words >> shifts) & jnp.uint32(2**bits - 1)
    kept = fields.reshape(-1)[:x.size].reshape(x.shape) < jnp.uint32(keep * 2**bits)
  return jnp.where(kept, x / keep, jnp.zeros((), x.dtype))
