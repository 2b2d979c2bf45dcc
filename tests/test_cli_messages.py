"""What the command line tells a user about a run: degenerate models, the from-scratch recipe."""

import os

import conftest
import pytest

import run
from fcn_iou_jax import cli
from fcn_iou_jax.config import Config
from fcn_iou_jax.errors import UserError

import flags


@pytest.fixture(autouse=True)
def _xla_flags_restored(monkeypatch):
  """Parsing run flags sets XLA_FLAGS for the process: restored after each test, so that
  processes other tests start do not inherit it."""
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))


def test_a_degenerate_split_warns_in_one_line_and_a_learned_one_does_not():
  scores = {"iou": 0.0091, "degenerate": "all_foreground",
            "baselines": {"all_foreground": 0.0091, "all_background": 0.0}}
  scratch = Config(dataset="camvid", category="sign_symbol")
  warning = cli.degenerate_warning("val", scores, scratch)
  assert warning.startswith("warning: on val, IoU 0.0091 is not 0.05 above predicting every "
                            "pixel as sign_symbol (0.0091)") and "\n" not in warning
  assert cli.SCRATCH_RECIPE in warning
  # Runs from weights, or on Adam already, are not told to change their optimiser.
  for config in (Config(dataset="camvid", category="sign_symbol", init="alexnet.npz"),
                 Config(dataset="camvid", category="sign_symbol", optimizer="adam")):
    warning = cli.degenerate_warning("val", scores, config)
    assert cli.SCRATCH_RECIPE not in warning and warning.endswith("(try more steps)")
  # Few pixels predicted (nearer all-background), but the bar not cleared is all-foreground's.
  road = {"iou": 0.1658, "degenerate": "all_background",
          "baselines": {"all_foreground": 0.2950, "all_background": 0.0}}
  road_run = Config(dataset="camvid", category="road")
  assert "IoU 0.1658 is not 0.05 above predicting every pixel as road (0.2950)" in \
      cli.degenerate_warning("val", road, road_run)
  assert cli.degenerate_warning("val", dict(scores, degenerate=None), road_run) is None


def test_a_scratch_run_on_the_paper_s_optimiser_says_what_to_pass(capsys):
  flags.parse_run_flags(["--category=disk", "--dataset=synthetic"], "")
  assert f"pass {cli.SCRATCH_RECIPE}" in capsys.readouterr().out
  for chosen in (["--optimizer=adam"], ["--learning_rate", "0.01"], ["--init=w.npz"]):
    flags.parse_run_flags(["--category=disk", "--dataset=synthetic", *chosen], "")
    assert "note:" not in capsys.readouterr().out
  with pytest.raises(UserError, match="unrecognized arguments: --optim=adam"):
    flags.parse_run_flags(["--category=disk", "--optim=adam"], "")  # no abbreviations


def test_an_output_folder_is_checked_by_making_it(tmp_path):
  with pytest.raises(UserError, match=r"^--workdir=/proc/x: cannot make the folder /proc/x "):
    cli.check_output_folder("/proc/x", "--workdir=/proc/x", make=False)
  cli.check_output_folder(str(tmp_path / "a" / "b"), "--workdir=a/b", make=False)
  assert not (tmp_path / "a").exists()  # checked, not made
  cli.check_output_folder(str(tmp_path / "a" / "b"), "--out=a/b")
  assert (tmp_path / "a" / "b").is_dir()


def test_a_file_the_system_refuses_is_one_line_and_other_errors_stay_visible(capsys):
  def disk_full(argv):
    raise OSError(28, "No space left on device", "/runs/a/metrics.jsonl")

  assert cli.run(disk_full, []) == 1
  assert capsys.readouterr().err == "error: /runs/a/metrics.jsonl: No space left on device\n"

  def bug(argv):
    raise OSError("not about a file")

  with pytest.raises(OSError, match="not about a file"):
    cli.run(bug, [])


def test_a_preset_replaces_the_defaults_and_flags_override_it(capsys):
  sweep = os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments", "configs",
                       "sweep.py")
  config, _, _ = flags.parse_run_flags([f"--config={sweep}",
                                     "--category=person", "--batch_size=2"], "")
  assert (config.width_mult, config.optimizer, config.learning_rate, config.init) == (
      0.125, "adam", 3e-4, "scratch")
  assert config.batch_size == 2  # the flag, not the preset's 8
  assert "note:" not in capsys.readouterr().out  # the preset chose Adam
  config, _, _ = flags.parse_run_flags(["--config=cpu", "--category=person", "--init=w.npz"], "")
  assert config.crop_size == (180, 240) and config.init == "w.npz"  # parsed like the flag
  with pytest.raises(UserError, match=r"--config=cpu: its init=shared stands for weights"):
    flags.parse_run_flags(["--config=cpu", "--category=person"], "")
  default, _, force_eval = flags.parse_run_flags(["--category=person", "--loss=iou"], "")
  assert not force_eval
  assert (default.optimizer, default.learning_rate, default.momentum) == ("sgd", 1e-4, 0.99)


