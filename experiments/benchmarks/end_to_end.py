"""End-to-end benchmarks: the input pipeline, compile time, time to result of one run."""

import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import common
from fcn_iou_jax import cli

RUN_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "run.py")


def bench_pipeline(camvid_dir, prepared_dir, batch_size, batches, step_images_per_sec):
  from fcn_iou_jax.data import pipeline, sources
  cli.hide_accelerators_from_tensorflow()
  source = sources.Source("camvid", data_dir=camvid_dir, prepared_dir=prepared_dir)
  labels = source.spec.labels
  dataset, _, _ = pipeline.make_train_dataset(
      source.examples("selection_train"), category_id=labels.category_id("pole", dataset="camvid"),
      void=labels.void,
      image_size=(common.HEIGHT, common.WIDTH), batch_size=batch_size, backbone="caffe", seed=0)
  iterator = dataset.as_numpy_iterator()
  next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  rate = batches * batch_size / (time.perf_counter() - start)
  row = {"pipeline_images_per_sec": rate, "train_step_images_per_sec": step_images_per_sec,
         "headroom": rate / step_images_per_sec if step_images_per_sec else None}
  common.print_table(
      f"CamVid training pipeline at {common.HEIGHT}x{common.WIDTH}, batch {batch_size}",
      list(row), [[f"{v:.3g}" if isinstance(v, float) else v for v in row.values()]])
  return row


def bench_compile(batch_size):
  _, _, parallel, state = common.jax_setup()
  device_batch = parallel.put_batch(common.make_batch(batch_size))
  start = time.perf_counter()
  compiled = parallel.train.lower(state, device_batch).compile()
  seconds = time.perf_counter() - start
  common.print_table("Compile time of the train step", ["batch", "seconds"],
                     [[batch_size, f"{seconds:.1f}"]])
  del compiled
  return {"batch_size": batch_size, "compile_seconds": seconds}


def bench_time_to_result(camvid_dir, init):
  """Wall time of one run.py training of reproduce.py's CPU protocol, from launch to results."""
  import protocols
  import reproduce
  settings = dict(protocols.load_preset("cpu").settings, init=init or "scratch")
  flags = reproduce.run_flags(settings, init)
  flags += [f"--data_dir={camvid_dir}"] if camvid_dir else []
  with tempfile.TemporaryDirectory() as workdir:
    command = [sys.executable, RUN_SCRIPT, *flags, "--dataset=camvid", "--category=road",
               "--loss=iou", f"--workdir={workdir}", "--log_every=100"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    with open(os.path.join(workdir, "results.json"), encoding="utf-8") as handle:
      result = json.load(handle)
  row = {"run": "camvid road, iou loss, cpu protocol", "init": init or "scratch",
         "train_steps": settings["train_steps"], "wall_seconds": seconds,
         "train_images_per_sec": result["train_images_per_sec"], "val_iou": result["val"]["iou"]}
  common.print_table("Time to result of one CPU-protocol run", list(row),
                     [[f"{v:.3g}" if isinstance(v, float) else v for v in row.values()]])
  return row
