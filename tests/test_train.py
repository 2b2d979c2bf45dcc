"""Training: parallel modes == one device, multi-host, end to end, resume, refusals, NaN."""

import ast
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from tqdm import tqdm

import parallel_case
from scripts import run_script
from fcn_iou_jax import build, interrupts, models, run_log, steps, train
from fcn_iou_jax.config import Config, incompatible_keys
from fcn_iou_jax.data import sources, statistics, synthetic
from fcn_iou_jax.errors import DivergedError, UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import evaluate
import predict
RESULT_KEYS = {"dataset", "category", "loss", "seed", "best_step", "steps",
               "train_images_per_sec", "selection", "val", "test", "config", "collapse_step"}
QUICK = dict(dataset="synthetic", category="disk", width_mult=0.0625, optimizer="adam",
             learning_rate=3e-4, batch_size=4, eval_batch_size=4, log_every=10)
# The shared trained run. Soft IoU from scratch collapses to all-foreground in about 1 of 20
# seeds at these settings (seed 0 with two devices; seeds 1-19 learn): a seed that learns.
TRAINED = dict(QUICK, train_steps=60, eval_every=30, seed=1)


def _max_difference(a, b):
  return max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                            jax.tree_util.tree_leaves(b)))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["iou"])  # every loss alone: tests/test_loss_parallel.py
def test_pmap_and_jit_on_two_devices_equal_one_device(loss):
  reference = parallel_case.run_single_device(loss)
  initial = parallel_case.problem(loss)[3].params
  assert _max_difference(reference, initial) > 1e-3  # the steps really moved the parameters
  for mode in ("pmap", "jit"):
    assert _max_difference(parallel_case.run_parallel(mode, loss), reference) < 1e-5, mode


def test_pmap_step_donates_its_state_off_cpu_only(monkeypatch):
  model, loss_fn, tx, state, batches = parallel_case.problem()
  parallel = steps.parallel_steps("pmap", model=model, loss_fn=loss_fn, tx=tx)
  before = parallel.put_state(state)
  after, _ = parallel.train(before, parallel.put_batch(batches[0]))
  assert not any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(before))
  assert _max_difference(parallel.get_state(after).params, state.params) > 1e-4
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert steps.donated_state() == (0,)


def test_auto_parallel_is_pmap_on_several_devices_and_unknown_modes_are_refused():
  assert jax.device_count() == 2 and steps.resolve_parallel("auto") == "pmap"
  assert [steps.resolve_parallel(mode) for mode in ("pmap", "jit")] == ["pmap", "jit"]
  with pytest.raises(ValueError, match="unknown parallel mode 'shard'"):
    steps.resolve_parallel("shard")


