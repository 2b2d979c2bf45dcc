"""Using a finished run: its config, its best parameters, and predictions on new images."""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
import tensorflow as tf

from fcn_iou_jax import checkpoints, run_log, steps, train
from fcn_iou_jax.config import Config
from fcn_iou_jax.data import pipeline
from fcn_iou_jax.errors import UserError


def load_config(workdir: str) -> Config:
  saved = run_log.read_json(os.path.join(workdir, "config.json"))
  if saved is None:
    raise UserError(f"--workdir={workdir} holds no run (config.json is missing)")
  for key in ("image_size", "crop_size", "input_mean"):
    if saved.get(key) is not None:
      saved[key] = tuple(saved[key])
  known = {f.name for f in dataclasses.fields(Config)}
  return Config(**{k: v for k, v in saved.items() if k in known})


def load_best_params(workdir: str, config: Config):
  """The best checkpoint's parameters (host arrays) of the run in ``workdir``."""
  store = checkpoints.RunCheckpoints(workdir)
  if store.latest_step("best") is None:
    raise UserError(f"--workdir={workdir} has no best checkpoint yet (no evaluation ran)")
  model = train.build_model(config)
  tx = train.build_optimizer(config)
  params = jax.eval_shape(lambda: train.initial_params(config, model, jax.random.key(0)))
  template = jax.eval_shape(lambda: steps.create_train_state(params, tx, jax.random.key(0)))
  state, _ = store.restore("best", template)
  return model, state.params


def predict_probabilities(model, params, image: np.ndarray, backbone: str,
                          input_scale: float = 1.0, input_mean=None) -> np.ndarray:
  """``[H, W]`` foreground probabilities for one uint8 RGB image ``[H, W, 3]``.

  With ``input_scale != 1`` the network sees the image resized by that factor (the scale it
  was trained at) and its scores are resized back to ``H x W``.
  """
  normalized = pipeline.normalize_image(image, backbone, input_mean)
  if input_scale != 1.0:
    normalized = tf.image.resize(normalized, pipeline.scaled_size(image.shape[:2], input_scale))
  logits = jax.jit(lambda p, x: model.apply({"params": p}, x))(params, normalized.numpy()[None])
  logits = jax.image.resize(logits[0], image.shape[:2], "bilinear")
  return np.asarray(jax.nn.sigmoid(logits))
