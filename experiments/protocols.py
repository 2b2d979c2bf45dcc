"""The presets (experiments/configs: the paper's protocol and those that depart from it, each
departure with its reason beside it), the departures of a grid's settings from the paper's,
and the record that pins a grid folder to the settings its runs used."""

from __future__ import annotations

import dataclasses
import os
import runpy

from fcn_iou_jax import run_log
from fcn_iou_jax.errors import UserError

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
PRESETS = ("paper", "cpu", "sweep")  # experiments/configs/<name>.py
GRID_RECORD = "grid.json"  # the settings a grid folder's runs were started with
BACKBONE_FOLDER = "shared_backbone"  # in a grid's folder: its backbone run, not one of its runs
# The shared backbone (init="shared"): one multi-class model of every class, trained with
# median-frequency-weighted cross-entropy on train[:80%], kept at its last step.
BACKBONE = {"category": "all", "loss": "softmax", "class_weighting": "median_frequency",
            "optimizer": "adam", "learning_rate": 3e-4, "batch_size": 8, "train_steps": 2000,
            "eval_every": 2000}
# Why a grid may depart from its preset in a setting that reproduce.py's flags override.
OVERRIDE_REASONS = {
    "width_mult": "a narrower network fits a 2-core CPU budget",
    "fc6_kernel": "fc6 as the 1x1 convolution the paper's text describes, not Long et al.'s 6x6 "
                  "that ImageNet's fc6 weights need: none are transplanted here, and it has 36x "
                  "fewer weights to learn from a few hundred images",
    "image_size": "images resized before the random crop (smaller: a 2-core CPU budget; "
                  "larger: a thin object spans more cells of the stride-32 output); "
                  "evaluation resizes the original images by the same factor and scores at "
                  "their original resolution",
    "scale_jitter": "random rescale before the crop (backbone included): objects at more "
                    "scales than the training sequences show",
    "colour_jitter": "random brightness, contrast and saturation (backbone included): "
                     "lighting that varies between CamVid's sequences",
    "train_steps": "a fixed budget instead of 'until convergence'",
    "dtype": "bfloat16 operands (float32 accumulation, activations and weights): faster "
             "where the hardware multiplies bfloat16 natively",
    "init": "ImageNet AlexNet weights cannot be downloaded here: a backbone trained here "
            "stands in for them",
}


@dataclasses.dataclass(frozen=True)
class Preset:
  """A preset of experiments/configs: its settings and why each departs from the paper's."""
  name: str
  settings: dict
  reasons: dict


def load_preset(name_or_path: str) -> Preset:
  """The preset ``name`` (one of :data:`PRESETS`) or the config file at a path: a Python
  file whose ``get_config()`` returns settings and whose ``DEPARTURES`` maps each setting
  that departs from the paper's to ``(value, reason)``."""
  path = (name_or_path if name_or_path.endswith(".py")
          else os.path.join(CONFIGS, f"{name_or_path}.py"))
  try:
    module = runpy.run_path(path)
    settings = module["get_config"]()
  except (OSError, SyntaxError, KeyError) as error:
    raise UserError(f"`config`={name_or_path}: not a config file with get_config() "
                    f"({type(error).__name__}: {error})") from error
  name = os.path.splitext(os.path.basename(path))[0]
  return Preset(name, settings, {key: reason for key, (_, reason)
                                 in module.get("DEPARTURES", {}).items()})


def deviations(settings: dict, protocol: str) -> list[str]:
  """One line per setting in which ``settings`` (a grid of preset ``protocol``, with any
  overrides) depart from the paper's, with the preset's reason or the override's."""
  paper, preset = load_preset("paper").settings, load_preset(protocol)
  lines = []
  for key, paper_value in paper.items():
    if settings[key] != paper_value:
      why = (preset.reasons[key] if settings[key] == preset.settings[key]
             else OVERRIDE_REASONS.get(key, ""))
      lines.append(f"{key}: {settings[key]} instead of {paper_value} ({why})")
  return lines


def read_grid_record(out_dir: str) -> dict | None:
  """The grid folder's recorded settings, or None. A setting added after the grid was started
  reads as its paper value, which the grid's runs used."""
  record = run_log.read_json(os.path.join(out_dir, GRID_RECORD))
  if record is not None:
    record["settings"] = {**load_preset("paper").settings, **record["settings"]}
  return record


def record_grid(out_dir: str, record: dict):
  """Writes ``record`` (grid, protocol, settings, init path) to the grid folder on its first
  sitting; raises if a later sitting's record differs, naming what changed."""
  path = os.path.join(out_dir, GRID_RECORD)
  previous = read_grid_record(out_dir)
  if previous is None:
    os.makedirs(out_dir, exist_ok=True)
    run_log.write_json(path, record)
    return
  before = {**previous["settings"], "init path": previous["init_path"]}
  now = {**record["settings"], "init path": record["init_path"]}
  changed = [f"{key} {before.get(key)} -> {now.get(key)}" for key in sorted(set(before) | set(now))
             if before.get(key) != now.get(key)]
  if changed:
    raise UserError(f"{path}: this grid was started with other settings ({'; '.join(changed)}); "
                    "rerun with the same flags, or pass another --out")
