"""Report of a reproduce.py grid: the paper's table, ratios, gain plot and example masks.

  python experiments/report.py --runs=runs/reproduce/camvid-cpu --out=results/camvid-cpu \\
      --data_dir=/path/to/CamVid

Writes OUT/report.md, OUT/summary.json, OUT/iou_gain_vs_ratio.png and, for real datasets,
OUT/examples.png (image | ground truth | FCN_IoU | FCN_acc). The headline is dataset-level
IoU (Eq. 1); per-image IoU stands beside it. On each split the runs were scored on (val and
test; the selection split where neither), a category where neither loss beats that split's
all-foreground baseline by 0.05 is "not learned at this scale" there, and the paired gains are
given there; the plot shows the first of these splits.
The header lists the grid's deviations from the paper's protocol, read from RUNS/grid.json
(written by reproduce.py). --bound adds the row of experiments/output_bound.py's fitted masks.
"""

from __future__ import annotations

import collections
import glob
import os
import sys

import numpy as np

import protocols
# The data sources, inference and training modules import TensorFlow: the two helpers that
# read images import them, so that a flag error prints only its line.
from fcn_iou_jax import cli, run_log
from fcn_iou_jax.errors import UserError
from fcn_iou_jax.data import statistics

# Rahman & Wang (2016), Table 4 (CamVid: val, test) and Tables 1/3 (VOC), IoU in %.
PAPER_RESULTS = {
    ("camvid", "road"): {"softmax": (95.53, 90.38), "iou": (95.58, 90.69)},
    ("camvid", "building"): {"softmax": (87.03, 76.21), "iou": (88.30, 76.72)},
    ("camvid", "pole"): {"softmax": (50.46, 50.91), "iou": (53.48, 52.79)},
    ("camvid", "sign_symbol"): {"softmax": (64.94, 56.27), "iou": (67.78, 57.78)},
    ("camvid", "fence"): {"softmax": (75.97, 61.75), "iou": (80.68, 62.23)},
    # VOC: (VOC2010 val, VOC2011 val), the six categories of Table 1.
    ("voc", "aeroplane"): {"softmax": (71.07, 72.18), "iou": (75.27, 75.07)},
    ("voc", "bus"): {"softmax": (72.85, 73.96), "iou": (74.47, 75.37)},
    ("voc", "car"): {"softmax": (71.67, 71.82), "iou": (72.83, 72.87)},
    ("voc", "horse"): {"softmax": (60.46, 60.74), "iou": (61.18, 60.92)},
    ("voc", "person"): {"softmax": (75.42, 76.78), "iou": (72.65, 73.61)},
    ("voc", "tvmonitor"): {"softmax": (64.03, 65.05), "iou": (67.37, 66.81)},
}
LEARNED_MARGIN = 0.05
NAMES = {"softmax": "FCN_acc (softmax)", "iou": "FCN_IoU (soft IoU)",
         "lovasz": "FCN_Lovász (Lovász hinge)"}
IOU_FAMILY = ("iou", "lovasz")  # the losses whose gain over softmax the report measures


def load_runs(runs_dir):
  runs = []
  for path in sorted(glob.glob(os.path.join(runs_dir, "*", "results.json"))):
    if os.path.basename(os.path.dirname(path)) == protocols.BACKBONE_FOLDER:
      continue  # the grid's shared backbone
    result = run_log.read_json(path)
    result["workdir"] = os.path.dirname(path)
    for split in ("val", "test"):  # a later re-evaluation (experiments/evaluate.py) wins
      rescored = run_log.read_json(os.path.join(result["workdir"], f"eval_{split}.json"))
      if rescored:
        result[split] = rescored
    runs.append(result)
  return runs


def _key(run):
  ratio = run["config"].get("synthetic_ratio") if run["dataset"] == "synthetic" else None
  return run["category"], ratio


def mean_std(values):
  values = [v for v in values if v is not None]
  if not values:
    return None
  spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0  # sample std over seeds
  return float(np.mean(values)), spread, len(values)


