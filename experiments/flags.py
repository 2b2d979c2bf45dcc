"""Command-line flags of experiments/run.py: one flag per Config field, plus the run's place
and a preset (``--config``) whose settings the flags override."""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import NamedTuple

import protocols
from fcn_iou_jax import cli, config as config_lib, losses, precision, steps
from fcn_iou_jax.kernels import convolution
from fcn_iou_jax.errors import UserError

# Choices the library's registries declare (the rest are declared with each Config field).
REGISTRY_CHOICES = {"loss": losses.LOSS_NAMES, "conv_forms": convolution.CONV_FORMS,
                    "parallel": steps.PARALLEL_MODES}


def _bool(text: str) -> bool:
  if text.lower() in ("1", "true", "yes"):
    return True
  if text.lower() in ("0", "false", "no"):
    return False
  raise UserError(f"expected true or false, got {text!r}")


def _parse_mean(text: str) -> tuple[float, float, float]:
  try:
    values = tuple(float(v) for v in text.split(","))
  except ValueError as error:
    raise UserError(f"--input_mean={text!r} is not B,G,R, e.g. 104,117,123") from error
  if len(values) != 3:
    raise UserError(f"--input_mean={text!r} needs 3 values, B,G,R")
  return values


# A preset's init that names weights a grid fills in (reproduce.py), not a file.
PLACEHOLDER_INITS = ("imagenet", "shared")


def _preset(argv) -> protocols.Preset | None:
  """The preset of ``--config`` in ``argv``, read before the flags that override it."""
  early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
  early.add_argument("--config", default=None)
  name = early.parse_known_args(argv)[0].config
  return protocols.load_preset(name) if name else None


class RunFlags(NamedTuple):
  config: config_lib.Config
  workdir: str
  force_eval: bool  # a finished run is evaluated again instead of printing its results


def parse_run_flags(argv, description) -> RunFlags:
  """:class:`RunFlags` from ``--flag=value`` arguments; UserError on any bad flag."""
  preset = _preset(argv)
  parser = cli.make_parser(description)
  parser.add_argument("--config", default=None,
                      help="a preset (experiments/configs/*.py, or its name: paper, cpu, sweep) "
                           "whose settings replace the defaults; flags given override it")
  defaults = config_lib.Config()
  for field in dataclasses.fields(config_lib.Config):
    default = getattr(defaults, field.name)
    kind = {bool: _bool, int: int, float: float}.get(type(default), str)
    if field.name in ("image_size", "crop_size"):
      kind = cli.parse_size(field.name)
    if field.name == "input_mean":
      kind = _parse_mean
    choices = REGISTRY_CHOICES.get(field.name, field.metadata["choices"])
    parser.add_argument(f"--{field.name}", type=kind, default=default,
                        choices=list(choices) if choices else None, help=field.metadata["help"])
  if preset:  # as strings where the preset has them so, parsed like the flag's text
    parser.set_defaults(**{key: value for key, value in preset.settings.items()
                           if key in defaults.__dataclass_fields__})
  parser.add_argument("--workdir", default=None,
                      help="run folder (default runs/<dataset>-<category>-<loss>)")
  parser.add_argument("--force_eval", action="store_true",
                      help="a finished run is scored again (default: its saved results)")
  parser.add_argument("--coordinator_address", default=None,
                      help="multi-host: host:port of process 0 (or set JAX's environment)")
  parser.add_argument("--num_processes", type=int, default=None,
                      help="multi-host: how many processes (or set JAX's environment)")
  parser.add_argument("--process_id", type=int, default=None,
                      help="multi-host: this process's index (or set JAX's environment)")
  args = parser.parse_args(argv)
  if not args.category:
    raise UserError("--category is required, e.g. --category=person")
  values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_lib.Config)}
  config = config_lib.Config(**values)  # every setting checked before the set-up prints a line
  if config.init in PLACEHOLDER_INITS:
    raise UserError(f"--config={args.config}: its init={config.init} stands for weights "
                    "this run needs: pass --init=PATH (ImageNet AlexNet: an .npz of "
                    "experiments/convert_weights.py; shared: a multi-class run's folder)")
  workdir = args.workdir or os.path.join("runs", f"{config.dataset}-{config.category}-"
                                                 f"{config.loss}")
  cli.check_output_folder(workdir, f"--workdir={workdir}", make=False)
  # The process set-up the run's settings decide, before JAX starts: XLA:CPU's flags for the
  # dtype the CPU would run (auto: bfloat16 with AMX), then multi-host, then auto's choice.
  cli.use_xla_cpu_flags(precision.cpu_dtype(config.dtype))
  import jax
  if args.coordinator_address or args.num_processes:
    jax.distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
  cli.hide_accelerators_from_tensorflow()
  config = dataclasses.replace(config, dtype=cli.chosen_dtype(config.dtype))
  given = {arg.split("=", 1)[0] for arg in argv}
  if (config.init == "scratch" and config.optimizer == "sgd"
      and not given & {"--optimizer", "--learning_rate"}):
    print(f"note: the paper's SGD at learning rate {config.learning_rate:g} (the default) "
          "assumes ImageNet weights (--init); from scratch it seldom learns in a short run: "
          f"pass {cli.SCRATCH_RECIPE}", flush=True)
  return RunFlags(config, workdir, args.force_eval)
