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
  rows = train_step["rows"]
  assert [(r["batch_size"], r["jax_dtype"]) for r in rows] == [(1, "bfloat16")]
  assert rows[0]["jax_images_per_sec"] > 0
  assert math.isfinite(rows[0]["jax_peak_rss_mb"]) and rows[0]["jax_peak_rss_mb"] > 100
  huge_pages = json.loads(out.read_text())["huge_pages"]["rows"]
  assert [r["malloc"] for r in huge_pages] == ["default", "huge_pages"]
  assert all(r["step_seconds"] > 0 and r["minor_faults_per_step"] >= 0 for r in huge_pages)
