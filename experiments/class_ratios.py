"""Background:object pixel ratio per category (the paper's Table 2), void pixels excluded.

  python experiments/class_ratios.py --dataset=camvid --data_dir=/path/to/CamVid
  python experiments/class_ratios.py --dataset=voc2012 --data_dir=/path/to/VOCdevkit --json
"""

import json
import sys

from fcn_iou_jax import cli
from fcn_iou_jax.data import statistics


def main(argv):
  parser = cli.make_parser(__doc__)
  cli.add_dataset_flags(parser)
  parser.add_argument("--split", default="train", help="split whose pixels are counted")
  parser.add_argument("--json", action="store_true", help="print one JSON object {category: ratio}")
  args = parser.parse_args(argv)
  # After parsing: this imports TensorFlow, whose start-up lines would precede a flag error.
  from fcn_iou_jax.data import sources
  cli.hide_accelerators_from_tensorflow()
  source = sources.Source(args.dataset, data_dir=args.data_dir, prepared_dir=args.prepared_dir)
  labels = source.spec.labels
  counts = statistics.class_pixel_counts(source.examples(args.split), len(labels.names))
  ratios = statistics.background_to_object_ratios(counts, labels.names)
  if args.json:
    print(json.dumps(ratios))
    return
  print(f"| category | background:object ({args.dataset} {args.split}) |\n|---|---|")
  for name, ratio in ratios.items():
    print(f"| {name} | {ratio:.1f} |")


if __name__ == "__main__":
  sys.exit(cli.run(main))