def fmt(stats, scale=100.0):
  if stats is None:
    return "–"
  mean, std, count = stats
  return f"{scale * mean:.1f} ± {scale * std:.1f}" if count > 1 else f"{scale * mean:.1f}"


def ratios(dataset, data_dir, split):
  """Background:object ratio per category on ``split`` (void excluded), or {}."""
  if dataset == "synthetic":
    return {}
  from fcn_iou_jax.data import sources
  try:
    source = sources.Source(dataset, data_dir=data_dir)
  except UserError as error:  # no data here: the report goes on without the ratios
    print(f"note: no background:object ratios in the report ({cli.as_flags(str(error))})",
          file=sys.stderr)
    return {}
  if split not in source.available_splits():
    return {}
  labels = source.spec.labels
  counts = statistics.class_pixel_counts(source.examples(split), len(labels.names))
  return statistics.background_to_object_ratios(counts, labels.names)


def summarise(runs, data_dir=None):
  """Per (category, ratio) and loss: mean ± std over seeds of every reported number; per
  scored split (``by_split``): the all-foreground baseline, "learned" and the paired gains.
  The first scored split (val, else selection) is also the row's ``split``, ``learned`` and
  ``gain``, which the plot shows."""
  dataset = runs[0]["dataset"]
  groups = collections.defaultdict(lambda: collections.defaultdict(list))
  for run in runs:
    groups[_key(run)][run["loss"]].append(run)
  computed = {}

  def split_ratios(split):  # read once per split, and only for a split that needs it
    source_split = "train" if split == "selection" else split  # selection images are train's
    if source_split not in computed:
      computed[source_split] = ratios(dataset, data_dir, source_split)
    return computed[source_split]

  summary = []
  for (category, synthetic_ratio), by_loss in sorted(groups.items(),
                                                     key=lambda kv: (kv[0][0], kv[0][1] or 0)):
    ratio = synthetic_ratio if synthetic_ratio is not None else split_ratios("train").get(category)
    label = category if synthetic_ratio is None else f"{category} at {synthetic_ratio:g}:1"
    row = {"category": category, "label": label, "background_to_object": ratio}
    for loss, members in by_loss.items():
      row[loss] = {
          split: {metric: mean_std([m.get(split, {}).get(metric) for m in members])
                  for metric in ("iou", "per_image_iou")}
          for split in ("val", "test", "selection")}
      row[loss]["seeds"] = sorted(m["seed"] for m in members)
      row[loss]["collapses"] = [(m["seed"], m["collapse_step"]) for m in members
                                if m.get("collapse_step")]
    row["by_split"] = {}
    for split in _scored_splits(by_loss):
      baseline = _recorded_all_foreground(by_loss, split)
      if not baseline:  # none recorded (runs of earlier versions)
        split_ratio = (synthetic_ratio if synthetic_ratio is not None
                       else split_ratios(split).get(category))
        baseline = 1.0 / (1.0 + split_ratio) if split_ratio else None
      best = max((row[l][split]["iou"][0] for l in by_loss if row[l][split]["iou"]), default=0)
      row["by_split"][split] = {
          "all_foreground": baseline, "learned": best > (baseline or 0.0) + LEARNED_MARGIN,
          **{key: paired_gain(by_loss, split, loss) for key, (loss, _) in GAINS.items()}}
    row["split"] = next(iter(row["by_split"]))
    row.update({key: value for key, value in row["by_split"][row["split"]].items()
                if key != "all_foreground"})
    summary.append(row)
  return dataset, summary


# The paired gains a report gives, against softmax: summary key -> (loss, its name).
GAINS = {"gain": ("iou", "soft IoU"), "gain_lovasz": ("lovasz", "Lovász hinge")}


def _scored_splits(by_loss) -> list[str]:
  """The held-out splits the runs were scored on (val, test), else the selection split."""
  splits = [split for split in ("val", "test")
            if any(m.get(split, {}).get("iou") is not None
                   for members in by_loss.values() for m in members)]
  return splits or ["selection"]


