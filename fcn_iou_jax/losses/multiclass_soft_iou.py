"""The soft-IoU loss for C classes at once: Eq. 5 per class, averaged over the counted classes.

The sums run over every valid pixel of the whole minibatch (and, with ``axis_name``, of every
device), as in the binary loss; the per-class statistics are summed across devices before
any ratio, so the loss is exactly that of the global batch.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fcn_iou_jax.losses import classes as class_lib
from fcn_iou_jax.losses import reductions


def multiclass_soft_iou_terms(probs, labels, mask=None, *, axis_name=None):
  r"""Per-class soft intersection and union, and each class's count of labelled pixels.

  .. math::
    I_c = \sum_v m_v p_{v,c} [y_v = c], \quad
    U_c = \sum_v m_v (p_{v,c} + [y_v = c] - p_{v,c} [y_v = c]), \quad
    N_c = \sum_v m_v [y_v = c]

  Args:
    probs: ``p``, ``[..., C]`` class probabilities (a softmax).
    labels: ``y``, ``[...]`` integer class ids.
    mask: ``m``, ``[...]``, 1 for pixels that count, 0 for void or padding; ``None``: all 1.
    axis_name: mapped axis over which the three are summed (``psum``).

  Returns:
    ``(I, U, N)``, each ``[C]``.
  """
  num_classes = probs.shape[-1]
  flat_probs = probs.reshape(-1, num_classes)
  mask = reductions.mask_or_ones(mask, labels.shape, probs.dtype).reshape(-1, 1)
  is_class = labels.reshape(-1, 1).astype(jnp.int32) == jnp.arange(num_classes)
  masked_probs = flat_probs * mask
  intersection = jnp.sum(jnp.where(is_class, masked_probs, 0), axis=0)
  label_counts = jnp.sum(jnp.where(is_class, mask, 0), axis=0)
  union = jnp.sum(masked_probs, axis=0) + label_counts - intersection
  return tuple(reductions.psum_if(x, axis_name) for x in (intersection, union, label_counts))


def _counted_weights(label_counts, classes, class_weights):
  """``w_c / K`` for each counted class (0 for the others), ``K = sum_c w_c``: ``[C]``."""
  weights = class_lib.counted_class_weights(classes, label_counts, class_weights)
  weight_total = jnp.sum(weights)
  return jnp.where(weight_total > 0, weights / jnp.where(weight_total > 0, weight_total, 1), 0)


def _loss_from_terms(intersection, union, label_counts, classes, class_weights):
  normalised = _counted_weights(label_counts, classes, class_weights)
  empty = union <= 0  # a NaN union is not empty: NaN inputs give a NaN loss
  safe_union = jnp.where(empty, 1, union)
  per_class = jnp.where(empty, 0, 1 - intersection / safe_union)
  return jnp.sum(normalised * per_class)


def _grad_from_terms(labels, mask, intersection, union, label_counts, classes, class_weights):
  normalised = _counted_weights(label_counts, classes, class_weights)
  empty = union <= 0
  safe_union = jnp.where(empty, 1, union)
  where_labelled = jnp.where(empty, 0, -normalised / safe_union)
  elsewhere = jnp.where(empty, 0, normalised * intersection / safe_union**2)
  is_class = labels[..., None].astype(jnp.int32) == jnp.arange(class_weights.shape[0])
  return mask[..., None] * jnp.where(is_class, where_labelled, elsewhere)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _closed_form_loss(probs, labels, mask, class_weights, classes, axis_name):
  terms = multiclass_soft_iou_terms(probs, labels, mask, axis_name=axis_name)
  return _loss_from_terms(*terms, classes, class_weights)


def _closed_form_fwd(probs, labels, mask, class_weights, classes, axis_name):
  terms = multiclass_soft_iou_terms(probs, labels, mask, axis_name=axis_name)
  loss = _loss_from_terms(*terms, classes, class_weights)
  return loss, (labels, mask, class_weights, terms)


def _closed_form_bwd(classes, axis_name, residuals, cotangent):
  labels, mask, class_weights, terms = residuals
  cotangent = reductions.replicated_cotangent(cotangent, axis_name)
  grad = _grad_from_terms(labels, mask, *terms, classes, class_weights)
  return cotangent * grad, None, None, None


_closed_form_loss.defvjp(_closed_form_fwd, _closed_form_bwd)


def _prepare(probs, labels, mask, classes, class_weights):
  probs, labels = jnp.asarray(probs), jnp.asarray(labels)
  class_lib.check_class_inputs(probs, labels, mask)
  num_classes = probs.shape[-1]
  classes = class_lib.check_classes(classes, num_classes)
  weights = jnp.ones(num_classes, probs.dtype) if class_weights is None else (
      jnp.asarray(class_weights, probs.dtype))
  if weights.shape != (num_classes,):
    raise ValueError(f"class_weights must have one weight per class ({num_classes}); got "
                     f"shape {weights.shape}")
  mask = reductions.mask_or_ones(mask, labels.shape, probs.dtype)
  return probs, labels, mask, classes, weights


def multiclass_soft_iou_loss(probs, labels, mask=None, *, axis_name=None, classes="present",
                             class_weights=None):
  r"""Soft-IoU loss over ``C`` classes: the weighted mean of each counted class's Eq. 5.

  .. math::
    L = \frac{1}{K} \sum_{c \in S} w_c \left(1 - \frac{I_c}{U_c}\right), \quad
    K = \sum_{c \in S} w_c

  with ``I_c, U_c`` of :func:`multiclass_soft_iou_terms` over all valid pixels of the batch.
  A class with ``U_c = 0`` (no pixel labelled c and ``p_c = 0`` everywhere) is exactly right:
  it adds 0 loss and 0 gradient (the binary rule). ``K = 0`` gives loss 0.

  The backward pass is the closed form of :func:`multiclass_soft_iou_grad` (through
  ``jax.custom_vjp``, with or without ``axis_name``); gradients reach logits through the
  softmax by autodiff.

  Args:
    probs: ``[..., C]`` softmax probabilities.
    labels: ``[...]`` integer class ids (any value where ``mask`` is 0).
    mask: ``[...]``, 1 for pixels that count, 0 for void or padding; ``None``: all count.
    axis_name: mapped axis across which the per-class sums are taken before the ratios.
    classes: the set ``S``: ``"present"`` (classes with at least one valid pixel labelled c
      in the global batch), ``"all"``, or a sequence of class ids.
    class_weights: ``w``, ``[C]`` (``None``: all 1).

  Returns:
    Scalar loss in [0, 1].

  >>> import jax.numpy as jnp
  >>> probs = jnp.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
  >>> float(multiclass_soft_iou_loss(probs, jnp.array([0, 0, 1])))  # (0.25 + 1/3) / 2
  0.2916666865348816
  """
  probs, labels, mask, classes, weights = _prepare(probs, labels, mask, classes, class_weights)
  return _closed_form_loss(probs, labels, mask, weights, classes, axis_name)


def multiclass_soft_iou_grad(probs, labels, mask=None, *, classes="present",
                             class_weights=None):
  r"""Closed-form gradient of :func:`multiclass_soft_iou_loss` with respect to ``probs``.

  Eq. 8 per class, scaled by the class's share of the weights:

  .. math::
    \frac{\partial L}{\partial p_{v,c}} = \frac{w_c\, m_v}{K} \begin{cases}
      -1/U_c & y_v = c \\ I_c / U_c^2 & y_v \ne c \end{cases}

  for counted classes with ``U_c > 0``; 0 for every other class.

  Returns:
    Array shaped like ``probs``.
  """
  probs, labels, mask, classes, weights = _prepare(probs, labels, mask, classes, class_weights)
  terms = multiclass_soft_iou_terms(probs, labels, mask)
  return _grad_from_terms(labels, mask, *terms, classes, weights)


def multiclass_soft_iou_loss_from_logits(logits, labels, mask=None, *, axis_name=None,
                                         classes="present", class_weights=None):
  """:func:`multiclass_soft_iou_loss` of ``softmax(logits)``; the form training uses."""
  return multiclass_soft_iou_loss(jax.nn.softmax(logits), labels, mask, axis_name=axis_name,
                                  classes=classes, class_weights=class_weights)
