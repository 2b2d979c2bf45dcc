"""Trains parallel_case's problem with ``--parallel=auto`` on this process's one CPU device and
prints the mode auto chose and whether the state handed to ``put_state`` survived the steps
(the step donates only its copy).

  python tests/one_device_worker.py
"""

import jax

import parallel_case
from fcn_iou_jax import steps

initial_state = []
parallel_case.run_parallel("auto", initial_state=initial_state)
kept = not any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(initial_state))
print("devices:", jax.device_count(), "mode:", steps.resolve_parallel("auto"), "kept:", kept)
