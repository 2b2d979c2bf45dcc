"""reproduce.py --jobs: a grid's runs in worker processes, with the same results, messages and
signals as the runs of one process."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

import grid_jobs
from fcn_iou_jax import checkpoints
from fcn_iou_jax.errors import UserError
from scripts import REPO, run_script

# The synthetic sweep's runs, small: five background:object ratios of one loss.
SWEEP = ["--grid=sweep", "--losses=iou", "--seeds=0", "--width_mult=0.0625"]


def test_jobs_split_the_usable_cores_and_never_outnumber_them(monkeypatch):
  monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5, 7})
  assert grid_jobs.core_groups(1) == [[4, 5, 7]]
  assert grid_jobs.core_groups(2) == [[4], [5, 7]]
  assert grid_jobs.core_groups(3) == [[4], [5], [7]]
  with pytest.raises(UserError, match=r"^--jobs=4: more than the 3 CPU cores this process may "
                                      r"use$"):
    grid_jobs.core_groups(4)
  assert grid_jobs.could_share_cores()
  monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5})
  assert not grid_jobs.could_share_cores()
  monkeypatch.delattr(os, "sched_getaffinity")  # macOS: the cores counted, not pinned
  monkeypatch.setattr(os, "cpu_count", lambda: 3)
  assert grid_jobs.core_groups(2) == [[0], [1, 2]]


def test_auto_jobs_train_a_cpu_grid_two_runs_at_a_time_where_two_cores_are_free(
    monkeypatch, tmp_path, capsys):
  import report
  import reproduce
  monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
  assert grid_jobs.auto_jobs("cpu", 2) == 2
  assert grid_jobs.auto_jobs("cpu", 1) == 1  # one run: this process, on both cores
  assert grid_jobs.auto_jobs("sweep", 5) == 1 and grid_jobs.auto_jobs("paper", 30) == 1
  monkeypatch.setattr(grid_jobs.jax, "default_backend", lambda: "gpu")
  assert grid_jobs.auto_jobs("cpu", 30) == 1  # one process keeps an accelerator busy
  monkeypatch.undo()
  monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
  assert grid_jobs.auto_jobs("cpu", 30) == 1
  # In reproduce.py: the default sends a cpu grid's two runs to two workers, and says so.
  monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
  sent = []
  monkeypatch.setattr(grid_jobs, "train_in_workers",
                      lambda todo, jobs, **kwargs: sent.append((len(todo), jobs)))
  monkeypatch.setattr(reproduce, "train_run", lambda *args: pytest.fail("trained in-process"))
  monkeypatch.setattr(report, "write_report", lambda *args, **kwargs: None)
  reproduce.main(["--grid=camvid", "--protocol=cpu", "--categories=pole",
                  "--losses=softmax,iou", "--seeds=0", f"--init={tmp_path}/backbone.npz",
                  f"--out={tmp_path}"])
  assert sent == [(2, 2)]
  assert "jobs: 2 (--jobs=auto: 2 runs at once, each on its share of the 2 cores" in (
      capsys.readouterr().out)
  for bad in ("two", "0"):
    with pytest.raises(UserError, match=f"^--jobs='{bad}': auto or a positive whole number$"):
      reproduce.main(["--grid=sweep", f"--jobs={bad}", f"--out={tmp_path}"])


@pytest.mark.slow
def test_a_run_that_fails_in_a_worker_is_named_in_one_line(tmp_path):
  result = run_script("reproduce.py", "--grid=camvid", "--protocol=cpu", "--categories=pole",
                      "--losses=iou", "--seeds=0", "--jobs=2", f"--init={tmp_path}/none.npz",
                      f"--out={tmp_path}")
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  run_folder = tmp_path / "camvid-cpu" / "camvid-pole-iou-s0"
  assert len(lines) == 1 and lines[0].startswith(f"error: {run_folder}: ")
  assert "none.npz" in lines[0] and "rerun the grid to resume" in lines[0]


def _in_training(workdir) -> bool:
  """Whether the run in ``workdir`` has logged a training step (a plain progress line: its
  console.log is no terminal)."""
  log = workdir / grid_jobs.CONSOLE_LOG
  return log.exists() and re.search(r"^step \d+/\d+: loss", log.read_text(errors="replace"),
                                    re.M) is not None


@pytest.mark.slow
def test_a_signal_stops_every_worker_s_run_at_a_saved_step(tmp_path):
  flags = [*SWEEP, "--train_steps=100000", "--jobs=2", f"--out={tmp_path}"]
  grid = subprocess.Popen([sys.executable, os.path.join(REPO, "experiments", "reproduce.py"),
                           *flags], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
  folder = tmp_path / "sweep-sweep"
  running = ("synthetic-disk-iou-s0-r2", "synthetic-disk-iou-s0-r8")
  deadline = time.time() + 240
  while time.time() < deadline and not all(_in_training(folder / name) for name in running):
    time.sleep(0.5)
  in_training = [_in_training(folder / name) for name in running]
  grid.send_signal(signal.SIGINT)
  out, err = grid.communicate(timeout=240)
  assert grid.returncode == 130, err[-2000:]
  assert all(in_training), "no training step logged within 240 s"
  assert err.strip().splitlines() == [
      "error: stopped by signal 2: each run in training saved its latest step; rerun the grid "
      "to resume"]
  assert " finished in " not in out
  for name in running:
    assert checkpoints.has_checkpoint(str(folder / name))
    assert not (folder / name / "results.json").exists()
    assert "stopped by signal 2 after step" in (folder / name / grid_jobs.CONSOLE_LOG).read_text()
  assert not (folder / "synthetic-disk-iou-s0-r30").exists()  # no run started after the signal
