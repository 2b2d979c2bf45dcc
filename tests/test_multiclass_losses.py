"""The C-class soft IoU against a NumPy loss written from its definition, float64 central
differences, its closed-form gradient, and the binary loss it reduces to."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax import losses


def _numpy_loss(probs, labels, mask, classes="present", weights=None):
  """Per class: I, U over valid pixels; weighted mean of 1 - I/U over the counted classes."""
  num_classes = probs.shape[-1]
  weights = np.ones(num_classes) if weights is None else np.asarray(weights, np.float64)
  total, weight_total = 0.0, 0.0
  for c in range(num_classes):
    labelled = (labels == c) & (mask > 0)
    if classes == "present" and not labelled.any():
      continue
    if not isinstance(classes, str) and c not in classes:
      continue
    p = probs[..., c] * (mask > 0)
    intersection = np.sum(p * labelled)
    union = np.sum(p + labelled - p * labelled)
    total += weights[c] * (1 - intersection / union if union > 0 else 0.0)
    weight_total += weights[c]
  return total / weight_total if weight_total else 0.0


def _central_differences(probs, labels, mask, eps=1e-6, **options):
  grad = np.zeros_like(probs)
  for index in np.ndindex(probs.shape):
    up, down = probs.copy(), probs.copy()
    up[index] += eps
    down[index] -= eps
    grad[index] = (_numpy_loss(up, labels, mask, **options)
                   - _numpy_loss(down, labels, mask, **options)) / (2 * eps)
  return grad


def _case(seed, shape=(2, 3, 4), num_classes=5, absent=(3,)):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(*shape, num_classes))
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  labels = rng.integers(0, num_classes, shape)
  for c in absent:
    labels[labels == c] = (c + 1) % num_classes
  mask = (rng.uniform(size=shape) > 0.25).astype(np.float64)
  labels[mask == 0] = 255  # void: any value, never read
  return probs, labels, mask


OPTIONS = {
    "present": {},
    "all": {"classes": "all"},
    "ids": {"classes": (0, 3, 4)},
    "weighted": {"weights": [0.5, 2.0, 1.0, 3.0, 0.25]},
    "weighted_all": {"classes": "all", "weights": [0.5, 2.0, 1.0, 3.0, 0.25]},
}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_loss_and_gradients_against_numpy_and_central_differences(name):
  options = OPTIONS[name]
  probs, labels, mask = _case(sum(map(ord, name)))
  keywords = {"classes": options.get("classes", "present"),
              "class_weights": options.get("weights")}
  with jax.enable_x64(True):
    value, autodiff = jax.value_and_grad(losses.multiclass_soft_iou_loss)(
        jnp.asarray(probs), labels, mask, **keywords)
    closed_form = losses.multiclass_soft_iou_grad(jnp.asarray(probs), labels, mask, **keywords)
  expected = _numpy_loss(probs, labels, mask, **options)
  numeric = _central_differences(probs, labels, mask, **options)
  assert float(value) == pytest.approx(expected, rel=1e-12)
  np.testing.assert_allclose(autodiff, numeric, rtol=1e-6, atol=1e-9)
  np.testing.assert_allclose(closed_form, numeric, rtol=1e-6, atol=1e-9)
  assert not np.any(np.asarray(autodiff)[mask == 0])  # void pixels get no gradient


def test_gradient_reaches_logits_through_the_softmax():
  probs, labels, mask = _case(7)
  logits = np.log(probs)
  with jax.enable_x64(True):
    grad = jax.grad(losses.multiclass_soft_iou_loss_from_logits)(jnp.asarray(logits), labels,
                                                                  mask)
  eps, numeric = 1e-6, np.zeros_like(logits)
  softmax = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)
  for index in np.ndindex(logits.shape):
    up, down = logits.copy(), logits.copy()
    up[index] += eps
    down[index] -= eps
    numeric[index] = (_numpy_loss(softmax(up), labels, mask)
                      - _numpy_loss(softmax(down), labels, mask)) / (2 * eps)
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


def test_two_classes_reduce_to_the_binary_loss():
  rng = np.random.default_rng(3)
  foreground = rng.uniform(0.01, 0.99, (3, 5, 6))
  labels = (rng.uniform(size=foreground.shape) < 0.3).astype(np.int32)
  mask = (rng.uniform(size=foreground.shape) < 0.8).astype(np.float64)
  probs = np.stack([1 - foreground, foreground], -1)
  with jax.enable_x64(True):
    two_class = jax.value_and_grad(losses.multiclass_soft_iou_loss)(
        jnp.asarray(probs), labels, mask, classes=[1])
    binary = jax.value_and_grad(losses.soft_iou_loss)(jnp.asarray(foreground), labels, mask)
  assert float(two_class[0]) == pytest.approx(float(binary[0]), rel=1e-12)
  np.testing.assert_allclose(two_class[1][..., 1], binary[1], rtol=1e-12)
  assert not np.any(two_class[1][..., 0])


def test_a_class_with_empty_union_is_finite_perfect_and_flat():
  probs = np.zeros((2, 4, 3))
  probs[..., 0] = 0.7
  probs[..., 1] = 0.3  # class 2: no label and probability 0 everywhere, so U_2 = 0
  labels = np.array([[0, 1, 0, 0], [1, 1, 0, 1]])
  value, grad = jax.value_and_grad(losses.multiclass_soft_iou_loss)(
      jnp.asarray(probs, jnp.float32), labels, classes="all")
  assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
  assert not np.any(grad[..., 2])
  present = losses.multiclass_soft_iou_loss(jnp.asarray(probs, jnp.float32), labels)
  assert float(value) == pytest.approx(2 / 3 * float(present), rel=1e-6)  # class 2 adds 0
  # Nothing counts at all: loss 0, gradient 0.
  nothing = jax.value_and_grad(losses.multiclass_soft_iou_loss)(
      jnp.asarray(probs, jnp.float32), labels, np.zeros(labels.shape))
  assert float(nothing[0]) == 0.0 and not np.any(nothing[1])


def test_bad_inputs_are_named_when_they_can_be_seen():
  probs, labels, mask = _case(4)
  with pytest.raises(ValueError, match="probs must be"):
    losses.multiclass_soft_iou_loss(probs[..., 0], labels, mask)
  with pytest.raises(ValueError, match="mask must be shaped"):
    losses.lovasz_softmax_loss(probs, labels, mask[0])
  too_large = np.where(mask > 0, labels, 0)
  too_large[0, 0, 0], mask[0, 0, 0] = 5, 1
  with pytest.raises(ValueError, match=r"class ids in \[0, 5\)"):
    losses.multiclass_soft_iou_loss(probs, too_large, mask)
  not_a_number = probs.copy()
  not_a_number[1, 1, 1, 1] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    losses.lovasz_softmax_loss(not_a_number, labels, mask)
  with pytest.raises(ValueError, match="class ids must be in"):
    losses.multiclass_soft_iou_loss(probs, labels, mask, classes=[7])
  with pytest.raises(ValueError, match="one weight per class"):
    losses.multiclass_soft_iou_loss(probs, labels, mask, class_weights=[1.0, 2.0])
  # Traced values cannot be read: the documented behaviour instead of an error.
  jitted = jax.jit(losses.multiclass_soft_iou_loss)
  assert np.isfinite(float(jitted(probs, too_large, mask)))
  assert np.isnan(float(jitted(not_a_number, labels, mask)))


def test_registry_names_each_loss_once_by_the_labels_kind():
  assert losses.LOSS_NAMES == ("iou", "lovasz", "softmax", "softmax+iou")
  assert losses.get_loss("lovasz") is losses.lovasz_hinge_loss
  assert losses.get_loss("lovasz", multiclass=True) is losses.lovasz_softmax_loss_from_logits
  assert losses.get_loss("iou", multiclass=True) is losses.multiclass_soft_iou_loss_from_logits
  for unknown in ("dice", "iou+softmax", "softmax+dice"):
    with pytest.raises(ValueError, match=f"unknown loss '{re.escape(unknown)}'"):
      losses.get_loss(unknown)
