"""Compare two binary grids' reports category by category: are their scores the same within
the seed spread? (e.g. the CPU protocol in float32 and in bfloat16).

  python experiments/compare_grids.py results/crop/camvid-cpu/summary.json \\
      runs/bf16/camvid-cpu/report/summary.json --names=float32,bfloat16 --out=comparison.md

Per category, loss and split: each grid's mean IoU over its seeds ± the sample standard
deviation, the difference of the means and its standard error
``sqrt(s_a^2 / n_a + s_b^2 / n_b)``; "within the spread" when ``|difference| <= 2`` standard
errors. The summaries are experiments/report.py's ``summary.json``.
"""

import math
import sys

from fcn_iou_jax import cli, run_log
from fcn_iou_jax.errors import UserError

LOSSES = ("softmax", "iou", "lovasz")


def difference(a, b):
  """``(b_mean - a_mean, standard error)`` of two ``[mean, std, seeds]`` summaries."""
  (mean_a, std_a, n_a), (mean_b, std_b, n_b) = a, b
  return mean_b - mean_a, math.sqrt(std_a ** 2 / n_a + std_b ** 2 / n_b)


def compare(summary_a: dict, summary_b: dict, split: str = "val") -> list[dict]:
  """One row per category and loss scored in both summaries on ``split``."""
  rows_b = {row["category"]: row for row in summary_b["rows"]}
  rows = []
  for row_a in summary_a["rows"]:
    row_b = rows_b.get(row_a["category"])
    for loss in LOSSES:
      scores = [row.get(loss, {}).get(split, {}).get("iou") if row else None
                for row in (row_a, row_b)]
      if None in scores:
        continue
      delta, error = difference(*scores)
      rows.append({"category": row_a["category"], "loss": loss, "a": scores[0],
                   "b": scores[1], "difference": delta, "standard_error": error,
                   "within_spread": abs(delta) <= 2 * error})
  return rows


def markdown(rows, names, split) -> str:
  lines = [f"| category | loss | {names[0]} {split} IoU | {names[1]} {split} IoU | difference "
           "| within the seed spread (2 standard errors) |", "|---|---|---|---|---|---|"]
  percent = lambda summary: f"{100 * summary[0]:.1f} ± {100 * summary[1]:.1f}"
  for row in rows:
    lines.append(f"| {row['category']} | {row['loss']} | {percent(row['a'])} | "
                 f"{percent(row['b'])} | {100 * row['difference']:+.1f} ± "
                 f"{100 * row['standard_error']:.1f} | "
                 f"{'yes' if row['within_spread'] else '**no**'} |")
  return "\n".join(lines) + "\n"


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("summary_a")
  parser.add_argument("summary_b")
  parser.add_argument("--names", default="a,b", help="comma-separated names of the two grids")
  parser.add_argument("--split", default="val", choices=("selection", "val", "test"))
  parser.add_argument("--out", default=None, help="also write the table to this .md file")
  args = parser.parse_args(argv)
  names = args.names.split(",")
  if len(names) != 2:
    raise UserError(f"--names={args.names!r} needs two comma-separated names")
  summaries = []
  for path in (args.summary_a, args.summary_b):
    summary = run_log.read_json(path)
    if summary is None:
      raise UserError(f"{path}: no such file")
    if "rows" not in summary:
      raise UserError(f"{path}: not a summary.json of experiments/report.py")
    summaries.append(summary)
  rows = compare(*summaries, split=args.split)
  if not rows:
    raise UserError(f"{args.summary_a} and {args.summary_b} share no category and loss "
                    f"scored on {args.split}")
  table = markdown(rows, names, args.split)
  print(table, end="")
  verdict = sum(row["within_spread"] for row in rows)
  print(f"\n{verdict} of {len(rows)} within the seed spread")
  if args.out:
    with open(args.out, "w", encoding="utf-8") as handle:
      handle.write(table)


if __name__ == "__main__":
  sys.exit(cli.run(main))
