"""What the C-class losses share: checks of their inputs and the choice of counted classes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

CLASS_CHOICES = ("present", "all")


def check_class_inputs(probs, labels, mask):
  """Raises ``ValueError`` on inputs that cannot be C-class probabilities and labels.

  Shapes are static, so they are always checked: ``probs [..., C]`` with ``labels [...]``
  and ``mask`` shaped like ``labels``. Values are checked only when they are concrete (an
  eager call); under ``jit`` they are traced and cannot be read: there a label ``>= C`` on a
  counted pixel belongs to no class (it adds its probabilities to every class's union, as a
  false positive would) and a NaN probability makes the loss NaN, which the training loop
  stops on with the step named.
  """
  if probs.ndim != labels.ndim + 1 or probs.shape[:-1] != labels.shape:
    raise ValueError(f"probs must be [..., C] over labels [...]: got probs {probs.shape} and "
                     f"labels {labels.shape}")
  if mask is not None and jnp.shape(mask) != labels.shape:
    raise ValueError(f"mask must be shaped like labels {labels.shape}, got {jnp.shape(mask)}")
  if any(isinstance(x, jax.core.Tracer) for x in (probs, labels, mask)):
    return
  num_classes = probs.shape[-1]
  counted = np.ones(labels.shape, bool) if mask is None else np.asarray(mask) > 0
  label_values = np.asarray(labels)[counted]
  if label_values.size and (label_values.min() < 0 or label_values.max() >= num_classes):
    raise ValueError(f"labels of counted pixels must be class ids in [0, {num_classes}); got "
                     f"values from {label_values.min()} to {label_values.max()} (give void "
                     f"pixels mask = 0)")
  if np.isnan(np.asarray(probs)).any():
    raise ValueError("probs contain NaN")


def check_classes(classes, num_classes: int):
  """``classes`` as ``"present"``, ``"all"`` or a tuple of ids in ``[0, num_classes)``."""
  if isinstance(classes, str):
    if classes not in CLASS_CHOICES:
      raise ValueError(f"classes must be 'present', 'all' or a sequence of class ids; got "
                       f"{classes!r}")
    return classes
  ids = tuple(int(c) for c in classes)
  if not ids or min(ids) < 0 or max(ids) >= num_classes:
    raise ValueError(f"class ids must be in [0, {num_classes}); got {list(ids)}")
  return ids


def counted_class_weights(classes, label_counts, class_weights=None):
  """``w_c`` for each class the loss counts, 0 for the others: ``[C]``.

  ``classes``: ``"present"`` counts the classes with at least one valid pixel labelled c
  (``label_counts > 0``, taken over the global batch); ``"all"`` every class; a tuple those
  ids. ``class_weights`` (``None``: 1) scales each counted class.
  """
  num_classes = label_counts.shape[-1]
  dtype = label_counts.dtype
  if classes == "present":
    counted = (label_counts > 0).astype(dtype)
  elif classes == "all":
    counted = jnp.ones(num_classes, dtype)
  else:
    counted = jnp.zeros(num_classes, dtype).at[jnp.asarray(classes)].set(1)
  if class_weights is None:
    return counted
  return counted * jnp.asarray(class_weights, dtype)
