"""Benchmarks: train step vs PyTorch, the loss kernel, the input pipeline, compile time.

  python experiments/bench.py                       # everything but time_to_result
  python experiments/bench.py --only=matmul         # does --dtype=bfloat16 pay on this CPU?
  python experiments/bench.py --only=huge_pages     # does glibc's huge-page malloc pay here?
  python experiments/bench.py --only=train_step --batch_sizes=1,4 --dtypes=float32,bfloat16
  python experiments/bench.py --only=train_step --batch_sizes=4 --isolated --huge_pages
  # At the CPU protocol's network and crop batch (reproduce.py --protocol=cpu):
  python experiments/bench.py --only=train_step --width_mult=0.25 --size=180x240 --batch_sizes=8
  python experiments/bench.py --only=pipeline --camvid_dir=../shared/data/camvid
  # Wall time of one CPU-protocol run (reproduce.py's preset, CamVid road, IoU loss):
  python experiments/bench.py --only=time_to_result --init=runs/.../shared_backbone.npz

Each sub-benchmark prints a Markdown table; all results go to --out as JSON. Speeds are
medians of interleaved repeats in one process (with --isolated: of fresh processes per
framework, alternating), reported as ratios to a reference measured alongside (PyTorch eager
for the train step, a plain copy of the same bytes for the loss), because these machines
are noisy. PyTorch is optional (`pip install torch`, CPU build).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

# PyTorch's OpenMP threads otherwise spin after each op and steal the cores from XLA's
# threads in the interleaved timing (and XLA's from PyTorch): make them sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fcn_iou_jax import cli, losses, models, steps  # pylint: disable=wrong-import-position
from fcn_iou_jax.errors import UserError  # pylint: disable=wrong-import-position

HEIGHT, WIDTH = 360, 480
ISOLATED_STEPS = 5  # timed steps per fresh process with --isolated (after one compiling step)


def _interleaved_medians(runners: dict, repeats: int) -> dict:
  """Median seconds per call of each runner, timed round-robin so that machine noise hits
  all of them alike. Each runner is called once first (compile, warm-up), untimed."""
  for run in runners.values():
    run()
  samples = {name: [] for name in runners}
  for _ in range(repeats):
    for name, run in runners.items():
      start = time.perf_counter()
      run()
      samples[name].append(time.perf_counter() - start)
  return {name: float(np.median(values)) for name, values in samples.items()}


def _table(title, header, rows):
  print(f"\n### {title}\n")
  print("| " + " | ".join(header) + " |")
  print("|" + "---|" * len(header))
  for row in rows:
    print("| " + " | ".join(str(v) for v in row) + " |")


def _batch(batch_size, size=(HEIGHT, WIDTH), seed=0):
  rng = np.random.default_rng(seed)
  return {"image": (50 * rng.standard_normal((batch_size, *size, 3))).astype(np.float32),
          "label": (rng.uniform(size=(batch_size, *size)) < 0.2).astype(np.uint8),
          "mask": np.ones((batch_size, *size), np.uint8)}


def _jax_setup(width_mult=1.0, dropout_rate=0.5, dtype="float32", conv_forms="tuned"):
  model = models.FCN32s(width_mult=width_mult, dropout_rate=dropout_rate, dtype=jnp.dtype(dtype),
                        conv_forms=conv_forms)
  tx = steps.make_optimizer("sgd", learning_rate=1e-4, momentum=0.99, weight_decay=5e-4)
  params = models.init_params(model, jax.random.key(0))
  params["score"]["kernel"] = 0.01 * jax.random.normal(jax.random.key(1),
                                                       params["score"]["kernel"].shape)
  parallel = steps.ParallelSteps("pmap", model=model, loss_fn=losses.soft_iou_loss_from_logits,
                                 tx=tx)
  state = parallel.put_state(steps.create_train_state(params, tx, jax.random.key(2)))
  return model, params, parallel, state


def _device_batch(parallel, batch):
  return parallel.put_batch({k: v.reshape(parallel.local_device_count, -1, *v.shape[1:])
                             for k, v in batch.items()})


def _on_gpu() -> bool:
  return jax.default_backend() == "gpu"


def _torch_device(torch) -> str:
  """PyTorch runs where JAX does: on CUDA when JAX's backend is a GPU, else on the CPU."""
  return "cuda" if _on_gpu() and torch.cuda.is_available() else "cpu"


