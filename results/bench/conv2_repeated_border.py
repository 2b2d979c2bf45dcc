"""The train step with conv2 computed on pool1's unreached rows and columns cut to a few
copies (``kernels.zero_padding.on_repeated_border``, the default) against conv2 on the whole
map. Both steps are built in one process and timed step by step alternately
(``benchmarks.step_runners.compare_jax_step_forms``), two untimed steps each first.

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python results/bench/conv2_repeated_border.py \
        BATCH ROUNDS WIDTH DTYPE

WIDTH 1 runs at 360x480, any other width at the CPU protocol's 180x240. Prints each form's
median seconds per step, its steps, and in how many rounds the cut form was faster.
"""

import functools
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "experiments"))

# pylint: disable=wrong-import-position  # run.py's XLA:CPU flags before JAX starts
from fcn_iou_jax import cli

DTYPE = sys.argv[4]
cli.use_xla_cpu_flags(DTYPE)

from benchmarks import step_runners
from fcn_iou_jax.kernels import zero_padding

CUT = zero_padding.on_repeated_border


def whole_map(layer, x, *, runs, kernel, pad):
  """The layer on the whole map, its runs of copies computed like any other pixels."""
  del runs
  return zero_padding.on_zero_padded(layer, x, pad=pad, kernel=kernel, stride=1)


def use_form(function):
  zero_padding.on_repeated_border = function


def main(batch, rounds, width):
  """Each form's seconds per step, timed round-robin, and the rounds the cut form won."""
  size = step_runners.timed_size(width)
  forms = {"whole_map": functools.partial(use_form, whole_map),
           "cut_runs": functools.partial(use_form, CUT)}
  step_runners.compare_jax_step_forms(forms, batch, DTYPE, width, size, rounds)


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
