"""The benchmark script runs end to end on a tiny network (numbers are not checked)."""

import json
import math
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_train_step_and_huge_pages_benchmarks_write_their_rows(tmp_path):
  out = tmp_path / "bench.json"
  finished = subprocess.run(
      [sys.executable, os.path.join(REPO, "experiments", "bench.py"),
       "--only=train_step,huge_pages", "--width_mult=0.0625", "--size=64x96",
       "--batch_sizes=1", "--dtypes=bfloat16", "--repeats=1", "--memory", "--isolated",
       f"--out={out}"],
      capture_output=True, text=True, timeout=300, cwd=REPO)
  assert finished.returncode == 0, finished.stderr[-2000:]
  train_step = json.loads(out.read_text())["train_step"]
  assert train_step["timing"] == "isolated"
  assert train_step["parallel"] == "jit"  # the default on the script's one CPU device
  rows = train_step["rows"]
  assert [(r["batch_size"], r["jax_dtype"]) for r in rows] == [(1, "bfloat16")]
  assert rows[0]["jax_images_per_sec"] > 0
  assert train_step["images_per_sec"]["1"]["jax bfloat16"] == rows[0]["jax_images_per_sec"]
  assert math.isfinite(rows[0]["jax_peak_rss_mb"]) and rows[0]["jax_peak_rss_mb"] > 100
  huge_pages = json.loads(out.read_text())["huge_pages"]["rows"]
  assert [r["malloc"] for r in huge_pages] == ["default", "huge_pages"]
  assert all(r["step_seconds"] > 0 and r["minor_faults_per_step"] >= 0 for r in huge_pages)


def test_a_crashing_pytorch_configuration_is_named_and_its_amx_off_fallback_used(monkeypatch):
  from benchmarks import probes, train_step
  torch = pytest.importorskip("torch")
  del torch
  monkeypatch.setattr(train_step, "check_same_function", lambda *args, **kwargs: (0.0, 1.0))
  seconds = {"jax": 1.0, "float32": 2.0, "bfloat16_amx_off": 1.6}

  def probe(framework, dtype, env, **kwargs):
    if framework == "torch" and dtype == "bfloat16":
      if env.get("ONEDNN_MAX_CPU_ISA") != "AVX512_CORE_BF16":  # AMX on: glibc aborts
        return {"step_seconds": float("nan"), "error": probes.failure_cause(
            -6, "some output\nmalloc_consolidate(): unaligned fastbin chunk detected\n")}
      return {"step_seconds": seconds["bfloat16_amx_off"]}
    return {"step_seconds": seconds["jax" if framework == "jax" else dtype]}

  monkeypatch.setattr(probes, "run_step_probe", probe)
  results = train_step.bench_train_step([4], ["bfloat16", "float32"], ["float32", "bfloat16"],
                                        1, False, 0.0625, (64, 96), "tuned", isolated=True)
  bfloat16, float32 = results["rows"]
  assert bfloat16["torch_equal_precision"] == "bfloat16 (AMX off)"
  assert bfloat16["ratio_equal_precision"] == pytest.approx(1.6)  # 4/1.0 over 4/1.6
  assert bfloat16["torch_fastest"] == "bfloat16 (AMX off)"
  assert float32["torch_equal_precision"] == "float32"
  assert float32["ratio_equal_precision"] == pytest.approx(2.0)
  assert results["images_per_sec"][4] == pytest.approx({  # the crashed one left out
      "jax bfloat16": 4.0, "jax float32": 4.0, "torch float32": 2.0,
      "torch bfloat16 (AMX off)": 2.5})
  assert results["failed"] == {"torch_bfloat16 at batch 4": "malloc_consolidate(): unaligned "
                               "fastbin chunk detected (killed by SIGABRT)"}


