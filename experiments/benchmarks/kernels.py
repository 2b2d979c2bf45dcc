"""Kernel benchmarks: fc6's matmul per dtype, and the soft-IoU loss against a copy's bandwidth."""

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from fcn_iou_jax import losses


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
  times = common.interleaved_medians(runners, repeats)
  flops = 2 * x.shape[0] * x.shape[1] * w.shape[1]
  rows = [{"product": name, "ms": 1e3 * t, "GFLOP_per_s": flops / t / 1e9}
          for name, t in times.items()]
  common.print_table("fc6-shaped matmul (768x9216 @ 9216x4096)", list(rows[0]),
                     [[r["product"], f"{r['ms']:.1f}", f"{r['GFLOP_per_s']:.0f}"] for r in rows])
  return {"rows": rows}


def _torch_loss_runners(probs, labels):
  """PyTorch autograd's value+gradient and PyTorch's own copy of the same bytes, or ``{}``
  without torch."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return {}
  torch_probs = torch.from_numpy(np.array(probs)).requires_grad_(True)
  torch_labels = torch.from_numpy(np.array(labels))

  def torch_autograd():
    torch_probs.grad = None
    inter = (torch_probs * torch_labels).sum()
    union = (torch_probs + torch_labels - torch_probs * torch_labels).sum()
    (1 - inter / union).backward()

  return {"torch_autograd": torch_autograd,
          "torch_copy_roof": lambda: torch.add(torch_probs.detach(), torch_labels)}


def bench_loss(repeats):
  """Soft-IoU value+gradient against a copy of the same bytes, each framework against its own
  copy timed alongside (interleaving JAX's calls with PyTorch's slows both: they share the
  cores' caches and the threads' wake-ups)."""
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
  groups = {"copy_roof": {name: (lambda f=function: jax.block_until_ready(f(probs, labels)))
                          for name, function in variants.items()},
            "torch_copy_roof": _torch_loss_runners(probs, labels)}
  rows = []
  for roof, runners in groups.items():
    times = common.interleaved_medians(runners, repeats) if runners else {}
    rows += [{"variant": name, "ms": 1e3 * t, "GB_per_s": bytes_moved / t / 1e9,
              "fraction_of_copy": times[roof] / t} for name, t in times.items()]
  common.print_table(f"Soft-IoU value+gradient on {shape} float32 (fraction: of the same "
                     "framework's copy)", list(rows[0]),
                     [[r["variant"], f"{r['ms']:.2f}", f"{r['GB_per_s']:.1f}",
                       f"{r['fraction_of_copy']:.2f}"] for r in rows])
  return {"shape": list(shape), "rows": rows}
