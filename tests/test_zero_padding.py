"""The layer on a zero-padded input computed where the input reaches equals the layer on the
padded input, in value and gradient (kernels/zero_padding.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax.kernels import response_norm, zero_padding


def _layer(params, *, stride):
  """A VALID convolution, its bias, ReLU and Caffe's LRN across channels (pixel-wise)."""
  kernel, bias = params
  def apply(x):
    y = jax.lax.conv_general_dilated(x, kernel, (stride, stride), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return response_norm.local_response_norm(jax.nn.relu(y + bias))
  return apply


# (height, width, pad, kernel, stride): FCN's conv1 on a small image, windows that skip
# input pixels (stride > kernel), no padding, padding narrower than the kernel.
CASES = [(23, 29, 100, 11, 4), (9, 14, 10, 2, 5), (8, 10, 0, 3, 2), (7, 5, 2, 5, 1),
         (1, 3, 30, 11, 4)]


@pytest.mark.parametrize("height,width,pad,kernel,stride", CASES)
def test_equals_the_layer_on_the_padded_input(height, width, pad, kernel, stride):
  rng = np.random.default_rng(height * width + pad)
  x = jnp.asarray(rng.normal(size=(2, height, width, 3)), jnp.float32)
  params = (jnp.asarray(rng.normal(size=(kernel, kernel, 3, 6)), jnp.float32),
            jnp.asarray(rng.normal(size=(6,)), jnp.float32))
  def padded(x, params):
    return _layer(params, stride=stride)(jnp.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)]))
  def reached_only(x, params):
    return zero_padding.on_zero_padded(_layer(params, stride=stride), x, pad=pad,
                                       kernel=kernel, stride=stride)
  expected = padded(x, params)
  np.testing.assert_allclose(reached_only(x, params), expected, rtol=1e-5, atol=1e-6)
  cotangent = jnp.asarray(rng.normal(size=expected.shape), jnp.float32)
  grads = [jax.grad(lambda x, p, f=f: jnp.sum(f(x, p) * cotangent), argnums=(0, 1))(x, params)
           for f in (padded, reached_only)]
  for got, want in zip(jax.tree.leaves(grads[1]), jax.tree.leaves(grads[0])):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_reached_outputs_are_those_whose_window_overlaps_the_input():
  for size, pad, kernel, stride in [(180, 100, 11, 4), (360, 100, 11, 4), (9, 10, 2, 5)]:
    first, last, count = zero_padding.reached_outputs(size, pad=pad, kernel=kernel,
                                                       stride=stride)
    overlapping = [i for i in range(count)
                   if any(stride * i <= pad + r < stride * i + kernel for r in range(size))]
    assert (first, last) == (overlapping[0], overlapping[-1])
    assert count == len(range(0, size + 2 * pad - kernel + 1, stride))
