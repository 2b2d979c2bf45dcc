"""Train one FCN-32s with the soft-IoU (or another) loss and evaluate it.

  python experiments/run.py --category=person --loss=iou --init=alexnet.npz  # the paper's
  python experiments/run.py --dataset=camvid --data_dir=PATH --category=road \\
      --optimizer=adam --learning_rate=3e-4 --width_mult=0.25 --crop_size=180x240
  python experiments/run.py --dataset=camvid --data_dir=PATH --category=all --loss=iou \\
      --optimizer=adam --learning_rate=3e-4 --width_mult=0.25 --crop_size=180x240  # 11 classes
  python experiments/run.py --dataset=synthetic --category=disk --width_mult=0.125 \\
      --train_steps=200 --optimizer=adam   # runs anywhere, no data needed

Without --init (ImageNet AlexNet weights, experiments/convert_weights.py, or the folder of a
multi-class run) the network starts from scratch, where the paper's SGD 1e-4 seldom learns:
pass --optimizer=adam --learning_rate=3e-4 as above.

Rerunning the same command with the same --workdir resumes from the latest checkpoint.
"""

import os
import sys

from fcn_iou_jax import cli

if __name__ == "__main__":
  cli.set_up_process(huge_pages=True)  # ~1.2x faster XLA:CPU steps; before JAX starts

import flags  # pylint: disable=wrong-import-position,wrong-import-order  # after the set-up above


def main(argv):
  config, workdir, force_eval = flags.parse_run_flags(argv, __doc__)
  from fcn_iou_jax import train  # imports TensorFlow
  results = train.train_and_evaluate(config, workdir, force_eval=force_eval)
  score, name = ("miou", "mIoU") if "miou" in results["selection"] else ("iou", "IoU")
  summary = ", ".join(f"{split} {name} {results[split][score]:.4f}"
                      for split in ("selection", "val", "test") if split in results)
  print(f"Done: {summary}; best step {results['best_step']}; results in "
        f"{os.path.join(workdir, 'results.json')}")
  for split in ("val", "test"):
    warning = split in results and cli.degenerate_warning(split, results[split], config)
    if warning:
      print(warning)


if __name__ == "__main__":
  sys.exit(cli.run(main))
