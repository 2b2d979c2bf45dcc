"""Caffe's local response normalisation across channels, with a hand-written gradient that
reads only the layer's input."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fcn_iou_jax.kernels import channel_window


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def local_response_norm(a, size: int = 5, alpha: float = 1e-4, k: float = 1.0):
  r"""Caffe's across-channel LRN with its beta = 3/4: ``b_c = a_c t_c^(-3/4)``,
  ``t_c = k + alpha/size * sum_{|c'-c|<=size//2} a_c'^2``.

  ``t^(-3/4) = r * sqrt(r)`` with ``r = 1/sqrt(t)``: a third of the time of ``pow`` on CPU.
  Gradient (cotangent ``g``; the window is symmetric):
  ``da_j = g_j t_j^(-3/4) - (3 alpha / (2 size)) a_j sum_{|c-j|<=size//2} g_c b_c / t_c``,
  recomputing ``t`` from the kept input: one pass forward and one backward, about 30% less
  time than autodiff of the forward, which keeps and re-reads several intermediates
  (docs/performance.md).
  """
  return _normalized(a, size, alpha, k)[0]


def _normalized(a, size, alpha, k):
  """``(b, r)``: the LRN output and ``r = t^(-1/2)``."""
  inverse_root = jax.lax.rsqrt(k + (alpha / size) * channel_window.window_sum(jnp.square(a),
                                                                               size))
  return a * inverse_root * jnp.sqrt(inverse_root), inverse_root


def _forward(a, size, alpha, k):
  return _normalized(a, size, alpha, k)[0], a


def _backward(size, alpha, k, a, g):
  inverse_root = _normalized(a, size, alpha, k)[1]
  scale = inverse_root * jnp.sqrt(inverse_root)  # t^(-3/4)
  weighted = g * a * scale * jnp.square(inverse_root)  # g_c b_c / t_c
  return (g * scale - (1.5 * alpha / size) * a * channel_window.window_sum(weighted, size),)


local_response_norm.defvjp(_forward, _backward)
