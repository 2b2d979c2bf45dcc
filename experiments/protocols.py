"""The settings of the paper's protocol and of the presets that depart from it, each departure
with its reason; and the record that pins a grid folder to the settings its runs used."""

from __future__ import annotations

import os

from fcn_iou_jax import run_log
from fcn_iou_jax.errors import UserError

# The paper's settings (Sec. 4.1); batch size and step count are not stated there.
PAPER = {"backbone": "caffe", "width_mult": 1, "fc6_kernel": 6, "image_size": None,
         "crop_size": None, "scale_jitter": 0.0, "colour_jitter": 0.0,
         "optimizer": "sgd", "learning_rate": 1e-4, "momentum": 0.99, "weight_decay": 5e-4,
         "batch_size": 4, "train_steps": 20000, "eval_every": 500, "init": "imagenet"}
PROTOCOLS = {
    "paper": dict(PAPER),
    "cpu": dict(PAPER, width_mult=0.25, crop_size="180x240", optimizer="adam",
                learning_rate=1e-4, batch_size=8, train_steps=600, eval_every=100,
                init="shared"),
    "sweep": dict(PAPER, width_mult=0.125, image_size=None, optimizer="adam",
                  learning_rate=3e-4, batch_size=8, train_steps=300, eval_every=100,
                  init="scratch"),
}
GRID_RECORD = "grid.json"  # the settings a grid folder's runs were started with
BACKBONE_FOLDER = "shared_backbone"  # in a grid's folder: its backbone run, not one of its runs
# The shared backbone (init="shared"): one multi-class model of every class, trained with
# median-frequency-weighted cross-entropy on train[:80%], kept at its last step.
BACKBONE = {"category": "all", "loss": "softmax", "class_weighting": "median_frequency",
            "optimizer": "adam", "learning_rate": 3e-4, "batch_size": 8, "train_steps": 2000,
            "eval_every": 2000}
WHY = {
    "width_mult": "a narrower network fits a 2-core CPU budget",
    "fc6_kernel": "fc6 as the 1x1 convolution the paper's text describes, not Long et al.'s 6x6 "
                  "that ImageNet's fc6 weights need: none are transplanted here, and it has 36x "
                  "fewer weights to learn from a few hundred images",
    "image_size": "images resized before the random crop (smaller: a 2-core CPU budget; "
                  "larger: a thin object spans more cells of the stride-32 output); "
                  "evaluation resizes the original images by the same factor and scores at "
                  "their original resolution",
    "crop_size": "random crops of the full-resolution images: a quarter of the pixels per "
                 "image, thin objects keep their full-resolution width; evaluation is on "
                 "whole, original images",
    "scale_jitter": "random rescale before the crop (backbone included): objects at more "
                    "scales than the training sequences show",
    "colour_jitter": "random brightness, contrast and saturation (backbone included): "
                     "lighting that varies between CamVid's sequences",
    "optimizer": "Adam converges in a few hundred steps; SGD 1e-4 does not",
    "learning_rate": "Adam's step size for the short budget",
    "train_steps": "a fixed budget instead of 'until convergence'",
    "eval_every": "more frequent model selection for a short run",
    "batch_size": "more images per step for a short run",
    "init": "ImageNet AlexNet weights cannot be downloaded here: trained from scratch",
}
SHARED_WHY = ("ImageNet AlexNet weights cannot be downloaded here: one backbone, pre-trained "
              "here on the dataset's multi-class train labels (train[:80%] only, "
              "median-frequency-weighted cross-entropy: run.py --category=all), stands in for "
              "them; every loss is fine-tuned from it")


def deviations(settings: dict) -> list[str]:
  """One line per setting in which ``settings`` depart from the paper's."""
  lines = []
  for key, paper_value in PAPER.items():
    if settings[key] != paper_value:
      why = WHY.get(key, "")
      if key == "init" and settings[key] != "scratch":
        why = SHARED_WHY
      lines.append(f"{key}: {settings[key]} instead of {paper_value} ({why})")
  return lines


def read_grid_record(out_dir: str) -> dict | None:
  """The grid folder's recorded settings, or None. A setting added after the grid was started
  reads as its paper value, which the grid's runs used."""
  record = run_log.read_json(os.path.join(out_dir, GRID_RECORD))
  if record is not None:
    record["settings"] = {**PAPER, **record["settings"]}
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
