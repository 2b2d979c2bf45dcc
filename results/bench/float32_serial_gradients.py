"""The float32 train step at 360x480, width 1, with fc6's and fc7's two backward products
one after the other (``kernels.mixed_precision.SERIAL_MIN_ROWS`` at 1 row, so at any batch size)
against side by side (the threshold out of reach), both built in one process and timed step by step
alternately (``benchmarks.step_runners.compare_jax_step_forms``), two untimed steps each first.

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python results/bench/float32_serial_gradients.py \
        BATCH ROUNDS

Prints each form's median seconds per step, its steps, and in how many rounds the serial
form was faster.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "experiments"))

# pylint: disable=wrong-import-position  # run.py's XLA:CPU flags before JAX starts
from fcn_iou_jax import cli

cli.use_xla_cpu_flags("float32")

from benchmarks import step_runners
from fcn_iou_jax.kernels import mixed_precision


def main(batch, rounds):
  """Each form's seconds per step, timed round-robin, and the rounds the serial form won."""
  step_runners.compare_jax_step_forms(
      {"side_by_side": lambda: setattr(mixed_precision, "SERIAL_MIN_ROWS", 10**9),
       "serial": lambda: setattr(mixed_precision, "SERIAL_MIN_ROWS", 1)},
      batch, "float32", 1.0, (360, 480), rounds)


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]))
