"""A fixed small training problem run on 1 device, on N devices, or on N processes."""

import functools

import jax
import numpy as np

from fcn_iou_jax import losses, models, steps

STEPS = 3
BATCH = 4


def problem(loss_name="iou"):
  model = models.FCN32s(width_mult=0.0625, dropout_rate=0.0)
  tx = steps.make_optimizer("sgd", learning_rate=0.1, momentum=0.9, weight_decay=5e-4)
  params = models.init_params(model, jax.random.key(0))
  params["score"]["kernel"] = 0.1 * jax.random.normal(jax.random.key(1),
                                                      params["score"]["kernel"].shape)
  rng = np.random.default_rng(0)
  batches = []
  for _ in range(STEPS):
    label = np.zeros((BATCH, 40, 56), np.uint8)
    label[0, 10:30, 10:40] = 1  # only the first device's half has positives
    label[1, :5, :5] = 1
    mask = (rng.uniform(size=label.shape) < 0.9).astype(np.uint8)
    batches.append({"image": rng.normal(size=(BATCH, 40, 56, 3)).astype(np.float32),
                    "label": label, "mask": mask})
  state = steps.create_train_state(params, tx, jax.random.key(2))
  return model, losses.get_loss(loss_name), tx, state, batches


def run_single_device(loss_name="iou"):
  model, loss_fn, tx, state, batches = problem(loss_name)
  step = jax.jit(functools.partial(steps.train_step, model=model, loss_fn=loss_fn, tx=tx))
  for batch in batches:
    state, _ = step(state, batch)
  return jax.device_get(state.params)


def run_parallel(mode, loss_name="iou", process_slice=(0, 1), initial_state=None):
  """Trains with :func:`steps.parallel_steps`; this process feeds its slice of each batch.
  ``initial_state``: a list that receives the state handed to ``put_state``."""
  model, loss_fn, tx, state, batches = problem(loss_name)
  if initial_state is not None:
    initial_state.append(state)
  parallel = steps.parallel_steps(mode, model=model, loss_fn=loss_fn, tx=tx)
  state = parallel.put_state(state)
  index, count = process_slice
  for batch in batches:
    local = {k: np.split(v, count)[index] for k, v in batch.items()}
    state, _ = parallel.train(state, parallel.put_batch(local))
  return parallel.get_state(state).params
