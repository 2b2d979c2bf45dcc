"""Every loss over a batch spread on 2 devices equals the loss of the concatenated batch on 1,
under ``pmap`` (statistics summed or pixels gathered over the axis) and under sharded ``jit``;
the closed-form backward passes equal autodiff there too."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax import losses

CLASSES = 4
DEVICES = 2


def _batch(multiclass):
  rng = np.random.default_rng(4)
  features = rng.normal(size=(4, 3, 16)).astype(np.float32)
  if multiclass:
    labels = rng.integers(0, CLASSES - 1, size=features.shape)
    labels[2:][labels[2:] == 0] = 1  # class 0 only on the first device, class 3 nowhere
  else:
    labels = (rng.uniform(size=features.shape) < 0.3).astype(np.float32)
    labels[2:] = 0  # the second device has no positive: per-device losses would differ a lot
  mask = (rng.uniform(size=features.shape) < 0.8).astype(np.float32)
  mask[0, :, :4] = 0
  return features, labels, mask


def _model_loss(loss_fn, weights, features, labels, mask, axis_name=None):
  if weights.ndim == 2:  # a per-class linear score: [B, H, W, C]
    logits = features[..., None] * weights[0] + weights[1]
  else:
    logits = weights[0] * features + weights[1]
  return loss_fn(logits, labels, mask, axis_name=axis_name)


def _weights(multiclass):
  if multiclass:
    return jnp.asarray(np.random.default_rng(5).normal(size=(2, CLASSES)), jnp.float32)
  return jnp.array([0.7, -0.2], jnp.float32)


def _pmapped(loss_fn, weights, *batch):
  @functools.partial(jax.pmap, axis_name="batch", in_axes=(None, 0, 0, 0))
  def run(w, x, y, m):
    value, grad = jax.value_and_grad(functools.partial(_model_loss, loss_fn))(
        w, x, y, m, axis_name="batch")
    local_value = _model_loss(loss_fn, w, x, y, m)
    return value, jax.lax.pmean(grad, "batch"), local_value

  return run(weights, *(a.reshape(DEVICES, -1, *a.shape[1:]) for a in batch))


def _sharded_jit(loss_fn, weights, *batch):
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:DEVICES]), ("data",),
                           axis_types=(jax.sharding.AxisType.Auto,))
  sharded = [jax.device_put(a, jax.NamedSharding(mesh, jax.P("data"))) for a in batch]
  return jax.jit(jax.value_and_grad(functools.partial(_model_loss, loss_fn)))(weights, *sharded)


CASES = [(name, multiclass) for multiclass in (False, True) for name in losses.LOSS_NAMES]


@pytest.mark.parametrize("name, multiclass", CASES)
def test_two_devices_equal_one_on_the_concatenated_batch(name, multiclass):
  assert jax.local_device_count() >= DEVICES
  loss_fn = losses.get_loss(name, multiclass=multiclass)
  weights, batch = _weights(multiclass), _batch(multiclass)
  expected_value, expected_grad = jax.value_and_grad(
      functools.partial(_model_loss, loss_fn))(weights, *batch)
  value, grad, local_values = _pmapped(loss_fn, weights, *batch)
  for device in range(DEVICES):
    assert float(value[device]) == pytest.approx(float(expected_value), rel=1e-5)
    np.testing.assert_allclose(grad[device], expected_grad, rtol=1e-4, atol=1e-6)
  # Per-device losses are not the global one, so the test can fail.
  assert np.max(np.abs(np.asarray(local_values) - float(expected_value))) > 1e-3
  jit_value, jit_grad = _sharded_jit(loss_fn, weights, *batch)
  assert float(jit_value) == pytest.approx(float(expected_value), rel=1e-5)
  np.testing.assert_allclose(jit_grad, expected_grad, rtol=1e-4, atol=1e-6)


def _autodiff_binary(logits, labels, mask, axis_name=None):
  """1 - I/U written from the psum'd terms, so that autodiff runs through the psum."""
  intersection, union = losses.soft_iou_terms(jax.nn.sigmoid(logits), labels, mask,
                                              axis_name=axis_name)
  return 1 - intersection / union


def _autodiff_multiclass(logits, labels, mask, axis_name=None):
  intersection, union, counts = losses.multiclass_soft_iou_terms(
      jax.nn.softmax(logits), labels, mask, axis_name=axis_name)
  present = counts > 0
  return jnp.sum(jnp.where(present, 1 - intersection / union, 0)) / jnp.sum(present)


@pytest.mark.parametrize("multiclass", [False, True])
def test_closed_form_backward_equals_autodiff_on_two_devices(multiclass):
  closed_form = losses.get_loss("iou", multiclass=multiclass)
  autodiff = _autodiff_multiclass if multiclass else _autodiff_binary
  weights, batch = _weights(multiclass), _batch(multiclass)
  closed_value, closed_grad, _ = _pmapped(closed_form, weights, *batch)
  auto_value, auto_grad, _ = _pmapped(autodiff, weights, *batch)
  np.testing.assert_allclose(closed_value, auto_value, rtol=1e-6)
  np.testing.assert_allclose(closed_grad, auto_grad, rtol=1e-4, atol=1e-7)
