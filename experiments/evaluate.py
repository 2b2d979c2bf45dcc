"""Re-evaluate the best checkpoint of a run on any split, including one added after training.

  python experiments/evaluate.py --workdir=runs/camvid-pole-iou --split=test
Writes WORKDIR/eval_<split>.json: iou, per_image_iou, tp, fp, fn of a binary run; miou,
per_class_iou, pixel_accuracy, mean_class_accuracy, frequency_weighted_iou and confusion of a
multi-class run (--category=all).
"""

import dataclasses
import json
import os
import sys

from fcn_iou_jax import cli, run_log, steps
from fcn_iou_jax.errors import UserError


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("--workdir", required=True, help="a run folder of run.py")
  parser.add_argument("--split", default="val",
                      choices=["val", "test", "train", "selection", "selection_train"],
                      help="split to score (selection: the held-out 20%% of train)")
  parser.add_argument("--data_dir", default=None, help="dataset folder (default: the run's)")
  parser.add_argument("--prepared_dir", default=None, help="TFDS records (default: the run's)")
  parser.add_argument("--batch_size", type=int, default=None, help="default: the run's")
  args = parser.parse_args(argv)
  config = run_log.read_config(args.workdir)
  # After the checks: these import TensorFlow, whose start-up lines would precede an error.
  from fcn_iou_jax import build, evaluation
  cli.hide_accelerators_from_tensorflow()
  config = dataclasses.replace(config, data_dir=args.data_dir or config.data_dir,
                               prepared_dir=args.prepared_dir or config.prepared_dir)
  task = build.build_task(config)
  model, params = build.load_best_params(args.workdir, config)
  source = build.build_source(config)
  parallel = steps.parallel_steps(config.parallel, model=model, loss_fn=None, tx=None,
                                 multiclass=task.multiclass)
  params = parallel.put_state(params)
  result = evaluation.evaluate_split(parallel, params, source, args.split,
                                     category_id=task.category_id,
                                     batch_size=args.batch_size or config.eval_batch_size,
                                     backbone=config.backbone,
                                     input_scale=build.eval_input_scale(config),
                                     input_mean=config.input_mean)
  result = {key: result[key] for key in task.public_scores}
  print(json.dumps(result), flush=True)  # first: a workdir that cannot be written loses nothing
  warning = not task.multiclass and cli.degenerate_warning(args.split, result, config)
  if warning:
    print(warning, flush=True)
  path = os.path.join(args.workdir, f"eval_{args.split}.json")
  try:
    run_log.write_json(path, result)
  except OSError as error:
    raise UserError(f"{path}: not written ({error.strerror}); the scores are printed "
                    "above") from error


if __name__ == "__main__":
  sys.exit(cli.run(main))