def test_fresh_process_timings_print_each_process_s_result_as_it_ends(monkeypatch, capsys):
  from benchmarks import probes
  outcomes = iter([{"step_seconds": 2.0}, {"step_seconds": float("nan"), "error": "boom (exit 1)"},
                   {"step_seconds": 3.0}])
  monkeypatch.setattr(probes, "run_step_probe", lambda **probe: next(outcomes))
  seconds, errors = probes.isolated_medians(
      {"jax_float32": {"batch_size": 4}, "torch_float32": {"batch_size": 4}}, repeats=2)
  assert seconds["jax_float32"] == 2.5 and errors == {"torch_float32": "boom (exit 1)"}
  assert capsys.readouterr().err.splitlines() == [  # the failed one is not run again
      "  jax_float32, batch 4, round 1 of 2: 2.000 s per step",
      "  torch_float32, batch 4, round 1 of 2: failed: boom (exit 1)",
      "  jax_float32, batch 4, round 2 of 2: 3.000 s per step"]


def test_matmul_flops_count_products_and_convolutions_by_their_definition():
  import jax
  import jax.numpy as jnp
  from benchmarks import utilisation
  flops = lambda f, *args: utilisation.matmul_flops(jax.make_jaxpr(f)(*args).jaxpr)
  x, w = jnp.ones((3, 4)), jnp.ones((4, 5))
  assert flops(jax.jit(jnp.dot), x, w) == 2 * 3 * 5 * 4  # inside a jit
  images, kernel = jnp.ones((2, 6, 7, 4)), jnp.ones((3, 3, 2, 6))  # 2 groups of 2 channels
  conv = lambda images, kernel: jax.lax.conv_general_dilated(
      images, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=2)
  forward = 2 * (2 * 6 * 7 * 6) * (3 * 3 * 2)  # every output: one 3x3 filter on 2 channels
  assert flops(conv, images, kernel) == forward
  # Training: the forward pass, the kernel's gradient and the input's, each as many products.
  loss = lambda kernel, images: jnp.sum(conv(images, kernel) ** 2)
  assert flops(jax.grad(loss, argnums=(0, 1)), kernel, images) == 3 * forward


def test_utilisation_times_the_step_beside_the_products_it_is_measured_against():
  sys.path.insert(0, os.path.join(REPO, "experiments"))
  from benchmarks import utilisation  # pylint: disable=import-outside-toplevel
  (row,) = utilisation.bench_utilisation([2], ["bfloat16"], 0.0625, (64, 96), "tuned",
                                         repeats=1)["rows"]
  assert row["peak_product"] in utilisation.peak_runners("bfloat16")
  assert row["step_s"] > 0 and row["peak_GFLOP_per_s"] > 0
  assert row["share_of_peak"] == pytest.approx(row["step_GFLOP_per_s"] / row["peak_GFLOP_per_s"])


def test_layer_benchmark_feeds_each_layer_the_shape_the_network_gives_it():
  sys.path.insert(0, os.path.join(REPO, "experiments"))
  from benchmarks import layers  # pylint: disable=import-outside-toplevel
  from fcn_iou_jax import models  # pylint: disable=import-outside-toplevel
  shapes = {row[0]: row[1:] for row in layers.layer_shapes(360, 480)}
  # By hand: 560x680 padded input; conv1 11/4 -> 138x168, pool 3/2 (ceil) -> 69x84;
  # conv2 (pad 2) keeps 69x84, pool -> 34x42; conv3-5 keep it, pool -> 17x21; fc6 6x6 -> 12x16.
  assert shapes["conv1"] == (560, 680, 3, 96, 11, 4, 0, 1)
  assert shapes["conv2"] == (69, 84, 96, 256, 5, 1, 2, 2)
  assert shapes["conv5"] == (34, 42, 384, 256, 3, 1, 1, 2)
  assert shapes["fc6"] == (17, 21, 256, 4096, 6, 1, 0, 1)
  assert shapes["fc7"][:2] == models.score_size("caffe", 6, 360, 480) == (12, 16)
  for dtype in ("float32", "bfloat16"):
    result = layers.bench_layers(1, (64, 96), 0.0625, "tuned", repeats=1, dtype=dtype)
    assert result["dtype"] == dtype
    assert [row["layer"] for row in result["rows"]] == list(shapes)
    assert all(row["jax_ms"] > 0 for row in result["rows"])


