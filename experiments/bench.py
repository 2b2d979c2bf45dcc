"""Benchmarks: train step vs PyTorch, the loss kernels, the input pipeline, compile time.

  python experiments/bench.py                       # everything but time_to_result
  python experiments/bench.py --only=matmul         # does --dtype=bfloat16 pay on this CPU?
  python experiments/bench.py --only=huge_pages     # does glibc's huge-page malloc pay here?
  python experiments/bench.py --only=utilisation --dtypes=bfloat16  # share of the AMX peak
  python experiments/bench.py --only=layers --batch_sizes=4   # each conv layer vs PyTorch's
  python experiments/bench.py --only=layers --batch_sizes=4 --dtypes=bfloat16  # vs autocast
  python experiments/bench.py --only=train_step --batch_sizes=1,4 --dtypes=float32,bfloat16
  python experiments/bench.py --only=train_step --batch_sizes=4 --isolated --huge_pages
  # At the CPU protocol's network and crop batch (reproduce.py --protocol=cpu):
  python experiments/bench.py --only=train_step --width_mult=0.25 --size=180x240 --batch_sizes=8
  python experiments/bench.py --only=pipeline --camvid_dir=/path/to/CamVid
  # Wall time of one CPU-protocol run (reproduce.py's preset, CamVid road, IoU loss):
  python experiments/bench.py --only=time_to_result --init=runs/.../shared_backbone.npz

Each sub-benchmark prints a Markdown table; all results go to --out as JSON. Speeds are
medians of interleaved repeats in one process (with --isolated: of fresh processes per
framework, alternating), reported as ratios to a reference measured alongside (the PyTorch
configurations of --torch_dtypes for the train step, a plain copy of the same bytes for the
loss), because these machines are noisy. PyTorch is optional (`pip install torch`, CPU build).
"""

import json
import os
import sys

# PyTorch's OpenMP threads otherwise spin after each op and steal the cores from XLA's
# threads in the interleaved timing (and XLA's from PyTorch): make them sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# pylint: disable=wrong-import-position  # after the OpenMP setting above
import jax

from benchmarks import (common, end_to_end, kernels, layers, probes, step_runners,
                        train_step, utilisation)