def _recorded_all_foreground(by_loss, split):
  """The all-foreground IoU the runs recorded for ``split`` (positives / pixels), if any."""
  for members in by_loss.values():
    for member in members:
      baseline = member.get(split, {}).get("baselines", {}).get("all_foreground")
      if baseline is not None:
        return baseline
  return None


def paired_gain(by_loss, split, loss="iou", score=lambda result: result.get("iou")):
  """``loss`` minus softmax on ``split`` (``score`` of a split's results), paired by seed:
  mean, sample std, seeds where ``loss`` is ahead (``iou_ahead``)."""
  scores = {name: {m["seed"]: score(m.get(split, {})) for m in members}
            for name, members in by_loss.items()}
  seeds = sorted(seed for seed in scores.get(loss, {})
                 if scores[loss][seed] is not None
                 and scores.get("softmax", {}).get(seed) is not None)
  if not seeds:
    return None
  gains = [scores[loss][seed] - scores["softmax"][seed] for seed in seeds]
  mean, std, count = mean_std(gains)
  return {"mean": mean, "std": std, "seeds": count, "iou_ahead": sum(g > 0 for g in gains)}


def outside_spread(gain) -> bool:
  """A paired gain over >= 2 seeds stands out of the seed-to-seed spread: |mean| > 2 standard
  errors."""
  return gain["seeds"] >= 2 and abs(gain["mean"]) > 2 * gain["std"] / np.sqrt(gain["seeds"])


def gain_note(gain, name="soft IoU"):
  """One sentence: the paired gain and whether it stands out of the seed-to-seed spread."""
  text = (f"{name} − softmax {100 * gain['mean']:+.1f} points (paired over {gain['seeds']} "
          f"seed(s), {name} ahead in {gain['iou_ahead']})")
  if gain["seeds"] < 2:
    return text + "; one seed: spread unknown"
  return text + (f", std {100 * gain['std']:.1f}: " +
                 ("outside the seed spread (|mean| > 2 standard errors)" if outside_spread(gain)
                  else "within the seed spread"))


def _table(dataset, summary, bound=None):
  paper_key = "voc" if dataset.startswith("voc") else dataset
  losses = [loss for loss in NAMES if any(loss in r for r in summary)]
  splits = [s for s in ("val", "test")
            if any(r.get(l, {}).get(s, {}).get("iou") for r in summary for l in losses)]
  splits = splits or ["selection"]  # e.g. the shared VOC copy, which has no val list
  columns = [f"{r['label']}" + (f" (bg:obj {r['background_to_object']:.0f})"
                                if r["background_to_object"] else "") for r in summary]
  header = "| method | " + " | ".join(f"{c} {s}" for c in columns for s in splits) + " |"
  lines = [header, "|---" * (1 + len(columns) * len(splits)) + "|"]
  for loss in losses:
    for metric, label in (("iou", ""), ("per_image_iou", " per-image")):
      cells = [fmt(r.get(loss, {}).get(s, {}).get(metric)) for r in summary for s in splits]
      lines.append(f"| {NAMES[loss]}{label} | " + " | ".join(cells) + " |")
  paper_cells = []
  for loss in ("softmax", "iou"):
    cells = []
    for r in summary:
      paper = PAPER_RESULTS.get((paper_key, r["category"]), {}).get(loss)
      cells += [f"{paper[i]:.1f}" if paper else "–" for i, _ in enumerate(splits)]
    source = " (VOC2010 val)" if paper_key == "voc" else ""
    paper_cells.append(f"| paper's {NAMES[loss]}{source} | " + " | ".join(cells) + " |")
  if any(PAPER_RESULTS.get((paper_key, r["category"])) for r in summary):
    lines += paper_cells
  baseline = [r["by_split"].get(s, {}).get("all_foreground") for r in summary for s in splits]
  if any(baseline):
    lines.append("| all-foreground baseline | " + " | ".join(
        f"{100 * b:.1f}" if b else "–" for b in baseline) + " |")
  if bound:
    cells = [f"{100 * bound['categories'][r['category']]['iou']:.1f}"
             if s == bound["split"] and r["category"] in bound["categories"] else "–"
             for r in summary for s in splits]
    lines.append(f"| best stride-32 output (score maps fitted to the {bound['split']} labels) | "
                 + " | ".join(cells) + " |")
  return "\n".join(lines)


