"""The float32 train step at 360x480, width 1, with fc6's and fc7's two backward products
one after the other (``kernels.mixed_precision.SERIAL_MIN_ROWS`` at 1 row, so at any batch size)
against side by side (the threshold out of reach), both built in one process and timed step by step
alternately (``benchmarks.common.interleaved_samples``), two untimed steps each first.

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python results/bench/float32_serial_gradients.py \
        BATCH ROUNDS

Prints each form's median seconds per step, its steps, and in how many rounds the serial
form was faster.
"""

import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "experiments"))

# pylint: disable=wrong-import-position  # run.py's XLA:CPU flags before JAX starts
from fcn_iou_jax import cli

cli.use_xla_cpu_flags("float32")

from benchmarks import common, step_runners
from fcn_iou_jax.kernels import mixed_precision


def main(batch, rounds):
  """Each form's seconds per step, timed round-robin, and the rounds the serial form won."""
  steps = {}
  for name, rows in (("side_by_side", 10**9), ("serial", 1)):
    mixed_precision.SERIAL_MIN_ROWS = rows  # read when the step is traced, below
    steps[name] = step_runners.make_step("jax", batch, "float32", 1.0, (360, 480), "tuned")
    steps[name]()  # traced and compiled with this form
  seconds = common.interleaved_samples(steps, rounds)
  for name, values in seconds.items():
    print(f"{name}: median {np.median(values):.3f} s;", " ".join(f"{v:.2f}" for v in values))
  wins = sum(s < b for s, b in zip(seconds["serial"], seconds["side_by_side"]))
  print(f"serial faster in {wins} of {rounds} rounds")


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]))
