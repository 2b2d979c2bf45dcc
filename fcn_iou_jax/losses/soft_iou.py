"""The soft-IoU loss of Rahman & Wang (2016), its closed-form gradient (Eq. 8) and its logits form.

The sums run over ALL given pixels at once (the whole minibatch: Eq. 3-5 of the paper sum
over the set V of all pixels), never as a mean of per-image losses. With ``axis_name`` the
sufficient statistics are summed across that mapped axis (``psum``) before the ratio, so that
under ``pmap`` each device holds exactly the loss of the global batch.

Reference: M. A. Rahman and Y. Wang, "Optimizing Intersection-Over-Union in Deep Neural
Networks for Image Segmentation", ISVC 2016.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fcn_iou_jax.kernels import sums
from fcn_iou_jax.losses import reductions


def soft_iou_terms(probs, labels, mask=None, *, axis_name=None):
  r"""Soft intersection and union of Eq. 3 and 4.

  .. math::
    I = \sum_v m_v X_v Y_v, \qquad U = \sum_v m_v (X_v + Y_v - X_v Y_v)

  Args:
    probs: ``X``, probabilities in [0, 1], any shape.
    labels: ``Y`` in {0, 1}, same shape.
    mask: ``m``, 1 for pixels that count and 0 for void/padding; ``None`` means all 1.
    axis_name: mapped axis over which ``I`` and ``U`` are summed (``psum``).

  Returns:
    ``(I, U)`` scalars.
  """
  labels = labels.astype(probs.dtype)
  if mask is not None:
    mask = mask.astype(probs.dtype)
    probs, labels = probs * mask, labels * mask
  # U = sum(m X) + sum(m Y) - I: two passes over the pixels instead of three.
  intersection = sums.dot_total(probs, labels)
  union = sums.total(probs + labels) - intersection
  return reductions.psum_if(intersection, axis_name), reductions.psum_if(union, axis_name)


def iou_ratio_loss(intersection, union):
  """``1 - I/U``, and 0 where ``U = 0``.

  ``U = 0`` only when no pixel counts, or when ``Y = 0`` and ``X = 0`` everywhere: a
  prediction that is exactly right, so its loss is 0. ``safe_union`` keeps the unused
  branch's gradient finite.
  """
  empty = union <= 0
  safe_union = jnp.where(empty, 1.0, union)
  return jnp.where(empty, 0.0, 1.0 - intersection / safe_union)


def eq8_gradient(labels, mask, intersection, union):
  """Eq. 8: ``-1/U`` where ``Y = 1``, ``I/U^2`` where ``Y = 0``, times the mask (0 if U = 0)."""
  empty = union <= 0
  safe_union = jnp.where(empty, 1.0, union)
  per_pixel = jnp.where(labels > 0, -1.0 / safe_union, intersection / safe_union**2)
  return jnp.where(empty, 0.0, per_pixel * mask)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _closed_form_soft_iou_loss(probs, labels, mask, axis_name):
  return iou_ratio_loss(*soft_iou_terms(probs, labels, mask, axis_name=axis_name))


def _closed_form_fwd(probs, labels, mask, axis_name):
  intersection, union = soft_iou_terms(probs, labels, mask, axis_name=axis_name)
  return iou_ratio_loss(intersection, union), (labels, mask, intersection, union)


def _closed_form_bwd(axis_name, residuals, cotangent):
  labels, mask, intersection, union = residuals
  cotangent = reductions.replicated_cotangent(cotangent, axis_name)
  grad = eq8_gradient(labels.astype(mask.dtype), mask, intersection, union)
  return cotangent * grad, None, None


_closed_form_soft_iou_loss.defvjp(_closed_form_fwd, _closed_form_bwd)


def soft_iou_loss(probs, labels, mask=None, *, axis_name=None):
  r"""Soft-IoU loss (Rahman & Wang 2016, Eq. 5) over all given pixels.

  .. math::
    L_{IoU} = 1 - \frac{I(X)}{U(X)}, \quad
    I = \sum_v m_v X_v Y_v, \quad U = \sum_v m_v (X_v + Y_v - X_v Y_v)

  The sums run over every pixel of every image given (and, with ``axis_name``, of every
  device), as in the paper. When ``U = 0`` (no pixel counts, or no positive label and all
  ``X = 0``) the prediction is exactly right: the loss is 0 and its gradient is 0.

  The backward pass is the paper's closed form (Eq. 8) through ``jax.custom_vjp``, with or
  without ``axis_name`` (then per device the gradient autodiff would give through the
  ``psum``: the global loss's gradient on this device's pixels, times the device count, which
  the train step's ``pmean`` removes).

  Args:
    probs: ``X``, sigmoid outputs in [0, 1], any shape such as ``[B, H, W]``.
    labels: ``Y`` in {0, 1}, same shape.
    mask: 1 for pixels that count, 0 for void or padding; ``None`` counts every pixel.
    axis_name: mapped axis name over which ``I`` and ``U`` are summed before the ratio.

  Returns:
    Scalar loss in [0, 1].

  >>> import jax.numpy as jnp
  >>> float(soft_iou_loss(jnp.array([1.0, 0.5, 0.0]), jnp.array([1, 1, 0])))
  0.25
  """
  probs = jnp.asarray(probs)
  mask = reductions.mask_or_ones(mask, probs.shape, probs.dtype)
  return _closed_form_soft_iou_loss(probs, labels, mask, axis_name)


def soft_iou_grad(probs, labels, mask=None):
  r"""Closed-form gradient of :func:`soft_iou_loss` with respect to ``probs`` (Eq. 8).

  .. math::
    \frac{\partial L_{IoU}}{\partial X_v} =
      \begin{cases} -1/U & Y_v = 1 \\ I/U^2 & Y_v = 0 \end{cases}

  multiplied by the mask (0 on void pixels), and 0 everywhere when ``U = 0``.

  Returns:
    Array shaped like ``probs``.
  """
  probs = jnp.asarray(probs)
  mask = reductions.mask_or_ones(mask, probs.shape, probs.dtype)
  intersection, union = soft_iou_terms(probs, labels, mask)
  return eq8_gradient(labels.astype(probs.dtype), mask, intersection, union)


def soft_iou_loss_from_logits(logits, labels, mask=None, *, axis_name=None):
  """:func:`soft_iou_loss` of ``sigmoid(logits)``; the form training uses.

  ``jax.nn.sigmoid`` is stable for any finite logit (it saturates to exactly 0 or 1, never
  NaN), so the only numerical care needed is the ``U = 0`` rule of the loss itself.
  """
  return soft_iou_loss(jax.nn.sigmoid(logits), labels, mask, axis_name=axis_name)
