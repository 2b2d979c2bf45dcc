"""Segmentation losses: the soft-IoU loss of Rahman & Wang (2016) and the softmax baseline.

Every loss reduces over ALL given pixels at once (the whole minibatch, Eq. 3-5 of the
paper sum over the set V of all pixels), never as a mean of per-image losses. With
``axis_name`` the sufficient statistics are summed across that mapped axis (``psum``)
before the final ratio, so that under ``pmap`` each device sees exactly the loss of the
global batch.

Reference: M. A. Rahman and Y. Wang, "Optimizing Intersection-Over-Union in Deep Neural
Networks for Image Segmentation", ISVC 2016.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _blocks(x):
  """``x`` flattened to ``[rows, block]`` (``block`` divides its size), or ``None`` if small."""
  flat = x.reshape(-1)
  block = math.gcd(flat.size, 4096)
  return None if block < 64 else flat.reshape(-1, block)


def _total(x):
  """Sum of all elements, reduced in blocks first.

  Same value as ``jnp.sum(x)`` up to float rounding; XLA:CPU spreads the blocked form over
  its threads, which makes the loss ~3x faster on large batches (experiments/bench.py).
  """
  rows = _blocks(x)
  return jnp.sum(x) if rows is None else jnp.sum(jnp.sum(rows, axis=1))


def _dot_total(a, b):
  """``sum(a * b)`` as row-wise dot products: one read of each array (experiments/bench.py)."""
  a_rows, b_rows = _blocks(a), _blocks(b)
  if a_rows is None:
    return jnp.vdot(a.reshape(-1), b.reshape(-1))
  return jnp.sum(jnp.einsum("rk,rk->r", a_rows, b_rows))


def _ones_like_or(mask, like):
  return jnp.ones_like(like) if mask is None else mask.astype(like.dtype)


def _psum_if(value, axis_name):
  return value if axis_name is None else jax.lax.psum(value, axis_name)


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
  intersection = _dot_total(probs, labels)
  union = _total(probs + labels) - intersection
  return _psum_if(intersection, axis_name), _psum_if(union, axis_name)


def _iou_ratio_loss(intersection, union):
  # U = 0 only when no pixel counts, or when Y = 0 and X = 0 everywhere: a prediction that
  # is exactly right. We define the loss there as 0 (perfect) by reading 0/0 as I/U = 1
  # through `where`; the `safe_union` keeps the unused branch's gradient finite.
  empty = union <= 0
  safe_union = jnp.where(empty, 1.0, union)
  return jnp.where(empty, 0.0, 1.0 - intersection / safe_union)


@jax.custom_vjp
def _soft_iou_loss_local(probs, labels, mask):
  intersection, union = soft_iou_terms(probs, labels, mask)
  return _iou_ratio_loss(intersection, union)


def _soft_iou_loss_fwd(probs, labels, mask):
  intersection, union = soft_iou_terms(probs, labels, mask)
  residuals = (probs, labels, mask, intersection, union)
  return _iou_ratio_loss(intersection, union), residuals


def _soft_iou_loss_bwd(residuals, cotangent):
  probs, labels, mask, intersection, union = residuals
  grad = _eq8_gradient(labels.astype(probs.dtype), mask, intersection, union)
  return cotangent * grad, None, None


_soft_iou_loss_local.defvjp(_soft_iou_loss_fwd, _soft_iou_loss_bwd)


def _eq8_gradient(labels, mask, intersection, union):
  """Eq. 8: -1/U where Y = 1, I/U^2 where Y = 0, times the mask (0 when U = 0)."""
  empty = union <= 0
  safe_union = jnp.where(empty, 1.0, union)
  per_pixel = jnp.where(labels > 0, -1.0 / safe_union, intersection / safe_union**2)
  return jnp.where(empty, 0.0, per_pixel * mask)


def soft_iou_loss(probs, labels, mask=None, *, axis_name=None):
  r"""Soft-IoU loss (Rahman & Wang 2016, Eq. 5) over all given pixels.

  .. math::
    L_{IoU} = 1 - \frac{I(X)}{U(X)}, \quad
    I = \sum_v m_v X_v Y_v, \quad U = \sum_v m_v (X_v + Y_v - X_v Y_v)

  The sums run over every pixel of every image given (and, with ``axis_name``, of every
  device), as in the paper. When ``U = 0`` (no pixel counts, or no positive label and all
  ``X = 0``) the prediction is exactly right: the loss is 0 and its gradient is 0.

  Without ``axis_name`` the backward pass is the paper's closed form (Eq. 8) through
  ``jax.custom_vjp``; with it, autodiff through the ``psum`` (which gives the same values).

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
  if mask is None:
    mask = jnp.ones_like(probs)
  if axis_name is None:
    return _soft_iou_loss_local(probs, labels, mask.astype(probs.dtype))
  return _iou_ratio_loss(*soft_iou_terms(probs, labels, mask, axis_name=axis_name))