@pytest.mark.parametrize("flag, message", [
    ("--width_mult=0", "--width_mult=0.0 must be positive"),
    ("--learning_rate=-1", "--learning_rate=-1.0 must be positive"),
    ("--dropout_rate=1.5", "--dropout_rate=1.5 must be in [0, 1)"),
    ("--momentum=1", "--momentum=1.0 must be in [0, 1)"),
    ("--colour_jitter=1", "--colour_jitter=1.0 must be in [0, 1)"),
    ("--weight_decay=-0.1", "--weight_decay=-0.1 must be 0 or positive"),
    ("--checkpoint_minutes=-1", "--checkpoint_minutes=-1.0 must be 0 or positive"),
    ("--train_steps=0", "--train_steps=0 must be positive"),
    ("--eval_every=0", "--eval_every=0 must be positive"),
    ("--image_size=big", "--image_size='big'"),
    ("--conv_forms=fast", "argument --conv_forms: invalid choice: 'fast'"),
    ("--category=kite", "--category='kite' is not a synthetic category; valid: disk, bar"),
])
def test_a_setting_out_of_its_range_is_one_line_naming_its_flag(tmp_path, capsys, flag, message):
  argv = ["--dataset=synthetic", "--category=disk", flag, f"--workdir={tmp_path / 'w'}"]
  assert cli.run(run.main, argv) == 2
  printed = capsys.readouterr()
  assert printed.err.startswith("error: ") and message in printed.err
  assert printed.err.count("\n") == 1 and printed.out == ""  # the error alone, nothing before
  assert not (tmp_path / "w").exists()


def test_xla_cpu_flags_are_chosen_per_dtype_and_cpu_and_a_user_s_own_kept(
    monkeypatch, tmp_path):
  amx, avx2 = tmp_path / "amx", tmp_path / "avx2"
  amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
  avx2.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n")
  one_by_one = ("--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce",)
  assert cli.xla_cpu_flags("float32", str(amx)) == (
      "--xla_cpu_experimental_ynn_fusion_type=dot,reduce",)
  assert cli.xla_cpu_flags("float32", str(avx2)) == one_by_one
  assert cli.xla_cpu_flags("bfloat16", str(amx)) == one_by_one
  assert cli.xla_cpu_flags("bfloat16", str(avx2)) == one_by_one
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  cli.use_xla_cpu_flags("float32")
  assert os.environ["XLA_FLAGS"] == " ".join(cli.xla_cpu_flags("float32"))
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type= --xla_dump_to=/x")
  cli.use_xla_cpu_flags("float32")
  assert os.environ["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type= --xla_dump_to=/x"


def test_xla_cpu_flags_are_left_out_where_jax_will_compute_on_an_accelerator(
    monkeypatch, tmp_path):
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  for platforms, expected in (("cuda", True), ("tpu,cpu", True), ("cpu", False),
                              (" cpu,cuda", False)):
    monkeypatch.setenv("JAX_PLATFORMS", platforms)
    assert cli.accelerator_expected() == expected, platforms
  monkeypatch.setenv("JAX_PLATFORMS", "cuda")
  cli.use_xla_cpu_flags("float32")
  assert "XLA_FLAGS" not in os.environ
  monkeypatch.delenv("JAX_PLATFORMS")  # then an installed GPU/TPU plugin tells
  plugin = tmp_path / "jax_plugins" / "xla_some_gpu"
  plugin.mkdir(parents=True)
  (plugin / "__init__.py").write_text("raise ImportError('a plugin is found, never imported')\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  assert cli.accelerator_expected()


def test_the_tests_leave_out_an_xla_flag_this_xla_does_not_know():
  known = "--xla_backend_optimization_level=0"
  assert conftest.known_xla_flags([known]) == [known]
  assert conftest.known_xla_flags([known, "--xla_no_such_flag=1"]) == [known]


def test_a_set_bfloat16_on_a_cpu_without_amx_is_told_it_is_no_faster_and_float32_is_not(
    monkeypatch, capsys):
  from fcn_iou_jax import precision
  monkeypatch.setattr(precision, "cpu_has", lambda flag, cpuinfo=None: False)
  assert cli.chosen_dtype("bfloat16") == "bfloat16"
  assert capsys.readouterr().out == (
      f"dtype: bfloat16 (as set; {precision.NO_AMX}: float32 products of the rounded operands, "
      "at about float32's speed; --dtype=auto picks float32)\n")
  assert cli.chosen_dtype("float32") == "float32" and not capsys.readouterr().out
