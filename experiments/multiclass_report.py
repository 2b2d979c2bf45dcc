"""Report of a multi-class reproduce.py grid (camvid_all, voc_all): per-class IoU by loss.

  python experiments/multiclass_report.py --runs=runs/reproduce/camvid_all-cpu \\
      --out=results/reproduce/camvid_all-cpu --data_dir=PATH/camvid \\
      --binary_summary=results/reproduce/camvid-cpu/summary.json

Writes OUT/report.md, OUT/summary.json, OUT/gain_vs_ratio.png and, for real datasets,
OUT/examples.png (image | ground truth | each loss). The table gives each class's IoU and
the mIoU per loss, mean ± sample std over seeds, on val (and test where the data has it; on
the selection split where there is no val). Each IoU-family loss is compared with
cross-entropy per class, paired by seed; the plot draws these gains against the class's
background:object ratio, with the binary grid's soft-IoU gains (--binary_summary, the
summary.json of report.py) beside them.
"""

from __future__ import annotations

import collections
import os
import sys

import numpy as np

import report
import protocols
from fcn_iou_jax import cli, run_log
from fcn_iou_jax.data import categories
from fcn_iou_jax.errors import UserError

NAMES = {"softmax": "cross-entropy", "iou": "soft IoU", "lovasz": "Lovász-Softmax",
         "softmax+iou": "cross-entropy + soft IoU"}
COMPARED = ("iou", "lovasz", "softmax+iou")  # each against cross-entropy
MARKERS = {"iou": "o", "lovasz": "s", "softmax+iou": "^"}


def _class_iou(name):
  return lambda result: (result.get("per_class_iou") or {}).get(name)


def summarise(runs, train_ratios):
  """Per loss and split: mean ± std over seeds of each class's IoU and of the mIoU; per class
  and compared loss: the paired gain over cross-entropy."""
  by_loss = collections.defaultdict(list)
  for run in runs:
    by_loss[run["loss"]].append(run)
  names = list(categories.BY_DATASET[runs[0]["dataset"]].names)  # the dataset's class order
  splits = [s for s in ("val", "test") if any(s in run for run in runs)] or ["selection"]
  losses = [loss for loss in NAMES if loss in by_loss]
  table = {loss: {split: {"miou": report.mean_std([m.get(split, {}).get("miou")
                                                   for m in by_loss[loss]]),
                          "per_class_iou": {name: report.mean_std(
                              [_class_iou(name)(m.get(split, {})) for m in by_loss[loss]])
                                            for name in names}}
                  for split in splits} | {"seeds": sorted(m["seed"] for m in by_loss[loss])}
           for loss in losses}
  gains = {name: {loss: report.paired_gain(by_loss, splits[0], loss, _class_iou(name))
                  for loss in COMPARED if loss in by_loss}
           for name in names}
  return {"dataset": runs[0]["dataset"], "classes": names, "splits": splits, "losses": losses,
          "table": table, "gains": gains, "gain_split": splits[0],
          "background_to_object": {name: train_ratios.get(name) for name in names}}


def _table(summary):
  ratios = summary["background_to_object"]
  columns = [name + (f" ({ratios[name]:.0f})" if ratios.get(name) else "")
             for name in summary["classes"]] + ["mIoU"]
  lines = []
  for split in summary["splits"]:
    lines += [f"{split} IoU (%), background:object ratio (train) in brackets:", "",
              "| loss | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for loss in summary["losses"]:
      row = summary["table"][loss][split]
      cells = [report.fmt(row["per_class_iou"][name]) for name in summary["classes"]]
      lines.append(f"| {NAMES[loss]} | " + " | ".join(cells + [report.fmt(row["miou"])]) + " |")
    lines.append("")
  return lines


def _verdicts(summary):
  """Per compared loss: the classes where it beats cross-entropy outside the seed spread."""
  lines = []
  for loss in (l for l in COMPARED if l in summary["losses"]):
    ahead, behind = [], []
    for name in summary["classes"]:
      gain = summary["gains"][name].get(loss)
      if gain is not None and report.outside_spread(gain):
        (ahead if gain["mean"] > 0 else behind).append(f"{name} {100 * gain['mean']:+.1f}")
    lines.append(f"- **{NAMES[loss]} − cross-entropy** ({summary['gain_split']}, paired by seed, "
                 "outside the seed spread = |mean| > 2 standard errors): ahead on "
                 f"{', '.join(ahead) or 'no class'}; behind on {', '.join(behind) or 'no class'}")
  if not lines or all(len(summary["table"][l]["seeds"]) < 2 for l in summary["losses"]):
    lines = ["- One seed per loss: no seed spread, so no class is called a win or a loss."]
  return lines


def _gain_plot(summary, binary_rows, path, title):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  ratios = summary["background_to_object"]
  if not any(ratios.values()):
    return False
  figure, axis = plt.subplots(figsize=(7, 4.5))
  for loss in (l for l in COMPARED if l in summary["losses"]):
    points = [(ratios[name], summary["gains"][name][loss]) for name in summary["classes"]
              if ratios.get(name) and summary["gains"][name].get(loss)]
    axis.errorbar([r for r, _ in points], [100 * g["mean"] for _, g in points],
                  yerr=[100 * g["std"] for _, g in points], fmt=MARKERS[loss], capsize=3,
                  label=f"multi-class: {NAMES[loss]} − cross-entropy")
  for name in summary["classes"]:
    if ratios.get(name):
      gains = [summary["gains"][name][l]["mean"] for l in COMPARED
               if summary["gains"][name].get(l)]
      if gains:
        axis.annotate(name, (ratios[name], 100 * max(gains)), fontsize=7, xytext=(3, 3),
                      textcoords="offset points")
  binary = [r for r in binary_rows if r.get("gain") and r.get("background_to_object")]
  if binary:
    axis.errorbar([r["background_to_object"] for r in binary],
                  [100 * r["gain"]["mean"] for r in binary],
                  yerr=[100 * r["gain"]["std"] for r in binary], fmt="D", mfc="none",
                  capsize=3, color="black",
                  label="binary (one model per class): soft IoU − softmax")
  axis.axhline(0, color="black", linewidth=0.5)
  axis.set_xscale("log")
  axis.set_xlabel("background:object pixel ratio of the class (train)")
  axis.set_ylabel(f"{summary['gain_split']} IoU gain (points, paired by seed, ± std)")
  axis.set_title(title, fontsize=10)
  axis.legend(fontsize=7)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)
  return True


