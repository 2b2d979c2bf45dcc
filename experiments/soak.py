"""Soak test of resuming: a run killed many times (SIGKILL and SIGTERM at random moments), its
latest checkpoint sometimes damaged between kills, against the same run left alone.

  python experiments/soak.py --kills=20 --out=/tmp/soak

Runs run.py on synthetic data: first the uninterrupted reference (OUT/reference), then the
soaked run (OUT/soaked), restarted after every kill until it finishes. After some kills (as
often as --damage says) one file of the latest checkpoint is damaged: a flipped byte in its
largest data file, that file cut to half, its array metadata overwritten, or a file deleted;
a damage is "recovered" when the next start says it resumes from another checkpoint, and
"harmless" when that start reads the damaged checkpoint back (a file it does not need).
Prints and writes OUT/soak.json: kills survived, damages recovered or harmless, metrics
lines lost or written twice, and the largest difference from the reference in metrics,
scores and final weights (0 means the soaked run is the same run).
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from fcn_iou_jax import cli, run_log
from fcn_iou_jax.errors import UserError

RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py")
DAMAGES = ("flip", "truncate", "metadata", "delete")
# Per-record fields that measure the machine, not the run.
TIMING_FIELDS = ("images_per_sec", "train_images_per_sec")


def run_flags(workdir: str, steps: int) -> list[str]:
  """A small synthetic run that saves its latest state every few steps."""
  return ["--dataset=synthetic", "--category=disk", "--width_mult=0.0625", "--crop_size=64x64",
          "--optimizer=adam", "--learning_rate=3e-4", "--batch_size=2", "--eval_every=20",
          f"--train_steps={steps}", "--checkpoint_minutes=0.005", f"--workdir={workdir}"]


def start(workdir: str, steps: int) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, RUN, *run_flags(workdir, steps)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def damage_latest(workdir: str, rng: random.Random) -> str | None:
  """Damages one file of the latest checkpoint when a best one exists to fall back to;
  returns what was done, or None."""
  root = os.path.join(workdir, "checkpoints")
  steps = {which: [name for name in os.listdir(os.path.join(root, which)) if name.isdigit()]
           if os.path.isdir(os.path.join(root, which)) else [] for which in ("latest", "best")}
  if not steps["latest"] or not steps["best"]:
    return None
  state = os.path.join(root, "latest", steps["latest"][0], "state")
  files = sorted(os.path.join(folder, name) for folder, _, names in os.walk(state)
                 for name in names)
  largest = max(files, key=os.path.getsize)
  kind = rng.choice(DAMAGES)
  if kind == "flip":
    with open(largest, "r+b") as handle:
      handle.seek(os.path.getsize(largest) // 2)
      byte = handle.read(1)
      handle.seek(-1, os.SEEK_CUR)
      handle.write(bytes([byte[0] ^ 0xFF]))
  elif kind == "truncate":
    os.truncate(largest, os.path.getsize(largest) // 2)
  elif kind == "metadata":
    with open(os.path.join(state, "_METADATA"), "w", encoding="utf-8") as handle:
      handle.write("{not json")
  else:
    os.remove(rng.choice(files))
  return f"{kind} in latest/{steps['latest'][0]}"


def records(workdir: str) -> dict:
  """metrics.jsonl as {(step, kind): [values without timing fields], ...}."""
  lines = {}
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as handle:
    for line in handle:
      record = json.loads(line)
      key = (record.pop("step"), record.pop("kind"))
      lines.setdefault(key, []).append({k: v for k, v in record.items()
                                        if k not in TIMING_FIELDS})
  return lines


def largest_difference(a, b) -> float:
  """The largest |a - b| over the numbers of two equally shaped JSON values or arrays
  (infinite where their structure differs)."""
  if isinstance(a, dict) and isinstance(b, dict):
    if set(a) != set(b):
      return float("inf")
    return max((largest_difference(a[k], b[k]) for k in a), default=0.0)
  if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
    if len(a) != len(b):
      return float("inf")
    return max((largest_difference(x, y) for x, y in zip(a, b)), default=0.0)
  if isinstance(a, (int, float, np.ndarray)) and isinstance(b, (int, float, np.ndarray)):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
  return 0.0 if a == b else float("inf")


def final_weights(workdir: str):
  from fcn_iou_jax import checkpoints
  state, _ = checkpoints.RunCheckpoints(workdir).restore("latest", None)
  return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(state)]


def timed_reference(workdir: str, steps: int) -> tuple[float, float]:
  """Runs the reference to the end: ``(seconds to its first step, seconds training)``."""
  began = time.monotonic()
  process = start(workdir, steps)
  while process.poll() is None and not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    time.sleep(0.1)
  startup = time.monotonic() - began
  _, errors = process.communicate()
  if process.returncode:
    raise UserError(f"the reference run failed: {errors.strip().splitlines()[-1]}")
  return startup, time.monotonic() - began - startup


def soak(out: str, kills: int, damage: float, steps: int, seed: int) -> dict:
  rng = random.Random(seed)
  reference, soaked = os.path.join(out, "reference"), os.path.join(out, "soaked")
  for folder in (reference, soaked):
    shutil.rmtree(folder, ignore_errors=True)
  startup, training = timed_reference(reference, steps)
  # Kill times: from start-up to about twice a fair share of the training time, so that the
  # kills land in start-up, steps, evaluations and saves, and the run lives through all.
  latest_kill = startup + 2 * training / kills
  print(f"reference run: {startup:.0f} s to its first step, {training:.0f} s training; "
        f"{kills} kills at 0.5-{latest_kill:.0f} s after each start", flush=True)
  tally = {"kills": 0, "sigkill": 0, "sigterm": 0, "damages": [], "damages_recovered": 0,
           "damages_harmless": 0, "failed_starts": []}
  awaiting_recovery = False
  while True:
    process = start(soaked, steps)
    if tally["kills"] < kills:
      time.sleep(rng.uniform(0.5, latest_kill))
      if process.poll() is None:
        number = rng.choice((signal.SIGKILL, signal.SIGTERM))
        process.send_signal(number)
        tally["kills"] += 1
        tally["sigkill" if number == signal.SIGKILL else "sigterm"] += 1
    output, errors = process.communicate()
    if awaiting_recovery and "cannot be read; resuming from" in output:
      tally["damages_recovered"] += 1
      awaiting_recovery = False
    elif awaiting_recovery and "Resuming" in output:  # read back: the damage did not matter
      tally["damages_harmless"] += 1
      awaiting_recovery = False
    if process.returncode == 0:
      break  # finished: after the last kill, or before all kills were made
    if process.returncode not in (-signal.SIGKILL, -signal.SIGTERM, 128 + signal.SIGTERM):
      tally["failed_starts"].append(errors.strip().splitlines()[-1] if errors.strip()
                                    else f"exit {process.returncode}")
      print(f"  a start failed: {tally['failed_starts'][-1]}", flush=True)
      if len(tally["failed_starts"]) > 3:
        break
      continue
    done = not awaiting_recovery and rng.random() < damage and damage_latest(soaked, rng)
    if done:
      tally["damages"].append(done)
      awaiting_recovery = True
    print(f"  kill {tally['kills']}/{kills}: exit {process.returncode}"
          + (f", then {done}" if done else ""), flush=True)
  return compare(reference, soaked, tally)


def compare(reference: str, soaked: str, tally: dict) -> dict:
  expected, seen = records(reference), records(soaked)
  lost = sorted(set(expected) - set(seen))
  twice = sorted(key for key, values in seen.items() if len(values) > 1)
  metrics_difference = max((largest_difference(expected[key][0], seen[key][0])
                            for key in expected if key in seen), default=0.0)
  strip = lambda r: {k: v for k, v in r.items() if k not in TIMING_FIELDS + ("config",)}
  results = [run_log.read_json(os.path.join(folder, "results.json")) or {}
             for folder in (reference, soaked)]
  summary = dict(tally, metrics_lines=len(expected), lines_lost=len(lost),
                 lines_written_twice=len(twice),
                 largest_metrics_difference=metrics_difference,
                 largest_results_difference=largest_difference(*map(strip, results)),
                 largest_weight_difference=largest_difference(final_weights(reference),
                                                              final_weights(soaked)))
  return summary


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("--kills", type=cli.positive(int, "kills"), default=20,
                      help="kills to survive")
  parser.add_argument("--damage", type=float, default=0.3,
                      help="chance of damaging the latest checkpoint after a kill")
  parser.add_argument("--train_steps", type=cli.positive(int, "train_steps"), default=400,
                      help="steps of the soaked run")
  parser.add_argument("--seed", type=int, default=0, help="seed of the kill times and damages")
  parser.add_argument("--out", default="/tmp/fcn_iou_soak", help="folder of the two runs")
  args = parser.parse_args(argv)
  cli.check_output_folder(args.out, f"--out={args.out}")
  summary = soak(args.out, args.kills, args.damage, args.train_steps, args.seed)
  run_log.write_json(os.path.join(args.out, "soak.json"), summary)
  print(json.dumps(summary, indent=1))
  print(f"{summary['kills']} kills ({summary['sigkill']} SIGKILL, {summary['sigterm']} "
        f"SIGTERM), {len(summary['damages'])} damaged checkpoints, "
        f"{summary['damages_recovered']} recovered, {summary['damages_harmless']} harmless; "
        "metrics lines lost "
        f"{summary['lines_lost']}, written twice {summary['lines_written_twice']}; largest "
        "difference from the uninterrupted run: metrics "
        f"{summary['largest_metrics_difference']:.3g}, scores "
        f"{summary['largest_results_difference']:.3g}, weights "
        f"{summary['largest_weight_difference']:.3g}")


if __name__ == "__main__":
  sys.exit(cli.run(main))
