"""Run the paper's IoU-vs-softmax comparison as a grid of run.py trainings, then report.

  # CamVid, the paper's five categories, three losses, 3 seeds, CPU-sized (resumable; the
  # shared backbone is pre-trained first, once, into the grid's folder):
  python experiments/reproduce.py --grid=camvid --protocol=cpu --data_dir=/path/to/CamVid
  # One-seed pilot, its runs one after another in this process (--jobs=auto, the default,
  # trains a cpu grid's runs two at a time on a CPU of 2 or more cores):
  python experiments/reproduce.py --grid=camvid --protocol=cpu --seeds=0 --jobs=1 --data_dir=...
  # One multi-class model of all 11 CamVid classes per loss (softmax, iou, lovasz,
  # softmax+iou), from the binary grid's shared backbone; and VOC's 21 classes, one seed:
  python experiments/reproduce.py --grid=camvid_all --protocol=cpu --data_dir=... \
      --init=runs/reproduce/camvid-cpu/shared_backbone
  python experiments/reproduce.py --grid=voc_all --protocol=cpu --seeds=0 --data_dir=...
  # VOC person, and the synthetic imbalance sweep (background:object 2 .. 300):
  python experiments/reproduce.py --grid=voc --protocol=cpu --data_dir=/path/to/VOCdevkit
  python experiments/reproduce.py --grid=sweep
  # The paper's own settings (GPU/TPU; ImageNet AlexNet weights from convert_weights.py):
  python experiments/reproduce.py --grid=camvid --protocol=paper --init=alexnet.npz ...

Each run lives in OUT/<grid>-<protocol>/<dataset>-<category>-<loss>-s<seed>; a run whose
results.json exists is skipped, so a grid can span several sittings. The runs are run.py's,
one after another in this one process (libraries imported once, steps traced once), or with
--jobs=N in N worker processes at once, each on its own share of the CPU cores (each run's
output in its folder's console.log); --jobs=auto, the default, is 2 for the cpu protocol on
a CPU of two cores or more. Runs whose shapes and loss agree share their compiled
steps through the grid's XLA compilation cache (OUT/<grid>-<protocol>/xla_cache). The grid's
settings are recorded in OUT/<grid>-<protocol>/grid.json on its first sitting, and a later
sitting with other settings is refused (its runs would not be comparable). The report is written by
experiments/report.py at the end (and can be rerun on its own: it reads grid.json).
"""

import json
import os
import sys
import time

from fcn_iou_jax import cli

if __name__ == "__main__":
  cli.set_up_process(huge_pages=True)  # run.py's set-up, for the runs made in this process

import grid_jobs  # pylint: disable=wrong-import-position
import jax  # pylint: disable=wrong-import-position
import protocols  # pylint: disable=wrong-import-position
import run  # pylint: disable=wrong-import-position
from fcn_iou_jax import config, precision  # pylint: disable=wrong-import-position
from fcn_iou_jax.data import categories as categories_lib
from fcn_iou_jax.errors import UserError
from fcn_iou_jax.interrupts import Interrupted

GRIDS = {
    "camvid": ("camvid", ["road", "building", "pole", "sign_symbol", "fence"]),
    "voc": ("voc2012", ["person"]),
    "sweep": ("synthetic", ["disk"]),
    "camvid_all": ("camvid", ["all"]),
    "voc_all": ("voc2012", ["all"]),
}
SWEEP_RATIOS = (2, 8, 30, 100, 300)
# The losses each grid compares: binary grids the paper's two and the Lovász hinge;
# multi-class grids (one model of every class) also the sum of cross-entropy and soft IoU.
LOSSES = {"camvid": ("softmax", "iou", "lovasz"), "voc": ("softmax", "iou"),
          "sweep": ("softmax", "iou"),
          "camvid_all": ("softmax", "iou", "lovasz", "softmax+iou"),
          "voc_all": ("softmax", "iou", "lovasz")}

def run_flags(settings: dict, init_path: str | None) -> list[str]:
  """run.py flags for ``settings``; ``init_path`` fills an ``imagenet``/``shared`` init."""
  settings = dict(settings)
  if settings["init"] in ("imagenet", "shared"):
    if not init_path:
      raise UserError(f"init={settings['init']} needs --init=PATH to AlexNet weights (ImageNet: "
                      ".npz from experiments/convert_weights.py)")
    settings["init"] = init_path
  return [f"--{key}={value}" for key, value in settings.items() if value is not None]


