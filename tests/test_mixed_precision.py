"""bfloat16-operand matmuls: forward and both gradients against float64 NumPy math."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from fcn_iou_jax.kernels import mixed_precision


def _rounded(a):
  """``a`` rounded to bfloat16 (round to nearest even), back in float64."""
  return np.asarray(a).astype(ml_dtypes.bfloat16).astype(np.float64)


def test_product_and_gradients_are_float64_math_on_rounded_operands():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((3, 5, 64)).astype(np.float32)
  w = rng.standard_normal((64, 7)).astype(np.float32)
  g = rng.standard_normal((3, 5, 7)).astype(np.float32)
  y, pullback = jax.vjp(lambda a, b: mixed_precision.matmul(a, b, jnp.bfloat16), x, w)
  dx, dw = pullback(jnp.asarray(g))
  assert y.dtype == dx.dtype == dw.dtype == jnp.float32
  np.testing.assert_allclose(y, _rounded(x) @ _rounded(w), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dx, _rounded(g) @ _rounded(w).T, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dw, _rounded(x).reshape(-1, 64).T @ _rounded(g).reshape(-1, 7),
                             rtol=1e-5, atol=1e-5)
  exact = x.astype(np.float64) @ w.astype(np.float64)
  assert np.abs(np.asarray(y) - exact).max() > 1e-3  # the operands really were rounded


@pytest.mark.parametrize("width", [3, mixed_precision.WIDE_OUTPUT])  # both gradient forms
def test_float32_operands_give_the_exact_product_and_gradients(width, monkeypatch):
  monkeypatch.setattr(mixed_precision, "transposed_copy_pays", lambda: True)  # on any CPU
  monkeypatch.setattr(mixed_precision, "SERIAL_MIN_ROWS", 6)  # the 6 rows below
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, 3, 32)).astype(np.float32)
  w = rng.standard_normal((32, width)).astype(np.float32)
  g = rng.standard_normal((2, 3, width)).astype(np.float32)
  y, pullback = jax.jit(lambda a, b: jax.vjp(
      lambda a, b: mixed_precision.matmul(a, b, jnp.float32), a, b))(x, w)
  dx, dw = pullback(jnp.asarray(g))
  x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
  x_rows, g_rows = x64.reshape(-1, 32), g64.reshape(-1, width)

  def assert_float32_sum(actual, a, b):
    """``actual`` equals ``a @ b`` up to float32 rounding: within 8 float32 epsilons of the
    sum of the products' magnitudes."""
    bound = 1e-6 * (np.abs(a) @ np.abs(b))
    assert np.all(np.abs(np.asarray(actual) - a @ b) <= bound)

  assert_float32_sum(y, x64, w64)
  assert_float32_sum(dx, g64, w64.T)
  assert_float32_sum(dw, x_rows.T, g_rows)


@pytest.mark.parametrize("serial_min_rows", [6, 7])
def test_the_input_gradient_waits_for_the_weight_gradient_from_serial_min_rows(
    serial_min_rows, monkeypatch):
  """From SERIAL_MIN_ROWS rows dx is computed from dw (its documented trace: an infinite
  dw[0, 0] makes dx NaN); below, dx does not depend on x at all."""
  monkeypatch.setattr(mixed_precision, "transposed_copy_pays", lambda: True)
  monkeypatch.setattr(mixed_precision, "SERIAL_MIN_ROWS", serial_min_rows)
  width = mixed_precision.WIDE_OUTPUT
  x = np.ones((2, 3, 8), np.float32)
  x[0, 0, 0] = np.inf  # dw[0, 0] = sum_m x[m, 0] g[m, 0] is infinite, dx = g w^T is not
  _, pullback = jax.vjp(lambda a, b: mixed_precision.matmul(a, b, jnp.float32),
                        x, np.ones((8, width), np.float32))
  dx, dw = pullback(jnp.ones((2, 3, width), jnp.float32))
  assert np.isinf(dw[0, 0])
  assert np.all(np.isnan(dx)) == (serial_min_rows <= 6)
  assert np.all(np.isfinite(dx)) == (serial_min_rows > 6)


def test_rearranged_product_and_gradients_are_float64_math_on_rounded_operands():
  """A rearrangement that copies elements (two overlapping windows, like im2col): the input
  gradient must add both copies' gradients, in float32."""
  rng = np.random.default_rng(2)
  x = rng.standard_normal((3, 6, 16)).astype(np.float32)
  w = rng.standard_normal((32, 7)).astype(np.float32)
  g = rng.standard_normal((3, 5, 7)).astype(np.float32)
  windows = lambda a: jnp.concatenate([a[:, :-1], a[:, 1:]], axis=-1)
  window_rows = lambda a: windows(a).reshape(-1, 32).T
  y, pullback = jax.vjp(
      lambda a, b: mixed_precision.rearranged_matmul(windows, window_rows, a, b, jnp.bfloat16),
      x, w)
  dx, dw = pullback(jnp.asarray(g))
  assert y.dtype == dx.dtype == dw.dtype == jnp.float32
  x_windows = np.concatenate([_rounded(x)[:, :-1], _rounded(x)[:, 1:]], axis=-1)
  np.testing.assert_allclose(y, x_windows @ _rounded(w), rtol=1e-5, atol=1e-5)
  d_windows = _rounded(g) @ _rounded(w).T
  expected_dx = np.zeros(x.shape)
  expected_dx[:, :-1] += d_windows[..., :16]
  expected_dx[:, 1:] += d_windows[..., 16:]
  np.testing.assert_allclose(dx, expected_dx, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dw, x_windows.reshape(-1, 32).T @ _rounded(g).reshape(-1, 7),
                             rtol=1e-5, atol=1e-5)


def test_rounded_bilinear_is_float64_math_on_rounded_operands_and_cotangent():
  """A bilinear function (here a product) computed in float32 on rounded operands, with the
  cotangent rounded in both gradients."""
  rng = np.random.default_rng(3)
  x = rng.standard_normal((4, 48)).astype(np.float32)
  w = rng.standard_normal((48, 5)).astype(np.float32)
  g = rng.standard_normal((4, 5)).astype(np.float32)
  y, pullback = jax.vjp(lambda a, b: mixed_precision.rounded_bilinear(
      jnp.matmul, a, b, jnp.bfloat16), x, w)
  dx, dw = pullback(jnp.asarray(g))
  assert y.dtype == dx.dtype == dw.dtype == jnp.float32
  np.testing.assert_allclose(y, _rounded(x) @ _rounded(w), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dx, _rounded(g) @ _rounded(w).T, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dw, _rounded(x).T @ _rounded(g), rtol=1e-5, atol=1e-5)
  assert np.abs(np.asarray(dx) - g.astype(np.float64) @ _rounded(w).T).max() > 1e-3