from fcn_iou_jax import cli
from fcn_iou_jax.kernels import convolution
from fcn_iou_jax.errors import UserError


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("--only", default="matmul,train_step,loss,pipeline,compile")
  parser.add_argument("--batch_sizes", default="1,4")
  parser.add_argument("--width_mult", type=float, default=1.0, help="train step: network width")
  parser.add_argument("--size", type=cli.parse_size("size"), default=(common.HEIGHT, common.WIDTH),
                      help="train step: image size HxW")
  parser.add_argument("--dtypes", default="float32,bfloat16",
                      help="train step: the JAX model's matmul operand dtypes (--dtype of run.py); "
                           "layers: the first of them (XLA:CPU's flags are set per process)")
  parser.add_argument("--torch_dtypes", default="float32",
                      help="train step: PyTorch's configurations: float32, bfloat16 "
                           "(torch.autocast), either followed by +channels_last and/or by "
                           "+MODE for torch.compile (+default, +max-autotune, ...); each JAX "
                           "dtype is compared with PyTorch's fastest of the same dtype, then "
                           "with its fastest of all")
  parser.add_argument("--conv_forms", default="tuned", choices=convolution.CONV_FORMS,
                      help="train step: how the JAX model computes convolutions "
                           "(kernels.convolution.conv2d)")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--isolated", action="store_true",
                      help="train step: time each framework in fresh processes, alternating "
                           "(--repeats rounds), instead of interleaved in this process, where "
                           "the two share the allocator, threads and caches")
  parser.add_argument("--huge_pages", action="store_true",
                      help="train step with --isolated: run both frameworks' processes with "
                           "glibc's transparent huge pages (cli.env_with_huge_pages)")
  parser.add_argument("--memory", action="store_true", help="also peak RSS per framework")
  parser.add_argument("--camvid_dir", default=None,
                      help="pipeline, time_to_result: the CamVid folder (default: the "
                           "default data folder, $FCN_IOU_DATA_DIR/camvid)")
  parser.add_argument("--prepared_dir", default=None)
  parser.add_argument("--init", default=None,
                      help="time_to_result: the shared backbone .npz (default: from scratch)")
  parser.add_argument("--out", default="bench_results.json")
  parser.add_argument("--step_probe", default=None, help=argparse_hidden())
  parser.add_argument("--probe_steps", type=int, default=5, help=argparse_hidden())
  args = parser.parse_args(argv)
  batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
  if args.huge_pages and not args.isolated:
    raise UserError("--huge_pages needs --isolated (glibc reads the setting when a process "
                    "starts; export GLIBC_TUNABLES=glibc.malloc.hugetlb=1 for this one)")
  torch_configs = args.torch_dtypes.split(",")
  for config in torch_configs:
    try:
      step_runners.parse_torch_config(config)
    except ValueError as error:
      raise UserError(f"--torch_dtypes: {error}") from None
  if args.step_probe:
    probes.step_probe(args.step_probe, batch_sizes[0], args.dtypes.split(",")[0],
                      args.width_mult, args.size, args.conv_forms, args.probe_steps)
    return
  results = {"command": " ".join(sys.argv), "jax": jax.__version__}
  selected = args.only.split(",")
  layer_dtype = args.dtypes.split(",")[0]
  if "layers" in selected:  # run.py's XLA:CPU flags for that dtype, for this process
    if layer_dtype not in cli.XLA_CPU_DTYPES:
      raise UserError(f"--dtypes: the layers benchmark takes one of "
                      f"{sorted(cli.XLA_CPU_DTYPES)} first, not {layer_dtype!r}")
    cli.use_xla_cpu_flags(layer_dtype)
  if "train_step" in selected:
    results["train_step"] = train_step.bench_train_step(
        batch_sizes, args.dtypes.split(","), torch_configs, args.repeats,
        args.memory, args.width_mult, args.size, args.conv_forms, args.isolated,
        args.huge_pages)
  if "huge_pages" in selected:
    results["huge_pages"] = probes.bench_huge_pages(
        batch_sizes[-1], args.dtypes.split(",")[-1], args.width_mult, args.size, args.repeats)
  if "utilisation" in selected:
    results["utilisation"] = utilisation.bench_utilisation(
        batch_sizes, args.dtypes.split(","), args.width_mult, args.size, args.conv_forms,
        args.repeats)
  if "layers" in selected:
    results["layers"] = layers.bench_layers(batch_sizes[-1], args.size, args.width_mult,
                                            args.conv_forms, args.repeats, layer_dtype)
  if "matmul" in selected:
    results["matmul"] = kernels.bench_matmul(args.repeats)
  if "loss" in selected:
    results["loss"] = kernels.bench_loss(args.repeats * 4)
    results["multiclass_loss"] = kernels.bench_multiclass_loss(args.repeats)
  if "pipeline" in selected:
    rows = results.get("train_step", {}).get("rows", [])
    step_rate = max((r["jax_images_per_sec"] for r in rows), default=0.0)
    results["pipeline"] = end_to_end.bench_pipeline(args.camvid_dir, args.prepared_dir, 4, 50,
                                                    step_rate)
  if "compile" in selected:
    results["compile"] = end_to_end.bench_compile(batch_sizes[-1])
  if "time_to_result" in selected:
    results["time_to_result"] = end_to_end.bench_time_to_result(args.camvid_dir, args.init)
  with open(args.out, "w", encoding="utf-8") as handle:
    json.dump(results, handle, indent=2)
  print(f"\nwrote {args.out}")


def argparse_hidden():
  import argparse
  return argparse.SUPPRESS


if __name__ == "__main__":
  sys.exit(cli.run(main))