def _torch_images(torch, images, device):
  return torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(device)


def _torch_inputs(torch, batch, device):
  return (_torch_images(torch, batch["image"], device),
          torch.from_numpy(batch["label"].astype(np.float32)).to(device))


def check_same_function(params, torch_reference, torch, width_mult=1.0):
  """Max |logit difference| between the JAX model and the PyTorch copy (eval mode), both in
  full float32 (no TF32 on GPUs)."""
  model = models.FCN32s(width_mult=width_mult)
  images = _batch(1)["image"][:, :120, :160]
  with jax.default_matmul_precision("highest"):
    jax_logits = np.asarray(model.apply({"params": params}, images))
  device = _torch_device(torch)
  allow_tf32 = torch.backends.cudnn.allow_tf32
  torch.backends.cudnn.allow_tf32 = False
  try:
    net = torch_reference.TorchFCN32s(params).to(device).eval()
    with torch.no_grad():
      torch_logits = net(_torch_images(torch, images, device))
  finally:
    torch.backends.cudnn.allow_tf32 = allow_tf32
  torch_logits = torch_logits.cpu().numpy()
  return float(np.max(np.abs(jax_logits - torch_logits))), float(np.max(np.abs(jax_logits)))


def _make_step(framework, batch_size, dtype, width_mult, size, conv_forms):
  """A no-argument callable running one train step of ``framework`` (``jax`` or ``torch``,
  whose ``dtype`` is an autocast dtype) on a fixed batch, to completion."""
  batch = _batch(batch_size, size)
  if framework == "jax":
    _, _, parallel, state = _jax_setup(width_mult, dtype=dtype, conv_forms=conv_forms)
    device_batch = _device_batch(parallel, batch)
    states = [state]

    def jax_step():
      states[0], out = parallel.train(states[0], device_batch)
      jax.block_until_ready(out)

    return jax_step
  import torch  # pylint: disable=import-outside-toplevel
  import torch_reference  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(os.cpu_count())
  params = _jax_setup(width_mult)[1]  # the weights the JAX runs start from
  device = _torch_device(torch)
  step = torch_reference.make_train_step(
      torch_reference.TorchFCN32s(jax.device_get(params)).to(device),
      autocast_dtype=None if dtype == "float32" else getattr(torch, dtype))
  images, labels = _torch_inputs(torch, batch, device)
  return lambda: step(images, labels)


def step_probe(framework, batch_size, dtype, width_mult, size, conv_forms, steps):
  """In this (fresh) process: ``steps`` + 1 train steps of ``framework``; prints the median
  seconds and minor page faults per step (the first, compiling step excluded) and the peak
  resident memory."""
  import resource  # pylint: disable=import-outside-toplevel
  run = _make_step(framework, batch_size, dtype, width_mult, size, conv_forms)
  seconds, faults = [], []
  for _ in range(steps + 1):
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    run()
    seconds.append(time.perf_counter() - start)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
  # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent that
  # started this process (the benchmark itself), VmHWM belongs to this process's memory only.
  with open("/proc/self/status", encoding="utf-8") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
  print(f"step_seconds={np.median(seconds[1:])} minor_faults={np.median(faults[1:])} "
        f"peak_rss_mb={peak_kb / 1024:.0f}")


def _run_step_probe(framework, batch_size, dtype, width_mult, size, conv_forms, steps,
                    env=None) -> dict:
  """:func:`step_probe` in a fresh process: ``{step_seconds, minor_faults, peak_rss_mb}``
  (NaN where the probe failed, with its error printed)."""
  out = subprocess.run([sys.executable, os.path.abspath(__file__), f"--step_probe={framework}",
                        f"--probe_steps={steps}", f"--batch_sizes={batch_size}",
                        f"--dtypes={dtype}", f"--width_mult={width_mult}",
                        f"--size={size[0]}x{size[1]}", f"--conv_forms={conv_forms}"],
                       capture_output=True, text=True, check=False, env=env)
  lines = [l for l in out.stdout.splitlines() if l.startswith("step_seconds=")]
  if not lines:
    print(f"step probe ({framework}, batch {batch_size}, {dtype}) failed: {out.stderr[-500:]}")
    return dict.fromkeys(("step_seconds", "minor_faults", "peak_rss_mb"), float("nan"))
  return {key: float(value) for key, value in (field.split("=") for field in lines[-1].split())}


