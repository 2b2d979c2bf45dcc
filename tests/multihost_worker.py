"""One process of the multi-host test: trains a few steps on its share of fixed batches.

  python tests/multihost_worker.py PROCESS_ID NUM_PROCESSES PORT OUT_FOLDER MODE[,MODE]

Each process owns 2 / NUM_PROCESSES CPU devices and feeds only its slice of every global
batch, as a host of a pod would; for each parallel MODE (pmap, jit) process 0 writes the
final parameters to OUT_FOLDER/MODE.npz. Then process 1
alone has a stop signal and process 0 alone a time-based save due: each prints what they
agreed on.
"""

import os
import sys

import jax
import numpy as np

PROCESS_ID, NUM_PROCESSES, PORT, OUT, MODES = sys.argv[1:6]
jax.config.update("jax_num_cpu_devices", 2 // int(NUM_PROCESSES))
if int(NUM_PROCESSES) > 1:
  jax.distributed.initialize(f"localhost:{PORT}", int(NUM_PROCESSES), int(PROCESS_ID))

# pylint: disable=wrong-import-position  # the project's modules once the devices are set
import parallel_case
from fcn_iou_jax import interrupts

for mode in MODES.split(","):
  params = parallel_case.run_parallel(mode, process_slice=(jax.process_index(),
                                                           jax.process_count()))
  if jax.process_index() == 0:
    np.savez(os.path.join(OUT, f"{mode}.npz"), *jax.tree_util.tree_leaves(params))
print("agreed:", *interrupts.agree(15 if jax.process_index() == 1 else None,
                                   save_due=jax.process_index() == 0), flush=True)
