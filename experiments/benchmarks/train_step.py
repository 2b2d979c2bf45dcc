"""The train-step table: the project's step against a PyTorch copy of the same network and loss."""

import time

import jax
import numpy as np

from benchmarks import common, probes, step_runners
from fcn_iou_jax import cli, models


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


def _step_memory_mb(probe):
  """Memory of one train step ``probe`` (keyword arguments of ``make_step``): on a GPU the
  step's device memory, built alone in this process; on the CPU the peak resident memory of a
  fresh process."""
  if common.on_gpu():
    return step_runners.make_step(**probe).device_mb()
  return probes.peak_rss_mb(**probe)


def bench_train_step(batch_sizes, dtypes, torch_dtypes, repeats, with_memory, width_mult, size,
                     conv_forms, isolated=False, huge_pages=False):
  try:
    import torch
    import torch_reference
  except ImportError:
    torch = None
  results = {"device": str(jax.devices()[0]), "size": list(size), "width_mult": width_mult,
             "conv_forms": conv_forms, "timing": "isolated" if isolated else "interleaved",
             "huge_pages": huge_pages, "parallel": common.jax_parallel_mode(),
             "rows": []}
  names = [f"jax_{dtype}" for dtype in dtypes]
  if torch is not None:
    names += [f"torch_{dtype}" for dtype in torch_dtypes]
    results["torch_device"] = common.torch_device(torch)
    if common.on_gpu() and results["torch_device"] != "cuda":
      raise SystemExit("JAX runs on a GPU but this PyTorch build has no CUDA: the comparison "
                       "needs both on the GPU (install a CUDA build of torch)")
    difference, scale = check_same_function(common.initial_params(width_mult), torch_reference,
                                            torch, width_mult)
    results["max_logit_difference"] = difference
    print(f"same function check: max |logit difference| {difference:.2e} (logits up to "
          f"{scale:.2e})")
    if difference > 1e-3 * max(scale, 1.0):
      raise SystemExit("the PyTorch reference does not compute the same function")
  rows, failures, every_rate = [], {}, {}
  for batch_size in batch_sizes:
    step_probes = {name: {"framework": name.split("_")[0], "batch_size": batch_size,
                          "dtype": name.split("_", 1)[1], "width_mult": width_mult,
                          "size": size, "conv_forms": conv_forms} for name in names}
    memory_mb = ({name: _step_memory_mb(probe) for name, probe in step_probes.items()}
                 if with_memory else {})
    if isolated:
      timed = {name: dict(probe, steps=probes.TIMED_STEPS) for name, probe in step_probes.items()}
      environment = cli.env_with_huge_pages() if huge_pages else None
      seconds, errors = probes.isolated_medians(timed, repeats, env=environment)
      fallbacks = {f"{name}{AMX_OFF_SUFFIX}": dict(timed[name], env=AMX_OFF) for name in errors
                   if name == "torch_bfloat16" and not common.on_gpu()}
      if fallbacks:  # PyTorch's bfloat16 without AMX kernels, where its AMX path crashes
        more_seconds, more_errors = probes.isolated_medians(fallbacks, repeats, env=environment)
        seconds, errors = {**seconds, **more_seconds}, {**errors, **more_errors}
      failures.update({f"{name} at batch {batch_size}": cause for name, cause in errors.items()})
    else:
      runners, first_seconds, errors = _built_runners(step_probes)
      seconds = common.interleaved_medians(runners, repeats)
      seconds.update({name: float("nan") for name in errors})
      results.setdefault("first_step_seconds", {})[batch_size] = first_seconds
      failures.update({f"{name} at batch {batch_size}": cause for name, cause in errors.items()})
    working = {name: value for name, value in seconds.items()
               if name.startswith("torch_") and np.isfinite(value)}
    every_rate[batch_size] = {
        f"torch {_label(name)}" if name.startswith("torch_") else name.replace("_", " ", 1):
        batch_size / value for name, value in seconds.items() if np.isfinite(value)}
    for dtype in dtypes:
      row = {"batch_size": batch_size, "jax_dtype": dtype,
             "jax_images_per_sec": batch_size / seconds[f"jax_{dtype}"]}
      if torch is not None:
        # Equal precision first: PyTorch's fastest configuration in the same dtype (eager,
        # compiled, or without AMX where AMX crashes); then its fastest of all that run.
        # A dtype none of whose configurations ran: "failed" if one was asked for, else "not run".
        same = {name: value for name, value in working.items() if _dtype(name) == dtype}
        equal = min(same, key=same.get) if same else None
        asked = any(_dtype(name) == dtype for name in seconds if name.startswith("torch_"))
        row["torch_equal_precision"] = (_label(equal) if equal
                                        else "failed" if asked else "not run")
        row["torch_equal_precision_images_per_sec"] = (
            batch_size / working[equal] if equal else float("nan"))
        row["ratio_equal_precision"] = (row["jax_images_per_sec"]
                                        / row["torch_equal_precision_images_per_sec"])
        fastest = min(working, key=working.get) if working else None
        row["torch_fastest"] = _label(fastest) if fastest else "failed"
        row["torch_fastest_images_per_sec"] = (batch_size / working[fastest] if fastest
                                               else float("nan"))
        row["ratio_to_fastest"] = row["jax_images_per_sec"] / row["torch_fastest_images_per_sec"]
      if with_memory:
        memory = "device_mb" if common.on_gpu() else "peak_rss_mb"
        row[f"jax_{memory}"] = memory_mb[f"jax_{dtype}"]
        if torch is not None:
          row[f"torch_{memory}"] = memory_mb.get(f"torch_{dtype}", float("nan"))
      rows.append(row)
  results["rows"] = rows
  results["images_per_sec"] = every_rate  # every configuration that ran, per batch size
  results["failed"] = failures
  header = list(rows[0])
  timing = (f"fresh processes alternating, {probes.TIMED_STEPS} steps each"
            + (", glibc huge pages for both" if huge_pages else "") if isolated
            else "interleaved in one process")
  common.print_table(
      f"Train step, FCN-32s/AlexNet caffe layout at width {width_mult}, {size[0]}x{size[1]}, "
      f"soft-IoU + SGD, conv forms {conv_forms}, JAX's step {results['parallel']}, {timing} "
      f"({results['device']}; PyTorch on "
      f"{results.get('torch_device', '-')})", header,
      [[f"{r[k]:.3g}" if isinstance(r[k], float) else r[k] for k in header] for r in rows])
  for batch_size, rates in every_rate.items():
    print(f"batch {batch_size}, images/s: "
          + ", ".join(f"{name} {rate:.3g}" for name, rate in rates.items()))
  for name, cause in failures.items():
    print(f"failed: {name}: {cause}")
  return results


