"""The train step with its strided convolution (conv1) as a stride-1 XLA convolution in
space-to-depth blocks (``kernels.convolution._xla_convolution``, the tuned form) against the
forms it replaced: in float32 with 64 outputs or more, patches times a matmul
(``mixed_precision.rearranged_matmul``); otherwise XLA's strided convolution. Both steps are
built in one process and timed step by step alternately
(``benchmarks.step_runners.compare_jax_step_forms``), two untimed steps each first.

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python results/bench/conv1_space_to_depth.py \
        BATCH ROUNDS WIDTH DTYPE

WIDTH 1 runs at 360x480, any other width at the CPU protocol's 180x240. Prints each form's
median seconds per step, its steps, and in how many rounds the space-to-depth form was faster.
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

import jax
import jax.numpy as jnp

from benchmarks import step_runners
from fcn_iou_jax.kernels import convolution, mixed_precision

# pylint: disable=protected-access
SPACE_TO_DEPTH = {"_xla_convolution": convolution._xla_convolution,
                  "_tuned_conv2d": convolution._tuned_conv2d}


def strided_xla_convolution(x, kernel, *, stride, pad):
  """XLA's convolution with the stride as it is."""
  return jax.lax.conv_general_dilated(
      convolution._zero_pad(x, pad), kernel, (stride, stride), "VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def patches_for_wide_float32(x, kernel, stride, pad, operand_dtype):
  """A strided float32 kernel of ``FLOAT32_PATCH_MATMUL_MIN_KERNEL`` or more with
  ``PATCH_MATMUL_MIN_OUTPUTS`` or more as patches times a matmul; everything else as the tuned
  forms."""
  size = kernel.shape[0]
  if (operand_dtype == jnp.float32 and stride > 1
      and size >= convolution.FLOAT32_PATCH_MATMUL_MIN_KERNEL
      and kernel.shape[-1] >= convolution.PATCH_MATMUL_MIN_OUTPUTS):
    patches = functools.partial(convolution._padded_patches, kernel=size, stride=stride, pad=pad)
    rows = functools.partial(convolution._padded_patch_rows, kernel=size, stride=stride, pad=pad)
    return mixed_precision.rearranged_matmul(patches, rows, x, kernel.reshape(-1, kernel.shape[-1]),
                                             operand_dtype)
  return SPACE_TO_DEPTH["_tuned_conv2d"](x, kernel, stride, pad, operand_dtype)


REPLACED = {"_xla_convolution": strided_xla_convolution, "_tuned_conv2d": patches_for_wide_float32}


def use_forms(forms):
  """Sets ``forms`` (function name -> function) in ``kernels.convolution``."""
  for attribute, function in forms.items():
    setattr(convolution, attribute, function)


def main(batch, rounds, width):
  """Each form's seconds per step, timed round-robin, and the rounds space-to-depth won."""
  size = step_runners.timed_size(width)
  forms = {"replaced": REPLACED, "space_to_depth": SPACE_TO_DEPTH}
  step_runners.compare_jax_step_forms(
      {name: functools.partial(use_forms, functions) for name, functions in forms.items()},
      batch, DTYPE, width, size, rounds)


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
