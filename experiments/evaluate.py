"""Re-evaluate the best checkpoint of a run on any split, including one added after training.

  python experiments/evaluate.py --workdir=runs/camvid-pole-iou --split=test
Writes WORKDIR/eval_<split>.json with iou, per_image_iou, tp, fp, fn.
"""

import dataclasses
import json
import os
import sys

from fcn_iou_jax import cli, losses, run_log, steps


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
  # After parsing: these import TensorFlow, whose start-up lines would precede a flag error.
  from fcn_iou_jax import evaluation, inference, train  # pylint: disable=import-outside-toplevel
  cli.hide_accelerators_from_tensorflow()
  config = inference.load_config(args.workdir)
  config = dataclasses.replace(config, data_dir=args.data_dir or config.data_dir,
                               prepared_dir=args.prepared_dir or config.prepared_dir)
  model, params = inference.load_best_params(args.workdir, config)
  source = train.build_source(config)
  category_id = source.spec.labels.category_id(config.category, dataset=config.dataset)
  parallel = steps.ParallelSteps(config.parallel, model=model,
                                 loss_fn=losses.get_loss(config.loss), tx=None)
  params = parallel.put_state(params)
  result = evaluation.evaluate_split(parallel, params, source, args.split,
                                     category_id=category_id,
                                     batch_size=args.batch_size or config.eval_batch_size,
                                     backbone=config.backbone,
                                     input_scale=train.eval_input_scale(config),
                                     input_mean=config.input_mean)
  result = {key: result[key] for key in ("iou", "per_image_iou", "tp", "fp", "fn")}
  path = os.path.join(args.workdir, f"eval_{args.split}.json")
  run_log.write_json(path, result)
  print(json.dumps(result))


if __name__ == "__main__":
  sys.exit(cli.run(main))
