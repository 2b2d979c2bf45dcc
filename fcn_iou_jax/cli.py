"""What every command line shares: quiet TensorFlow, and one-line errors with exit code 2."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import pkgutil
import re
import sys

from fcn_iou_jax import config, precision
from fcn_iou_jax.errors import UserError


class _Parser(argparse.ArgumentParser):

  def error(self, message):
    raise UserError(message)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
  """Keeps the description's lines (its example commands) as written, and appends a flag's
  default to its help unless the help already says it or there is none to show."""

  def _get_help_string(self, action):
    text = action.help or ""
    if ("default" in text or action.default in (None, "", argparse.SUPPRESS)
        or not action.option_strings):
      return text
    return f"{text} (default: %(default)s)".lstrip()


def make_parser(description: str) -> argparse.ArgumentParser:
  """An argparse parser (``--flag=value`` works) whose usage errors are :class:`UserError`."""
  # No abbreviated flags: a flag means what its full name says (run.py checks which were given).
  return _Parser(description=description, formatter_class=_HelpFormatter, allow_abbrev=False)


def add_dataset_flags(parser: argparse.ArgumentParser, *, default_dataset: str | None = None):
  """``--dataset`` (required unless ``default_dataset``), ``--data_dir`` and ``--prepared_dir``:
  where a command reads a dataset from (:class:`fcn_iou_jax.data.sources.Source`)."""
  parser.add_argument("--dataset", default=default_dataset, required=default_dataset is None,
                      choices=sorted(config.DATASET_NAMES), help="which dataset to read")
  parser.add_argument("--data_dir", default=None, help="dataset folder (default: per dataset)")
  parser.add_argument("--prepared_dir", default=None,
                      help="TFDS records (default: TFDS_DATA_DIR)")


def parse_size(flag: str):
  """A parser of ``HxW`` text for ``--flag``; UserError naming the flag on bad text."""

  def parse(text: str):
    try:
      height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
      raise UserError(f"--{flag}={text!r} is not HxW, e.g. 180x240") from error
    if height < 1 or width < 1:
      raise UserError(f"--{flag}={text!r} must be positive")
    return height, width

  return parse


def check_output_folder(folder: str, flag_text: str, *, make: bool = True):
  """Makes ``folder`` (with ``make``), or checks that it could be made, before any long work
  starts; a UserError that begins with ``flag_text`` (e.g. ``--out=x/y.npz``) if it cannot be
  made or written to."""
  folder = os.path.abspath(folder or ".")
  existing = folder
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise UserError(f"{flag_text}: cannot make the folder {folder} ({existing} is a file)")
  if not os.access(existing, os.W_OK):
    raise UserError(f"{flag_text}: the folder {existing} is not writable")
  missing = []  # the folders to make, outermost first
  while folder != existing and folder not in missing:
    missing.insert(0, folder)
    folder = os.path.dirname(folder)
  made = []
  try:
    for path in missing:
      os.mkdir(path)
      made.append(path)
  except OSError as error:
    raise UserError(f"{flag_text}: cannot make the folder {path} ({error.strerror})") from error
  finally:
    if not make:  # only checked: leave no trace
      for path in reversed(made):
        os.rmdir(path)


def positive(kind, flag: str):
  """A parser of a positive ``kind`` (int or float) for ``--flag``; UserError naming the flag."""

  def parse(text: str):
    try:
      value = kind(text)
    except ValueError as error:
      raise UserError(f"--{flag}={text!r} is not a number") from error
    if not value > 0:
      raise UserError(f"--{flag}={text!r} must be positive")
    return value

  return parse


HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"


def env_with_huge_pages(env=None) -> dict:
  """``env`` (default: this process's) for a child process whose glibc malloc asks the kernel
  for transparent huge pages (``GLIBC_TUNABLES``, glibc >= 2.35; ignored elsewhere).

  XLA:CPU allocates a step's large buffers afresh every step; faulting them in 4 KiB at a
  time took about 15% of the full-size CamVid train step (README "Performance").
  """
  env = dict(os.environ if env is None else env)
  tunables = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
  if not any(t.startswith("glibc.malloc.hugetlb=") for t in tunables):
    tunables.append(HUGE_PAGES_TUNABLE)
  env["GLIBC_TUNABLES"] = ":".join(tunables)
  return env


def restart_with_huge_pages():
  """Re-executes this command with :func:`env_with_huge_pages` when its environment lacks the
  setting (glibc reads it only when a process starts); call it before anything heavy runs.

  A user's own ``glibc.malloc.hugetlb=0`` is kept: then nothing happens.
  """
  env = env_with_huge_pages()
  if env["GLIBC_TUNABLES"] != os.environ.get("GLIBC_TUNABLES"):
    os.execve(sys.executable, sys.orig_argv, env)


# TensorFlow (used only for tf.data) logs start-up chatter at INFO; its oneDNN notice comes
# before that level is read, so it is turned off at the source (tf.data's image ops run no
# oneDNN kernels either way). A user's own values are kept.
QUIET_TENSORFLOW = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}


def set_up_process(*, huge_pages: bool = False):
  """What a command sets for its own process, first: TensorFlow's console quiet and, with
  ``huge_pages``, a restart with glibc's huge-page malloc (:func:`restart_with_huge_pages`).
  Importing the library changes nothing of the kind."""
  for name, value in QUIET_TENSORFLOW.items():
    os.environ.setdefault(name, value)
  if huge_pages:
    restart_with_huge_pages()


# XLA:CPU flags measured fastest for the train step (docs/performance.md): YNNPACK's dots and
# its reductions, without which XLA's own reductions run 10-16x slower beside YNNPACK's dots
# (the fc layers' bias gradients: 190 ms of a 3 s step); never its convolutions, which run
# the narrow layers' float32 convolutions 2x slower than XLA's own (the CPU protocol's
# bfloat16 step 0.40 -> 0.19 s). Its dots one by one (``individual_dot``): fused with their
# elementwise neighbours (``dot``) they run those slowly (a 768x4096x4096 weight gradient
# with its SGD update 397 against 226 ms, times 2: 358 against 191 ms; the bfloat16 step
# 3.28 against 1.46 s at batch 4, the float32 one on Zen 3 3.68 against 3.39 s), except in
# float32 on a CPU with AMX, where the fused dots are what was measured (batch 4, 360x480:
# 2.73 -> 2.26 s per step against XLA's defaults).
YNN_DOTS_ONE_BY_ONE = ("--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce",)
YNN_DOTS_FUSED = ("--xla_cpu_experimental_ynn_fusion_type=dot,reduce",)
XLA_CPU_DTYPES = ("float32", "bfloat16")


def xla_cpu_flags(dtype: str, cpuinfo: str = "/proc/cpuinfo") -> tuple[str, ...]:
  """The XLA:CPU flags of a run whose operands are ``dtype`` (one of
  :data:`XLA_CPU_DTYPES`) on this CPU."""
  if dtype == "float32" and precision.cpu_has("amx_bf16", cpuinfo):
    return YNN_DOTS_FUSED
  return YNN_DOTS_ONE_BY_ONE


def use_xla_cpu_flags(dtype: str):
  """Adds :func:`xla_cpu_flags` of ``dtype`` to ``XLA_FLAGS`` (:func:`add_xla_flags`) where JAX
  will compute on the CPU (:func:`accelerator_expected` false): on a GPU or TPU they would
  tune nothing, and an XLA release that does not know one ends the process at start."""
  if not accelerator_expected():
    add_xla_flags(xla_cpu_flags(dtype))


def accelerator_expected() -> bool:
  """Whether JAX will compute on a GPU or TPU, told before it starts: ``JAX_PLATFORMS``
  naming another platform first, or without it a GPU/TPU plugin installed (a module of
  the ``jax_plugins`` namespace, an entry point of that group, or ``libtpu``). A plugin
  without its device counts too (JAX then computes on the CPU, without these flags)."""
  platforms = os.environ.get("JAX_PLATFORMS", "").strip()
  if platforms:
    return platforms.split(",")[0].strip() != "cpu"
  if importlib.util.find_spec("libtpu") or importlib.metadata.entry_points(group="jax_plugins"):
    return True
  namespace = importlib.util.find_spec("jax_plugins")
  return bool(namespace and any(pkgutil.iter_modules(namespace.submodule_search_locations)))


def chosen_dtype(dtype: str) -> str:
  """``dtype`` as this machine runs it (``auto``: :func:`precision.resolve`), the choice
  (or a set dtype slower here than ``auto``'s) printed by process 0. Starts JAX: call it
  after :func:`use_xla_cpu_flags` and any multi-host set-up."""
  import jax
  resolved, why = precision.resolve(dtype, jax.default_backend)
  if jax.process_index() == 0:
    if dtype == precision.AUTO:
      print(f"dtype: {resolved} ({why}; --dtype=float32 for the paper's precision)", flush=True)
    elif why:
      print(f"dtype: {resolved} ({why})", flush=True)
  return resolved


def add_xla_flags(flags):
  """Adds ``flags`` (``--name=value``) to ``XLA_FLAGS``; call it before JAX computes anything
  (XLA reads the variable once). A flag the user set is left as set."""
  given = os.environ.get("XLA_FLAGS", "").split()
  names = {flag.split("=")[0] for flag in given}
  added = [flag for flag in flags if flag.split("=")[0] not in names]
  if added:
    os.environ["XLA_FLAGS"] = " ".join(given + added)


def hide_accelerators_from_tensorflow():
  """tf.data runs on the host; never let TensorFlow take GPU/TPU memory from JAX."""
  import tensorflow as tf
  tf.config.set_visible_devices([], "GPU")
  tf.config.set_visible_devices([], "TPU")


# The optimiser a from-scratch run needs (the paper's SGD 1e-4 assumes ImageNet weights).
SCRATCH_RECIPE = "--optimizer=adam --learning_rate=3e-4"


def degenerate_warning(split: str, scores: dict, run_config: config.Config) -> str | None:
  """The one-line warning for a binary split's scores whose ``degenerate`` field is set: it
  names the better of the trivial predictions, the one the model did not clearly beat, and
  what to try (:data:`SCRATCH_RECIPE` only for a from-scratch run on the paper's SGD)."""
  if scores.get("degenerate") is None:
    return None
  from fcn_iou_jax import metrics  # JAX: not at start-up
  baselines = scores["baselines"]
  better = max(baselines, key=baselines.get)
  prediction = "every pixel" if better == "all_foreground" else "no pixel"
  advice = "more steps"
  if run_config.init == "scratch" and run_config.optimizer == "sgd":
    advice = f"{SCRATCH_RECIPE} (from scratch) or more steps"
  return (f"warning: on {split}, IoU {scores['iou']:.4f} is not {metrics.DEGENERATE_MARGIN} "
          f"above predicting {prediction} as {run_config.category} ({baselines[better]:.4f}): the "
          f"model has not learned the category (try {advice})")


def as_flags(message: str) -> str:
  """A library message with the settings it names (written `batch_size`, a ``Config`` field
  or a script's setting) as the command line's flags (--batch_size)."""
  return re.sub(r"`([a-z][a-z_0-9]*)`", r"--\1", message)


def run(main, argv=None) -> int:
  """Runs ``main(argv)``; a :class:`UserError` prints ``error: ...`` and exits 2 (or the
  error's own ``exit_code``, such as 143 for a run stopped by SIGTERM); a file the system
  refuses (``OSError`` naming it) prints ``error: FILE: why`` and exits 1."""
  set_up_process()
  try:
    main(sys.argv[1:] if argv is None else argv)
  except UserError as error:
    print(f"error: {as_flags(str(error))}", file=sys.stderr)
    return getattr(error, "exit_code", 2)
  except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    return 130
  except OSError as error:  # a file the system refused (a full disk, no permission): its line
    if error.filename is None:
      raise
    print(f"error: {error.filename}: {error.strerror}", file=sys.stderr)
    return 1
  return 0
