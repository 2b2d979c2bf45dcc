"""A layer on a widely zero-padded input (FCN's conv1 sees its input padded by 100 pixels),
computed only where the input reaches it.

For a layer ``y = g(conv_valid(pad(x, p)))`` with a ``k x k`` stride-``s`` convolution and a
pixel-wise ``g`` (bias, ReLU, LRN across channels), an output pixel whose window lies wholly
in the padding sees zeros only:

  ``y[i, j] = g(conv(0))``  unless  ``s*i + k > p`` and ``s*i < p + H`` (rows; columns alike).

So the convolution runs on the window of outputs that see ``x`` and the rest is filled with
``g(conv(0))``, one vector per channel. A 180x240 crop padded by 100 reaches 29% of conv1's
outputs, a 360x480 image 48%. Values and gradients are those of the padded layer (tests).

The unreached outputs are whole rows and columns of copies, and pooling keeps them so: conv2
sees ``a`` leading rows that are copies of one row (likewise trailing, and columns), about
11 of 69 on each side. A stride-1 ``k x k`` layer with zero padding ``p`` gives equal outputs
``p .. p + a - k`` there (their windows read copies only), so it runs on the input with the
run cut to ``k`` copies and then repeats output row ``p`` ``a - k + 1`` times
(:func:`on_repeated_border`): conv2 on 29% fewer outputs at 360x480, 42% at 180x240.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from fcn_iou_jax import geometry


def reached_outputs(size: int, *, pad: int, kernel: int, stride: int) -> tuple[int, int, int]:
  """``(first, last, count)``: the output indices along one axis whose window reaches the
  ``size`` input pixels of a ``pad``-padded axis, and the number of outputs in all."""
  count = (size + 2 * pad - kernel) // stride + 1
  first = max(0, math.ceil((pad - kernel + 1) / stride))
  last = min(count - 1, (pad + size - 1) // stride)
  return first, last, count


def unreached_runs(size: int, *, pad: int, kernel: int, stride: int) -> tuple[int, int]:
  """``(leading, trailing)``: how many outputs at each end of one axis see padding only."""
  first, last, count = reached_outputs(size, pad=pad, kernel=kernel, stride=stride)
  return first, count - 1 - last


def runs_after_window(runs: tuple[int, int], size: int,
                      window: geometry.SpatialLayer) -> tuple[int, int]:
  """The leading and trailing runs of copies after ``window`` (unpadded; in ceil mode the last
  window is cut at the end) slides over an axis of ``size`` whose first ``runs[0]`` and last
  ``runs[1]`` entries are copies: output ``i`` reads ``[stride*i, stride*i + kernel)``."""
  leading, trailing = runs
  out_size = window.output_size(size)
  return (max(0, (leading - window.kernel) // window.stride + 1),
          max(0, out_size - -(-(size - trailing) // window.stride)))


def on_zero_padded(layer: Callable, x, *, pad: int, kernel: int, stride: int):
  """``layer(pad(x, pad))`` for ``layer`` a VALID ``kernel x kernel`` stride-``stride``
  convolution followed by pixel-wise functions; ``x`` is ``[B, H, W, C]``."""
  rows = reached_outputs(x.shape[1], pad=pad, kernel=kernel, stride=stride)
  cols = reached_outputs(x.shape[2], pad=pad, kernel=kernel, stride=stride)
  # lax.pad's negative amounts drop the input pixels no reached output's window covers.
  window = [(0, 0, 0), *[(pad - stride * first, stride * last + kernel - pad - size, 0)
                         for (first, last, _), size in ((rows, x.shape[1]), (cols, x.shape[2]))],
            (0, 0, 0)]
  reached = layer(jax.lax.pad(x, jnp.zeros((), x.dtype), window))
  if (rows[1] - rows[0] + 1, cols[1] - cols[0] + 1) == (rows[2], cols[2]):
    return reached  # every output reaches x
  unreached = layer(jnp.zeros((1, kernel, kernel, x.shape[3]), x.dtype))
  full = jnp.broadcast_to(unreached, (x.shape[0], rows[2], cols[2], reached.shape[3]))
  return full.at[:, rows[0]:rows[1] + 1, cols[0]:cols[1] + 1, :].set(reached)


def on_repeated_border(layer: Callable, x, *, runs, kernel: int, pad: int):
  """``layer(pad(x, pad))`` for ``layer`` a VALID stride-1 ``kernel x kernel`` convolution
  followed by pixel-wise functions, where ``runs = ((top, bottom), (left, right))`` counts
  the rows and columns at each end of ``x [B, H, W, C]`` that are copies of one another.

  Each run longer than ``kernel`` is cut to ``kernel`` copies; of the outputs, the one whose
  window reads only that run's copies (row ``pad`` for the top run) is repeated in place of
  the cut ones. For inputs whose runs hold copies, values and gradients (with respect to
  what the copies are made from) are those of the layer on the whole input (tests)."""
  if any(lead + trail > x.shape[axis] for axis, (lead, trail) in zip((1, 2), runs)):
    raise ValueError(f"runs {runs} overlap on an input of {x.shape[1:3]}")
  cut = {axis: (max(0, lead - kernel), max(0, trail - kernel))
         for axis, (lead, trail) in zip((1, 2), runs)}
  for axis, (lead, trail) in cut.items():
    x = jax.lax.slice_in_dim(x, lead, x.shape[axis] - trail, axis=axis)
  y = on_zero_padded(layer, x, pad=pad, kernel=kernel, stride=1)
  for axis, (lead, trail) in cut.items():
    # The copies' outputs lie ``pad`` in from each end; the trailing one is repeated first so
    # that the leading one's index still holds.
    y = _repeated(y, y.shape[axis] - 1 - pad, trail + 1, axis=axis)
    y = _repeated(y, pad, lead + 1, axis=axis)
  return y


def _repeated(y, index: int, copies: int, *, axis: int):
  """``y`` with its entry ``index`` along ``axis`` standing ``copies`` times."""
  if copies == 1:
    return y
  entry = jax.lax.slice_in_dim(y, index, index + 1, axis=axis)
  shape = list(y.shape)
  shape[axis] = copies
  return jnp.concatenate([jax.lax.slice_in_dim(y, 0, index, axis=axis),
                          jnp.broadcast_to(entry, shape),
                          jax.lax.slice_in_dim(y, index + 1, y.shape[axis], axis=axis)],
                         axis=axis)