@pytest.mark.slow
def test_auto_is_jit_on_one_device_and_its_step_leaves_the_callers_state_alone():
  worker = os.path.join(os.path.dirname(__file__), "one_device_worker.py")
  env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
  result = subprocess.run([sys.executable, worker], env=env, capture_output=True, text=True,
                          timeout=240, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "devices: 1 mode: jit kept: True" in result.stdout, result.stdout


def _free_port():
  with socket.socket() as sock:
    sock.bind(("localhost", 0))
    return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process_with_two_devices(tmp_path):
  port, modes = _free_port(), ("pmap", "jit")
  env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
  worker = os.path.join(os.path.dirname(__file__), "multihost_worker.py")
  processes = [subprocess.Popen([sys.executable, worker, str(i), "2", str(port), str(tmp_path),
                                 ",".join(modes)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for i in range(2)]
  for process in processes:
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output.decode()[-2000:]
    # Both stop at the same step, on process 1's signal, with process 0's save.
    assert "agreed: 15 True" in output.decode()
  for mode in modes:
    with np.load(tmp_path / f"{mode}.npz") as saved:
      multi_process = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    assert _max_difference(parallel_case.run_parallel(mode), multi_process) < 1e-6, mode


def _run_on_two_processes(workdir, steps):
  """run.py as two hosts of one CPU device each (jax.distributed over localhost); each
  host's output."""
  port = _free_port()
  env = dict(os.environ, FCN_IOU_OFFLINE="1", JAX_NUM_CPU_DEVICES="1")
  flags = [*_quick_flags(workdir, steps), "--eval_every=4", "--log_every=2",
           f"--coordinator_address=localhost:{port}", "--num_processes=2"]
  hosts = [subprocess.Popen([sys.executable, os.path.join(REPO, "experiments", "run.py"),
                             *flags, f"--process_id={index}"], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
           for index in range(2)]
  outputs = [host.communicate(timeout=240)[0] for host in hosts]
  for host, output in zip(hosts, outputs):
    assert host.returncode == 0, output[-2000:]
  return outputs


@pytest.mark.slow
def test_a_run_on_two_hosts_resumes_into_the_same_run_and_host_0_alone_reports(tmp_path):
  _run_on_two_processes(tmp_path / "resumed", 4)
  host_0, host_1 = _run_on_two_processes(tmp_path / "resumed", 8)
  _run_on_two_processes(tmp_path / "fresh", 8)
  assert "Resuming" in host_0 and re.search(r"^step 8/8: loss", host_0, re.M)
  assert re.search(r"^step 8: selection IoU", host_0, re.M)
  assert not re.search(r"^(Resuming|step |dtype:)", host_1, re.M), host_1
  resumed, fresh = (json.loads((tmp_path / name / "results.json").read_text())
                    for name in ("resumed", "fresh"))
  for split in ("selection", "val", "test"):
    assert resumed[split] == fresh[split], split


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("trained")
  results = train.train_and_evaluate(Config(**TRAINED), str(workdir))
  return workdir, results


@pytest.mark.xdist_group("trained_run")  # one worker trains the shared run once
@pytest.mark.slow
def test_end_to_end_on_synthetic_beats_trivial_baselines(trained_run):
  tmp_path, results = trained_run
  assert set(results) == RESULT_KEYS
  saved = json.loads((tmp_path / "results.json").read_text())
  assert set(saved) == RESULT_KEYS and saved["config"]["category"] == "disk"
  counts = statistics.class_pixel_counts(build.build_source(Config(**TRAINED)).examples("val"), 3)
  all_foreground_iou = counts[1] / counts.sum()  # predicting "disk" everywhere
  assert results["val"]["tp"] + results["val"]["fn"] == counts[1]
  assert results["val"]["iou"] > all_foreground_iou + 0.2  # all-background scores 0
  assert results["val"]["baselines"] == {"all_foreground": pytest.approx(all_foreground_iou),
                                         "all_background": 0.0}
  assert results["val"]["degenerate"] is None  # it learned: no warning
  assert set(results["selection"]) == {"iou", "per_image_iou"}
  assert results["best_step"] in (30, 60) and results["train_images_per_sec"] > 0
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if r["kind"] == "selection"] == [30, 60]
  assert os.listdir(tmp_path / "tensorboard")


@pytest.mark.xdist_group("trained_run")  # one worker trains the shared run once
@pytest.mark.slow
def test_a_damaged_latest_checkpoint_falls_back_to_the_best_one(trained_run, tmp_path, capsys):
  workdir = tmp_path / "copy"
  shutil.copytree(trained_run[0], workdir)
  (workdir / "results.json").unlink()  # as if killed before the end
  latest = workdir / "checkpoints" / "latest" / "60"
  for path in (latest / "state").rglob("*"):
    if path.is_file():
      path.write_bytes(b"\x00garbage")
  results = train.train_and_evaluate(Config(**TRAINED), str(workdir))
  best = results["best_step"]
  assert f"cannot be read; resuming from the best checkpoint of step {best}" in \
      capsys.readouterr().out
  assert (workdir / "checkpoints" / "latest" / "60.damaged").is_dir()
  assert results["val"] == trained_run[1]["val"]  # the same run, resumed from its best step
  records = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if r["kind"] == "selection"] == [30, 60]
  for path in (workdir / "checkpoints").rglob("*"):  # now every checkpoint is damaged
    if path.is_file() and path.parent.name == "state":
      path.write_bytes(b"\x00garbage")
  (workdir / "results.json").unlink()
  with pytest.raises(UserError, match=r"no checkpoint of .*checkpoints can be read: .*best/"):
    train.train_and_evaluate(Config(**TRAINED), str(workdir))
  with pytest.raises(UserError, match=r"the best checkpoint .*best/\d+ cannot be read"):
    build.load_best_params(str(workdir), Config(**TRAINED))


@pytest.mark.xdist_group("trained_run")  # one worker trains the shared run once
@pytest.mark.slow
def test_bfloat16_matmuls_train_as_well_as_float32(trained_run, tmp_path):
  _, float32_results = trained_run
  results = train.train_and_evaluate(Config(**TRAINED, dtype="bfloat16"), str(tmp_path))
  assert results["config"]["dtype"] == "bfloat16"
  assert abs(results["val"]["iou"] - float32_results["val"]["iou"]) < 0.05


@pytest.mark.slow
def test_conv_forms_setting_reaches_the_model_and_keeps_its_function():
  tuned, native = (build.build_model(Config(**QUICK, conv_forms=forms))
                   for forms in ("tuned", "native"))
  assert (tuned.conv_forms, native.conv_forms) == ("tuned", "native")
  params = models.init_params(tuned, jax.random.key(0))
  params["score"]["kernel"] = jax.random.normal(jax.random.key(1), params["score"]["kernel"].shape)
  images = 50.0 * jax.random.normal(jax.random.key(2), (1, 40, 52, 3))
  np.testing.assert_allclose(jax.jit(native.apply)({"params": params}, images),
                             jax.jit(tuned.apply)({"params": params}, images),
                             rtol=1e-4, atol=1e-4)


def test_later_runs_of_a_process_with_the_same_steps_settings_trace_nothing(tmp_path,
                                                                             monkeypatch):
  """A grid's runs share model, loss and optimiser: its later runs reuse the first one's
  steps instead of tracing them again; a setting of the steps gives new ones."""
  original, traced = steps.train_step, []

  def counted(*args, **kwargs):
    traced.append(1)
    return original(*args, **kwargs)

  monkeypatch.setattr(steps, "train_step", counted)
  base = Config(**dict(QUICK, train_steps=2, eval_every=2, learning_rate=2.5e-4))  # its own
  train.train_and_evaluate(base, str(tmp_path / "first"))
  first_traces = len(traced)
  train.train_and_evaluate(dataclasses.replace(base, seed=3), str(tmp_path / "second"))
  assert first_traces >= 1 and len(traced) == first_traces

  task, source = build.build_task(base), build.build_source(base)
  shared = build.build_steps(base, task, source)
  assert build.build_steps(dataclasses.replace(base, seed=5, train_steps=9, eval_every=3),
                           task, source) is shared
  for change in (dict(loss="softmax"), dict(learning_rate=1e-3), dict(optimizer="sgd"),
                 dict(width_mult=0.125), dict(dtype="bfloat16"), dict(parallel="jit")):
    assert build.build_steps(dataclasses.replace(base, **change), task, source) is not shared


def test_the_progress_bar_counts_time_left_from_the_step_after_compilation():
  shown = io.StringIO()
  bar = tqdm(total=1000, initial=10, unit="step", file=shown, mininterval=0, ascii=True)
  time.sleep(0.3)  # the first step compiles
  train._advance(bar, 11, first=True)
  frames = shown.getvalue().split("\r")
  assert "11/1000" in frames[-1] and "<?" in frames[-1]  # no estimate yet
  assert not any(re.search(r"11/1000 \[[0-9:]+<[0-9]", frame) for frame in frames)
  for step in (12, 13):
    train._advance(bar, step, first=False)
  bar.close()
  rate = float(re.search(r"([0-9.]+)step/s", shown.getvalue().split("\r")[-1]).group(1))
  assert rate > 10  # two quick steps, not three steps over the compilation's 0.3 s


def test_the_progress_bar_leaves_evaluations_out_of_the_rate_and_nothing_else():
  shown = io.StringIO()
  bar = tqdm(total=20, unit="step", file=shown, mininterval=60, ascii=True)
  for _ in range(10):  # 10 steps of 50 ms, none printed (mininterval)
    time.sleep(0.05)
    bar.update(1)
  with train._paused(bar, "evaluating"):
    time.sleep(0.5)
  bar.close()
  elapsed = bar.format_dict["elapsed"]
  assert 0.45 < elapsed < 1.0  # the steps' 0.5 s, not the evaluation's
  rate = float(re.search(r"([0-9.]+)step/s", shown.getvalue().split("\r")[-1]).group(1))
  assert 10 < rate < 22  # 20 steps/s, not thousands


def test_output_that_is_not_a_terminal_gets_a_plain_line_every_log_every_steps(tmp_path,
                                                                               capsys):
  config = Config(**dict(QUICK, train_steps=4, eval_every=4, log_every=2))
  train.train_and_evaluate(config, str(tmp_path / "run"))  # capsys: stderr is no terminal
  printed = capsys.readouterr()
  lines = [line for line in printed.out.splitlines() if re.match(r"step \d+/4:", line)]
  assert [line.split(":")[0] for line in lines] == ["step 2/4", "step 4/4"]
  assert lines[-1].endswith(", 00:00 left") and "\r" not in printed.out + printed.err
  logged = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
  losses = [record["loss"] for record in logged if record.get("kind") == "train"]
  assert [line.split(", ")[0] for line in lines] == [f"step {step}/4: loss {loss:.4f}"
                                                     for step, loss in zip((2, 4), losses)]


def test_the_progress_line_counts_the_training_time_left_from_the_image_rate():
  line = train.progress_line(100, 600, 0.25, 40.0, batch_size=8)  # 500 steps x 8 / 40 = 100 s
  assert line == "step 100/600: loss 0.2500, 40.00 img/s, 01:40 left"
  assert train.progress_line(1, 600, 0.25, 0.0, batch_size=8).endswith("0.00 img/s")


def test_warmup_raises_the_step_size_linearly_then_holds_it():
  params = {"conv": {"bias": jnp.zeros(3)}}  # a bias: no weight decay
  gradient = {"conv": {"bias": jnp.array([1.0, -2.0, 0.5])}}
  tx = steps.make_optimizer("sgd", learning_rate=0.1, momentum=0.0, weight_decay=5e-4,
                            warmup_steps=4)
  state = tx.init(params)
  for step in range(7):
    updates, state = tx.update(gradient, state, params)
    expected = -0.1 * min(step / 4, 1.0) * gradient["conv"]["bias"]
    np.testing.assert_allclose(updates["conv"]["bias"], expected, rtol=1e-6, atol=1e-8)


def test_settings_added_later_take_their_defaults_when_resuming():
  saved = Config(**QUICK).to_dict()
  del saved["warmup_steps"]  # a run started before the setting existed
  assert incompatible_keys(saved, Config(**QUICK).to_dict()) == []
  assert incompatible_keys(saved, Config(**QUICK, warmup_steps=10).to_dict()) == ["warmup_steps"]


def test_mismatched_workdir_is_refused_once_it_holds_a_checkpoint(tmp_path):
  train.claim_workdir(Config(**QUICK), str(tmp_path))
  train.claim_workdir(Config(**dict(QUICK, loss="softmax")), str(tmp_path))  # no run yet
  assert json.loads((tmp_path / "config.json").read_text())["loss"] == "softmax"
  (tmp_path / "checkpoints" / "latest" / "10").mkdir(parents=True)
  with pytest.raises(UserError, match=r"another config \(loss: 'softmax' -> 'iou'\)"):
    train.train_and_evaluate(Config(**QUICK), str(tmp_path))


@pytest.mark.slow
def test_nan_loss_stops_with_the_step_number(tmp_path):
  config = Config(**dict(QUICK, optimizer="sgd", learning_rate=1e38), train_steps=20,
                  eval_every=20)
  with pytest.raises(DivergedError, match=r"became nan at step \d+"):
    train.train_and_evaluate(config, str(tmp_path))


def _run_cli(*flags, timeout=300):
  return subprocess.run([sys.executable, os.path.join(REPO, "experiments", "run.py"), *flags],
                        capture_output=True, text=True, timeout=timeout, cwd=REPO,
                        env=dict(os.environ, FCN_IOU_OFFLINE="1"))


def _quick_flags(workdir, steps):
  return ["--dataset=synthetic", "--category=disk", "--width_mult=0.0625", "--optimizer=adam",
          "--learning_rate=3e-4", "--batch_size=2", f"--train_steps={steps}", "--eval_every=10",
          f"--workdir={workdir}"]


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_without_losing_evaluations(tmp_path):
  workdir = tmp_path / "run"
  process = subprocess.Popen([sys.executable, os.path.join(REPO, "experiments", "run.py"),
                              *_quick_flags(workdir, 20)], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  checkpoint = workdir / "checkpoints" / "latest" / "10"
  deadline = time.time() + 240
  while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert checkpoint.exists() and not (workdir / "results.json").exists()
  finished = _run_cli(*_quick_flags(workdir, 20))
  assert finished.returncode == 0, finished.stderr[-2000:]
  assert "Resuming" in finished.stdout
  assert not re.search(r"oneDNN|absl|port\.cc", finished.stderr), finished.stderr[:2000]
  records = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if r["kind"] == "selection"] == [10, 20]
  assert json.loads((workdir / "results.json").read_text())["steps"] == 20


@pytest.mark.slow
@pytest.mark.parametrize("flags, message", [
    (["--dataset=camvid", "--category=horse"], "--category='horse' is not a camvid category"),
    (["--category=person", "--loss=dice"], "argument --loss: invalid choice: 'dice'"),
    (["--dataset=voc2012", "--category=person", "--data_dir=/nonexistent/voc"],
     "no voc2012 data there and no network"),
    (["--dataset=synthetic", "--category=disk", "--image_size=48x64", "--crop_size=64x64"],
     "--crop_size=64x64 is larger than the training size 48x64"),
    (["--dataset=synthetic", "--category=disk", "--warmup_steps=-5"],
     "--warmup_steps=-5 must be 0 or positive"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, flags, message):
  result = _run_cli(*flags, f"--workdir={tmp_path / 'w'}")
  assert result.returncode == 2
  assert message in result.stderr and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.slow
@pytest.mark.parametrize("script, flags", [("evaluate.py", []),
                                           ("predict.py", ["--out=masks", "image.png"])])
def test_a_workdir_without_a_run_is_told_before_tensorflow_starts(tmp_path, script, flags):
  Image.new("RGB", (8, 6)).save(tmp_path / "image.png")
  probe = ("import runpy, sys\n"
           "sys.argv = sys.argv[1:]\n"
           "try:\n"
           "  runpy.run_path(sys.argv[0], run_name='__main__')\n"
           "except SystemExit as end:\n"
           "  print('exit', end.code, 'tensorflow' in sys.modules)\n")
  result = subprocess.run([sys.executable, "-c", probe, os.path.join(REPO, "experiments", script),
                           f"--workdir={tmp_path}", *flags], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, check=False)
  assert result.stderr == f"error: --workdir={tmp_path} holds no run (config.json is missing)\n"
  assert result.stdout.splitlines()[-1] == "exit 2 False"  # TensorFlow was never imported


@pytest.mark.xdist_group("trained_run")  # one worker trains the shared run once
@pytest.mark.slow
@pytest.mark.parametrize("script, flag", [
    ("run.py", "--workdir=FILE/run"),
    ("output_bound.py", "--out=FILE/bound.json"), ("report.py", "--out=FILE/report"),
    ("reproduce.py", "--report=FILE/report"), ("predict.py", "--out=FILE/masks"),
])
def test_an_output_path_that_cannot_be_made_is_refused_first(tmp_path, script, flag, trained_run):
  (tmp_path / "file").write_text("")
  flag = flag.replace("FILE", str(tmp_path / "file"))
  needs = {"run.py": ["--dataset=synthetic", "--category=disk"],
           "output_bound.py": ["--dataset=synthetic", "--categories=disk"],
           "report.py": [f"--runs={tmp_path}"],
           "reproduce.py": ["--grid=sweep", f"--out={tmp_path / 'runs'}"],
           "predict.py": [f"--workdir={trained_run[0]}", str(tmp_path / "image.png")]}[script]
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "image.png")
  result = run_script(script, *needs, flag)
  assert result.returncode == 2, result.stderr[-2000:]
  assert f"error: {flag}: cannot make the folder" in result.stderr
  assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


@pytest.mark.slow
@pytest.mark.parametrize("script, flags", [
    ("run.py", ["--category=person", "--loss=dice"]),
    ("run.py", ["--dataset=kitti", "--category=car"]),
    ("evaluate.py", ["--workdir=w", "--split=holdout"]),
    ("predict.py", ["--workdir=w", "--out=o", "--threshold=half", "a.png"]),
    ("class_ratios.py", ["--dataset=kitti"]),
    ("run.py", ["--category=all", "--class_weighting=inverse"]),
    ("reproduce.py", ["--grid=kitti"]),
    ("report.py", ["--runs=r", "--out=o", "--title"]),
    ("output_bound.py", ["--dataset=kitti", "--categories=car"]),
])
def test_flag_errors_come_before_tensorflow_starts(script, flags):
  """A mistyped flag prints its error line and nothing else (no TensorFlow start-up lines)."""
  result = run_script(script, *flags)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
  assert result.stderr.startswith("error: argument --")


SCRIPTS = ("run.py", "evaluate.py", "predict.py", "class_ratios.py", "reproduce.py", "report.py",
           "multiclass_report.py", "output_bound.py", "convert_weights.py")


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_help_keeps_the_example_commands_and_explains_every_flag(script):
  result = run_script(script, "--help")
  assert result.returncode == 0, result.stderr[-2000:]
  with open(os.path.join(REPO, "experiments", script), encoding="utf-8") as handle:
    source = handle.read()
  examples = [line for line in ast.get_docstring(ast.parse(source), clean=False).splitlines()
              if line.lstrip().startswith(("python ", "--"))]
  assert examples and all(line in result.stdout.splitlines() for line in examples)
  assert "(default: None)" not in result.stdout
  options = result.stdout.split("options:\n", 1)[1].splitlines()
  for line, following in zip(options, options[1:] + [""]):
    flag_alone = re.fullmatch(r"  -[-\w]+( [A-Z_]+| \{[^}]*\})?\s*", line)
    assert not (flag_alone and not following.startswith(" " * 8)), f"no help for {line.strip()}"


@pytest.mark.slow
def test_category_names_are_checked_before_the_data_is_read(tmp_path):
  result = run_script("output_bound.py", "--dataset=camvid", f"--data_dir={tmp_path}",
                       "--categories=pole,horse")
  assert result.returncode == 2
  assert result.stderr.strip() == ("error: --categories='horse' is not a camvid category; valid: "
                                   "sky, building, pole, road, pavement, tree, sign_symbol, "
                                   "fence, car, pedestrian, bicyclist")


@pytest.mark.xdist_group("trained_run")  # one worker trains the shared run once
@pytest.mark.slow
def test_evaluate_reproduces_the_final_evaluation(trained_run):
  workdir, results = trained_run
  evaluate.main([f"--workdir={workdir}", "--split=test"])  # in this process: 2 devices
  written = json.loads((workdir / "eval_test.json").read_text())
  assert written == results["test"]


@pytest.mark.xdist_group("trained_run")  # one worker trains the shared run once
@pytest.mark.slow
def test_predict_writes_masks_and_overlays(trained_run, tmp_path):
  workdir, _ = trained_run
  image, label = synthetic.make_example(synthetic.SyntheticSpec(), "test", 0)
  Image.fromarray(image[:70, :90]).save(tmp_path / "crop.png")  # any size works
  finished = run_script("predict.py", f"--workdir={workdir}", str(tmp_path / "crop.png"),
                         f"--out={tmp_path / 'out'}")
  assert finished.returncode == 0, finished.stderr[-2000:]
  mask = np.array(Image.open(tmp_path / "out" / "crop_mask.png"))
  assert mask.shape == (70, 90) and set(np.unique(mask)) <= {0, 255}
  with Image.open(tmp_path / "out" / "crop_overlay.png") as overlay:
    assert overlay.size == (90, 70)
  with pytest.raises(UserError, match="nope.png: no such image"):
    predict.main([f"--workdir={workdir}", str(tmp_path / "nope.png"), f"--out={tmp_path / 'x'}"])


def test_collapse_is_recognised_only_after_learning():
  silent = {"tp": 0, "fp": 0, "fn": 50}
  assert train.collapsed(0.4, silent)
  assert not train.collapsed(0.0, silent)  # never learned: not a collapse
  assert not train.collapsed(0.4, {"tp": 3, "fp": 0, "fn": 50})


@pytest.mark.slow
def test_model_trained_on_resized_images_is_scored_on_original_pixels(tmp_path):
  config = Config(**QUICK, image_size=(48, 64), train_steps=2, eval_every=2)
  assert build.eval_input_scale(config) == 0.5
  results = train.train_and_evaluate(config, str(tmp_path))
  val = results["val"]
  counts = statistics.class_pixel_counts(sources.Source("synthetic").examples("val"), 3)
  assert val["tp"] + val["fn"] == counts[1]  # every original-resolution object pixel counted


@pytest.mark.slow
def test_sigterm_saves_the_step_and_the_rerun_equals_the_uninterrupted_run(tmp_path, capsys):
  # A multi-class run (every setting of that mode on), so its resume is shown too; the
  # binary resume: test_sigkill_then_rerun_resumes_without_losing_evaluations.
  config = Config(**dict(QUICK, log_every=1, category="all"), train_steps=8, eval_every=4,
                  loss="softmax+iou", class_weighting="median_frequency", crop_size=(64, 96),
                  class_aware_crops=True, checkpoint_minutes=1e-9)  # a save after every step
  latest = tmp_path / "stopped" / "checkpoints" / "latest"

  def stop_after_a_time_based_save():
    deadline = time.time() + 240
    while time.time() < deadline:
      if any(p.name.isdigit() and int(p.name) % 4 for p in latest.glob("*")):
        os.kill(os.getpid(), signal.SIGTERM)
        return
      time.sleep(0.02)

  threading.Thread(target=stop_after_a_time_based_save, daemon=True).start()
  with pytest.raises(interrupts.Interrupted, match="stopped by signal 15 after step") as stopped:
    train.train_and_evaluate(config, str(tmp_path / "stopped"))
  assert stopped.value.exit_code == 143
  stopped_at = int(re.search(r"after step (\d+)", str(stopped.value)).group(1))
  assert stopped_at % 4 and [p.name for p in latest.iterdir()] == [str(stopped_at)]
  resumed = train.train_and_evaluate(config, str(tmp_path / "stopped"))
  whole = train.train_and_evaluate(dataclasses.replace(config, checkpoint_minutes=0.0),
                                   str(tmp_path / "whole"))
  records = {name: [{k: v for k, v in json.loads(line).items() if k != "images_per_sec"}
                    for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
             for name in ("stopped", "whole")}
  assert records["stopped"] == records["whole"]
  assert [r["step"] for r in records["whole"] if r["kind"] == "train"] == list(range(1, 9))
  for key in ("best_step", "selection", "val"):
    assert resumed[key] == whole[key]
  for (_, stopped_leaf), (_, whole_leaf) in zip(
      *(jax.tree_util.tree_leaves_with_path(build.load_best_params(
          str(tmp_path / name), run_log.read_config(str(tmp_path / name)))[1])
        for name in ("stopped", "whole"))):
    np.testing.assert_array_equal(stopped_leaf, whole_leaf)
  capsys.readouterr()
  again = train.train_and_evaluate(config, str(tmp_path / "stopped"))
  assert "has finished its 8 steps" in capsys.readouterr().out
  assert again == json.loads((tmp_path / "stopped" / "results.json").read_text())
  (tmp_path / "stopped" / "results.json").unlink()  # scored again, written again
  rescored = train.train_and_evaluate(config, str(tmp_path / "stopped"), force_eval=True)
  assert "has finished" not in capsys.readouterr().out
  assert rescored["val"] == whole["val"] and (tmp_path / "stopped" / "results.json").exists()
