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

The sort needs every pixel of the batch: with ``axis_name`` each device gathers the errors,
labels and mask of all devices (``all_gather``), so the loss is exactly the global batch's.
This costs, per device, the global batch's pixels x (4 bytes of error + 4 of label + 4 of
mask) for the hinge and C times that for Lovász-Softmax (for 8 images of 360x480 with 11
classes, about 180 MB), and as much again for the sort's output.

Reference: M. Berman, A. Rannen Triki, M. B. Blaschko, "The Lovász-Softmax loss: A tractable
surrogate for the optimization of the intersection-over-union measure in neural networks",
CVPR 2018.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fcn_iou_jax.losses import classes as class_lib
from fcn_iou_jax.losses import reductions


def _gather_if(x, axis_name):
  """Every device's ``x`` along the leading axis (unchanged when ``axis_name`` is ``None``)."""
  return x if axis_name is None else jax.lax.all_gather(x, axis_name, tiled=True)


def jaccard_increments(positive_sorted, weight_sorted):
  r"""``Delta(S_i) - Delta(S_{i-1})`` along a sorted order, ``S_i`` its first ``i`` pixels.

  .. math::
    \Delta(S_i) = 1 - \frac{|P| - |P \cap S_i|}{|P| + |S_i \setminus P|}

  with set sizes counted in ``weight`` (the mask), over the last axis. Where the union is
  empty (no positive and no counted pixel so far) ``Delta`` is 0.
  """
  positive_weight = positive_sorted * weight_sorted
  positives = jnp.sum(positive_weight, axis=-1, keepdims=True)
  intersection = positives - jnp.cumsum(positive_weight, axis=-1)
  union = positives + jnp.cumsum(weight_sorted - positive_weight, axis=-1)
  jaccard = jnp.where(union > 0, 1 - intersection / jnp.where(union > 0, union, 1), 0)
  return jnp.concatenate([jaccard[..., :1], jnp.diff(jaccard, axis=-1)], axis=-1)


def lovasz_extension(errors, positive, weight):
  r"""``\bar\Delta(e)`` of the Jaccard loss over the last axis (see the module docstring).

  Args:
    errors: ``e >= 0``, ``[..., n]``.
    positive: 1 where the pixel belongs to the class, ``[..., n]``.
    weight: the mask, ``[..., n]``.

  Returns:
    ``[...]``; its gradient with respect to ``errors`` is the increments in sorted order.
  """
  descending, positive_sorted, weight_sorted = jax.lax.sort(
      (-errors, positive, weight), dimension=errors.ndim - 1, num_keys=1)
  increments = jax.lax.stop_gradient(jaccard_increments(positive_sorted, weight_sorted))
  return jnp.sum(-descending * increments, axis=-1)


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
    axis_name: mapped axis whose devices' pixels are gathered before the sort.

  Returns:
    Scalar loss, >= 0.
  """
  logits, labels = jnp.asarray(logits), jnp.asarray(labels)
  weight = reductions.mask_or_ones(mask, logits.shape, logits.dtype).reshape(-1)
  positive = (labels == 1).astype(logits.dtype).reshape(-1)
  signs = 2 * positive - 1
  errors = jax.nn.relu(1 - logits.reshape(-1) * signs)
  return lovasz_extension(*(_gather_if(x, axis_name) for x in (errors, positive, weight)))


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
    axis_name: mapped axis whose devices' pixels are gathered before the sort.
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
  errors, is_class, weight = (_gather_if(x.T, axis_name).T for x in (errors, is_class, weight))
  per_class = lovasz_extension(errors, is_class, jnp.broadcast_to(weight, errors.shape))
  counted = class_lib.counted_class_weights(classes, jnp.sum(is_class, axis=-1))
  count = jnp.sum(counted)
  return jnp.where(count > 0, jnp.sum(counted * per_class) / jnp.maximum(count, 1), 0)


def lovasz_softmax_loss_from_logits(logits, labels, mask=None, *, axis_name=None,
                                    classes="present"):
  """:func:`lovasz_softmax_loss` of ``softmax(logits)``; the form training uses."""
  return lovasz_softmax_loss(jax.nn.softmax(logits), labels, mask, axis_name=axis_name,
                             classes=classes)
