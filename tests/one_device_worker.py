"""Trains parallel_case's problem with ``--parallel=jit`` on this process's one CPU device and
prints whether the state handed to ``put_state`` survived the steps (the step donates only
its copy).

  python tests/one_device_worker.py
"""

import jax

import parallel_case
from fcn_iou_jax import steps

model, loss_fn, tx, state, batches = parallel_case.problem()
parallel = steps.parallel_steps("jit", model=model, loss_fn=loss_fn, tx=tx)
device_state = parallel.put_state(state)
for batch in batches:
  device_state, _ = parallel.train(device_state, parallel.put_batch(batch))
kept = not any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(state))
print("devices:", jax.device_count(), "kept:", kept)
