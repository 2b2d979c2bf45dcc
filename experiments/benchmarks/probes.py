"""Train steps timed in fresh processes: one step probe (time, page faults, peak memory) per
framework, run through bench.py's hidden ``--step_probe`` flag."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

from benchmarks import common, step_runners
from fcn_iou_jax import cli

BENCH_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "bench.py")
TIMED_STEPS = 5  # timed steps per fresh process (after one compiling step)


def step_probe(framework, batch_size, dtype, width_mult, size, conv_forms, steps):
  """In this (fresh) process: ``steps`` + 1 train steps of ``framework``; prints the median
  seconds and minor page faults per step (the first, compiling step excluded) and the peak
  resident memory."""
  import resource
  if framework == "jax":
    cli.use_xla_cpu_flags(dtype)  # as run.py does
  run = step_runners.make_step(framework, batch_size, dtype, width_mult, size, conv_forms)
  seconds, faults = [], []
  for _ in range(steps + 1):
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    run()
    seconds.append(time.perf_counter() - start)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
  # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent that
  # started this process (the benchmark itself), VmHWM belongs to this process's memory only.
  with open("/proc/self/status", encoding="utf-8") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
  print(f"step_seconds={np.median(seconds[1:])} minor_faults={np.median(faults[1:])} "
        f"peak_rss_mb={peak_kb / 1024:.0f}")


def run_step_probe(framework, batch_size, dtype, width_mult, size, conv_forms, steps,
                    env=None) -> dict:
  """:func:`step_probe` in a fresh process: ``{step_seconds, minor_faults, peak_rss_mb}``,
  or, where the probe failed, NaNs and ``error``, its one-line cause."""
  out = subprocess.run([sys.executable, BENCH_SCRIPT, f"--step_probe={framework}",
                        f"--probe_steps={steps}", f"--batch_sizes={batch_size}",
                        f"--dtypes={dtype}", f"--width_mult={width_mult}",
                        f"--size={size[0]}x{size[1]}", f"--conv_forms={conv_forms}"],
                       capture_output=True, text=True, check=False, env=env)
  lines = [l for l in out.stdout.splitlines() if l.startswith("step_seconds=")]
  if not lines:
    failed = dict.fromkeys(("step_seconds", "minor_faults", "peak_rss_mb"), float("nan"))
    return dict(failed, error=failure_cause(out.returncode, out.stderr))
  return {key: float(value) for key, value in (field.split("=") for field in lines[-1].split())}


def failure_cause(returncode: int, stderr: str) -> str:
  """One line saying why a process failed: its last words on stderr and how it ended."""
  words = [line.strip() for line in stderr.splitlines() if line.strip()]
  ending = (f"killed by {signal.Signals(-returncode).name}" if returncode < 0
            else f"exit {returncode}")
  return f"{words[-1]} ({ending})" if words else ending


def peak_rss_mb(framework, batch_size, dtype, width_mult, size, conv_forms):
  """Peak resident memory of a fresh process running 2 train steps of ``framework``."""
  return run_step_probe(framework, batch_size, dtype, width_mult, size, conv_forms,
                         steps=1)["peak_rss_mb"]


def isolated_medians(probes: dict, repeats: int, env=None) -> tuple[dict, dict]:
  """``(seconds, errors)``: the median seconds per step of each probe (keyword arguments of
  :func:`run_step_probe`, plus an optional ``env`` of its own), each repeat a fresh process
  per probe, round-robin, in environment ``env``; NaN and the cause in ``errors`` for a probe
  that failed (it is not run again). Each process's result is printed to stderr as it ends."""
  samples, errors = {name: [] for name in probes}, {}
  for round_index in range(repeats):
    for name, probe in probes.items():
      if name in errors:
        continue
      probe = dict(probe)
      own_env = probe.pop("env", {})
      measured = run_step_probe(**probe, env={**(env or os.environ), **own_env})
      samples[name].append(measured["step_seconds"])
      if "error" in measured:
        errors[name] = measured["error"]
      outcome = (f"failed: {errors[name]}" if name in errors
                 else f"{measured['step_seconds']:.3f} s per step")
      print(f"  {name}, batch {probe['batch_size']}, round {round_index + 1} of {repeats}: "
            f"{outcome}", file=sys.stderr, flush=True)
  return {name: float(np.median(values)) for name, values in samples.items()}, errors


def bench_huge_pages(batch_size, dtype, width_mult, size, repeats):
  """The JAX train step in fresh processes without and with glibc's transparent huge pages
  (cli.env_with_huge_pages, which reproduce.py gives its runs), alternating."""
  samples = {"default": [], "huge_pages": []}
  for _ in range(repeats):
    for name, env in (("default", None), ("huge_pages", cli.env_with_huge_pages())):
      samples[name].append(run_step_probe("jax", batch_size, dtype, width_mult, size, "tuned",
                                           steps=TIMED_STEPS, env=env))
  rows = [{"malloc": name, "step_seconds": float(np.median([r["step_seconds"] for r in runs])),
           "minor_faults_per_step": float(np.median([r["minor_faults"] for r in runs]))}
          for name, runs in samples.items()]
  rows[1]["speedup"] = rows[0]["step_seconds"] / rows[1]["step_seconds"]
  common.print_table(f"JAX train step, batch {batch_size}, {dtype}, {size[0]}x{size[1]}: glibc "
                     f"huge pages (medians over {repeats} process pairs)", list(rows[1]),
                     [[f"{r.get(k, float('nan')):.3g}" if k != "malloc" else r[k]
                       for k in rows[1]] for r in rows])
  return {"batch_size": batch_size, "dtype": dtype, "rows": rows}
