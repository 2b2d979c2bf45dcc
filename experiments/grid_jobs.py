"""A grid's runs in several worker processes at once, each on its own CPU cores
(``reproduce.py --jobs=N``).

One XLA:CPU process keeps two cores busy only part of the time: its thread pool waits at
the end of every operation, and its input pipeline and evaluation passes run beside the
steps. Two processes of one core each keep both busy (docs/performance.md). Each worker
(``python grid_jobs.py CORE,...``) imports the libraries once and trains the runs it is sent
one after another, as reproduce.py does in its own process; a run's console output goes to
``RUN/console.log``.

Signals: only the grid's process receives the terminal's (the workers have sessions of
their own); it passes SIGINT and SIGTERM on to the workers that are training, whose runs save
and stop as run.py's do, and starts no further run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import traceback

import jax

from fcn_iou_jax.errors import UserError
from fcn_iou_jax.interrupts import SIGNALS, Interrupted

CONSOLE_LOG = "console.log"  # in a run's folder: what its run printed, when run by a worker


def usable_cores() -> list[int]:
  """The CPU cores this process may use (macOS, without affinity: counted, not pinned)."""
  if hasattr(os, "sched_getaffinity"):
    return sorted(os.sched_getaffinity(0))
  return list(range(os.cpu_count() or 1))


def could_share_cores() -> bool:
  """Whether two jobs can share the cores here: JAX on the CPU, with two cores or more."""
  return jax.default_backend() == "cpu" and len(usable_cores()) >= 2


# The protocols whose grids --jobs=auto trains two runs at a time: on 2 cores the CamVid
# grid of the cpu protocol took 50 min against 70 in one process (docs/performance.md).
SHARED_CORE_PROTOCOLS = ("cpu",)


def auto_jobs(protocol: str, runs_to_train: int) -> int:
  """``--jobs=auto``: 2 for a grid of a :data:`SHARED_CORE_PROTOCOLS` protocol with more than
  one run to train, where JAX computes on a CPU of two cores or more; else 1 (this process
  trains them)."""
  shared = protocol in SHARED_CORE_PROTOCOLS and runs_to_train > 1 and could_share_cores()
  return 2 if shared else 1


def core_groups(jobs: int) -> list[list[int]]:
  """The cores this process may use, split into ``jobs`` groups as equal as can be;
  UserError naming ``--jobs`` when there are fewer cores than jobs, or when JAX computes on
  an accelerator (whose runs one process keeps busy)."""
  cores = usable_cores()
  if jobs > len(cores):
    raise UserError(f"--jobs={jobs}: more than the {len(cores)} CPU cores this process may use")
  if jobs > 1 and jax.default_backend() != "cpu":
    raise UserError(f"--jobs={jobs}: several jobs share CPU cores; on "
                    f"{jax.default_backend()} one job keeps the device busy")
  return [cores[len(cores) * k // jobs:len(cores) * (k + 1) // jobs] for k in range(jobs)]


@dataclasses.dataclass
class _Worker:
  process: subprocess.Popen
  cores: list[int]
  run: tuple[int, str, float] | None = None  # (index, workdir, start time) while training


def train_in_workers(runs, *, jobs: int, out_dir: str, started, finished):
  """Trains ``runs`` (``(index, workdir, flags)``) in ``jobs`` workers. ``started(index,
  workdir, cores)`` and ``finished(index, workdir, seconds)`` report each run. A failed run
  lets the others end and then raises its UserError; a signal stops every run at its next
  step (saved) and raises :class:`Interrupted`."""
  pending = list(runs)
  workers = [_Worker(subprocess.Popen(
      [sys.executable, os.path.abspath(__file__), ",".join(map(str, cores))],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True),
      cores) for cores in core_groups(jobs)]
  selector = selectors.DefaultSelector()
  for worker in workers:
    selector.register(worker.process.stdout, selectors.EVENT_READ, worker)
  received, failures = [], []

  def pass_on(signal_number, frame):
    del frame
    received.append(signal_number)
    for worker in workers:
      if worker.run:
        worker.process.send_signal(signal_number)

  previous = {number: signal.signal(number, pass_on) for number in SIGNALS}
  try:
    while True:
      for worker in workers:
        if not worker.run and pending and not received and not failures:
          index, workdir, flags = pending.pop(0)
          worker.run = (index, workdir, time.time())
          started(index, workdir, worker.cores)
          worker.process.stdin.write(json.dumps({"flags": flags, "workdir": workdir,
                                                 "out_dir": out_dir}) + "\n")
          worker.process.stdin.flush()
      if not any(worker.run for worker in workers):
        break
      for key, _ in selector.select():
        worker = key.data
        index, workdir, start = worker.run
        reply = worker.process.stdout.readline()
        worker.run = None
        if not reply:
          selector.unregister(worker.process.stdout)
          failures.append((1, f"{workdir}: its worker ended (exit status "
                              f"{worker.process.wait()}); its output: "
                              f"{os.path.join(workdir, CONSOLE_LOG)}"))
          continue
        outcome = json.loads(reply)
        if outcome["exit_code"]:
          failures.append((outcome["exit_code"], outcome["message"]))
        else:
          finished(index, workdir, time.time() - start)
  finally:
    for number, handler in previous.items():
      signal.signal(number, handler)
    for worker in workers:
      if worker.process.poll() is None:
        worker.process.stdin.close()
      worker.process.wait()
  if received:
    raise Interrupted(f"stopped by signal {received[0]}: each run in training saved its "
                      "latest step; rerun the grid to resume", received[0])
  if failures:
    exit_code, message = failures[0]
    error = UserError(message)
    error.exit_code = exit_code
    raise error


def _raise_keyboard_interrupt(signal_number, frame):
  del signal_number, frame
  raise KeyboardInterrupt


def serve(cores: list[int]):
  """A worker: pinned to ``cores`` before JAX starts its thread pool, it trains each run
  read from stdin (a JSON line) and answers on stdout with ``{exit_code, message}``."""
  if hasattr(os, "sched_setaffinity"):  # Linux; elsewhere the system places the workers
    os.sched_setaffinity(0, cores)
  signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # outside a run's training loop
  answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
  os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nothing else reaches the answers' pipe
  import reproduce  # pylint: disable=import-outside-toplevel  # imports JAX, in this process
  while True:
    try:
      line = sys.stdin.readline()
    except KeyboardInterrupt:  # a signal meant for a run that had just ended
      continue
    if not line:
      return
    job = json.loads(line)
    answers.write(json.dumps(_train(reproduce, **job)) + "\n")


def _train(reproduce, *, flags, workdir, out_dir) -> dict:
  """One run, its console output appended to ``workdir/console.log``."""
  os.makedirs(workdir, exist_ok=True)
  log_path = os.path.join(workdir, CONSOLE_LOG)
  with open(log_path, "a", encoding="utf-8") as log:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), sys.stdout.fileno())
    os.dup2(log.fileno(), sys.stderr.fileno())
    try:
      reproduce.train_run(flags, workdir, out_dir)
      return {"exit_code": 0, "message": ""}
    except UserError as error:
      print(f"error: {error}", file=sys.stderr)
      return {"exit_code": getattr(error, "exit_code", 2), "message": str(error)}
    except KeyboardInterrupt:
      print("interrupted", file=sys.stderr)
      return {"exit_code": 130, "message": f"{workdir}: stopped at once; rerun the grid to "
                                           "resume"}
    except Exception:  # pylint: disable=broad-except  # reported with its traceback
      traceback.print_exc()
      return {"exit_code": 1, "message": f"{workdir}: failed; the traceback is in {log_path}"}
    finally:
      sys.stdout.flush()
      sys.stderr.flush()


if __name__ == "__main__":
  serve([int(core) for core in sys.argv[1].split(",")])