def shared_backbone(out_dir: str, settings: dict, dataset: str, data_dir: str | None) -> str:
  """The grid's shared backbone: the folder of a multi-class run (``protocols.BACKBONE``) of
  the grid's network on all classes of ``dataset``, trained first if it has not finished yet.
  run.py's ``--init`` reads conv1-fc7 from its best checkpoint."""
  workdir = os.path.join(out_dir, protocols.BACKBONE_FOLDER)
  if os.path.exists(os.path.join(workdir, "results.json")):
    print(f"shared backbone: {workdir} (pre-trained before)", flush=True)
    return workdir
  network = {key: settings.get(key) for key in ("backbone", "width_mult", "fc6_kernel",
                                                 "image_size", "crop_size", "scale_jitter",
                                                 "colour_jitter", "dtype")}
  flags = [f"--dataset={dataset}", "--log_every=50",
           *[f"--{key}={value}" for key, value in {**network, **protocols.BACKBONE}.items()
             if value is not None]]
  flags += [f"--data_dir={data_dir}"] if data_dir else []
  steps = protocols.BACKBONE["train_steps"]
  print(f"shared backbone: pre-training {workdir} ({steps} steps)", flush=True)
  start = time.time()
  train_run(flags, workdir, out_dir)
  print(f"    finished in {time.time() - start:.0f} s", flush=True)
  return workdir


def train_run(flags: list[str], workdir: str, out_dir: str):
  """One run.py training (``run.main``: ``flags`` and ``--workdir``) in this process, its
  steps compiled through the grid's cache (:func:`use_compilation_cache`); a failure names
  the run's folder."""
  use_compilation_cache(out_dir)
  try:
    run.main([*flags, f"--workdir={workdir}"])
  except Interrupted:
    raise  # saved, with its own exit status and message
  except UserError as error:
    raise UserError(f"{workdir}: {error}; rerun the grid to resume") from error