def _peak_rss_mb(framework, batch_size, dtype, width_mult, size, conv_forms):
  """Peak resident memory of a fresh process running 2 train steps of ``framework``."""
  return _run_step_probe(framework, batch_size, dtype, width_mult, size, conv_forms,
                         steps=1)["peak_rss_mb"]


def _isolated_medians(probes: dict, repeats: int, env=None) -> dict:
  """Median seconds per step of each probe (keyword arguments of :func:`_run_step_probe`),
  each repeat a fresh process per probe, round-robin, all in environment ``env``."""
  samples = {name: [] for name in probes}
  for _ in range(repeats):
    for name, probe in probes.items():
      samples[name].append(_run_step_probe(**probe, env=env)["step_seconds"])
  return {name: float(np.median(values)) for name, values in samples.items()}


def bench_huge_pages(batch_size, dtype, width_mult, size, repeats):
  """The JAX train step in fresh processes without and with glibc's transparent huge pages
  (cli.env_with_huge_pages, which reproduce.py gives its runs), alternating."""
  samples = {"default": [], "huge_pages": []}
  for _ in range(repeats):
    for name, env in (("default", None), ("huge_pages", cli.env_with_huge_pages())):
      samples[name].append(_run_step_probe("jax", batch_size, dtype, width_mult, size, "tuned",
                                           steps=5, env=env))
  rows = [{"malloc": name, "step_seconds": float(np.median([r["step_seconds"] for r in runs])),
           "minor_faults_per_step": float(np.median([r["minor_faults"] for r in runs]))}
          for name, runs in samples.items()]
  rows[1]["speedup"] = rows[0]["step_seconds"] / rows[1]["step_seconds"]
  _table(f"JAX train step, batch {batch_size}, {dtype}, {size[0]}x{size[1]}: glibc huge pages "
         f"(medians over {repeats} process pairs)", list(rows[1]),
         [[f"{r.get(k, float('nan')):.3g}" if k != "malloc" else r[k] for k in rows[1]]
          for r in rows])
  return {"batch_size": batch_size, "dtype": dtype, "rows": rows}


def _jax_step_device_mb(parallel, state, device_batch):
  """GPU memory of one compiled train step: its arguments, outputs and temporaries, less the
  donated buffers that outputs reuse (XLA's own accounting of the executable)."""
  stats = parallel.train.lower(state, device_batch).compile().memory_analysis()
  return (stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
          - stats.alias_size_in_bytes) / 2**20


def _torch_step_device_mb(torch, step, images, labels):
  """Peak CUDA memory PyTorch's allocator held over two train steps."""
  torch.cuda.reset_peak_memory_stats()
  for _ in range(2):
    step(images, labels)
  return torch.cuda.max_memory_allocated() / 2**20


