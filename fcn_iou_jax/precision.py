"""The operand dtype ``--dtype=auto`` stands for on this machine: bfloat16 where its
products are fast (a CPU with AMX, a GPU, a TPU), float32 elsewhere.

On the CamVid CPU protocol bfloat16 scores as float32 does within the seed spread, category
by category (docs/results.md), and its step is faster where the hardware multiplies
bfloat16 natively; without AMX a bfloat16 step computes float32 products of the rounded
operands (:mod:`kernels.mixed_precision`), no faster than float32.
``--dtype=float32`` keeps the paper's precision exactly.
"""

from __future__ import annotations

from typing import Callable

AUTO = "auto"
ACCELERATORS = ("gpu", "tpu")
NO_AMX = "this CPU has no AMX units"


def cpu_has(flag: str, cpuinfo: str = "/proc/cpuinfo") -> bool:
  """Whether the CPU lists ``flag`` (``amx_bf16``, ``avx512f``; Linux); False where that
  cannot be read."""
  try:
    with open(cpuinfo, encoding="utf-8") as handle:
      return any(line.startswith("flags") and flag in line.split() for line in handle)
  except OSError:
    return False


def cpu_dtype(dtype: str, cpuinfo: str = "/proc/cpuinfo") -> str:
  """What ``dtype`` stands for on this CPU: itself, or for ``auto`` bfloat16 with AMX and
  float32 without (the XLA:CPU flags of a run are chosen by it before JAX starts)."""
  if dtype != AUTO:
    return dtype
  return "bfloat16" if cpu_has("amx_bf16", cpuinfo) else "float32"


def resolve(dtype: str, backend: Callable[[], str], *,
            cpuinfo: str = "/proc/cpuinfo") -> tuple[str, str]:
  """``(dtype, why)``: ``dtype`` itself, or for ``auto`` bfloat16 on a CPU with AMX or on a
  GPU/TPU (``backend()``, JAX's default backend, asked only without AMX: it starts JAX),
  float32 elsewhere. ``why`` is empty for a set dtype, except a set bfloat16 where ``auto``
  is float32, which says so."""
  if dtype != AUTO:
    if dtype == "bfloat16" and not multiplies_bfloat16(backend, cpuinfo=cpuinfo):
      return dtype, (f"as set; {NO_AMX}: float32 products of the rounded operands, at about "
                     "float32's speed; --dtype=auto picks float32")
    return dtype, ""
  if cpu_dtype(dtype, cpuinfo) == "bfloat16":
    return "bfloat16", "this CPU multiplies bfloat16 in its AMX units"
  platform = backend()
  if platform in ACCELERATORS:
    return "bfloat16", f"the {platform.upper()} multiplies bfloat16 natively"
  return "float32", f"{NO_AMX} to multiply bfloat16 faster"


def multiplies_bfloat16(backend: Callable[[], str], *, cpuinfo: str = "/proc/cpuinfo") -> bool:
  """Whether this machine multiplies bfloat16 natively (a CPU with AMX, a GPU, a TPU): where
  ``auto`` picks bfloat16 (:func:`resolve`)."""
  return resolve(AUTO, backend, cpuinfo=cpuinfo)[0] == "bfloat16"