@pytest.mark.parametrize("flags,named", [
    (["--only=layers", "--dtypes=float16"], ("--dtypes", "float16")),
    (["--only=train_step", "--torch_dtypes=float32,bfloat16+max_autotune"],
     ("--torch_dtypes", "bfloat16+max_autotune")),
])
def test_a_bad_benchmark_flag_is_refused_in_one_line_before_anything_runs(tmp_path, flags,
                                                                         named):
  out = tmp_path / "bench.json"
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, "experiments", "bench.py"), *flags, f"--out={out}"],
      capture_output=True, text=True, timeout=120, cwd=REPO)
  assert result.returncode == 2
  assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0
  assert all(word in result.stderr for word in named)
  assert not out.exists()


def test_pytorch_configurations_parse_into_dtype_compile_mode_and_layout():
  from benchmarks import step_runners
  parse = step_runners.parse_torch_config
  assert parse("float32") == ("float32", None, False)
  assert parse("bfloat16+channels_last") == ("bfloat16", None, True)
  assert parse("bfloat16+max-autotune+channels_last") == ("bfloat16", "max-autotune", True)
  assert parse("float32+channels_last+default") == ("float32", "default", True)
  for bad in ("float16", "float32+fast", "float32+default+max-autotune"):
    with pytest.raises(ValueError, match=bad.replace("+", r"\+")):
      parse(bad)


def test_a_pytorch_configuration_failing_in_one_process_is_named_and_the_rest_timed(
    monkeypatch):
  from benchmarks import step_runners, train_step
  torch = pytest.importorskip("torch")
  del torch
  monkeypatch.setattr(train_step, "check_same_function", lambda *args, **kwargs: (0.0, 1.0))
  calls = []

  def make_step(framework, dtype, **kwargs):
    if dtype == "bfloat16+default":
      def compile_and_fail():
        raise RuntimeError("backend compiler failed\nwith a long story")
      return compile_and_fail
    return lambda: calls.append((framework, dtype))

  monkeypatch.setattr(step_runners, "make_step", make_step)
  results = train_step.bench_train_step([2], ["bfloat16"], ["float32", "bfloat16+default"],
                                        2, False, 0.0625, (64, 96), "tuned")
  assert results["failed"] == {
      "torch_bfloat16+default at batch 2": "RuntimeError: backend compiler failed"}
  assert set(results["images_per_sec"][2]) == {"jax bfloat16", "torch float32"}
  assert results["rows"][0]["torch_equal_precision"] == "failed"
  assert results["rows"][0]["torch_fastest"] == "float32"
  assert set(results["first_step_seconds"][2]) == {"jax_bfloat16", "torch_float32"}
  assert calls.count(("jax", "bfloat16")) == 1 + 1 + 2  # first step, warm-up, two repeats


def test_a_dtype_pytorch_was_not_asked_to_run_is_not_run_not_failed(monkeypatch):
  from benchmarks import step_runners, train_step
  pytest.importorskip("torch")
  monkeypatch.setattr(train_step, "check_same_function", lambda *args, **kwargs: (0.0, 1.0))
  monkeypatch.setattr(step_runners, "make_step", lambda framework, dtype, **kwargs: lambda: None)
  results = train_step.bench_train_step([2], ["float32", "bfloat16"], ["float32"], 1, False,
                                        0.0625, (64, 96), "tuned")
  float32, bfloat16 = results["rows"]
  assert float32["torch_equal_precision"] == "float32"
  assert bfloat16["torch_equal_precision"] == "not run" and not results["failed"]
  assert bfloat16["torch_fastest"] == "float32"


@pytest.mark.parametrize("variable,value,message", [
    ("PARTS", "eager,tabel", "error: PARTS: no part 'tabel' (eager, compiled, tests,"),
    ("AUTOTUNE", "float32:4 bf16:16", "error: AUTOTUNE: 'bf16:16' is not dtype:batch"),
])
def test_the_gpu_benchmark_script_refuses_a_bad_part_or_run_in_one_line(tmp_path, variable, value,
                                                                         message):
  finished = subprocess.run(
      ["bash", os.path.join(REPO, "experiments", "gpu_bench.sh")], capture_output=True,
      text=True, timeout=60, cwd=REPO,
      env={**os.environ, variable: value, "OUT": str(tmp_path / "out"), "PYTHON": "false"})
  assert finished.returncode == 2
  assert finished.stderr.count("\n") == 1 and finished.stderr.startswith(message)
  assert finished.stdout == "" and not (tmp_path / "out").exists()
