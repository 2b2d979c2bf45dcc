"""One framework's train step on a fixed batch, as a callable, with its GPU memory."""

import gc
import os

import jax
import numpy as np

import protocols
from benchmarks import common
from fcn_iou_jax import cli


class JaxStep:
  """The project's train step (``steps.parallel_steps``, the one run.py uses)."""

  def __init__(self, batch, dtype, width_mult, conv_forms):
    _, _, self.parallel, self.state = common.jax_setup(width_mult, dtype=dtype,
                                                       conv_forms=conv_forms)
    self.device_batch = self.parallel.put_batch(batch)

  def __call__(self):
    self.state, out = self.parallel.train(self.state, self.device_batch)
    jax.block_until_ready(out)

  def device_mb(self):
    """GPU memory of the compiled step: arguments + outputs + temporaries - the donated
    buffers that outputs reuse (XLA's own accounting of the executable)."""
    stats = self.parallel.train.lower(self.state, self.device_batch).compile().memory_analysis()
    return (stats.argument_size_in_bytes + stats.output_size_in_bytes
            + stats.temp_size_in_bytes - stats.alias_size_in_bytes) / 2**20


# What may follow a PyTorch configuration's dtype after a "+": its memory layout, or the mode
# of torch.compile (eager without one).
CHANNELS_LAST = "channels_last"
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def parse_torch_config(config: str) -> tuple[str, str | None, bool]:
  """``"bfloat16+max-autotune+channels_last"`` -> ``("bfloat16", "max-autotune", True)``:
  the dtype (float32, or bfloat16 under ``torch.autocast``), the torch.compile mode or None,
  and whether the network and images are channels-last. ValueError names a bad part."""
  dtype, *options = config.split("+")
  if dtype not in ("float32", "bfloat16"):
    raise ValueError(f"{config}: the dtype is float32 or bfloat16, not {dtype!r}")
  modes = [option for option in options if option != CHANNELS_LAST]
  unknown = [mode for mode in modes if mode not in COMPILE_MODES]
  if unknown or len(modes) > 1:
    raise ValueError(f"{config}: after the dtype come {CHANNELS_LAST} and at most one "
                     f"torch.compile mode of {', '.join(COMPILE_MODES)}")
  return dtype, modes[0] if modes else None, CHANNELS_LAST in options


class TorchStep:
  """PyTorch copy of the same network and loss (experiments/torch_reference.py), from the same
  initial weights, in the configuration ``config`` (``parse_torch_config``)."""

  def __init__(self, batch, config, width_mult):
    import torch
    import torch_reference
    torch.set_num_threads(os.cpu_count())
    self.torch = torch
    device = common.torch_device(torch)
    dtype, compile_mode, channels_last = parse_torch_config(config)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = torch_reference.TorchFCN32s(common.initial_params(width_mult)).to(
        device, memory_format=layout)
    if compile_mode:  # static shapes, as XLA's (one compilation per batch size)
      net = torch.compile(net, mode=compile_mode, dynamic=False)
    self.step = torch_reference.make_train_step(
        net, autocast_dtype=None if dtype == "float32" else getattr(torch, dtype))
    images, self.labels = common.torch_inputs(torch, batch, device)
    self.images = images.contiguous(memory_format=layout)

  def __call__(self):
    self.step(self.images, self.labels)

  def device_mb(self):
    """Peak CUDA memory PyTorch's allocator held over two train steps."""
    gc.collect()  # tensors of runners built before this one must not count
    self.torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
      self()
    return self.torch.cuda.max_memory_allocated() / 2**20


def make_step(framework, batch_size, dtype, width_mult, size, conv_forms):
  """A no-argument callable running one train step of ``framework`` (``jax`` or ``torch``)
  to completion on a fixed batch of ``batch_size`` images of ``size``; ``dtype`` is the JAX
  model's dtype or PyTorch's configuration (``parse_torch_config``)."""
  batch = common.make_batch(batch_size, size)
  if framework == "jax":
    return JaxStep(batch, dtype, width_mult, conv_forms)
  return TorchStep(batch, dtype, width_mult)


def timed_size(width_mult: float) -> tuple[int, int]:
  """Where the A/B scripts of results/bench time a step of ``width_mult``: CamVid's 360x480 at
  width 1, the CPU protocol's crops (experiments/configs/cpu.py) at any other width."""
  if width_mult == 1.0:
    return common.HEIGHT, common.WIDTH
  return cli.parse_size("crop_size")(protocols.load_preset("cpu").settings["crop_size"])


def compare_jax_step_forms(forms: dict, batch_size, dtype, width_mult, size, rounds):
  """JAX's train step built once per form (``forms``: name -> a function that sets the form
  up, called before that step is traced and compiled), the steps timed round-robin
  (``common.interleaved_samples``); prints each form's median seconds and steps, and in how
  many rounds the last form was faster than the first."""
  steps = {}
  for name, set_up in forms.items():
    set_up()
    steps[name] = make_step("jax", batch_size, dtype, width_mult, size, "tuned")
    steps[name]()  # traced and compiled with this form
  seconds = common.interleaved_samples(steps, rounds)
  for name, values in seconds.items():
    print(f"{name}: median {np.median(values):.4f} s;", " ".join(f"{v:.3f}" for v in values))
  first, last = list(seconds)[0], list(seconds)[-1]
  wins = sum(b < a for a, b in zip(seconds[first], seconds[last]))
  print(f"{last} faster in {wins} of {rounds} rounds")
