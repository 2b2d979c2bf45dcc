"""Dropout's mask (kernels/dropout.py) against its definition, unpacked here in NumPy, and its
statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax.kernels import dropout


@pytest.mark.parametrize("rate, bits", [(0.5, 1), (0.75, 2), (0.25, 2), (0.375, 4),
                                        (1 - 3 / 256, 8), (0.3, None), (0.1, None)])
def test_field_width_is_the_narrowest_that_holds_keep_exactly(rate, bits):
  assert dropout.field_bits(1 - rate) == bits


@pytest.mark.parametrize("rate", [0.5, 0.75, 0.375, 1 - 3 / 256])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (4, 64)])
def test_mask_is_the_fields_of_the_random_words(rate, shape):
  """y_i = x_i / keep where field i (lowest bits of each word first) < keep * 2^b, else 0."""
  key = jax.random.key(3)
  x = np.arange(1, np.prod(shape) + 1, dtype=np.float32).reshape(shape)
  keep, bits = 1 - rate, dropout.field_bits(1 - rate)
  per_word = 32 // bits
  words = np.asarray(jax.random.bits(key, (-(-x.size // per_word),), jnp.uint32))
  index = np.arange(x.size)
  fields = (words[index // per_word] >> (bits * (index % per_word)).astype(np.uint32)) \
      & (2**bits - 1)
  kept = (fields < keep * 2**bits).reshape(shape)
  y = np.asarray(dropout.dropout(jnp.asarray(x), rate, key))
  np.testing.assert_array_equal(y != 0, kept)
  np.testing.assert_allclose(y, np.where(kept, x / keep, 0), rtol=1e-6)


@pytest.mark.parametrize("rate", [0.5, 0.25, 0.3, 0.9])
def test_kept_fraction_and_neighbours_are_independent_bernoulli(rate):
  keep, n = 1 - rate, 1 << 18
  y = np.asarray(dropout.dropout(jnp.ones((n,)), rate, jax.random.key(11)))
  kept = y != 0
  np.testing.assert_allclose(y[kept], 1 / keep, rtol=1e-6)
  spread = np.sqrt(keep * (1 - keep) / n)
  assert abs(kept.mean() - keep) < 5 * spread
  for lag in (1, 2, 31, 32):  # fields of one word, and of neighbouring words
    both = (kept[:-lag] & kept[lag:]).mean()
    assert abs(both - keep**2) < 5 * np.sqrt(keep**2 * (1 - keep**2) / n), lag


def test_keys_give_different_masks_and_rate_zero_keeps_everything():
  x = jnp.ones((4096,))
  a = dropout.dropout(x, 0.5, jax.random.key(0))
  b = dropout.dropout(x, 0.5, jax.random.key(1))
  assert 0.4 < float(jnp.mean(a != b)) < 0.6
  np.testing.assert_array_equal(dropout.dropout(x, 0.0, jax.random.key(0)), x)
