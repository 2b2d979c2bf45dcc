"""The reproduction grid's planning and its report, on hand-made results (no training)."""

import json
import math
import os
import pathlib
import sys

import numpy as np
import pytest
from PIL import Image

import fake_data
import grid_jobs
from scripts import run_script

import protocols
import report
import reproduce
from fcn_iou_jax import cli, interrupts, precision
from fcn_iou_jax.errors import UserError


def test_cpu_protocol_lists_every_deviation_and_paper_needs_weights():
  cpu, paper = protocols.load_preset("cpu"), protocols.load_preset("paper")
  lines = protocols.deviations(cpu.settings, "cpu")
  # Each departure of the preset, field by field against the paper's, with its reason.
  assert [line.split(":")[0] for line in lines] == [
      key for key in paper.settings if cpu.settings[key] != paper.settings[key]]
  assert {line.split(":")[0] for line in lines} == set(cpu.reasons)
  assert "width_mult: 0.25 instead of 1 (a narrower network fits a 2-core CPU budget)" in lines
  assert protocols.deviations(paper.settings, "paper") == []
  overridden = dict(cpu.settings, fc6_kernel=1)  # reproduce.py --fc6_kernel=1
  assert any(line.startswith("fc6_kernel: 1 instead of 6 (fc6 as the 1x1 convolution")
             for line in protocols.deviations(overridden, "cpu"))
  with pytest.raises(UserError, match="init=imagenet needs --init=PATH"):
    reproduce.run_flags(paper.settings, None)
  assert "--init=w.npz" in reproduce.run_flags(paper.settings, "w.npz")
  assert "--crop_size=180x240" in reproduce.run_flags(cpu.settings, "b.npz")


def test_a_config_file_that_is_not_one_is_named(tmp_path):
  (tmp_path / "broken.py").write_text("def get_config(:\n")
  for path in (tmp_path / "broken.py", tmp_path / "missing.py"):
    with pytest.raises(UserError, match=f"`config`={path}: not a config file with get_config"):
      protocols.load_preset(str(path))


@pytest.mark.slow
def test_shared_backbone_is_pretrained_once(tmp_path, monkeypatch):
  calls = []

  monkeypatch.setattr(reproduce, "train_run", _fake_train_run(calls))
  settings = protocols.load_preset("cpu").settings
  first = reproduce.shared_backbone(str(tmp_path), settings, "camvid", "/data/camvid")
  second = reproduce.shared_backbone(str(tmp_path), settings, "camvid", "/data/camvid")
  assert first == second and os.path.exists(first) and len(calls) == 1
  assert "--crop_size=180x240" in calls[0] and "--data_dir=/data/camvid" in calls[0]
  assert "--width_mult=0.25" in calls[0] and "--category=all" in calls[0]
  assert "--class_weighting=median_frequency" in calls[0]