def _gain_plot(summary, path, title):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  rows = [r for r in summary if r["background_to_object"] and r["gain"]]
  if not rows:
    return False
  figure, axis = plt.subplots(figsize=(6, 4))
  for r in rows:
    point = (r["background_to_object"], 100 * r["gain"]["mean"])
    axis.errorbar(*point, yerr=100 * r["gain"]["std"], fmt="o", capsize=3,
                  color="tab:blue" if r["learned"] else "tab:gray")
    axis.annotate(r["label"] if r["learned"] else f"{r['label']} (not learned)", point,
                  fontsize=8, xytext=(4, 4), textcoords="offset points")
  axis.axhline(0, color="black", linewidth=0.5)
  axis.set_xscale("log")
  axis.set_xlabel("background:object pixel ratio (train)")
  splits = " / ".join(sorted({r["split"] for r in rows}, reverse=True))
  axis.set_ylabel(f"{splits} IoU gain, soft IoU − softmax\n(points, paired by seed, ± std)")
  axis.set_title(title)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)
  return True


def _examples_figure(runs, data_dir, path):
  """One val image per category: image | ground truth | FCN_IoU | FCN_acc (lowest seed)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from fcn_iou_jax import build, inference
  from fcn_iou_jax.data import sources
  chosen = {}
  for run in sorted(runs, key=lambda r: r["seed"]):
    chosen.setdefault((run["category"], run["loss"]), run)
  categories = sorted({c for c, _ in chosen if (c, "iou") in chosen and (c, "softmax") in chosen})
  if not categories or runs[0]["dataset"] == "synthetic":
    return False
  source = sources.Source(runs[0]["dataset"], data_dir=data_dir)
  split = "val" if "val" in source.available_splits() else "selection"
  labels = source.spec.labels
  examples = list(source.examples(split).take(40).as_numpy_iterator())
  figure, axes = plt.subplots(len(categories), 4, figsize=(12, 2.4 * len(categories)),
                              squeeze=False)
  for row, category in enumerate(categories):
    class_id = labels.category_id(category, dataset=runs[0]["dataset"])
    # The val image with the most pixels of the category.
    example = max(examples, key=lambda e: int((e["label"] == class_id).sum()))
    truth = example["label"][..., 0] == class_id
    panels = [example["image"], truth]
    for loss in ("iou", "softmax"):
      run = chosen[(category, loss)]
      config = run_log.read_config(run["workdir"])
      model, params = build.load_best_params(run["workdir"], config)
      panels.append(inference.predict_probabilities(
          model, params, example["image"], config.backbone,
          build.eval_input_scale(config)) > 0.5)
    for column, (panel, name) in enumerate(zip(panels, ("image", "ground truth", "FCN_IoU",
                                                        "FCN_acc"))):
      axes[row, column].imshow(panel, cmap=None if column == 0 else "gray")
      axes[row, column].set_axis_off()
      axes[row, column].set_title(f"{category}: {name}" if column == 0 else name, fontsize=9)
  figure.tight_layout()
  figure.savefig(path, dpi=90)
  plt.close(figure)
  return True


def settings_lines(record, runs_dir):
  """The report header's account of the grid's settings, from its grid.json ``record``."""
  if record is None:
    return [f"Settings not recorded (no {protocols.GRID_RECORD} in `{runs_dir}`): deviations "
            "from the paper's protocol are not listed.", ""]
  deviations = protocols.deviations(record["settings"], record["protocol"])
  if not deviations:
    return [f"The paper's protocol ({record['protocol']} preset), no deviations.", ""]
  if record["init_path"]:
    deviations.append(f"init weights: {record['init_path']}")
  return ([f"Deviations of this grid ({record['protocol']} preset and its overrides) from the "
           "paper's protocol:", ""] + [f"- {d}" for d in deviations] + [""])


def write_report(runs_dir, out_dir, *, title=None, data_dir=None, bound=None):
  runs = load_runs(runs_dir)
  if not runs:
    raise UserError(f"{runs_dir}: no finished runs (no run folder in it holds a results.json)")
  os.makedirs(out_dir, exist_ok=True)
  dataset, summary = summarise(runs, data_dir)
  record = protocols.read_grid_record(runs_dir)
  if title is None:
    title = (f"{record['grid']} ({record['protocol']} protocol)" if record
             else os.path.basename(runs_dir.rstrip("/")))
  lines = [f"# IoU loss vs softmax loss: {title}", "",
           f"{len(runs)} finished runs under `{runs_dir}`. IoU in %, mean ± sample std over "
           "seeds; dataset-level IoU (Eq. 1), per-image IoU on the line below it.", ""]
  lines += settings_lines(record, runs_dir)
  lines += [_table(dataset, summary, bound), ""]
  for row in summary:
    notes = []
    for split, scored in row["by_split"].items():
      named = f"{split}: " if len(row["by_split"]) > 1 else ""
      if not scored["learned"]:
        notes.append(f"{named}not learned at this scale (neither loss beats the all-foreground "
                     f"baseline by 5 points on {split}): does not count as reproduced")
      else:
        notes += [named + gain_note(scored[key], name) for key, (_, name) in GAINS.items()
                  if scored.get(key)]
    for loss in NAMES:
      for seed, step in row.get(loss, {}).get("collapses", []):
        notes.append(f"{loss} seed {seed} collapsed at step {step}")
    if notes:
      lines.append(f"- **{row['label']}**: " + "; ".join(notes))
  if _gain_plot(summary, os.path.join(out_dir, "iou_gain_vs_ratio.png"), title):
    lines += ["", "![IoU gain against background:object ratio](iou_gain_vs_ratio.png)"]
  if _examples_figure(runs, data_dir, os.path.join(out_dir, "examples.png")):
    lines += ["", "![image | ground truth | FCN_IoU | FCN_acc](examples.png)"]
  with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as handle:
    handle.write("\n".join(lines) + "\n")
  run_log.write_json(os.path.join(out_dir, "summary.json"), {"dataset": dataset, "rows": summary})
  print("\n".join(lines))
  return summary


def _read_bound(path):
  try:
    bound = run_log.read_json(path)
  except (UserError, UnicodeDecodeError):  # read_json names a damaged file
    bound = None
  if not isinstance(bound, dict) or "categories" not in bound:
    raise UserError(f"--bound={path}: not a .json written by experiments/output_bound.py")
  return bound


def add_report_flags(parser, runs_help: str):
  """The flags every report command takes: --runs, --out, --data_dir, --title."""
  parser.add_argument("--runs", required=True, help=runs_help)
  parser.add_argument("--out", required=True,
                      help="folder for report.md, summary.json and the figures")
  parser.add_argument("--data_dir", default=None,
                      help="dataset folder, for the class ratios and the example figure "
                           "(default: per dataset)")
  parser.add_argument("--title", default=None,
                      help="default: the grid and protocol from RUNS/grid.json")


def check_runs_folder(runs: str):
  if not os.path.isdir(runs):
    raise UserError(f"--runs={runs}: no such folder")


def main(argv):
  parser = cli.make_parser(__doc__)
  add_report_flags(parser, "a grid folder of reproduce.py")
  parser.add_argument("--bound", default=None,
                      help="a .json of experiments/output_bound.py: adds its row to the table")
  args = parser.parse_args(argv)
  check_runs_folder(args.runs)
  bound = _read_bound(args.bound) if args.bound else None
  cli.check_output_folder(args.out, f"--out={args.out}")
  cli.hide_accelerators_from_tensorflow()
  write_report(args.runs, args.out, title=args.title, data_dir=args.data_dir, bound=bound)


if __name__ == "__main__":
  sys.exit(cli.run(main))
