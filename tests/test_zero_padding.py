"""The layer on a zero-padded input computed where the input reaches, and a stride-1 layer on
an input whose rows and columns of copies are cut short, equal the layer on the whole padded
input, in value and gradient (kernels/zero_padding.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax import geometry
from fcn_iou_jax.kernels import pooling, response_norm, zero_padding


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


def _with_copies(core, runs):
  """``core [B, h, w, C]`` spread out so that its first/last row stands ``runs[0]`` times at
  each end where that run is non-zero (columns alike, ``runs[1]``): rows and columns of copies
  made from ``core``, the way FCN's unreached outputs are."""
  for axis, (lead, trail) in zip((1, 2), runs):
    size = core.shape[axis] - (lead > 0) - (trail > 0)
    index = ([0] * lead + list(range(lead > 0, (lead > 0) + size))
             + [(lead > 0) + size] * trail)
    core = jnp.take(core, jnp.asarray(index), axis=axis)
  return core


# (core height, core width, runs, kernel, pad): FCN's conv2 beside pool1's unreached runs,
# runs shorter than the kernel on some sides, a run on one axis only, no padding.
REPEAT_CASES = [(9, 12, ((11, 10), (11, 11)), 5, 2), (6, 7, ((3, 8), (5, 0)), 5, 2),
                (5, 6, ((0, 0), (7, 4)), 3, 1), (6, 5, ((6, 9), (4, 7)), 3, 0)]


@pytest.mark.parametrize("height,width,runs,kernel,pad", REPEAT_CASES)
def test_repeated_border_equals_the_layer_on_the_whole_input(height, width, runs, kernel, pad):
  rng = np.random.default_rng(height * width + kernel)
  with jax.enable_x64(True):
    core = jnp.asarray(rng.normal(size=(2, height, width, 3)))
    params = (jnp.asarray(rng.normal(size=(kernel, kernel, 3, 6))),
              jnp.asarray(rng.normal(size=(6,))))
    def whole(core, params):
      x = jnp.pad(_with_copies(core, runs), [(0, 0), (pad, pad), (pad, pad), (0, 0)])
      return _layer(params, stride=1)(x)
    def cut(core, params):
      return zero_padding.on_repeated_border(_layer(params, stride=1), _with_copies(core, runs),
                                             runs=runs, kernel=kernel, pad=pad)
    expected = whole(core, params)
    np.testing.assert_allclose(cut(core, params), expected, rtol=1e-12, atol=1e-12)
    cotangent = jnp.asarray(rng.normal(size=expected.shape))
    grads = [jax.grad(lambda c, p, f=f: jnp.sum(f(c, p) * cotangent), argnums=(0, 1))(core, params)
             for f in (whole, cut)]
    for got, want in zip(jax.tree.leaves(grads[1]), jax.tree.leaves(grads[0])):
      np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_overlapping_runs_are_refused():
  x = jnp.zeros((1, 8, 8, 1))
  with pytest.raises(ValueError, match="overlap"):
    zero_padding.on_repeated_border(lambda z: z, x, runs=((5, 4), (0, 0)), kernel=3, pad=1)


def test_runs_after_window_are_the_outputs_reading_copies_only():
  for size, runs, window in [(138, (23, 23), pooling.WINDOW), (93, (23, 24), pooling.WINDOW),
                             (20, (2, 1), pooling.WINDOW), (30, (0, 0), pooling.WINDOW),
                             (17, (9, 6), geometry.SpatialLayer(4, 3))]:
    reads = [set(range(window.stride * i, min(size, window.stride * i + window.kernel)))
             for i in range(window.output_size(size))]
    leading = next((i for i, read in enumerate(reads) if not read <= set(range(runs[0]))),
                   len(reads))
    trailing = next((i for i, read in enumerate(reversed(reads))
                     if not read <= set(range(size - runs[1], size))), len(reads))
    assert zero_padding.runs_after_window(runs, size, window) == (leading, trailing)