def bench_train_step(batch_sizes, dtypes, torch_dtypes, repeats, with_memory, width_mult, size,
                     conv_forms, isolated=False, huge_pages=False):
  try:
    import torch  # pylint: disable=import-outside-toplevel
    import torch_reference  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(os.cpu_count())
  except ImportError:
    torch = None
  setups = {dtype: _jax_setup(width_mult, dtype=dtype, conv_forms=conv_forms)
            for dtype in dtypes}  # same weights
  host_params = jax.device_get(setups[dtypes[0]][1])
  results = {"device": str(jax.devices()[0]), "size": list(size), "width_mult": width_mult,
             "conv_forms": conv_forms, "timing": "isolated" if isolated else "interleaved",
             "huge_pages": huge_pages, "rows": []}
  if torch is not None:
    torch_device = _torch_device(torch)
    results["torch_device"] = torch_device
    difference, scale = check_same_function(host_params, torch_reference, torch, width_mult)
    results["max_logit_difference"] = difference
    print(f"same function check: max |logit difference| {difference:.2e} (logits up to "
          f"{scale:.2e})")
    if difference > 1e-3 * max(scale, 1.0):
      raise SystemExit("the PyTorch reference does not compute the same function")
  rows = []
  states = {dtype: state for dtype, (_, _, _, state) in setups.items()}
  for batch_size in batch_sizes:
    batch = _batch(batch_size, size)
    runners, device_batches = {}, {}
    for dtype, (_, _, parallel, _) in setups.items():
      device_batches[dtype] = _device_batch(parallel, batch)

      def jax_step(dtype=dtype, parallel=parallel):
        states[dtype], out = parallel.train(states[dtype], device_batches[dtype])
        jax.block_until_ready(out)

      runners[f"jax_{dtype}"] = jax_step
    torch_steps = {}
    if torch is not None:
      images, labels = _torch_inputs(torch, batch, torch_device)
      for torch_dtype in torch_dtypes:
        net = torch_reference.TorchFCN32s(host_params).to(torch_device)
        torch_steps[torch_dtype] = torch_reference.make_train_step(
            net, autocast_dtype=None if torch_dtype == "float32" else getattr(torch, torch_dtype))
        runners[f"torch_{torch_dtype}"] = (
            lambda step=torch_steps[torch_dtype]: step(images, labels))
    if isolated:
      common = {"batch_size": batch_size, "width_mult": width_mult, "size": size,
                "conv_forms": conv_forms, "steps": ISOLATED_STEPS}
      seconds = _isolated_medians({name: dict(common, framework=name.split("_")[0],
                                              dtype=name.split("_", 1)[1])
                                   for name in runners}, repeats,
                                  env=cli.env_with_huge_pages() if huge_pages else None)
    else:
      seconds = _interleaved_medians(runners, repeats)
    torch_memory = {}
    if with_memory and torch is not None:
      for torch_dtype, step in torch_steps.items():
        torch_memory[torch_dtype] = (
            _torch_step_device_mb(torch, step, images, labels) if torch_device == "cuda" else
            _peak_rss_mb("torch", batch_size, torch_dtype, width_mult, size, conv_forms))
    for dtype in dtypes:
      row = {"batch_size": batch_size, "jax_dtype": dtype,
             "jax_images_per_sec": batch_size / seconds[f"jax_{dtype}"]}
      if torch is not None:
        torch_dtype = dtype if dtype in torch_dtypes else torch_dtypes[0]
        row["torch_dtype"] = torch_dtype
        row["torch_images_per_sec"] = batch_size / seconds[f"torch_{torch_dtype}"]
        row["ratio_jax_over_torch"] = row["jax_images_per_sec"] / row["torch_images_per_sec"]
      if with_memory:
        parallel = setups[dtype][2]
        if _on_gpu():
          row["jax_device_mb"] = _jax_step_device_mb(parallel, states[dtype],
                                                     device_batches[dtype])
        else:
          row["jax_peak_rss_mb"] = _peak_rss_mb("jax", batch_size, dtype, width_mult, size,
                                                conv_forms)
        if torch is not None:
          memory = "device_mb" if torch_device == "cuda" else "peak_rss_mb"
          row[f"torch_{memory}"] = torch_memory[row["torch_dtype"]]
      rows.append(row)
  results["rows"] = rows
  header = list(rows[0])
  timing = (f"fresh processes alternating, {ISOLATED_STEPS} steps each"
            + (", glibc huge pages for both" if huge_pages else "") if isolated
            else "interleaved in one process")
  _table(f"Train step, FCN-32s/AlexNet caffe layout at width {width_mult}, "
         f"{size[0]}x{size[1]}, soft-IoU + SGD, conv forms {conv_forms}, {timing} "
         f"({results['device']}; PyTorch eager on {results.get('torch_device', '-')})", header,
         [[f"{r[k]:.3g}" if isinstance(r[k], float) else r[k] for k in header] for r in rows])
  return results


