"""A layer on a widely zero-padded input (FCN's conv1 sees its input padded by 100 pixels),
computed only where the input reaches it.

For a layer ``y = g(conv_valid(pad(x, p)))`` with a ``k x k`` stride-``s`` convolution and a
pixel-wise ``g`` (bias, ReLU, LRN across channels), an output pixel whose window lies wholly
in the padding sees zeros only:

  ``y[i, j] = g(conv(0))``  unless  ``s*i + k > p`` and ``s*i < p + H`` (rows; columns alike).

So the convolution runs on the window of outputs that see ``x`` and the rest is filled with
``g(conv(0))``, one vector per channel. A 180x240 crop padded by 100 reaches 29% of conv1's
outputs, a 360x480 image 48%. Values and gradients are those of the padded layer (tests).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp


def reached_outputs(size: int, *, pad: int, kernel: int, stride: int) -> tuple[int, int, int]:
  """``(first, last, count)``: the output indices along one axis whose window reaches the
  ``size`` input pixels of a ``pad``-padded axis, and the number of outputs in all."""
  count = (size + 2 * pad - kernel) // stride + 1
  first = max(0, math.ceil((pad - kernel + 1) / stride))
  last = min(count - 1, (pad + size - 1) // stride)
  return first, last, count


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
