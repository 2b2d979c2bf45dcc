"""Lovász hinge and Lovász-Softmax against the Lovász extension evaluated from its definition
(sets and their Jaccard losses, NumPy float64), hard predictions, convexity and subgradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax import losses


def _jaccard_loss(mispredicted, positive):
  """Delta(M) = |M| / |P u M| over index sets; 0 when both are empty."""
  union = len(positive | mispredicted)
  return len(mispredicted) / union if union else 0.0


def _brute_lovasz(errors, positive):
  """The Lovász extension of Delta at ``errors`` and its gradient, from the definition: visit
  pixels by decreasing error and weight each error by the increment of Delta."""
  positives = set(np.flatnonzero(positive))
  order = sorted(range(len(errors)), key=lambda v: -errors[v])
  value, grad, taken = 0.0, np.zeros(len(errors)), set()
  for v in order:
    before = _jaccard_loss(taken, positives)
    taken.add(v)
    grad[v] = _jaccard_loss(taken, positives) - before
    value += errors[v] * grad[v]
  return value, grad


def _brute_hinge(logits, labels):
  signs = 2 * labels - 1
  errors = np.maximum(0, 1 - logits * signs)
  value, grad_errors = _brute_lovasz(errors, labels)
  return value, -signs * grad_errors * (errors > 0)


def test_hinge_equals_the_definition_and_its_subgradient_on_tie_free_inputs():
  rng = np.random.default_rng(0)
  for pixels in (1, 5, 8):
    logits = rng.normal(size=pixels) * 2
    labels = (rng.uniform(size=pixels) < 0.5).astype(np.float64)
    with jax.enable_x64(True):
      value, grad = jax.value_and_grad(losses.lovasz_hinge_loss)(jnp.asarray(logits), labels)
    expected_value, expected_grad = _brute_hinge(logits, labels)
    assert float(value) == pytest.approx(expected_value, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-15)


def test_softmax_form_equals_the_definition_per_present_class():
  rng = np.random.default_rng(1)
  for pixels in (3, 8):
    logits = rng.normal(size=(pixels, 4))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, 3, pixels)  # class 3 is never present
    with jax.enable_x64(True):
      value, grad = jax.value_and_grad(losses.lovasz_softmax_loss)(jnp.asarray(probs), labels)
    present = np.unique(labels)
    expected_value, expected_grad = 0.0, np.zeros_like(probs)
    for c in present:
      foreground = (labels == c).astype(np.float64)
      class_value, class_grad = _brute_lovasz(np.abs(foreground - probs[:, c]), foreground)
      expected_value += class_value / len(present)
      expected_grad[:, c] = class_grad * np.sign(probs[:, c] - foreground) / len(present)
    assert float(value) == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-14)


def _iou(predicted, positive):
  union = np.sum(predicted | positive)
  return np.sum(predicted & positive) / union if union else 1.0


def test_hard_predictions_give_one_minus_iou():
  rng = np.random.default_rng(2)
  labels = rng.uniform(size=(3, 7, 5)) < 0.4
  predicted = rng.uniform(size=labels.shape) < 0.5
  signs = np.where(predicted, 1.0, -1.0)
  # Margin 1 where the sign is right, 0 where it is wrong: errors are the indicator of the
  # mispredicted set.
  logits = np.where(predicted == labels, signs, 0.0)
  hinge = float(losses.lovasz_hinge_loss(jnp.asarray(logits, jnp.float32), labels))
  assert hinge == pytest.approx(1 - _iou(predicted, labels), rel=1e-5)
  # Lovász-Softmax at one-hot probabilities: the mean of 1 - IoU_c over present classes.
  classes = rng.integers(0, 4, labels.shape)
  guess = rng.integers(0, 4, labels.shape)
  probs = np.eye(4)[guess]
  value = float(losses.lovasz_softmax_loss(jnp.asarray(probs, jnp.float32), classes))
  expected = np.mean([1 - _iou(guess == c, classes == c) for c in np.unique(classes)])
  assert value == pytest.approx(expected, rel=1e-5)


def test_hinge_is_convex_along_random_segments():
  rng = np.random.default_rng(3)
  labels = (rng.uniform(size=40) < 0.3).astype(np.float32)
  loss = jax.jit(losses.lovasz_hinge_loss)
  for _ in range(20):
    a, b = rng.normal(size=(2, 40)).astype(np.float32) * 2
    ends = float(loss(a, labels)), float(loss(b, labels))
    for t in (0.25, 0.5, 0.75):
      middle = float(loss(t * a + (1 - t) * b, labels))
      assert middle <= t * ends[0] + (1 - t) * ends[1] + 1e-5


def test_masked_pixels_change_nothing_and_jit_agrees():
  rng = np.random.default_rng(4)
  logits = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
  labels = rng.integers(0, 3, (2, 6, 5))
  mask = rng.uniform(size=labels.shape) < 0.7
  other_logits = np.where(mask[..., None], logits, 50 * rng.normal(size=logits.shape))
  other_labels = np.where(mask, labels, 2 - labels)
  for loss in (losses.lovasz_softmax_loss_from_logits, losses.multiclass_soft_iou_loss_from_logits,
               losses.multiclass_cross_entropy_loss):
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    value, grad = value_and_grad(jnp.asarray(logits), labels, mask)
    other_value, other_grad = value_and_grad(jnp.asarray(other_logits), other_labels, mask)
    valid_only = jax.jit(loss)(jnp.asarray(logits[mask]), labels[mask])
    assert float(value) == pytest.approx(float(other_value), rel=1e-6)
    assert float(value) == pytest.approx(float(valid_only), rel=1e-6)
    np.testing.assert_allclose(grad, other_grad, rtol=1e-5, atol=1e-7)
    assert not np.any(np.asarray(grad)[~mask])
  binary_labels = (labels == 1).astype(np.float32)
  value = losses.lovasz_hinge_loss(jnp.asarray(logits[..., 0]), binary_labels, mask)
  other = jax.jit(losses.lovasz_hinge_loss)(jnp.asarray(other_logits[..., 0]),
                                            np.where(mask, binary_labels, 1 - binary_labels), mask)
  assert float(value) == pytest.approx(float(other), rel=1e-6)
  assert float(value) == pytest.approx(
      float(losses.lovasz_hinge_loss(jnp.asarray(logits[..., 0][mask]), binary_labels[mask])),
      rel=1e-6)


def test_all_classes_counts_absent_ones_and_nothing_counted_is_zero():
  probs = np.full((4, 3), 1 / 3, np.float32)
  labels = np.array([0, 0, 1, 1])
  present = float(losses.lovasz_softmax_loss(probs, labels))
  every = float(losses.lovasz_softmax_loss(probs, labels, classes="all"))
  chosen = float(losses.lovasz_softmax_loss(probs, labels, classes=[0]))
  # Class 2 has no pixel: Delta({v}) = 1 for the first error, so it adds its largest error.
  assert every == pytest.approx((2 * present + 1 / 3) / 3, rel=1e-6)
  class_zero = _brute_lovasz(np.abs((labels == 0) - probs[:, 0]).astype(np.float64),
                             (labels == 0).astype(np.float64))[0]
  assert chosen == pytest.approx(class_zero, rel=1e-6)
  assert float(losses.lovasz_softmax_loss(probs, labels, np.zeros(4))) == 0.0
  assert float(losses.lovasz_hinge_loss(np.zeros(4, np.float32), labels, np.zeros(4))) == 0.0
