"""Each convolution of FCN-32s alone, forward and backward, JAX's conv forms against PyTorch's
at the network's own shapes: where a train step's time goes in each framework, layer by layer.

conv1 runs on the whole zero-padded input here (the network computes it only where the input
reaches, ``kernels/zero_padding.py``) and, as in the network, without an input gradient.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from fcn_iou_jax import geometry, models
from fcn_iou_jax.kernels import convolution

POOL = geometry.SpatialLayer(3, 2, 0, ceil_mode=True)


def layer_shapes(height, width, width_mult=1.0, backbone="caffe", fc6_kernel=6):
  """``(name, H, W, C_in, C_out, kernel, stride, pad, groups)`` of the input of conv1-conv5,
  fc6 and fc7 for a ``height x width`` image (conv1's input with FCN's zero padding)."""
  rows = []
  h, w, channels = height + 2 * models.INPUT_PAD, width + 2 * models.INPUT_PAD, 3
  for spec in models.BACKBONES[backbone]:
    out = models.scaled_channels(spec.features, width_mult, spec.groups)
    rows.append((spec.name, h, w, channels, out, spec.kernel, spec.stride, spec.pad,
                 spec.groups))
    conv = geometry.SpatialLayer(spec.kernel, spec.stride, spec.pad)
    h, w, channels = conv.output_size(h), conv.output_size(w), out
    if spec.pool:
      h, w = POOL.output_size(h), POOL.output_size(w)
  fc = models.scaled_channels(models.FC_FEATURES, width_mult)
  rows.append(("fc6", h, w, channels, fc, fc6_kernel, 1, 0, 1))
  rows.append(("fc7", h - fc6_kernel + 1, w - fc6_kernel + 1, fc, fc, 1, 1, 0, 1))
  return rows


def _jax_runner(x, kernel, stride, pad, groups, input_gradient, conv_forms, dtype):
  def half_square(x, kernel):
    y = convolution.conv2d(x, kernel, stride=stride, pad=pad, groups=groups,
                           operand_dtype=jnp.dtype(dtype), forms=conv_forms)
    return 0.5 * jnp.sum(y * y)

  step = jax.jit(jax.grad(half_square, argnums=(0, 1) if input_gradient else 1))
  x, kernel = jnp.asarray(x), jnp.asarray(kernel)
  return lambda: jax.block_until_ready(step(x, kernel))


def _torch_runner(torch, x, kernel, stride, pad, groups, input_gradient, dtype):
  """PyTorch's float32 layer, under ``torch.autocast`` for another ``dtype``, as its train step
  runs it (TorchStep)."""
  x = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=input_gradient)
  kernel = torch.tensor(kernel.transpose(3, 2, 0, 1).copy(), requires_grad=True)

  def step():
    with torch.autocast("cpu", dtype=getattr(torch, dtype), enabled=dtype != "float32"):
      y = torch.nn.functional.conv2d(x, kernel, stride=stride, padding=pad, groups=groups)
    y = y.float()
    (0.5 * (y * y).sum()).backward()
  return step


def bench_layers(batch_size, size, width_mult, conv_forms, repeats, dtype="float32"):
  """Milliseconds of each layer's forward and backward (``0.5 * sum(y^2)`` as the loss) in
  JAX and, where installed, PyTorch on the CPU, timed interleaved; one row per layer.
  ``dtype``: the products' operand dtype (JAX's ``operand_dtype``, PyTorch's autocast)."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(os.cpu_count())
  except ImportError:
    torch = None
  rng = np.random.default_rng(0)
  rows = []
  for name, h, w, c_in, c_out, kernel, stride, pad, groups in layer_shapes(*size, width_mult):
    x = rng.standard_normal((batch_size, h, w, c_in)).astype(np.float32)
    weights = (0.01 * rng.standard_normal((kernel, kernel, c_in // groups, c_out))
               ).astype(np.float32)
    input_gradient = name != "conv1"
    runners = {"jax": _jax_runner(x, weights, stride, pad, groups, input_gradient, conv_forms,
                                  dtype)}
    if torch is not None:
      runners["torch"] = _torch_runner(torch, x, weights, stride, pad, groups, input_gradient,
                                       dtype)
    seconds = common.interleaved_medians(runners, repeats)
    row = {"layer": name, "input": f"{batch_size}x{h}x{w}x{c_in}", "output_channels": c_out,
           "kernel": kernel, "jax_ms": round(1000 * seconds["jax"], 1)}
    if torch is not None:
      row.update(torch_ms=round(1000 * seconds["torch"], 1),
                 ratio=round(seconds["torch"] / seconds["jax"], 2))
    rows.append(row)
  header = list(rows[0])
  common.print_table(f"Layers alone, forward and backward, batch {batch_size}, "
                     f"{size[0]}x{size[1]}, width {width_mult}, {dtype}, conv forms {conv_forms} "
                     "(ratio: PyTorch ms / JAX ms)", header,
                     [[row[key] for key in header] for row in rows])
  return {"batch_size": batch_size, "dtype": dtype, "rows": rows}
