"""The train-step table: the project's step against a PyTorch copy of the same network and loss."""

import os

import jax
import numpy as np

from benchmarks import common, probes
from fcn_iou_jax import cli, models

ISOLATED_STEPS = 5  # timed steps per fresh process with --isolated (after one compiling step)


def check_same_function(params, torch_reference, torch, width_mult=1.0):
  """Max |logit difference| between the JAX model and the PyTorch copy (eval mode), both in
  full float32 (no TF32 on GPUs)."""
  model = models.FCN32s(width_mult=width_mult)
  images = common.make_batch(1)["image"][:, :120, :160]
  with jax.default_matmul_precision("highest"):
    jax_logits = np.asarray(model.apply({"params": params}, images))
  device = common.torch_device(torch)
  allow_tf32 = torch.backends.cudnn.allow_tf32
  torch.backends.cudnn.allow_tf32 = False
  try:
    net = torch_reference.TorchFCN32s(params).to(device).eval()
    with torch.no_grad():
      torch_logits = net(common.torch_images(torch, images, device))
  finally:
    torch.backends.cudnn.allow_tf32 = allow_tf32
  torch_logits = torch_logits.cpu().numpy()
  return float(np.max(np.abs(jax_logits - torch_logits))), float(np.max(np.abs(jax_logits)))


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
  setups = {dtype: common.jax_setup(width_mult, dtype=dtype, conv_forms=conv_forms)
            for dtype in dtypes}  # same weights
  host_params = jax.device_get(setups[dtypes[0]][1])
  results = {"device": str(jax.devices()[0]), "size": list(size), "width_mult": width_mult,
             "conv_forms": conv_forms, "timing": "isolated" if isolated else "interleaved",
             "huge_pages": huge_pages, "rows": []}
  if torch is not None:
    torch_device = common.torch_device(torch)
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
    batch = common.make_batch(batch_size, size)
    runners, device_batches = {}, {}
    for dtype, (_, _, parallel, _) in setups.items():
      device_batches[dtype] = common.device_batch(parallel, batch)

      def jax_step(dtype=dtype, parallel=parallel):
        states[dtype], out = parallel.train(states[dtype], device_batches[dtype])
        jax.block_until_ready(out)

      runners[f"jax_{dtype}"] = jax_step
    torch_steps = {}
    if torch is not None:
      images, labels = common.torch_inputs(torch, batch, torch_device)
      for torch_dtype in torch_dtypes:
        net = torch_reference.TorchFCN32s(host_params).to(torch_device)
        torch_steps[torch_dtype] = torch_reference.make_train_step(
            net, autocast_dtype=None if torch_dtype == "float32" else getattr(torch, torch_dtype))
        runners[f"torch_{torch_dtype}"] = (
            lambda step=torch_steps[torch_dtype]: step(images, labels))
    if isolated:
      shared = {"batch_size": batch_size, "width_mult": width_mult, "size": size,
                "conv_forms": conv_forms, "steps": ISOLATED_STEPS}
      seconds = probes.isolated_medians(
          {name: dict(shared, framework=name.split("_")[0], dtype=name.split("_", 1)[1])
           for name in runners}, repeats,
          env=cli.env_with_huge_pages() if huge_pages else None)
    else:
      seconds = common.interleaved_medians(runners, repeats)
    torch_memory = {}
    if with_memory and torch is not None:
      for torch_dtype, step in torch_steps.items():
        torch_memory[torch_dtype] = (
            _torch_step_device_mb(torch, step, images, labels) if torch_device == "cuda" else
            probes.peak_rss_mb("torch", batch_size, torch_dtype, width_mult, size, conv_forms))
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
        if common.on_gpu():
          row["jax_device_mb"] = _jax_step_device_mb(parallel, states[dtype],
                                                     device_batches[dtype])
        else:
          row["jax_peak_rss_mb"] = probes.peak_rss_mb("jax", batch_size, dtype, width_mult,
                                                       size, conv_forms)
        if torch is not None:
          memory = "device_mb" if torch_device == "cuda" else "peak_rss_mb"
          row[f"torch_{memory}"] = torch_memory[row["torch_dtype"]]
      rows.append(row)
  results["rows"] = rows
  header = list(rows[0])
  timing = (f"fresh processes alternating, {ISOLATED_STEPS} steps each"
            + (", glibc huge pages for both" if huge_pages else "") if isolated
            else "interleaved in one process")
  common.print_table(
      f"Train step, FCN-32s/AlexNet caffe layout at width {width_mult}, {size[0]}x{size[1]}, "
      f"soft-IoU + SGD, conv forms {conv_forms}, {timing} ({results['device']}; PyTorch eager "
      f"on {results.get('torch_device', '-')})", header,
      [[f"{r[k]:.3g}" if isinstance(r[k], float) else r[k] for k in header] for r in rows])
  return results
