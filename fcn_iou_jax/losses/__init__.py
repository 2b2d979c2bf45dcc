"""Segmentation losses, each reducing over every valid pixel of the whole (global) batch.

Binary (sigmoid outputs, labels in {0, 1}): the soft IoU of Rahman & Wang (2016), the
per-pixel cross-entropy baseline (FCN_acc) and the Lovász hinge. C classes (softmax outputs,
integer labels): the soft IoU per class, the cross-entropy and Lovász-Softmax. Every loss
takes a void ``mask`` and, with ``axis_name``, gives exactly the global batch's loss under
``pmap`` (under the sharded ``jit`` step it sees global arrays and needs no ``axis_name``).

``get_loss`` names each once, by the labels' kind: the command line's ``--loss``.
"""

import functools

from fcn_iou_jax.losses.cross_entropy import (multiclass_cross_entropy_loss,
                                              softmax_cross_entropy_loss)
from fcn_iou_jax.losses.lovasz import (lovasz_hinge_loss, lovasz_softmax_loss,
                                       lovasz_softmax_loss_from_logits)
from fcn_iou_jax.losses.multiclass_soft_iou import (multiclass_soft_iou_grad,
                                                    multiclass_soft_iou_loss,
                                                    multiclass_soft_iou_loss_from_logits,
                                                    multiclass_soft_iou_terms)
from fcn_iou_jax.losses.soft_iou import (soft_iou_grad, soft_iou_loss,
                                         soft_iou_loss_from_logits, soft_iou_terms)

BINARY_LOSSES = {
    "iou": soft_iou_loss_from_logits,
    "lovasz": lovasz_hinge_loss,
    "softmax": softmax_cross_entropy_loss,
}
MULTICLASS_LOSSES = {
    "iou": multiclass_soft_iou_loss_from_logits,
    "lovasz": lovasz_softmax_loss_from_logits,
    "softmax": multiclass_cross_entropy_loss,
}
SUM = "+"  # "softmax+iou": the sum of the two losses
LOSS_NAMES = (*sorted(BINARY_LOSSES), f"softmax{SUM}iou")
# Multi-class losses that take per-class weights (Lovász-Softmax has none).
WEIGHTED_LOSSES = ("iou", "softmax")


def get_loss(name: str, *, multiclass: bool = False, class_weights=None):
  """The logits-level loss ``name`` for binary labels, or for class ids with ``multiclass``.

  Each is called as ``loss(logits, labels, mask, axis_name=...)``: logits ``[B, H, W]`` for
  binary losses, ``[B, H, W, C]`` for multi-class ones. ``"a+b"`` is the sum of losses ``a``
  and ``b``; ``class_weights [C]`` go to each multi-class term that takes them.
  """
  table = MULTICLASS_LOSSES if multiclass else BINARY_LOSSES
  terms = name.split(SUM)
  if name not in LOSS_NAMES or any(term not in table for term in terms):
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSS_NAMES)}")
  if class_weights is not None and not takes_class_weights(name, multiclass=multiclass):
    raise ValueError(f"loss {name!r} takes no class weights")
  functions = [table[term] if class_weights is None
               else functools.partial(table[term], class_weights=class_weights)
               for term in terms]
  if len(functions) == 1:
    return functions[0]
  return functools.partial(_sum_of_losses, functions)


def takes_class_weights(name: str, *, multiclass: bool) -> bool:
  """Whether every term of loss ``name`` takes per-class weights (multi-class only)."""
  return multiclass and all(term in WEIGHTED_LOSSES for term in name.split(SUM))


def _sum_of_losses(functions, logits, labels, mask=None, *, axis_name=None):
  """``L = sum_k L_k(logits, labels, mask)``."""
  return sum(function(logits, labels, mask, axis_name=axis_name) for function in functions)
