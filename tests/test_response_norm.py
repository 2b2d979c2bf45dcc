"""Caffe's LRN (kernels/response_norm.py) against its definition in float64 NumPy: values, and
gradients against central finite differences of that definition."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax.kernels import response_norm


def _lrn_float64(a, size=5, alpha=1e-4, k=1.0):
  """``b_c = a_c (k + alpha/size sum_{|c'-c|<=size//2} a_c'^2)^(-3/4)``, channel by channel."""
  channels = a.shape[-1]
  out = np.empty_like(a)
  for c in range(channels):
    window = a[..., max(0, c - size // 2):c + size // 2 + 1]
    out[..., c] = a[..., c] * (k + alpha / size * np.sum(window ** 2, axis=-1)) ** -0.75
  return out


@pytest.mark.parametrize("channels", [1, 3, 8])
def test_value_and_gradient_match_the_definition(channels):
  rng = np.random.default_rng(channels)
  # Caffe-scale activations (tens to hundreds), where the normalisation is far from 1.
  a = np.abs(rng.normal(scale=80.0, size=(2, 3, 4, channels)))
  cotangent = rng.normal(size=a.shape)
  value, vjp = jax.vjp(response_norm.local_response_norm, jnp.asarray(a, jnp.float32))
  np.testing.assert_allclose(value, _lrn_float64(a), rtol=1e-5)
  (gradient,) = vjp(jnp.asarray(cotangent, jnp.float32))
  step = 1e-4 * np.maximum(np.abs(a), 1.0)
  numeric = np.empty_like(a)
  for index in np.ndindex(a.shape):
    plus, minus = a.copy(), a.copy()
    plus[index] += step[index]
    minus[index] -= step[index]
    numeric[index] = np.sum(cotangent * (_lrn_float64(plus) - _lrn_float64(minus))) / (
        2 * step[index])
  np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-6)