def bench_matmul(repeats):
  """fc6's product at batch 4 (768x9216 @ 9216x4096) per operand/result dtype: whether this
  machine's XLA runs bfloat16 operands faster (AMX), i.e. whether --dtype=bfloat16 pays."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((768, 9216)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((9216, 4096)), jnp.float32)
  x_low, w_low = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
  variants = {
      "float32 x float32 -> float32": (jax.jit(jnp.dot), x, w),
      "bfloat16 x bfloat16 -> float32 (--dtype=bfloat16)": (jax.jit(
          lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32)), x_low, w_low),
      "bfloat16 x bfloat16 -> bfloat16": (jax.jit(jnp.dot), x_low, w_low),
  }
  runners = {name: (lambda f=f, a=a, b=b: jax.block_until_ready(f(a, b)))
             for name, (f, a, b) in variants.items()}
  times = _interleaved_medians(runners, repeats)
  flops = 2 * x.shape[0] * x.shape[1] * w.shape[1]
  rows = [{"product": name, "ms": 1e3 * t, "GFLOP_per_s": flops / t / 1e9}
          for name, t in times.items()]
  _table("fc6-shaped matmul (768x9216 @ 9216x4096)", list(rows[0]),
         [[r["product"], f"{r['ms']:.1f}", f"{r['GFLOP_per_s']:.0f}"] for r in rows])
  return {"rows": rows}


def bench_loss(repeats):
  shape = (8, 512, 512)
  rng = np.random.default_rng(0)
  probs = jnp.asarray(rng.uniform(size=shape).astype(np.float32))
  labels = jnp.asarray((rng.uniform(size=shape) < 0.3).astype(np.float32))
  autodiff_loss = lambda p, y: 1.0 - jnp.divide(*losses.soft_iou_terms(p, y))
  variants = {
      "autodiff": jax.jit(jax.value_and_grad(autodiff_loss)),
      "closed_form_eq8": jax.jit(jax.value_and_grad(losses.soft_iou_loss)),
      "copy_roof": jax.jit(lambda p, y: (p + y)),  # reads 2 arrays, writes 1: same bytes
  }
  bytes_moved = 3 * probs.size * 4
  runners = {name: (lambda f=function: jax.block_until_ready(f(probs, labels)))
             for name, function in variants.items()}
  try:
    import torch  # pylint: disable=import-outside-toplevel
    torch_probs = torch.from_numpy(np.array(probs)).requires_grad_(True)
    torch_labels = torch.from_numpy(np.array(labels))

    def torch_loss():
      torch_probs.grad = None
      inter = (torch_probs * torch_labels).sum()
      union = (torch_probs + torch_labels - torch_probs * torch_labels).sum()
      (1 - inter / union).backward()

    runners["torch_autograd"] = torch_loss
  except ImportError:
    pass
  times = _interleaved_medians(runners, repeats)
  rows = [{"variant": name, "ms": 1e3 * t, "GB_per_s": bytes_moved / t / 1e9,
           "fraction_of_copy": times["copy_roof"] / t} for name, t in times.items()]
  _table(f"Soft-IoU value+gradient on {shape} float32", list(rows[0]),
         [[r["variant"], f"{r['ms']:.2f}", f"{r['GB_per_s']:.1f}", f"{r['fraction_of_copy']:.2f}"]
          for r in rows])
  return {"shape": list(shape), "rows": rows}


def bench_pipeline(camvid_dir, prepared_dir, batch_size, batches, step_images_per_sec):
  from fcn_iou_jax.data import pipeline, sources  # pylint: disable=import-outside-toplevel
  cli.hide_accelerators_from_tensorflow()
  source = sources.Source("camvid", data_dir=camvid_dir, prepared_dir=prepared_dir)
  dataset, _, _ = pipeline.make_train_dataset(
      source.examples("selection_train"), category_id=2, void=11, image_size=(HEIGHT, WIDTH),
      batch_size=batch_size, backbone="caffe", seed=0)
  iterator = dataset.as_numpy_iterator()
  next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  rate = batches * batch_size / (time.perf_counter() - start)
  row = {"pipeline_images_per_sec": rate, "train_step_images_per_sec": step_images_per_sec,
         "headroom": rate / step_images_per_sec if step_images_per_sec else None}
  _table(f"CamVid training pipeline at {HEIGHT}x{WIDTH}, batch {batch_size}", list(row),
         [[f"{v:.3g}" if isinstance(v, float) else v for v in row.values()]])
  return row


def bench_compile(batch_size):
  _, _, parallel, state = _jax_setup()
  device_batch = _device_batch(parallel, _batch(batch_size))
  start = time.perf_counter()
  compiled = parallel.train.lower(state, device_batch).compile()
  seconds = time.perf_counter() - start
  _table("Compile time of the train step", ["batch", "seconds"], [[batch_size, f"{seconds:.1f}"]])
  del compiled
  return {"batch_size": batch_size, "compile_seconds": seconds}


def bench_time_to_result(camvid_dir, init):
  """Wall time of one run.py training of reproduce.py's CPU protocol, from launch to results."""
  import reproduce  # pylint: disable=import-outside-toplevel
  settings = dict(reproduce.PROTOCOLS["cpu"], init=init or "scratch")
  flags = reproduce.run_flags(settings, init)
  with tempfile.TemporaryDirectory() as workdir:
    command = [sys.executable, os.path.join(os.path.dirname(__file__), "run.py"), *flags,
               "--dataset=camvid", "--category=road", "--loss=iou", f"--data_dir={camvid_dir}",
               f"--workdir={workdir}", "--log_every=100"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    with open(os.path.join(workdir, "results.json"), encoding="utf-8") as handle:
      result = json.load(handle)
  row = {"run": "camvid road, iou loss, cpu protocol", "init": init or "scratch",
         "train_steps": settings["train_steps"], "wall_seconds": seconds,
         "train_images_per_sec": result["train_images_per_sec"], "val_iou": result["val"]["iou"]}
  _table("Time to result of one CPU-protocol run", list(row),
         [[f"{v:.3g}" if isinstance(v, float) else v for v in row.values()]])
  return row


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("--only", default="matmul,train_step,loss,pipeline,compile")
  parser.add_argument("--batch_sizes", default="1,4")
  parser.add_argument("--width_mult", type=float, default=1.0, help="train step: network width")
  parser.add_argument("--size", type=cli.parse_size("size"), default=(HEIGHT, WIDTH),
                      help="train step: image size HxW")
  parser.add_argument("--dtypes", default="float32,bfloat16",
                      help="train step: the JAX model's matmul operand dtypes (--dtype of run.py)")
  parser.add_argument("--torch_dtypes", default="float32",
                      help="train step: PyTorch's dtypes (bfloat16: torch.autocast); each JAX "
                           "dtype is compared with PyTorch's of the same name, else the first")
  parser.add_argument("--conv_forms", default="tuned", choices=models.CONV_FORMS,
                      help="train step: how the JAX model computes convolutions "
                           "(models.conv2d)")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--isolated", action="store_true",
                      help="train step: time each framework in fresh processes, alternating "
                           "(--repeats rounds), instead of interleaved in this process, where "
                           "the two share the allocator, threads and caches")
  parser.add_argument("--huge_pages", action="store_true",
                      help="train step with --isolated: run both frameworks' processes with "
                           "glibc's transparent huge pages (cli.env_with_huge_pages)")
  parser.add_argument("--memory", action="store_true", help="also peak RSS per framework")
  parser.add_argument("--camvid_dir", default=os.path.join("..", "shared", "data", "camvid"))
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
  if args.step_probe:
    step_probe(args.step_probe, batch_sizes[0], args.dtypes.split(",")[0], args.width_mult,
               args.size, args.conv_forms, args.probe_steps)
    return
  results = {"command": " ".join(sys.argv), "jax": jax.__version__}
  selected = args.only.split(",")
  if "train_step" in selected:
    results["train_step"] = bench_train_step(
        batch_sizes, args.dtypes.split(","), args.torch_dtypes.split(","), args.repeats,
        args.memory, args.width_mult, args.size, args.conv_forms, args.isolated,
        args.huge_pages)
  if "huge_pages" in selected:
    results["huge_pages"] = bench_huge_pages(batch_sizes[-1], args.dtypes.split(",")[-1],
                                             args.width_mult, args.size, args.repeats)
  if "matmul" in selected:
    results["matmul"] = bench_matmul(args.repeats)
  if "loss" in selected:
    results["loss"] = bench_loss(args.repeats * 4)
  if "pipeline" in selected:
    rows = results.get("train_step", {}).get("rows", [])
    step_rate = max((r["jax_images_per_sec"] for r in rows), default=0.0)
    results["pipeline"] = bench_pipeline(args.camvid_dir, args.prepared_dir, 4, 50, step_rate)
  if "compile" in selected:
    results["compile"] = bench_compile(batch_sizes[-1])
  if "time_to_result" in selected:
    results["time_to_result"] = bench_time_to_result(args.camvid_dir, args.init)
  with open(args.out, "w", encoding="utf-8") as handle:
    json.dump(results, handle, indent=2)
  print(f"\nwrote {args.out}")


def argparse_hidden():
  import argparse  # pylint: disable=import-outside-toplevel
  return argparse.SUPPRESS


if __name__ == "__main__":
  sys.exit(cli.run(main))
