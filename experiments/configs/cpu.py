"""The CPU protocol: the paper's comparison at a size two CPU cores train in minutes, every
loss fine-tuned from one backbone trained here on the dataset's own labels.

  python experiments/reproduce.py --grid=camvid --protocol=cpu --data_dir=/path/to/CamVid
  python experiments/run.py --config=experiments/configs/cpu.py --dataset=camvid \\
      --data_dir=/path/to/CamVid --category=pole --init=runs/reproduce/camvid-cpu/shared_backbone

Result (3 seeds, float32; docs/results.md, results/crop/camvid-cpu/report.md): on CamVid val, soft
IoU minus softmax is +20.9 points on fence and +9.0 on sign_symbol, -1.5 on road (each
outside the seed spread), -2.4 on building (within it); pole is not learned at this scale.
"""

import os
import runpy

# Each departure from the paper's protocol (paper.py): setting -> (value, reason).
DEPARTURES = {
    "width_mult": (0.25, "a narrower network fits a 2-core CPU budget"),
    "crop_size": ("180x240", "random crops of the full-resolution images: a quarter of the "
                             "pixels per image, thin objects keep their full-resolution width; "
                             "evaluation is on whole, original images"),
    "optimizer": ("adam", "Adam converges in a few hundred steps; SGD 1e-4 does not"),
    "batch_size": (8, "more images per step for a short run"),
    "train_steps": (600, "a fixed budget instead of 'until convergence'"),
    "eval_every": (100, "more frequent model selection for a short run"),
    "dtype": ("auto", "bfloat16 operands (float32 accumulation) where the hardware multiplies "
                      "them natively (AMX, GPU, TPU): faster, and its grids draw the same "
                      "comparison of the losses as float32's; their scores agree within the "
                      "seed spread on 7-10 of 10 category-loss pairs (docs/results.md)"),
    "init": ("shared", "ImageNet AlexNet weights cannot be downloaded here: one backbone, "
                       "pre-trained here on the dataset's multi-class train labels (train[:80%] "
                       "only, median-frequency-weighted cross-entropy: run.py --category=all), "
                       "stands in for them; every loss is fine-tuned from it"),
}


def get_config() -> dict:
  """The paper's settings with this preset's departures."""
  paper = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper.py"))
  return {**paper["get_config"](), **{key: value for key, (value, _) in DEPARTURES.items()}}
