"""Per-pixel softmax cross-entropy: the paper's FCN_acc baseline and its C-class form."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fcn_iou_jax.losses import reductions


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
  mask = reductions.mask_or_ones(mask, logits.shape, logits.dtype)
  positive = (labels == 1).astype(logits.dtype)
  per_pixel = -(positive * jax.nn.log_sigmoid(logits)
                + (1.0 - positive) * jax.nn.log_sigmoid(-logits))
  total = reductions.psum_if(jnp.sum(mask * per_pixel), axis_name)
  count = reductions.psum_if(jnp.sum(mask), axis_name)
  return total / jnp.maximum(count, 1.0)


def multiclass_cross_entropy_loss(logits, labels, mask=None, *, class_weights=None,
                                  axis_name=None):
  r"""Per-pixel softmax cross-entropy over ``C`` classes, weighted mean over valid pixels.

  .. math::
    L = \frac{\sum_v m_v w_{y_v} [-\log \mathrm{softmax}(z_v)_{y_v}]}{\sum_v m_v w_{y_v}}

  ``logits [..., C]``, integer ``labels [...]`` (any value where ``mask`` is 0),
  ``class_weights [C]`` (``None``: all 1, the plain mean). With ``axis_name`` both sums are
  taken across that mapped axis.
  """
  mask = reductions.mask_or_ones(mask, labels.shape, logits.dtype)
  safe_labels = jnp.where(mask > 0, labels, 0).astype(jnp.int32)
  per_pixel = -jnp.take_along_axis(jax.nn.log_softmax(logits), safe_labels[..., None],
                                   axis=-1)[..., 0]
  if class_weights is not None:
    mask = mask * jnp.asarray(class_weights, logits.dtype)[safe_labels]
  total = reductions.psum_if(jnp.sum(mask * per_pixel), axis_name)
  count = reductions.psum_if(jnp.sum(mask), axis_name)
  return total / jnp.maximum(count, 1e-12)
