"""How well can FCN-32s's stride-32 output draw each category at all? (fcn_iou_jax.output_bound)

For every label of a split, a coarse score map is fitted directly to the category's mask
through the model's fixed bilinear deconvolution; the fitted masks are scored like a run
(dataset-level IoU, Eq. 1, void excluded). A trained model cannot beat the architecture's own
ceiling, which this lower-bounds: a category far below it is limited by its features, one
near it by the output's resolution.

  python experiments/output_bound.py --dataset=camvid --data_dir=/path/to/CamVid \\
      --split=val --categories=road,building,pole,sign_symbol,fence
"""

import os
import sys

from fcn_iou_jax import cli, config, run_log
from fcn_iou_jax.data import categories
from fcn_iou_jax.errors import UserError


def main(argv):
  parser = cli.make_parser(__doc__)
  cli.add_dataset_flags(parser)
  parser.add_argument("--split", default="val", help="split whose labels are fitted")
  parser.add_argument("--categories", required=True, help="comma-separated category names")
  parser.add_argument("--backbone", default="caffe", choices=config.BACKBONE_NAMES,
                      help="the layout whose geometry (crop offset, score map size) is used")
  parser.add_argument("--out", default=None, help="also write the results to this .json")
  args = parser.parse_args(argv)
  if args.out and not args.out.endswith(".json"):
    raise UserError(f"--out={args.out}: must end in .json")
  ids = categories.BY_DATASET[args.dataset].category_ids(args.categories, dataset=args.dataset,
                                                         setting="categories")
  if args.out:
    cli.check_output_folder(os.path.dirname(args.out), f"--out={args.out}")
  # After parsing: these import TensorFlow, whose start-up lines would precede a flag error.
  import numpy as np
  from tqdm import tqdm
  from fcn_iou_jax import metrics, output_bound
  from fcn_iou_jax.data import sources
  cli.hide_accelerators_from_tensorflow()
  source = sources.Source(args.dataset, data_dir=args.data_dir, prepared_dir=args.prepared_dir)
  labels = source.spec.labels
  totals = {name: {"tp": 0, "fp": 0, "fn": 0} for name in ids}
  examples = source.examples(args.split).as_numpy_iterator()
  for example in tqdm(examples, total=source.num_examples(args.split), unit="image"):
    label = example["label"][..., 0]
    valid = (label != labels.void).astype(np.uint8)
    for name, category in ids.items():
      counts = output_bound.bound_counts((label == category).astype(np.uint8), valid,
                                         backbone=args.backbone)
      totals[name] = {key: totals[name][key] + counts[key] for key in counts}
  results = {name: {**counts, "iou": metrics.iou_from_counts(**counts)}
             for name, counts in totals.items()}
  print(f"| category | best stride-32 output, {args.dataset} {args.split} IoU (%) |\n|---|---|")
  for name, result in results.items():
    print(f"| {name} | {100 * result['iou']:.1f} |")
  if args.out:
    run_log.write_json(args.out, {"dataset": args.dataset, "split": args.split,
                                  "backbone": args.backbone, "categories": results})


if __name__ == "__main__":
  sys.exit(cli.run(main))
