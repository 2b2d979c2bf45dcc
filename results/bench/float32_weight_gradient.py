"""The float32 train step with the weight gradients of ``kernels.mixed_precision`` in both
forms, in one process, timed step by step alternately: ``x^T`` written out first for layers
of at least THRESHOLD outputs (default ``WIDE_OUTPUT``, as ``run.py`` trains on CPUs without
AVX-512; forced on here on any CPU) against the dot on ``x`` as it lies in every layer.

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python results/bench/float32_weight_gradient.py \
        BATCH HEIGHTxWIDTH WIDTH_MULT ROUNDS [THRESHOLD]

Prints the median seconds per step of each form.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "experiments"))

# pylint: disable=wrong-import-position  # run.py's XLA:CPU flags before JAX starts
from fcn_iou_jax import cli

cli.use_xla_cpu_flags("float32")

from benchmarks import common, step_runners
from fcn_iou_jax.kernels import mixed_precision


def main(batch, size, width_mult, rounds, threshold):
  """Median seconds per step of each weight-gradient form, timed round-robin."""
  steps = {}
  mixed_precision.transposed_copy_pays = lambda: True  # the form on any CPU, to compare it
  for form, wide_output in ((f"x^T written out from {threshold} outputs", threshold),
                            ("x as it lies", sys.maxsize)):
    mixed_precision.WIDE_OUTPUT = wide_output  # read when the step is traced, below
    steps[form] = step_runners.make_step("jax", batch, "float32", width_mult, size, "tuned")
    steps[form]()  # traced and compiled with this form
  for form, seconds in common.interleaved_medians(steps, rounds).items():
    print(f"{form}: median {seconds:.4f} s per step")


if __name__ == "__main__":
  main(int(sys.argv[1]), tuple(int(n) for n in sys.argv[2].split("x")), float(sys.argv[3]),
       int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else mixed_precision.WIDE_OUTPUT)