def soft_iou_grad(probs, labels, mask=None):
  r"""Closed-form gradient of :func:`soft_iou_loss` with respect to ``probs`` (Eq. 8).

  .. math::
    \frac{\partial L_{IoU}}{\partial X_v} =
      \begin{cases} -1/U & Y_v = 1 \\ I/U^2 & Y_v = 0 \end{cases}

  multiplied by the mask (0 on void pixels), and 0 everywhere when ``U = 0``.

  Returns:
    Array shaped like ``probs``.
  """
  mask = _ones_like_or(mask, probs)
  intersection, union = soft_iou_terms(probs, labels, mask)
  return _eq8_gradient(labels.astype(probs.dtype), mask, intersection, union)


def soft_iou_loss_from_logits(logits, labels, mask=None, *, axis_name=None):
  """:func:`soft_iou_loss` of ``sigmoid(logits)``; the form training uses.

  ``jax.nn.sigmoid`` is stable for any finite logit (it saturates to exactly 0 or 1, never
  NaN), so the only numerical care needed is the ``U = 0`` rule of the loss itself.
  """
  return soft_iou_loss(jax.nn.sigmoid(logits), labels, mask, axis_name=axis_name)


def softmax_cross_entropy_loss(logits, labels, mask=None, *, axis_name=None):
  r"""Per-pixel two-class softmax cross-entropy (the FCN_acc baseline), mean over valid pixels.

  The network has one output ``z`` per pixel; the two-class softmax over the scores
  ``(0, z)`` is exactly ``sigmoid(z)``, so

  .. math::
    L_{acc} = \frac{\sum_v m_v\,[-Y_v \log\sigma(z_v) - (1 - Y_v)\log(1 - \sigma(z_v))]}
                   {\sum_v m_v}

  computed with ``log_sigmoid`` for stability. Void pixels (``m = 0``) add nothing to either
  sum, whatever their label value (no NaN from labels such as 255). With ``axis_name`` both
  sums are taken across that mapped axis, giving the mean over the global batch.
  """
  mask = _ones_like_or(mask, logits)
  positive = (labels == 1).astype(logits.dtype)
  per_pixel = -(positive * jax.nn.log_sigmoid(logits)
                + (1.0 - positive) * jax.nn.log_sigmoid(-logits))
  total = _psum_if(jnp.sum(mask * per_pixel), axis_name)
  count = _psum_if(jnp.sum(mask), axis_name)
  return total / jnp.maximum(count, 1.0)


def multiclass_cross_entropy_loss(logits, labels, mask=None, *, class_weights=None,
                                  axis_name=None):
  r"""Per-pixel softmax cross-entropy over ``C`` classes, weighted mean over valid pixels.

  .. math::
    L = \frac{\sum_v m_v w_{y_v} [-\log \mathrm{softmax}(z_v)_{y_v}]}{\sum_v m_v w_{y_v}}

  ``logits [..., C]``, integer ``labels [...]`` (any value where ``mask`` is 0),
  ``class_weights [C]`` (``None``: all 1, the plain mean). Used to pre-train a shared
  backbone on all classes of a dataset, not by the paper's comparison.
  """
  mask = jnp.ones(labels.shape, logits.dtype) if mask is None else mask.astype(logits.dtype)
  safe_labels = jnp.where(mask > 0, labels, 0).astype(jnp.int32)
  per_pixel = -jnp.take_along_axis(jax.nn.log_softmax(logits), safe_labels[..., None],
                                   axis=-1)[..., 0]
  if class_weights is not None:
    mask = mask * jnp.asarray(class_weights, logits.dtype)[safe_labels]
  total = _psum_if(jnp.sum(mask * per_pixel), axis_name)
  count = _psum_if(jnp.sum(mask), axis_name)
  return total / jnp.maximum(count, 1e-12)


LOSSES = {
    "iou": soft_iou_loss_from_logits,
    "softmax": softmax_cross_entropy_loss,
}


def get_loss(name: str):
  """Returns the logits-level loss called ``name`` (``iou`` or ``softmax``)."""
  if name not in LOSSES:
    raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
  return LOSSES[name]
