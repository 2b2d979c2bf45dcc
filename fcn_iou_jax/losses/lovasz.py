r"""Lovász losses: the convex (Lovász) extension of the Jaccard loss, binary and C-class.

For a set ``M`` of mispredicted pixels and the set ``P`` of positive (class) pixels, the
Jaccard loss is :math:`\Delta(M) = |M| / |P \cup M|` (= 1 - IoU of the prediction that errs
on ``M``). Its Lovász extension at a vector of per-pixel errors ``e >= 0`` is

.. math::
  \bar\Delta(e) = \sum_{i=1}^{n} e_{\pi_i} \left(\Delta(\{\pi_1..\pi_i\})
                  - \Delta(\{\pi_1..\pi_{i-1}\})\right)

with ``pi`` the order of decreasing errors. It is piecewise linear and convex in ``e``, and
equals ``Delta(M)`` where ``e`` is the indicator of ``M``. Void pixels (``mask = 0``) add 0 to
both set sizes, so their increments (and gradients) are 0.

The order runs over every pixel of the batch: with ``axis_name`` each device gathers the
sort keys of all devices (``all_gather``; one 4-byte integer per pixel, and per class for
Lovász-Softmax), places its own pixels in the global order, and the per-device sums are
added (``psum``), so the loss is exactly the global batch's. This costs, per device, 4 bytes
x the global batch's pixels (x C): for 8 images of 360x480 with 11 classes, 61 MB, and as
much again for the sorted copy.

Reference: M. Berman, A. Rannen Triki, M. B. Blaschko, "The Lovász-Softmax loss: A tractable
surrogate for the optimization of the intersection-over-union measure in neural networks",
CVPR 2018.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fcn_iou_jax.losses import classes as class_lib
from fcn_iou_jax.losses import reductions


def _prefix_jaccard(positive_sorted, counted_sorted):
  r"""``Delta(S_i)`` for every prefix ``S_i`` of a sorted order (the first ``i + 1`` pixels).

  .. math::
    \Delta(S_i) = 1 - \frac{|P| - |P \cap S_i|}{|P| + |S_i \setminus P|}

  with set sizes counted over counted (non-void) pixels; 0 where the union is empty.
  """
  positives = jnp.sum(positive_sorted)
  intersection = positives - jnp.cumsum(positive_sorted)
  union = positives + jnp.cumsum(counted_sorted - positive_sorted)
  return jnp.where(union > 0, 1 - intersection / jnp.where(union > 0, union, 1), 0)


def _sort_keys(errors, positive, counted):
  """One integer per pixel whose ascending order is decreasing error, void pixels last.

  A non-negative float's bits, read as an integer, order as the float does; the lowest bit
  is replaced by the pixel's class flag (so the order may differ only between errors within
  2 ulp, where either order is a valid Lovász order). One sorted integer array is several
  times faster to sort on XLA:CPU than the errors with the flags carried along.
  """
  int_type = jnp.int64 if errors.dtype == jnp.float64 else jnp.int32
  bits = jax.lax.bitcast_convert_type(errors + 0.0, int_type)  # + 0.0: -0.0 becomes +0.0
  keys = (bits & ~1) | (positive > 0).astype(int_type)
  return jnp.where(counted > 0, -keys, 1)


def _pixel_increments(all_keys, keys, dtype):
  """Each pixel's ``Delta(S_i) - Delta(S_{i-1})`` at its place ``i`` in the sorted order of
  ``all_keys`` (``[n]`` keys of :func:`_sort_keys`), for the pixels of ``keys`` (a part of
  them); pixels with equal keys share the mean of their block's increments, a valid choice
  wherever errors tie."""
  size = all_keys.shape[-1]
  ordered = jnp.sort(all_keys)
  counted = (ordered <= 0).astype(dtype)
  positive = counted * ((-ordered) & 1).astype(dtype)
  jaccard = jnp.concatenate([jnp.zeros(1, dtype), _prefix_jaccard(positive, counted)])
  block_start = jnp.searchsorted(ordered, keys, side="left", method="scan")
  is_start = jnp.concatenate([jnp.ones(1, bool), ordered[1:] != ordered[:-1]])
  start_or_end = jnp.where(is_start, jnp.arange(size), size)
  next_start = jax.lax.cummin(jnp.concatenate([start_or_end[1:], jnp.array([size])]),
                              reverse=True)
  block_end = next_start[block_start]
  return (jaccard[block_end] - jaccard[block_start]) / (block_end - block_start)


def lovasz_extension(errors, positive, weight, *, axis_name=None):
  r"""``\bar\Delta(e)`` of the Jaccard loss over the last axis (see the module docstring).

  Args:
    errors: ``e >= 0``, ``[..., n]``.
    positive: 1 where the pixel belongs to the class, ``[..., n]``.
    weight: the mask, ``[..., n]`` (1 counts, 0 void).
    axis_name: mapped axis whose devices' pixels join the order (their keys are gathered).

  Returns:
    ``[...]``; its gradient with respect to ``errors`` is each pixel's increment.
  """
  errors = errors.astype(jnp.promote_types(errors.dtype, jnp.float32))
  keys = _sort_keys(errors, positive, weight)
  all_keys = keys if axis_name is None else jax.lax.all_gather(
      keys, axis_name, axis=keys.ndim - 1, tiled=True)
  increments = jnp.vectorize(functools.partial(_pixel_increments, dtype=errors.dtype),
                             signature="(m),(n)->(n)")(all_keys, keys)
  return reductions.psum_if(jnp.sum(errors * jax.lax.stop_gradient(increments), axis=-1),
                            axis_name)


def lovasz_hinge_loss(logits, labels, mask=None, *, axis_name=None):
  r"""Binary Lovász hinge: the Lovász extension of the Jaccard loss at the hinge errors.

  .. math::
    L = \bar\Delta\big(\max(0,\ 1 - z_v s_v)\big), \quad s_v = 2 Y_v - 1

  over all valid pixels of the batch (of every device with ``axis_name``). At logits of
  margin exactly 1 on right pixels and 0 on wrong ones, it is 1 - IoU of the sign prediction.

  Args:
    logits: ``z``, any shape such as ``[B, H, W]``.
    labels: ``Y`` in {0, 1}, same shape (any value where ``mask`` is 0).
    mask: 1 for pixels that count, 0 for void or padding; ``None`` counts every pixel.
    axis_name: mapped axis whose devices' pixels join the order (their sort keys are gathered).

  Returns:
    Scalar loss, >= 0.
  """
  logits, labels = jnp.asarray(logits), jnp.asarray(labels)
  weight = reductions.mask_or_ones(mask, logits.shape, logits.dtype).reshape(-1)
  positive = (labels == 1).astype(logits.dtype).reshape(-1)
  signs = 2 * positive - 1
  errors = jax.nn.relu(1 - logits.reshape(-1) * signs)
  return lovasz_extension(errors, positive, weight, axis_name=axis_name)


def lovasz_softmax_loss(probs, labels, mask=None, *, axis_name=None, classes="present"):
  r"""Lovász-Softmax: the mean over counted classes of the Lovász extension at ``|[y=c] - p_c|``.

  .. math::
    L = \frac{1}{|S|} \sum_{c \in S} \bar\Delta_c\big(|[y_v = c] - p_{v,c}|\big)

  over all valid pixels of the batch (of every device with ``axis_name``). At one-hot
  ``probs`` it is the mean over ``S`` of 1 - IoU_c of that prediction.

  Args:
    probs: ``[..., C]`` softmax probabilities.
    labels: ``[...]`` integer class ids (any value where ``mask`` is 0).
    mask: ``[...]``, 1 for pixels that count; ``None`` counts every pixel.
    axis_name: mapped axis whose devices' pixels join the order (their sort keys are gathered).
    classes: ``S``: ``"present"`` (classes with a valid pixel labelled c in the global batch),
      ``"all"``, or a sequence of class ids.

  Returns:
    Scalar loss in [0, 1]; 0 when no class is counted.
  """
  probs, labels = jnp.asarray(probs), jnp.asarray(labels)
  class_lib.check_class_inputs(probs, labels, mask)
  num_classes = probs.shape[-1]
  classes = class_lib.check_classes(classes, num_classes)
  weight = reductions.mask_or_ones(mask, labels.shape, probs.dtype).reshape(1, -1)
  is_class = (labels.reshape(1, -1).astype(jnp.int32)
              == jnp.arange(num_classes)[:, None]).astype(probs.dtype) * weight
  errors = jnp.abs(is_class - probs.reshape(-1, num_classes).T)
  per_class = lovasz_extension(errors, is_class, jnp.broadcast_to(weight, errors.shape),
                               axis_name=axis_name)
  label_counts = reductions.psum_if(jnp.sum(is_class, axis=-1), axis_name)
  counted = class_lib.counted_class_weights(classes, label_counts)
  count = jnp.sum(counted)
  return jnp.where(count > 0, jnp.sum(counted * per_class) / jnp.maximum(count, 1), 0)


def lovasz_softmax_loss_from_logits(logits, labels, mask=None, *, axis_name=None,
                                    classes="present"):
  """:func:`lovasz_softmax_loss` of ``softmax(logits)``; the form training uses."""
  return lovasz_softmax_loss(jax.nn.softmax(logits), labels, mask, axis_name=axis_name,
                             classes=classes)
