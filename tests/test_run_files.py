"""A run's files when something went wrong: interrupted checkpoint saves, torn metrics lines,
damaged JSON, and a second run in the same workdir."""

import json
import os
import signal
import subprocess
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fcn_iou_jax import checkpoints, file_locks, run_log, steps
from fcn_iou_jax.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_an_interrupted_save_is_cleaned_up_and_one_checkpoint_is_kept(tmp_path):
  store = checkpoints.RunCheckpoints(str(tmp_path))
  for step in (10, 20):
    store.save("latest", step, {"w": jnp.full(3, float(step))},
               checkpoints.Progress(best_step=step))
  latest = tmp_path / "checkpoints" / "latest"
  orphan = latest / "30.orbax-checkpoint-tmp-1700000000"  # what a kill during a save leaves
  orphan.mkdir()
  (orphan / "partial").write_bytes(b"\0" * 16)
  reopened = checkpoints.RunCheckpoints(str(tmp_path))  # removes it, in the background
  state, progress = reopened.restore("latest", {"w": jnp.zeros(3)})
  assert float(state["w"][0]) == 20.0 and progress == checkpoints.Progress(best_step=20)
  # (This save waits for the removal.)
  reopened.save("latest", 40, {"w": jnp.full(3, 40.0)}, checkpoints.Progress(best_step=40))
  assert sorted(p.name for p in latest.iterdir()) == ["40"]


def test_a_full_disk_is_one_line_and_the_previous_checkpoint_stays(tmp_path, monkeypatch):
  store = checkpoints.RunCheckpoints(str(tmp_path))
  store.save("latest", 10, {"w": jnp.full(3, 10.0)}, checkpoints.Progress(best_step=10))
  usage = checkpoints.shutil.disk_usage(str(tmp_path))
  monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda path: usage._replace(free=1000))
  with pytest.raises(UserError, match=r"^no space left on the device of .*checkpoints while "
                     r"writing the latest checkpoint of step 20; free space and rerun to "
                     r"resume from step 10$"):
    store.save("latest", 20, {"w": jnp.full(3, 20.0)}, checkpoints.Progress(best_step=20))
  # Space that runs out during the write: TensorStore's error, named the same way.
  monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda path: usage._replace(free=1 << 40))
  def write_fails(*args, **kwargs):
    raise ValueError("RESOURCE_EXHAUSTED: Failed writing: No space left on device "
                     "[os_error_code='28']")

  monkeypatch.setattr(store._managers["latest"], "save", write_fails)
  with pytest.raises(UserError, match="no space left on the device .* resume from step 10$"):
    store.save("latest", 20, {"w": jnp.full(3, 20.0)}, checkpoints.Progress(best_step=20))
  state, progress = checkpoints.RunCheckpoints(str(tmp_path)).restore("latest",
                                                                      {"w": jnp.zeros(3)})
  assert float(state["w"][0]) == 10.0 and progress.best_step == 10


def test_the_best_checkpoint_replaced_while_read_is_read_again(tmp_path, monkeypatch):
  running = checkpoints.RunCheckpoints(str(tmp_path))  # the run, still training
  running.save("best", 10, {"w": jnp.full(3, 10.0)}, checkpoints.Progress(best_step=10))
  reader = checkpoints.RunCheckpoints(str(tmp_path))  # evaluate.py
  manager = reader._managers["best"]
  read = manager.restore

  def newer_best_saved_meanwhile(step, *args, **kwargs):
    if step == 10:  # the run saves a better step and removes step 10 during this read
      running.save("best", 20, {"w": jnp.full(3, 20.0)}, checkpoints.Progress(best_step=20))
    return read(step, *args, **kwargs)

  monkeypatch.setattr(manager, "restore", newer_best_saved_meanwhile)
  state, progress = reader.restore_best({"w": jnp.zeros(3)})
  assert float(state["w"][0]) == 20.0 and progress.best_step == 20


