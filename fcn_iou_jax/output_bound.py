"""Masks an FCN-32s output can draw at all: score maps fitted directly to the labels.

FCN-32s's logits are ``Z = R S C^T``, a coarse score map ``S`` (one value per stride-32
cell) through the fixed bilinear deconvolution (``R``, ``C``:
:func:`models.upsampling_matrices`). Whatever the features, the predicted mask is ``Z > 0``
for some ``S``. Fitting ``S`` to a label by minimising the soft-IoU loss (Eq. 5) of
``sigmoid(k R S C^T)`` finds such a mask close to the label (a local optimum: on masks the
output can draw exactly it recovers 94-99.9%, tests/test_output_bound.py). The architecture
can output it, so its IoU is a lower bound on the best any FCN-32s could score there: it
tells how much of a low score the output's resolution explains and how much is left to the
features.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fcn_iou_jax import losses, metrics, models

# k rises geometrically over the fit, from a smooth sigmoid (every pixel gets a gradient) to
# a near-binary one (the soft IoU approaches the IoU of the mask): on CamVid's val poles this
# reaches 27% against 24% for a fixed k = 4 (30 images, 400 steps).
SHARPNESS_RANGE = (1.0, 32.0)
FIT_STEPS = 400
FIT_LEARNING_RATE = 0.1


@functools.partial(jax.jit, static_argnames="steps")
def fit_score_map(labels, mask, rows, cols, *, steps: int = FIT_STEPS):
  """``S`` (``[h, w]``) minimising ``L_IoU(sigmoid(k R S C^T), Y)`` over the pixels where
  ``mask > 0``, with ``k`` rising over :data:`SHARPNESS_RANGE`; Adam from ``S = 0``."""
  def loss(scores, sharpness):
    probs = jax.nn.sigmoid(sharpness * rows @ scores @ cols.T)
    return losses.soft_iou_loss(probs, labels, mask)

  optimizer = optax.adam(FIT_LEARNING_RATE)

  def step(carry, sharpness):
    scores, state = carry
    updates, state = optimizer.update(jax.grad(loss)(scores, sharpness), state)
    return (optax.apply_updates(scores, updates), state), None

  scores = jnp.zeros((rows.shape[1], cols.shape[1]), jnp.float32)
  (scores, _), _ = jax.lax.scan(step, (scores, optimizer.init(scores)),
                                jnp.geomspace(*SHARPNESS_RANGE, steps))
  return scores


def fitted_mask(labels, mask, *, backbone: str = "caffe", fc6_kernel: int = 6,
                steps: int = FIT_STEPS) -> np.ndarray:
  """The mask ``R S C^T > 0`` of the score map fitted to one ``[H, W]`` label, for the
  network that sees an input of the label's size."""
  height, width = labels.shape
  scores_size = models.score_size(backbone, fc6_kernel, height, width)
  rows, cols = models.upsampling_matrices(backbone, fc6_kernel, scores_size, (height, width))
  scores = fit_score_map(jnp.asarray(labels, jnp.float32), jnp.asarray(mask, jnp.float32),
                         jnp.asarray(rows), jnp.asarray(cols), steps=steps)
  return np.asarray(rows @ np.asarray(scores) @ cols.T > 0)


def bound_counts(labels, mask, **fit_options) -> dict:
  """``{tp, fp, fn}`` of :func:`fitted_mask` against ``labels`` (pixels where ``mask > 0``)."""
  counts = metrics.confusion_counts(fitted_mask(labels, mask, **fit_options)[None],
                                    np.asarray(labels)[None], np.asarray(mask)[None],
                                    threshold=0)
  return {name: int(counts[name]) for name in ("tp", "fp", "fn")}
