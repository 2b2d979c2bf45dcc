"""Trains parallel_case's problem, dropout on, on this process's one CPU device: with
``steps.parallel_steps("pmap")`` and with ``pmap`` itself (:class:`steps.PmapSteps`). Prints
the class the first chose, the largest difference between the two runs' parameters, and
whether the state handed to the first survived its steps (the step donates only its copy).

  python tests/one_device_worker.py
"""

import jax
import numpy as np

import parallel_case
from fcn_iou_jax import steps


def trained_params(make_steps):
  model, loss_fn, tx, state, batches = parallel_case.problem(dropout_rate=0.5)
  parallel = make_steps(model=model, loss_fn=loss_fn, tx=tx)
  device_state = parallel.put_state(state)
  for batch in batches:
    device_state, _ = parallel.train(device_state, parallel.put_batch(batch))
  kept = not any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(state))
  return type(parallel).__name__, parallel.get_state(device_state).params, kept


chosen, params, kept = trained_params(lambda **kw: steps.parallel_steps("pmap", **kw))
_, pmap_params, _ = trained_params(lambda **kw: steps.PmapSteps(multiclass=False, **kw))
difference = max(float(np.max(np.abs(a - b))) for a, b in
                 zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(pmap_params)))
print("devices:", jax.device_count(), "chosen:", chosen, "difference:", difference,
      "kept:", kept)
