"""Ceil-mode max pooling: values and the first-maximum gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax.kernels import pooling


@pytest.mark.parametrize("height,width", [(9, 8), (10, 11), (7, 7)])
def test_max_pool_value_and_gradient_equal_reduce_window(height, width):
  """Ceil-mode 3x3/2 pooling against reduce_window (select-and-scatter gradient), float64."""
  with jax.enable_x64():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, height, width, 3)))
    extra = [-(-(n - 3) // 2) * 2 + 3 - n for n in (height, width)]

    def reference(x):
      return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                   [(0, 0), (0, extra[0]), (0, extra[1]), (0, 0)])

    pooled, pool_vjp = jax.vjp(pooling.max_pool, x)
    expected, reference_vjp = jax.vjp(reference, x)
    np.testing.assert_array_equal(pooled, expected)
    cotangent = jnp.asarray(np.random.default_rng(1).standard_normal(pooled.shape))
    np.testing.assert_allclose(pool_vjp(cotangent)[0], reference_vjp(cotangent)[0],
                               rtol=0, atol=1e-12)


def test_max_pool_gives_a_tied_window_its_cotangent_once():
  x = jnp.zeros((1, 5, 5, 1))  # every window ties (ReLU zeros)
  pooled, pool_vjp = jax.vjp(pooling.max_pool, x)
  (dx,) = pool_vjp(jnp.ones_like(pooled))
  # Windows start at rows/columns 0 and 2; each one's cotangent goes to its first position only.
  expected = np.zeros((5, 5))
  expected[::2, ::2][:2, :2] = 1
  np.testing.assert_array_equal(dx[0, :, :, 0], expected)
