"""Predictions of a trained model on new images."""

from __future__ import annotations

import functools

import jax
import numpy as np
import tensorflow as tf

from fcn_iou_jax.data import pipeline


@functools.partial(jax.jit, static_argnums=0)
def _logits(model, params, images):
  return model.apply({"params": params}, images)


def predict_probabilities(model, params, image: np.ndarray, backbone: str,
                          input_scale: float = 1.0, input_mean=None) -> np.ndarray:
  """Probabilities for one uint8 RGB image ``[H, W, 3]``: ``[H, W]`` of the category (a
  binary model, sigmoid) or ``[H, W, C]`` over the classes (a multi-class model, softmax).

  With ``input_scale != 1`` the network sees the image resized by that factor (the scale it
  was trained at) and its scores are resized back to ``H x W``.
  """
  normalized = pipeline.normalize_image(image, backbone, input_mean)
  if input_scale != 1.0:
    normalized = tf.image.resize(normalized, pipeline.scaled_size(image.shape[:2], input_scale))
  logits = _logits(model, params, normalized.numpy()[None])  # compiled once per image size
  logits = jax.image.resize(logits[0], (*image.shape[:2], *logits.shape[3:]), "bilinear")
  if logits.ndim == 3:
    return np.asarray(jax.nn.softmax(logits, axis=-1))
  return np.asarray(jax.nn.sigmoid(logits))
