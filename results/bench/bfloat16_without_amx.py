"""The bfloat16 train step on a CPU without AMX in its two forms, beside the float32 step:
its products with bfloat16 operands as XLA:CPU runs them (``bfloat16_products``), and the
float32 products of the rounded operands (``float32_products``, the default there:
``kernels.mixed_precision.multiplies_natively``), the same function. The three steps are
built in one process and timed step by step alternately, one untimed step each first.

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python results/bench/bfloat16_without_amx.py \
        BATCH ROUNDS WIDTH

WIDTH 1 runs at 360x480, any other width at the CPU protocol's 180x240. Prints each step's
median seconds, its steps, and in how many rounds ``float32_products`` beat
``bfloat16_products``.
"""

import functools
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "experiments"))

# pylint: disable=wrong-import-position  # run.py's XLA:CPU flags before JAX starts
from fcn_iou_jax import cli

cli.use_xla_cpu_flags("bfloat16")  # on a CPU without AMX the same flags as float32's

from benchmarks import common, step_runners
from fcn_iou_jax.kernels import mixed_precision

DEFAULT = mixed_precision.multiplies_natively


def use_products(function):
  mixed_precision.multiplies_natively = function


def main(batch, rounds, width):
  size = step_runners.timed_size(width)
  forms = {"bfloat16_products": ("bfloat16", functools.partial(use_products, lambda dtype: True)),
           "float32_products": ("bfloat16", functools.partial(use_products, DEFAULT)),
           "float32": ("float32", functools.partial(use_products, DEFAULT))}
  steps = {}
  for name, (dtype, set_up) in forms.items():
    set_up()
    steps[name] = step_runners.make_step("jax", batch, dtype, width, size, "tuned")
    steps[name]()  # traced and compiled in this form
  seconds = common.interleaved_samples(steps, rounds)
  for name, values in seconds.items():
    print(f"{name}: median {np.median(values):.4f} s;", " ".join(f"{v:.3f}" for v in values))
  wins = sum(new < old for old, new in zip(seconds["bfloat16_products"],
                                           seconds["float32_products"]))
  print(f"float32_products faster in {wins} of {rounds} rounds")


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