def use_compilation_cache(out_dir: str):
  """Makes ``OUT/<grid>-<protocol>/xla_cache`` JAX's persistent compilation cache, so that
  runs whose shapes and loss agree compile their steps once, in this sitting and in later
  ones (a user's own ``JAX_COMPILATION_CACHE_DIR`` wins). Every compilation is kept, not
  only those over JAX's default of one second: a grid repeats them all."""
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir",
                      os.path.abspath(os.path.join(out_dir, "xla_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def parse_seeds(text: str) -> list[int]:
  """``--seeds`` text such as ``0,1,2``; UserError naming the flag on anything else."""
  try:
    return [int(seed) for seed in text.split(",")]
  except ValueError as error:
    raise UserError(f"--seeds={text!r} is not a comma-separated list of integers, e.g. "
                    "0,1,2") from error


def canonical_categories(text: str, grid: str) -> list[str]:
  """``--categories`` text as the grid dataset's own class names (aliases resolved, so that
  ``tv`` and ``tvmonitor`` name the same runs); UserError listing valid names."""
  dataset = GRIDS[grid][0]
  labels = categories_lib.BY_DATASET[dataset]
  ids = labels.category_ids(text, dataset=dataset, setting="categories")
  return [labels.names[category] for category in ids.values()]


def chosen_losses(text: str, grid: str) -> list[str]:
  """``--losses`` text as a list of the grid's losses; UserError naming the flag otherwise."""
  chosen = text.split(",")
  unknown = [loss for loss in chosen if loss not in LOSSES[grid]]
  if unknown:
    raise UserError(f"--losses={text!r}: {', '.join(unknown)} not among the {grid} grid's "
                    f"losses ({', '.join(LOSSES[grid])})")
  return chosen


def planned_runs(grid: str, seeds, out_dir: str, categories=None, losses=None):
  dataset, all_categories = GRIDS[grid]
  categories = categories or all_categories
  losses = losses or LOSSES[grid]
  variants = [(c, None) for c in categories]
  if grid == "sweep":
    variants = [(categories[0], ratio) for ratio in SWEEP_RATIOS]
  for seed in seeds:  # seed-major: a grid cut short still has whole seeds
    for category, ratio in variants:
      for loss in losses:
        name = f"{dataset}-{category}-{loss}-s{seed}" + (f"-r{ratio}" if ratio else "")
        extra = [f"--synthetic_ratio={ratio}"] if ratio else []
        yield os.path.join(out_dir, name), [f"--dataset={dataset}", f"--category={category}",
                                             f"--loss={loss}", f"--seed={seed}", *extra]


def parse_jobs(text: str):
  """``--jobs``: ``auto`` or a positive number of worker processes."""
  if text == "auto":
    return text
  if not text.isdigit() or int(text) < 1:
    raise UserError(f"--jobs={text!r}: auto or a positive whole number")
  return int(text)


class GridProgress:
  """The grid's lines about its runs: each run's start and end, with the time left."""

  def __init__(self, runs: int, todo: int, jobs: int):
    self._runs, self._todo, self._jobs = runs, todo, jobs
    self._durations = []

  def started(self, index: int, workdir: str, cores=None):
    where = (f" (CPU {','.join(map(str, cores))}; its output: "
             f"{os.path.join(workdir, grid_jobs.CONSOLE_LOG)})" if cores else "")
    print(f"[{index}/{self._runs}] {workdir}{where}", flush=True)

  def finished(self, index: int, workdir: str, seconds: float):
    self._durations.append(seconds)
    left = self._todo - len(self._durations)
    minutes_left = left * sum(self._durations) / len(self._durations) / self._jobs / 60
    estimate = f"; {left} to go, about {minutes_left:.0f} min" if left else ""
    name = f" {os.path.basename(workdir)}" if self._jobs > 1 else ""
    print(f"    [{index}/{self._runs}]{name} finished in {seconds:.0f} s{estimate}", flush=True)


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("--grid", required=True, choices=sorted(GRIDS),
                      help="camvid: the paper's five categories; voc: person (others with "
                           "--categories); sweep: synthetic background:object ratios 2 to 300; "
                           "camvid_all, voc_all: one multi-class model of every class")
  parser.add_argument("--protocol", default="cpu", choices=protocols.PRESETS,
                      help="settings of every run (experiments/configs/PROTOCOL.py); the "
                           "report header lists how they depart from the paper's")
  parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2],
                      help="comma-separated seeds (default: 0,1,2)")
  parser.add_argument("--data_dir", default=None, help="dataset folder (default: per dataset)")
  parser.add_argument("--init", default=None,
                      help="backbone weights: ImageNet AlexNet (paper protocol), or a shared "
                           "backbone (a run folder or .npz; default for the cpu protocol: "
                           "pre-trained once into the grid's folder)")
  parser.add_argument("--categories", default=None,
                      help="comma-separated categories of the grid's dataset instead of the "
                           "grid's own")
  parser.add_argument("--losses", default=None,
                      help="comma-separated losses of the grid's own to run (default: all of "
                           "them); the report covers every finished run")
  parser.add_argument("--train_steps", type=cli.positive(int, "train_steps"), default=None,
                      help="override the protocol's steps per run (not the shared backbone's, "
                           "printed when it is pre-trained)")
  parser.add_argument("--width_mult", type=cli.positive(float, "width_mult"), default=None,
                      help="override the protocol's network width (backbone included)")
  parser.add_argument("--fc6_kernel", type=int, default=None, choices=config.FC6_KERNELS,
                      help="override the protocol's fc6: 6x6 (Long et al.) or the paper's "
                           "literal 1x1 (backbone included)")
  parser.add_argument("--image_size", type=cli.parse_size("image_size"), default=None,
                      help="override the protocol's training resize HxW, e.g. 720x960 "
                           "(backbone included; evaluation input scaled alike)")
  parser.add_argument("--scale_jitter", type=float, default=None,
                      help="override: random rescale in [1/(1+s), 1+s] before the crop "
                           "(backbone included)")
  parser.add_argument("--colour_jitter", type=float, default=None,
                      help="override: random brightness/contrast/saturation strength "
                           "(backbone included)")
  parser.add_argument("--dtype", default=None,
                      choices=config.Config.__dataclass_fields__["dtype"].metadata["choices"],
                      help="override the protocol's operand dtype of the convolutions (the "
                           "backbone's too, when the grid pre-trains it)")
  parser.add_argument("--jobs", type=parse_jobs, default="auto",
                      help="runs trained at once, each in a worker process of its own on an "
                           "equal share of the CPU cores (CPU only; on 2 cores 2 jobs train "
                           "the CamVid cpu grid in 50 min instead of 70, scores within the "
                           "seed spread, not equal to the last bit); auto: 2 for the cpu "
                           "protocol's grids on a CPU of 2 or more cores, else 1 (this process)")
  parser.add_argument("--out", default="runs/reproduce",
                      help="runs go to OUT/<grid>-<protocol>/")
  parser.add_argument("--report", default=None,
                      help="report folder (default: OUT/<grid>-<protocol>/report, beside "
                           "the runs)")
  args = parser.parse_args(argv)
  chosen_categories = canonical_categories(args.categories, args.grid) if args.categories else None
  losses = chosen_losses(args.losses, args.grid) if args.losses else None
  protocol = "sweep" if args.grid == "sweep" else args.protocol
  out_dir = os.path.join(args.out, f"{args.grid}-{protocol}")
  settings = protocols.load_preset(protocol).settings
  if args.init and settings["init"] == "scratch":
    settings["init"] = args.init
  if args.train_steps:
    settings["train_steps"] = args.train_steps
  if args.width_mult:
    settings["width_mult"] = args.width_mult
  if args.fc6_kernel:
    settings["fc6_kernel"] = args.fc6_kernel
  if args.image_size:
    settings["image_size"] = f"{args.image_size[0]}x{args.image_size[1]}"
  for key in ("scale_jitter", "colour_jitter", "dtype"):
    if getattr(args, key) is not None:
      settings[key] = getattr(args, key)
  # auto as the dtype this machine runs, so that the grid's record says what its runs used.
  cli.use_xla_cpu_flags(precision.cpu_dtype(settings["dtype"]))
  settings["dtype"] = cli.chosen_dtype(settings["dtype"])
  if args.jobs != "auto":
    grid_jobs.core_groups(args.jobs)  # refuses more jobs than cores here, before any run
  # JSON's own round trip, so that the record compares equal to the one read back later.
  settings = json.loads(json.dumps(settings))
  report_dir = args.report or os.path.join(out_dir, "report")
  cli.check_output_folder(report_dir, f"--report={report_dir}", make=False)  # not after the grid
  cli.check_output_folder(out_dir, f"--out={args.out}")
  protocols.record_grid(out_dir, {"grid": args.grid, "protocol": protocol, "settings": settings,
                        "init_path": args.init})
  init_path = args.init
  if settings["init"] == "shared" and not init_path:
    init_path = shared_backbone(out_dir, settings, GRIDS[args.grid][0], args.data_dir)
  flags = run_flags(settings, init_path)
  if args.data_dir:
    flags.append(f"--data_dir={args.data_dir}")
  runs = list(planned_runs(args.grid, args.seeds, out_dir, chosen_categories, losses))
  todo = []
  for index, (workdir, run_specific) in enumerate(runs, 1):
    if os.path.exists(os.path.join(workdir, "results.json")):
      print(f"[{index}/{len(runs)}] {workdir}: done before, skipped", flush=True)
    else:
      todo.append((index, workdir, [*flags, *run_specific, "--log_every=50"]))
  jobs = args.jobs
  if jobs == "auto":
    jobs = grid_jobs.auto_jobs(protocol, len(todo))
    if jobs > 1:
      print(f"jobs: {jobs} (--jobs=auto: {jobs} runs at once, each on its share of the "
            f"{len(grid_jobs.usable_cores())} cores; --jobs=1 trains them one after another "
            "in this process)", flush=True)
  progress = GridProgress(len(runs), len(todo), jobs)
  if jobs == 1:
    for index, workdir, flags_of_run in todo:
      progress.started(index, workdir)
      start = time.time()
      train_run(flags_of_run, workdir, out_dir)
      progress.finished(index, workdir, time.time() - start)
  else:
    grid_jobs.train_in_workers(todo, jobs=jobs, out_dir=out_dir,
                               started=progress.started, finished=progress.finished)
  # imports TensorFlow: only now
  import report
  if GRIDS[args.grid][1] == [categories_lib.ALL]:
    import multiclass_report
    multiclass_report.write_report(out_dir, report_dir, data_dir=args.data_dir)
  else:
    report.write_report(out_dir, report_dir, data_dir=args.data_dir)


if __name__ == "__main__":
  sys.exit(cli.run(main))