def _built_runners(step_probes: dict) -> tuple[dict, dict, dict]:
  """``(runners, first_seconds, errors)``: each probe's step runner after its first step, the
  seconds that step took (compilation included), and for a PyTorch configuration that failed
  to build or run, its one-line cause instead (the project's own steps must run)."""
  runners, first_seconds, errors = {}, {}, {}
  for name, probe in step_probes.items():
    start = time.perf_counter()
    try:
      run = step_runners.make_step(**probe)
      run()
    except Exception as error:  # pylint: disable=broad-except  # any of PyTorch's failures
      if probe["framework"] != "torch":
        raise
      lines = str(error).strip().splitlines()
      errors[name] = type(error).__name__ + (f": {lines[0][:200]}" if lines else "")
      continue
    runners[name], first_seconds[name] = run, time.perf_counter() - start
  return runners, first_seconds, errors


# PyTorch's oneDNN without its AMX kernels (AVX-512 bfloat16 instead).
AMX_OFF = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}
AMX_OFF_SUFFIX = "_amx_off"


def _dtype(name: str) -> str:
  """``torch_bfloat16_amx_off``, ``torch_float32+default`` -> ``bfloat16``, ``float32``."""
  return name[len("torch_"):].partition("+")[0].removesuffix(AMX_OFF_SUFFIX)


def _label(name: str) -> str:
  """``torch_bfloat16_amx_off`` -> ``bfloat16 (AMX off)``."""
  dtype = name[len("torch_"):]
  return (f"{dtype[:-len(AMX_OFF_SUFFIX)]} (AMX off)" if dtype.endswith(AMX_OFF_SUFFIX)
          else dtype)