def _examples_figure(runs, summary, data_dir, path, count=3):
  """``count`` images of the evaluated split: image | ground truth | each loss (lowest seed)."""
  if summary["dataset"] == "synthetic":
    return False
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from fcn_iou_jax import build, inference
  from fcn_iou_jax.data import sources
  source = sources.Source(summary["dataset"], data_dir=data_dir)
  split = "val" if "val" in source.available_splits() else "selection"
  labels = source.spec.labels
  colours = np.asarray(labels.colours + ((0, 0, 0),) * (256 - len(labels.colours)), np.uint8)
  examples = list(source.examples(split).as_numpy_iterator())
  # The images holding the most classes, so that rare ones show.
  examples = sorted(examples, key=lambda e: -len(np.unique(e["label"])))[:count]
  chosen = {}
  for run in sorted(runs, key=lambda r: r["seed"]):
    chosen.setdefault(run["loss"], run)
  losses = [loss for loss in summary["losses"] if loss in chosen]
  predictions = {}
  for loss in losses:
    config = run_log.read_config(chosen[loss]["workdir"])
    model, params = build.load_best_params(chosen[loss]["workdir"], config)
    predictions[loss] = [inference.predict_probabilities(
        model, params, e["image"], config.backbone, build.eval_input_scale(config),
        config.input_mean).argmax(-1) for e in examples]
  titles = ["image", "ground truth"] + [NAMES[loss] for loss in losses]
  figure, axes = plt.subplots(len(examples), len(titles),
                              figsize=(2.6 * len(titles), 2.1 * len(examples)), squeeze=False)
  for row, example in enumerate(examples):
    truth = example["label"][..., 0]
    truth = np.where(truth == labels.void, 255, truth)
    panels = [example["image"], colours[truth]]
    panels += [colours[predictions[loss][row]] for loss in losses]
    for column, panel in enumerate(panels):
      axes[row, column].imshow(panel)
      axes[row, column].set_axis_off()
      if row == 0:
        axes[row, column].set_title(titles[column], fontsize=9)
  figure.tight_layout()
  figure.savefig(path, dpi=90)
  plt.close(figure)
  return True


def write_report(runs_dir, out_dir, *, data_dir=None, binary_summary=None, title=None):
  runs = [run for run in report.load_runs(runs_dir) if run["category"] == categories.ALL]
  if not runs:
    raise UserError(f"{runs_dir}: no finished multi-class runs (no run folder in it holds a "
                    "results.json of --category=all)")
  os.makedirs(out_dir, exist_ok=True)
  summary = summarise(runs, report.ratios(runs[0]["dataset"], data_dir, "train"))
  record = protocols.read_grid_record(runs_dir)
  if title is None:
    title = (f"{record['grid']} ({record['protocol']} protocol)" if record
             else os.path.basename(runs_dir.rstrip("/")))
  binary_rows = run_log.read_json(binary_summary)["rows"] if binary_summary else []
  seeds = sorted({run["seed"] for run in runs})
  lines = [f"# One model of every class: cross-entropy vs IoU-family losses, {title}", "",
           f"{len(runs)} finished runs under `{runs_dir}` (seeds {', '.join(map(str, seeds))}); "
           "IoU in %, mean ± sample std over seeds, each class scored one against the rest "
           "over the whole split (argmax prediction); mIoU over the classes present.", ""]
  lines += report.settings_lines(record, runs_dir)
  lines += _table(summary)
  lines += _verdicts(summary) + [""]
  if _gain_plot(summary, binary_rows, os.path.join(out_dir, "gain_vs_ratio.png"), title):
    lines += ["![per-class gain over cross-entropy against background:object ratio]"
              "(gain_vs_ratio.png)", ""]
  if _examples_figure(runs, summary, data_dir, os.path.join(out_dir, "examples.png")):
    lines += ["![image | ground truth | each loss](examples.png)", ""]
  with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as handle:
    handle.write("\n".join(lines))
  run_log.write_json(os.path.join(out_dir, "summary.json"), summary)
  print("\n".join(lines))
  return summary


def main(argv):
  parser = cli.make_parser(__doc__)
  report.add_report_flags(parser, "a multi-class grid folder of reproduce.py")
  parser.add_argument("--binary_summary", default=None,
                      help="summary.json of report.py on the binary grid of the same dataset: "
                           "its soft-IoU gains are drawn beside the multi-class ones")
  args = parser.parse_args(argv)
  report.check_runs_folder(args.runs)
  if args.binary_summary and not isinstance(run_log.read_json(args.binary_summary), dict):
    raise UserError(f"--binary_summary={args.binary_summary}: no such file")
  cli.check_output_folder(args.out, f"--out={args.out}")
  cli.hide_accelerators_from_tensorflow()
  write_report(args.runs, args.out, data_dir=args.data_dir, binary_summary=args.binary_summary,
               title=args.title)


if __name__ == "__main__":
  sys.exit(cli.run(main))
