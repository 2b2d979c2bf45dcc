"""LRN's channel window sum (kernels/channel_window.py) against its definition, a band
matrix, in value and gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax.kernels import channel_window


@pytest.mark.parametrize("channels,size", [(7, 5), (3, 5), (16, 3), (1, 5)])
def test_window_sum_and_its_gradient_are_the_band_matrix_products(channels, size):
  rng = np.random.default_rng(channels)
  x = rng.normal(size=(2, 3, 4, channels))
  band = (np.abs(np.arange(channels)[:, None] - np.arange(channels)[None, :])
          <= size // 2).astype(np.float64)
  np.testing.assert_allclose(channel_window.window_sum(jnp.asarray(x, jnp.float32), size),
                             x @ band, rtol=1e-5, atol=1e-5)
  cotangent = rng.normal(size=x.shape)
  gradient = jax.grad(lambda x: jnp.sum(channel_window.window_sum(x, size)
                                        * jnp.asarray(cotangent, jnp.float32)))(
                                            jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(gradient, cotangent @ band.T, rtol=1e-5, atol=1e-5)
