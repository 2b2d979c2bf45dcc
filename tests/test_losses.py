"""The soft-IoU loss against Eq. 8, float64 finite differences, optax's Dice loss, and pmap."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from fcn_iou_jax import losses


def _eq8_numpy(probs, labels, mask):
  """Eq. 8 written out in NumPy, independently of the library."""
  intersection = np.sum(mask * probs * labels)
  union = np.sum(mask * (probs + labels - probs * labels))
  return np.where(labels == 1, -1.0 / union, intersection / union**2) * mask


def _case(seed, shape, positive_rate=0.3, masked_rate=0.2):
  rng = np.random.default_rng(seed)
  probs = rng.uniform(0.01, 0.99, shape)
  labels = (rng.uniform(size=shape) < positive_rate).astype(np.float64)
  mask = (rng.uniform(size=shape) >= masked_rate).astype(np.float64)
  return probs, labels, mask


SHAPES = [(7,), (2, 5, 6), (3, 4, 4, 2)]
EDGE_CASES = {
    "no_positive": dict(positive_rate=0.0, masked_rate=0.0),
    "all_positive": dict(positive_rate=1.0, masked_rate=0.0),
    "mixed_masked": dict(positive_rate=0.3, masked_rate=0.3),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_autodiff_equals_eq8_and_closed_form(shape, case):
  with jax.enable_x64(True):
    probs, labels, mask = _case(hash((shape, case)) % 1000, shape, **EDGE_CASES[case])
    expected = _eq8_numpy(probs, labels, mask)
    autodiff = jax.grad(losses.soft_iou_loss)(jnp.asarray(probs), labels, mask)
    closed_form = losses.soft_iou_grad(jnp.asarray(probs), labels, mask)
    np.testing.assert_allclose(autodiff, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(closed_form, expected, rtol=1e-12, atol=1e-15)


def test_no_positive_batch_has_zero_gradient_and_unit_loss():
  # The paper's reason for "at least one positive per minibatch".
  probs, labels, mask = _case(0, (4, 8), positive_rate=0.0, masked_rate=0.0)
  assert float(losses.soft_iou_loss(probs, labels, mask)) == pytest.approx(1.0)
  assert not np.any(jax.grad(losses.soft_iou_loss)(jnp.asarray(probs), labels, mask))


@pytest.mark.parametrize("probs, labels, mask", [
    (np.array([0.3]), np.array([1.0]), None),                       # single pixel
    (np.array([0.3, 0.9, 0.2, 0.6]), np.array([1.0, 0, 1, 0]),
     np.array([0.0, 0, 1, 0])),                                     # all masked but one
    (np.array([0.4, 0.7]), np.array([1.0, 1.0]), None),             # all positive
])
def test_small_cases_by_hand(probs, labels, mask):
  with jax.enable_x64(True):
    m = np.ones_like(probs) if mask is None else mask
    i, u = np.sum(m * probs * labels), np.sum(m * (probs + labels - probs * labels))
    assert float(losses.soft_iou_loss(jnp.asarray(probs), labels, mask)) == pytest.approx(
        1 - i / u, rel=1e-12)
    np.testing.assert_allclose(jax.grad(losses.soft_iou_loss)(jnp.asarray(probs), labels, mask),
                               _eq8_numpy(probs, labels, m), rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_finite_differences_float64(shape):
  with jax.enable_x64(True):
    probs, labels, mask = _case(1, shape)
    check_grads(lambda p: losses.soft_iou_loss(p, labels, mask), (jnp.asarray(probs),),
                order=1, modes=["rev"], eps=1e-6, atol=1e-8, rtol=1e-6)
    check_grads(lambda p: losses.soft_iou_loss(p, labels, mask, axis_name=None),
                (jnp.asarray(probs),), order=1, modes=["rev"], eps=1e-6)
    logits = np.log(probs / (1 - probs))
    check_grads(lambda z: losses.soft_iou_loss_from_logits(z, labels, mask),
                (jnp.asarray(logits),), order=1, modes=["rev"], eps=1e-6)
    check_grads(lambda z: losses.softmax_cross_entropy_loss(z, labels, mask),
                (jnp.asarray(logits),), order=2, eps=1e-6)


def test_union_zero_is_finite_perfect_and_flat():
  probs, labels = jnp.zeros((2, 3, 3)), jnp.zeros((2, 3, 3))
  assert float(losses.soft_iou_loss(probs, labels)) == 0.0
  for grad in (jax.grad(losses.soft_iou_loss)(probs, labels),
               losses.soft_iou_grad(probs, labels)):
    assert np.all(np.isfinite(grad)) and not np.any(grad)
  # Everything masked: also U = 0.
  assert float(losses.soft_iou_loss(jnp.full((4,), 0.7), jnp.ones(4), jnp.zeros(4))) == 0.0


def test_equals_optax_dice_with_alpha_beta_one_over_the_batch():
  probs, labels, _ = _case(2, (3, 6, 5))
  ours = losses.soft_iou_loss(jnp.asarray(probs, jnp.float32), labels)
  # Flatten the whole batch into one "image" so Dice sums over all pixels, as the paper does.
  # optax wants class distributions: the two classes (background, object) per pixel.
  two_class_probs = np.stack([1 - probs, probs], -1).reshape(1, -1, 2).astype(np.float32)
  two_class_labels = np.stack([1 - labels, labels], -1).reshape(1, -1, 2)
  dice = optax.losses.dice_loss(two_class_probs, two_class_labels, alpha=1.0, beta=1.0,
                                smooth=0.0, apply_softmax=False, reduction="none")
  assert float(ours) == pytest.approx(float(dice[0, 1]), rel=1e-5)


def test_is_not_a_mean_of_per_image_losses():
  probs, labels, _ = _case(3, (2, 10), positive_rate=0.5)
  probs = probs.astype(np.float32)
  labels[1, :] = 0
  labels[1, 0] = 1
  batch = float(losses.soft_iou_loss(probs, labels))
  per_image = np.mean([float(losses.soft_iou_loss(p, y)) for p, y in zip(probs, labels)])
  assert abs(batch - per_image) > 1e-3


def test_softmax_ignores_void_labels_and_matches_numpy():
  logits = np.array([2.0, -1.0, 0.5, 3.0])
  labels = np.array([1, 0, 255, 1])
  mask = np.array([1.0, 1.0, 0.0, 1.0])
  value = float(losses.softmax_cross_entropy_loss(jnp.asarray(logits), labels, mask))
  probs = 1 / (1 + np.exp(-logits))
  expected = -(np.log(probs[0]) + np.log(1 - probs[1]) + np.log(probs[3])) / 3
  assert value == pytest.approx(expected, rel=1e-5)
  grad = jax.grad(losses.softmax_cross_entropy_loss)(jnp.asarray(logits), labels, mask)
  assert np.all(np.isfinite(grad)) and grad[2] == 0


def test_extreme_logits_stay_finite():
  logits = jnp.array([100.0, -100.0, 100.0, -100.0])
  labels = jnp.array([1, 0, 0, 1])
  for loss in (losses.soft_iou_loss_from_logits, losses.softmax_cross_entropy_loss):
    value, grad = jax.value_and_grad(loss)(logits, labels)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_multiclass_cross_entropy_matches_numpy_and_ignores_void():
  rng = np.random.default_rng(5)
  logits = rng.normal(size=(2, 3, 4)).astype(np.float32)
  labels = np.array([[0, 3, 1], [2, 255, 1]])
  mask = (labels != 255).astype(np.float32)
  value = float(losses.multiclass_cross_entropy_loss(jnp.asarray(logits), labels, mask))
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  picked = [log_probs[i, j, labels[i, j]] for i in range(2) for j in range(3) if mask[i, j]]
  assert value == pytest.approx(-np.mean(picked), rel=1e-5)


def test_class_weighted_cross_entropy_is_the_weighted_mean():
  rng = np.random.default_rng(6)
  logits = rng.normal(size=(2, 3, 4)).astype(np.float32)
  labels = np.array([[0, 3, 1], [2, 255, 1]])
  mask = (labels != 255).astype(np.float32)
  weights = np.array([0.5, 2.0, 1.0, 4.0])
  value = float(losses.multiclass_cross_entropy_loss(jnp.asarray(logits), labels, mask,
                                                     class_weights=weights))
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  kept = [(i, j) for i in range(2) for j in range(3) if mask[i, j]]
  numerator = sum(-weights[labels[i, j]] * log_probs[i, j, labels[i, j]] for i, j in kept)
  denominator = sum(weights[labels[i, j]] for i, j in kept)
  assert value == pytest.approx(numerator / denominator, rel=1e-5)
  unweighted = float(losses.multiclass_cross_entropy_loss(jnp.asarray(logits), labels, mask))
  assert abs(value - unweighted) > 1e-3