def test_a_byte_flipped_in_saved_data_is_found_by_the_checksums(tmp_path):
  store = checkpoints.RunCheckpoints(str(tmp_path))
  weights = np.random.default_rng(0).normal(size=100_000).astype(np.float32)
  state = steps.create_train_state({"w": weights, "b": np.zeros(3, np.float32)},
                                   optax.adam(1e-3), jax.random.key(0))
  store.save("latest", 10, state, checkpoints.Progress(best_step=10))
  # Intact, it reads back with its template and as plain dicts (another order of arrays).
  for template in (jax.device_get(state), None):
    checkpoints.RunCheckpoints(str(tmp_path)).restore("latest", template)
  data = max((p for p in (tmp_path / "checkpoints" / "latest" / "10" / "state").rglob("*")
              if p.is_file()), key=lambda p: p.stat().st_size)
  damaged = bytearray(data.read_bytes())
  damaged[len(damaged) // 2] ^= 0xFF  # zstd decodes it, to other numbers
  data.write_bytes(bytes(damaged))
  with pytest.raises(checkpoints.DamagedCheckpoint, match="differ from their checksums"):
    checkpoints.RunCheckpoints(str(tmp_path)).restore("latest", jax.device_get(state))


def test_a_step_damaged_twice_is_set_aside_twice(tmp_path, capsys):
  template = {"w": np.zeros(3, np.float32)}
  store = checkpoints.RunCheckpoints(str(tmp_path))
  store.save("best", 5, {"w": np.full(3, 5.0, np.float32)}, checkpoints.Progress(best_step=5))
  latest = tmp_path / "checkpoints" / "latest"
  for _ in range(2):  # resumed from step 5, the run saves step 10 again, damaged again
    checkpoints.RunCheckpoints(str(tmp_path)).save(
        "latest", 10, {"w": np.full(3, 10.0, np.float32)}, checkpoints.Progress(best_step=5))
    (latest / "10" / "state" / "_METADATA").write_text("{not json")
    state, _ = checkpoints.RunCheckpoints(str(tmp_path)).restore_to_resume(template)
    assert float(state["w"][0]) == 5.0
    assert "latest/10 (JSONDecodeError) cannot be read; resuming from the best checkpoint of " \
           "step 5" in capsys.readouterr().out
  assert sorted(p.name for p in latest.iterdir()) == ["10.damaged", "10.damaged-2"]


def _lines(*records):
  return "".join(json.dumps(r) + "\n" for r in records)


def test_a_torn_last_metrics_line_is_dropped_with_a_note(tmp_path, capsys):
  path = tmp_path / "metrics.jsonl"
  path.write_text(_lines({"step": 10, "kind": "train"}, {"step": 20, "kind": "selection"})
                  + '{"step": 30, "kind": "tr')
  log = run_log.MetricsLog(str(tmp_path), resume_step=20)
  assert "dropped its torn last line" in capsys.readouterr().out
  log.write(30, "train", {"loss": 0.5})
  assert [json.loads(l)["step"] for l in path.read_text().splitlines()] == [10, 20, 30]


def test_a_whole_last_line_without_its_newline_is_kept_apart_from_the_next(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text(_lines({"step": 10, "kind": "train"}) + json.dumps({"step": 20, "kind": "x"}))
  run_log.MetricsLog(str(tmp_path), resume_step=20).write(30, "train", {"loss": 0.5})
  assert [json.loads(l)["step"] for l in path.read_text().splitlines()] == [10, 20, 30]


def test_a_closed_metrics_log_leaves_no_writer_thread_behind(tmp_path):
  """A grid trains its runs in one process: each run's TensorBoard writer must end with it."""
  before = set(threading.enumerate())
  log = run_log.MetricsLog(str(tmp_path), resume_step=0)
  log.write(10, "train", {"loss": 0.5})
  assert set(threading.enumerate()) - before  # the writer's thread runs while the log is open
  log.close()
  for thread in set(threading.enumerate()) - before:
    thread.join(timeout=10)  # the queue's feeder thread ends just after the close
    assert not thread.is_alive(), thread
  assert os.listdir(tmp_path / "tensorboard")


def test_damaged_lines_and_json_files_are_named(tmp_path):
  (tmp_path / "metrics.jsonl").write_text('{"step": 10, "ki\n' + _lines({"step": 20, "kind": "x"}))
  with pytest.raises(UserError, match=r"metrics\.jsonl: line 1 is damaged"):
    run_log.MetricsLog(str(tmp_path), resume_step=20)
  (tmp_path / "config.json").write_text('{"dataset": "camv')
  with pytest.raises(UserError, match=r"config\.json is damaged"):
    run_log.read_json(str(tmp_path / "config.json"))


@pytest.mark.slow
def test_a_second_run_in_a_held_workdir_is_refused_in_one_line(tmp_path):
  with file_locks.hold_workdir(str(tmp_path)):
    with pytest.raises(UserError, match=r"is in use by a run \(pid \d+ on "):
      with file_locks.hold_workdir(str(tmp_path)):
        pass
    refused = subprocess.run(
        [sys.executable, os.path.join(REPO, "experiments", "run.py"), "--dataset=synthetic",
         "--category=disk", "--width_mult=0.0625", "--train_steps=2", f"--workdir={tmp_path}"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
  assert refused.returncode == 2
  assert refused.stderr.strip().count("\n") == 0 and "is in use by a run" in refused.stderr
  assert not (tmp_path / "config.json").exists()  # the refused run wrote nothing


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time\nfrom fcn_iou_jax import file_locks\n"
       "with file_locks.hold_workdir(sys.argv[1]):\n  print('held', flush=True)\n  time.sleep(60)",
       str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=REPO)
  assert holder.stdout.readline().strip() == "held"
  with pytest.raises(UserError, match="is in use"):
    with file_locks.hold_workdir(str(tmp_path)):
      pass
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  holder.stdout.close()
  with file_locks.hold_workdir(str(tmp_path)):
    assert f"pid {os.getpid()} " in (tmp_path / file_locks.WORKDIR_LOCK).read_text()


def test_progress_round_trips_through_json_and_reads_earlier_checkpoints():
  progress = checkpoints.Progress(best_score=0.5, best_step=20,
                                  evaluations=({"step": 10, "iou": 0.4}, {"step": 20, "iou": 0.5}))
  assert checkpoints.Progress.from_json(json.loads(json.dumps(progress.to_json()))) == progress
  assert progress.best_evaluation() == {"step": 20, "iou": 0.5}
  earlier = {"best_iou": 0.25, "best_step": 10, "evaluations": [{"step": 10, "iou": 0.25}],
             "collapse_step": None}
  restored = checkpoints.Progress.from_json(earlier)
  assert restored.best_score == 0.25 and restored.best_evaluation()["iou"] == 0.25
  assert checkpoints.Progress().best_evaluation() is None

