"""One framework's train step on a fixed batch, as a callable, with its GPU memory."""

import gc
import os

import jax

from benchmarks import common


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


class TorchStep:
  """PyTorch copy of the same network and loss (experiments/torch_reference.py), from the same
  initial weights; a ``dtype`` other than float32 runs under ``torch.autocast``. ``dtype``
  may name a ``torch.compile`` mode after a ``+``: ``float32+default``,
  ``bfloat16+max-autotune`` (eager without one)."""

  def __init__(self, batch, dtype, width_mult):
    import torch
    import torch_reference
    torch.set_num_threads(os.cpu_count())
    self.torch = torch
    device = common.torch_device(torch)
    dtype, _, compile_mode = dtype.partition("+")
    net = torch_reference.TorchFCN32s(common.initial_params(width_mult)).to(device)
    if compile_mode:
      net = torch.compile(net, mode=compile_mode)
    self.step = torch_reference.make_train_step(
        net, autocast_dtype=None if dtype == "float32" else getattr(torch, dtype))
    self.images, self.labels = common.torch_inputs(torch, batch, device)

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
  to completion on a fixed batch of ``batch_size`` images of ``size``."""
  batch = common.make_batch(batch_size, size)
  if framework == "jax":
    return JaxStep(batch, dtype, width_mult, conv_forms)
  return TorchStep(batch, dtype, width_mult)
