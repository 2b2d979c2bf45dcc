"""Trains parallel_case's problem, dropout on, on this process's one CPU device: with
``steps.parallel_steps("pmap")`` and with ``pmap`` itself (:class:`steps.PmapSteps`). Prints
the class the first chose and the largest difference between the two runs' parameters.

  python tests/one_device_worker.py
"""

import jax
import numpy as np

import parallel_case
from fcn_iou_jax import steps


def trained_params(make_steps):
  model, loss_fn, tx, state, batches = parallel_case.problem(dropout_rate=0.5)
  parallel = make_steps(model=model, loss_fn=loss_fn, tx=tx)
  state = parallel.put_state(state)
  for batch in batches:
    state, _ = parallel.train(state, parallel.put_batch(batch))
  return type(parallel).__name__, parallel.get_state(state).params


chosen, params = trained_params(lambda **kw: steps.parallel_steps("pmap", **kw))
_, pmap_params = trained_params(lambda **kw: steps.PmapSteps(multiclass=False, **kw))
difference = max(float(np.max(np.abs(a - b))) for a, b in
                 zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(pmap_params)))
print("devices:", jax.device_count(), "chosen:", chosen, "difference:", difference)