@pytest.mark.slow
def test_a_grid_compiles_the_steps_its_runs_share_once_and_runs_them_in_workers_alike(
    tmp_path, monkeypatch):
  """The sweep's five ratios share one loss and one shape: everything in the grid's
  compilation cache was compiled by its first run."""
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")  # the grid's own cache, not the tests'
  flags = ["--grid=sweep", "--losses=iou", "--seeds=0", "--train_steps=2", "--width_mult=0.0625"]
  result = run_script("reproduce.py", *flags, f"--out={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  grid = tmp_path / "sweep-sweep"
  runs = sorted(grid.glob("*/results.json"), key=os.path.getmtime)
  assert len(runs) == 5 and result.stdout.count("Done: selection IoU") == 5
  assert "--jobs=auto" not in result.stdout  # the sweep's tiny runs: one process
  compiled = list((grid / "xla_cache").iterdir())
  assert compiled, "no step was compiled into the grid's cache"
  first_run_done = os.path.getmtime(grid / "synthetic-disk-iou-s0-r2" / "results.json")
  assert runs[0].parent.name == "synthetic-disk-iou-s0-r2"
  assert max(os.path.getmtime(entry) for entry in compiled) <= first_run_done
  # The same grid in two worker processes (--jobs=2): the same runs and report, each run's
  # output in its folder. A worker computes on one core, whose sums XLA splits otherwise than
  # on two: scores equal up to float rounding.
  two = run_script("reproduce.py", *flags, "--jobs=2", f"--out={tmp_path / 'two'}")
  assert two.returncode == 0, two.stderr[-2000:]
  ious, ious_of_two = (
      {path.parent.name: json.loads(path.read_text())["val"]["iou"]
       for path in folder.glob("*/results.json")}
      for folder in (grid, tmp_path / "two" / "sweep-sweep"))
  assert len(ious) == 5 and ious_of_two.keys() == ious.keys()
  assert all(abs(ious_of_two[name] - iou) < 1e-3 for name, iou in ious.items()), ious_of_two
  for name in ious:
    log = (tmp_path / "two" / "sweep-sweep" / name / grid_jobs.CONSOLE_LOG).read_text()
    assert "Done: selection IoU" in log
  assert "Done: selection IoU" not in two.stdout and "--jobs=auto" not in two.stdout
  assert two.stdout.count(" finished in ") == 5 and "console.log" in two.stdout
  assert (tmp_path / "two" / "sweep-sweep" / "report" / "report.md").exists()


def test_a_failing_run_names_its_folder_and_a_stopped_one_keeps_its_exit_status(
    tmp_path, monkeypatch):
  def refuse(argv):
    raise UserError("`learning_rate`=-1 must be positive")

  monkeypatch.setattr(reproduce.run, "main", refuse)
  workdir = str(tmp_path / "camvid-pole-iou-s0")
  with pytest.raises(UserError, match=rf"^{workdir}: `learning_rate`=-1 must be positive; "
                                      "rerun the grid to resume$"):
    reproduce.train_run([], workdir, str(tmp_path))

  def stop(argv):
    raise interrupts.Interrupted("stopped by signal 15 after step 3", 15)

  monkeypatch.setattr(reproduce.run, "main", stop)
  with pytest.raises(interrupts.Interrupted, match="^stopped by signal 15") as stopped:
    reproduce.train_run([], workdir, str(tmp_path))
  assert stopped.value.exit_code == 143


def test_camvid_grid_covers_categories_losses_and_seeds(tmp_path):
  runs = list(reproduce.planned_runs("camvid", [0, 1, 2], str(tmp_path)))
  assert len(runs) == 5 * 3 * 3
  assert len({workdir for workdir, _ in runs}) == 45
  assert any("--category=sign_symbol" in flags and "--loss=lovasz" in flags for _, flags in runs)
  every_class = list(reproduce.planned_runs("camvid_all", [0, 1, 2], str(tmp_path)))
  assert sorted({flags[2] for _, flags in every_class}) == [
      "--loss=iou", "--loss=lovasz", "--loss=softmax", "--loss=softmax+iou"]
  assert len(every_class) == 12 and all("--category=all" in flags for _, flags in every_class)


def _fake_run(root, category, loss, seed, val_iou):
  workdir = root / f"camvid-{category}-{loss}-s{seed}"
  workdir.mkdir(parents=True)
  result = {"dataset": "synthetic", "category": category, "loss": loss, "seed": seed,
            "config": {"synthetic_ratio": 30.0}, "collapse_step": 300 if seed == 1 else None,
            "val": {"iou": val_iou, "per_image_iou": val_iou / 2, "tp": 1, "fp": 1, "fn": 1},
            "selection": {"iou": val_iou, "per_image_iou": val_iou}}
  (workdir / "results.json").write_text(json.dumps(result))


def test_report_averages_seeds_and_flags_unlearned_and_collapsed(tmp_path):
  runs = tmp_path / "runs"
  for seed, (soft, iou, lovasz) in enumerate([(0.30, 0.40, 0.29), (0.34, 0.44, 0.36)]):
    _fake_run(runs, "disk", "softmax", seed, soft)
    _fake_run(runs, "disk", "iou", seed, iou)
    _fake_run(runs, "disk", "lovasz", seed, lovasz)
  backbone = runs / "shared_backbone"  # the grid's backbone run: not one of its runs
  backbone.mkdir()
  (backbone / "results.json").write_text(json.dumps({"category": "all", "loss": "softmax"}))
  summary = report.write_report(str(runs), str(tmp_path / "out"), title="t")
  assert len(summary) == 1
  row = summary[0]
  assert row["iou"]["val"]["iou"][0] == pytest.approx(0.42)
  assert row["softmax"]["val"]["iou"][1] == pytest.approx(0.02 * 2**0.5)  # sample std, n=2
  assert row["learned"]  # 0.42 > 1/31 + 0.05
  text = (tmp_path / "out" / "report.md").read_text()
  assert "42.0 ± 2.8" in text and "32.0 ± 2.8" in text
  assert "iou seed 1 collapsed at step 300" in text
  # Paired gains 0.10 and 0.10: mean +10 points, std 0, IoU ahead in both seeds.
  assert row["gain"]["mean"] == pytest.approx(0.10) and row["gain"]["iou_ahead"] == 2
  assert "soft IoU − softmax +10.0 points (paired over 2 seed(s), soft IoU ahead in 2)" in text
  assert "outside the seed spread" in text
  # Lovász hinge: gains -0.01 and +0.02, mean +0.5 points, std 2.1: within the spread.
  assert row["gain_lovasz"]["mean"] == pytest.approx(0.005)
  assert row["gain_lovasz"]["iou_ahead"] == 1
  assert ("Lovász hinge − softmax +0.5 points (paired over 2 seed(s), Lovász hinge ahead in "
          "1), std 2.1: within the seed spread") in text
  assert "| FCN_Lovász (Lovász hinge) | 32.5 ± 4.9 |" in text
  assert (tmp_path / "out" / "iou_gain_vs_ratio.png").exists()
  bound = {"split": "val", "categories": {"disk": {"iou": 0.875}}}
  report.write_report(str(runs), str(tmp_path / "bound"), title="t", bound=bound)
  rows = (tmp_path / "bound" / "report.md").read_text().splitlines()
  assert "| best stride-32 output (score maps fitted to the val labels) | 87.5 |" in rows


def test_a_report_without_val_scores_measures_on_the_selection_split(tmp_path):
  runs = tmp_path / "runs"
  for seed, (soft, iou) in enumerate([(0.01, 0.02), (0.01, 0.03)]):  # under the 5-point margin
    for loss, score in (("softmax", soft), ("iou", iou)):
      _fake_run(runs, "disk", loss, seed, score)
      result_path = runs / f"camvid-disk-{loss}-s{seed}" / "results.json"
      result = json.loads(result_path.read_text())
      del result["val"]  # as on the shared VOC copy: no val list
      result_path.write_text(json.dumps(result))
  row = report.write_report(str(runs), str(tmp_path / "out"), title="t")[0]
  assert row["split"] == "selection" and not row["learned"]
  assert row["gain"]["mean"] == pytest.approx(0.015)
  text = (tmp_path / "out" / "report.md").read_text()
  assert "baseline by 5 points on selection" in text
  assert "iou_gain_vs_ratio.png" in text and (tmp_path / "out" / "iou_gain_vs_ratio.png").exists()


def test_a_report_gives_every_scored_split_its_baseline_verdict_and_gains(tmp_path):
  runs = tmp_path / "runs"
  # val: both losses far above the 30% all-foreground baseline; test: neither is 5 points above
  # its 45% baseline, so test is "not learned" while val has its gains.
  for seed, (soft, iou) in enumerate([(0.50, 0.60), (0.52, 0.64)]):
    for loss, score in (("softmax", soft), ("iou", iou)):
      _fake_run(runs, "disk", loss, seed, score)
      path = runs / f"camvid-disk-{loss}-s{seed}" / "results.json"
      result = json.loads(path.read_text())
      result["val"]["baselines"] = {"all_foreground": 0.30, "all_background": 0.0}
      result["test"] = {"iou": score - 0.16, "per_image_iou": 0.1,
                        "baselines": {"all_foreground": 0.45, "all_background": 0.0}}
      path.write_text(json.dumps(result))
  row = report.write_report(str(runs), str(tmp_path / "out"), title="t")[0]
  assert row["by_split"]["val"]["learned"] and not row["by_split"]["test"]["learned"]
  assert row["by_split"]["test"]["gain"]["mean"] == pytest.approx(0.11)
  lines = (tmp_path / "out" / "report.md").read_text().splitlines()
  assert "| all-foreground baseline | 30.0 | 45.0 |" in lines
  note = [line for line in lines if line.startswith("- **disk at 30:1**")][0]
  assert "val: soft IoU − softmax +11.0 points" in note
  assert "test: not learned at this scale (neither loss beats the all-foreground baseline by " \
         "5 points on test)" in note


def test_report_says_why_it_has_no_class_ratios(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("FCN_IOU_OFFLINE", "1")
  assert report.ratios("camvid", str(tmp_path / "missing"), "train") == {}
  assert "note: no background:object ratios in the report (--data_dir=" in capsys.readouterr().err


def test_report_refuses_a_bound_file_it_cannot_read(tmp_path):
  (tmp_path / "runs").mkdir()
  for content in ("not json", '{"dataset": "camvid"}'):
    (tmp_path / "bound.json").write_text(content)
    with pytest.raises(UserError, match="--bound=.*bound.json: not a .json written by"):
      report.main([f"--runs={tmp_path / 'runs'}", f"--out={tmp_path / 'out'}",
                   f"--bound={tmp_path / 'bound.json'}"])


def test_huge_pages_tunable_is_added_once_and_keeps_other_tunables():
  env = cli.env_with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "A": "1"})
  assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
  assert env["A"] == "1"
  assert cli.env_with_huge_pages(env) == env  # already set: unchanged
  user_choice = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
  assert cli.env_with_huge_pages(user_choice) == user_choice  # the user's own setting wins
  assert cli.env_with_huge_pages({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"


def _fake_train_run(commands):
  """reproduce.train_run that records each run's flags and writes an empty results.json."""

  def train_run(flags, workdir, out_dir):
    commands.append([*flags, f"--workdir={workdir}"])
    assert workdir.startswith(out_dir)
    os.makedirs(workdir)
    open(os.path.join(workdir, "results.json"), "w", encoding="utf-8").close()

  return train_run


@pytest.mark.slow
def test_overrides_reach_backbone_runs_and_report(tmp_path, monkeypatch):
  commands, reports = [], []
  monkeypatch.setattr(reproduce, "train_run", _fake_train_run(commands))
  monkeypatch.setattr(report, "write_report",
                      lambda runs, out, **kwargs: reports.append(report.settings_lines(
                          json.loads(pathlib.Path(runs, "grid.json").read_text()), runs)))
  reproduce.main(["--grid=camvid", "--protocol=cpu", "--image_size=720x960", "--width_mult=0.5",
                  "--scale_jitter=0.25", "--colour_jitter=0.2", "--fc6_kernel=1",
                  "--categories=pole", "--losses=softmax,iou", "--seeds=0", "--jobs=1",
                  f"--out={tmp_path}"])
  assert len(commands) == 3  # backbone, then softmax and iou
  for command in commands:
    assert "--image_size=720x960" in command and "--width_mult=0.5" in command, command
    assert "--fc6_kernel=1" in command, command
    assert "--crop_size=180x240" in command
    assert "--scale_jitter=0.25" in command and "--colour_jitter=0.2" in command, command
  for setting in ("image_size: 720x960 instead of None", "scale_jitter: 0.25 instead of 0.0",
                  "fc6_kernel: 1 instead of 6",
                  "colour_jitter: 0.2 instead of 0.0", "init: shared instead of imagenet"):
    assert any(line.startswith(f"- {setting}") for line in reports[0]), setting
  with pytest.raises(UserError, match="--image_size='720'"):
    reproduce.main(["--grid=camvid", "--image_size=720", f"--out={tmp_path}"])


@pytest.mark.parametrize("amx,dtype", [(True, "bfloat16"), (False, "float32")])
def test_a_grid_records_and_runs_the_dtype_auto_stands_for_here(amx, dtype, tmp_path,
                                                               monkeypatch):
  commands = []
  monkeypatch.setattr(reproduce, "train_run", _fake_train_run(commands))
  monkeypatch.setattr(report, "write_report", lambda runs, out, **kwargs: None)
  monkeypatch.setattr(precision, "cpu_has", lambda flag, cpuinfo=None: amx and flag == "amx_bf16")
  monkeypatch.setenv("XLA_FLAGS", "")
  reproduce.main(["--grid=camvid", "--protocol=cpu", "--categories=pole", "--losses=iou",
                  "--seeds=0", f"--out={tmp_path}"])
  record = json.loads((tmp_path / "camvid-cpu" / "grid.json").read_text())
  assert protocols.load_preset("cpu").settings["dtype"] == "auto"
  assert record["settings"]["dtype"] == dtype
  assert len(commands) == 2 and all(f"--dtype={dtype}" in command for command in commands)


@pytest.mark.slow
def test_bad_seeds_or_categories_are_refused_before_anything_is_written(tmp_path, monkeypatch):
  commands = []
  monkeypatch.setattr(reproduce, "train_run", _fake_train_run(commands))
  monkeypatch.setattr(report, "write_report", lambda runs, out, **kwargs: None)
  with pytest.raises(UserError, match=r"--seeds='0,x' is not a comma-separated list"):
    reproduce.main(["--grid=camvid", "--seeds=0,x", f"--out={tmp_path}"])
  with pytest.raises(UserError, match=r"`categories`='horse' is not a camvid category; valid: "):
    reproduce.main(["--grid=camvid", "--categories=pole,horse", f"--out={tmp_path}"])
  with pytest.raises(UserError, match=r"--losses='lovasz,dice': dice not among the camvid"):
    reproduce.main(["--grid=camvid", "--losses=lovasz,dice", f"--out={tmp_path}"])
  assert not commands and not list(tmp_path.iterdir())
  reproduce.main(["--grid=voc", "--categories=TV", "--seeds=0", "--jobs=1", f"--out={tmp_path}"])
  assert [os.path.basename(c[-1].split("=", 1)[1]) for c in commands[1:]] == [
      "voc2012-tvmonitor-softmax-s0", "voc2012-tvmonitor-iou-s0"]  # aliases name the same runs
  del commands[:]
  reproduce.main(["--grid=camvid", "--categories=pole", "--losses=lovasz", "--seeds=0,1",
                  "--jobs=1", f"--out={tmp_path}"])
  assert [os.path.basename(c[-1].split("=", 1)[1]) for c in commands[1:]] == [
      "camvid-pole-lovasz-s0", "camvid-pole-lovasz-s1"]


@pytest.mark.parametrize("flag", ["--train_steps=0", "--width_mult=-1"])
def test_sizes_and_rates_must_be_positive(flag, tmp_path):
  name, value = flag.split("=")
  with pytest.raises(UserError, match=f"^{name}='{value}' must be positive$"):
    reproduce.main([flag, "--grid=camvid"])
  with pytest.raises(UserError, match=f"^{name}='many' is not a number$"):
    reproduce.main([f"{name}=many", "--grid=camvid"])
  assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_grid_resumes_only_with_its_own_settings(tmp_path, monkeypatch, capsys):
  commands = []
  monkeypatch.setattr(reproduce, "train_run", _fake_train_run(commands))
  monkeypatch.setattr(report, "write_report", lambda runs, out, **kwargs: None)
  first = ["--grid=camvid", "--protocol=cpu", "--scale_jitter=0.25", "--categories=pole",
           "--losses=softmax,iou", "--jobs=1", f"--out={tmp_path}"]
  reproduce.main(first + ["--seeds=0"])
  assert len(commands) == 3
  reproduce.main(first + ["--seeds=0,1"])  # same settings, more seeds: resumes
  assert len(commands) == 5
  progress = capsys.readouterr().out
  assert "[2/4] " in progress and "done before, skipped" in progress
  assert "1 to go, about 0 min" in progress and progress.count("to go") == 2
  with pytest.raises(UserError, match=r"grid\.json: this grid was started with other settings "
                                      r"\(scale_jitter 0\.25 -> 0\.0\)"):
    reproduce.main(["--grid=camvid", "--protocol=cpu", "--categories=pole", "--seeds=0,1,2",
                    f"--out={tmp_path}"])
  with pytest.raises(UserError, match=r"init path None -> other\.npz"):
    reproduce.main(first + ["--seeds=0", "--init=other.npz"])
  assert len(commands) == 5  # refused before anything ran


@pytest.mark.slow
def test_a_grid_recorded_before_a_setting_existed_resumes_with_its_paper_value(
    tmp_path, monkeypatch):
  commands = []
  monkeypatch.setattr(reproduce, "train_run", _fake_train_run(commands))
  monkeypatch.setattr(report, "write_report", lambda runs, out, **kwargs: None)
  flags = ["--grid=camvid", "--protocol=cpu", "--categories=pole", "--losses=softmax,iou",
           "--seeds=0", "--jobs=1", f"--out={tmp_path}"]
  reproduce.main(flags)
  record_path = tmp_path / "camvid-cpu" / "grid.json"
  record = json.loads(record_path.read_text())
  del record["settings"]["fc6_kernel"]  # as written before the setting existed
  record_path.write_text(json.dumps(record))
  settings = protocols.read_grid_record(str(tmp_path / "camvid-cpu"))["settings"]
  assert settings["fc6_kernel"] == 6
  assert not any(line.startswith("fc6_kernel")
                 for line in protocols.deviations(settings, "cpu"))
  reproduce.main(flags + ["--seeds=0,1"])  # the old grid's runs used fc6 6x6: resumes
  assert len(commands) == 5
  with pytest.raises(UserError, match=r"fc6_kernel 6 -> 1"):
    reproduce.main(flags + ["--fc6_kernel=1"])


def test_report_without_grid_record_says_settings_are_unknown(tmp_path):
  _fake_run(tmp_path / "runs", "disk", "iou", 0, 0.4)
  report.write_report(str(tmp_path / "runs"), str(tmp_path / "out"))
  text = (tmp_path / "out" / "report.md").read_text()
  assert "Settings not recorded (no grid.json" in text
  assert text.startswith("# IoU loss vs softmax loss: runs\n")
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match="empty: no finished runs"):
    report.write_report(str(tmp_path / "empty"), str(tmp_path / "nothing"))
  assert not (tmp_path / "nothing").exists()


def test_commands_restart_once_with_huge_pages_unless_the_user_chose(monkeypatch):
  calls = []
  monkeypatch.setattr(cli.os, "execve", lambda *args: calls.append(args))
  monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
  cli.restart_with_huge_pages()
  assert len(calls) == 1
  executable, argv, env = calls[0]
  assert executable == sys.executable and argv == sys.orig_argv
  assert env["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
  for chosen in ("glibc.malloc.hugetlb=1", "glibc.malloc.hugetlb=0"):
    monkeypatch.setenv("GLIBC_TUNABLES", chosen)
    cli.restart_with_huge_pages()
  assert len(calls) == 1  # already set, or the user's own choice: no restart




def test_report_ratios_count_every_labelled_pixel_of_the_split(tmp_path):
  root = tmp_path / "CamVid"
  fake_data.make_camvid(str(root), counts=(("train", 3),))
  labels = np.stack([np.array(Image.open(root / "trainannot" / f"train_{i:03d}.png"))
                     for i in range(3)])
  ratios = report.ratios("camvid", str(root), "train")
  counted = labels[labels != 11]  # void is class 11
  for class_id, name in ((3, "road"), (2, "pole")):
    objects = (counted == class_id).sum()
    assert ratios[name] == pytest.approx((counted.size - objects) / objects)


def test_compare_grids_tests_mean_differences_against_two_standard_errors(tmp_path, capsys):
  import compare_grids
  def summary(road_iou, fence_iou):
    return {"rows": [{"category": "road", "iou": {"val": {"iou": road_iou}}},
                     {"category": "fence", "iou": {"val": {"iou": fence_iou}},
                      "softmax": {"val": {"iou": [0.1, 0.0, 3]}}}]}
  a = summary([0.80, 0.03, 3], [0.30, 0.06, 3])
  b = summary([0.86, 0.03, 3], [0.20, 0.06, 3])
  rows = compare_grids.compare(a, b)
  assert [(r["category"], r["loss"]) for r in rows] == [("road", "iou"), ("fence", "softmax"),
                                                         ("fence", "iou")]
  road, fence_softmax, fence = rows
  assert fence_softmax["difference"] == 0 and fence_softmax["within_spread"]
  # road: +0.06 against sqrt(2 * 0.03^2 / 3) = 0.0245 -> 2.45 standard errors apart
  assert math.isclose(road["difference"], 0.06) and not road["within_spread"]
  assert math.isclose(road["standard_error"], math.sqrt(2 * 0.03 ** 2 / 3))
  # fence: -0.10 against 0.049 -> 2.04 standard errors: outside; half of it would be inside
  assert not fence["within_spread"]
  assert compare_grids.compare(a, summary([0.86, 0.03, 3], [0.25, 0.06, 3]))[2]["within_spread"]
  (tmp_path / "a.json").write_text(json.dumps(a))
  assert cli.run(compare_grids.main, [str(tmp_path / "a.json"), str(tmp_path / "none.json")]) == 2
  assert capsys.readouterr().err.strip().endswith("none.json: no such file")
