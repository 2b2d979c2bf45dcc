"""Kernel benchmarks: fc6's matmul per dtype, and the losses against a copy's bandwidth."""

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
    import torch
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


MULTICLASS_SHAPE = (8, 360, 480, 11)


def _multiclass_inputs():
  """CamVid-sized softmax outputs and labels (5% void), and the mask."""
  rng = np.random.default_rng(0)
  logits = rng.standard_normal(MULTICLASS_SHAPE).astype(np.float32)
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  labels = rng.integers(0, MULTICLASS_SHAPE[-1], MULTICLASS_SHAPE[:-1]).astype(np.int32)
  mask = (rng.uniform(size=labels.shape) > 0.05).astype(np.float32)
  return probs, labels, mask


def _autodiff_multiclass_soft_iou(probs, labels, mask):
  """The same loss through plain autodiff of its per-class sums (no closed form)."""
  intersection, union, counts = losses.multiclass_soft_iou_terms(probs, labels, mask)
  present = counts > 0
  return jnp.sum(jnp.where(present, 1 - intersection / union, 0)) / jnp.sum(present)


def _torch_multiclass_runners(probs, labels, mask):
  """PyTorch's value+gradient of the two multi-class forms users write, each checked against
  the JAX loss on the same inputs first; ``{}`` without torch."""
  try:
    import torch
  except ImportError:
    return {}, {}
  num_classes = probs.shape[-1]
  torch_probs = torch.from_numpy(probs).requires_grad_(True)
  torch_labels = torch.from_numpy(labels).long()
  torch_mask = torch.from_numpy(mask)

  def soft_iou():
    one_hot = torch.nn.functional.one_hot(torch_labels, num_classes).float()
    weighted = torch_probs * torch_mask[..., None]
    labelled = one_hot * torch_mask[..., None]
    intersection = (weighted * labelled).sum((0, 1, 2))
    union = weighted.sum((0, 1, 2)) + labelled.sum((0, 1, 2)) - intersection
    present = labelled.sum((0, 1, 2)) > 0
    return (1 - intersection[present] / union[present]).mean()

  def lovasz_softmax():
    valid = torch_mask.reshape(-1) > 0
    flat_probs = torch_probs.reshape(-1, num_classes)[valid]
    flat_labels = torch_labels.reshape(-1)[valid]
    per_class = []
    for c in range(num_classes):
      foreground = (flat_labels == c).float()
      if foreground.sum() == 0:
        continue
      errors = (foreground - flat_probs[:, c]).abs()
      errors_sorted, order = torch.sort(errors, descending=True)
      foreground_sorted = foreground[order]
      positives = foreground_sorted.sum()
      intersection = positives - foreground_sorted.cumsum(0)
      union = positives + (1 - foreground_sorted).cumsum(0)
      jaccard = 1 - intersection / union
      jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
      per_class.append(torch.dot(errors_sorted, jaccard))
    return torch.stack(per_class).mean()

  def value_and_grad(loss):
    torch_probs.grad = None
    value = loss()
    value.backward()
    return float(value.detach()), torch_probs.grad.numpy()

  forms = {"torch_soft_iou_autograd": soft_iou, "torch_lovasz_softmax": lovasz_softmax}
  checks = {name: value_and_grad(loss) for name, loss in forms.items()}
  runners = {name: (lambda loss=loss: value_and_grad(loss)) for name, loss in forms.items()}
  runners["torch_copy_roof"] = lambda: torch.add(torch_probs.detach(), torch_labels[..., None])
  return runners, checks


def bench_multiclass_loss(repeats):
  """Multi-class soft IoU (closed form and autodiff) and Lovász-Softmax, value+gradient at
  CamVid's size, against a copy of the same bytes and against PyTorch's forms of each."""
  probs, labels, mask = _multiclass_inputs()
  variants = {
      "soft_iou_closed_form": losses.multiclass_soft_iou_loss,
      "soft_iou_autodiff": _autodiff_multiclass_soft_iou,
      "lovasz_softmax": losses.lovasz_softmax_loss,
  }
  device_inputs = [jnp.asarray(x) for x in (probs, labels, mask)]
  compiled = {name: jax.jit(jax.value_and_grad(loss)) for name, loss in variants.items()}
  reference = {name: jax.device_get(f(*device_inputs)) for name, f in compiled.items()}
  torch_runners, torch_checks = _torch_multiclass_runners(probs, labels, mask)
  pairs = {"torch_soft_iou_autograd": "soft_iou_closed_form",
           "torch_lovasz_softmax": "lovasz_softmax"}
  for torch_name, (value, grad) in torch_checks.items():
    jax_value, jax_grad = reference[pairs[torch_name]]
    np.testing.assert_allclose(value, jax_value, rtol=1e-4)
    # Float32 cumulative sums over 1.4M sorted pixels round differently in the two frameworks:
    # Lovász increments agree to about 1% of the largest one.
    np.testing.assert_allclose(grad, jax_grad, rtol=1e-3, atol=0.02 * np.abs(jax_grad).max())
  runners = {name: (lambda f=f: jax.block_until_ready(f(*device_inputs)))
             for name, f in compiled.items()}
  copy = jax.jit(lambda p, y: p + y[..., None])  # reads probs and labels, writes probs' size
  runners["copy_roof"] = lambda: jax.block_until_ready(copy(*device_inputs[:2]))
  bytes_moved = 2 * probs.nbytes + labels.nbytes
  times = common.interleaved_medians(runners, repeats)
  torch_times = common.interleaved_medians(torch_runners, repeats) if torch_runners else {}
  rows = []
  for name, seconds in {**times, **torch_times}.items():
    roof = times["copy_roof"] if name in times else torch_times["torch_copy_roof"]
    row = {"variant": name, "ms": 1e3 * seconds, "GB_per_s": bytes_moved / seconds / 1e9,
           "fraction_of_copy": roof / seconds}
    if name in pairs:
      row["jax_speedup"] = seconds / times[pairs[name]]
    rows.append(row)
  common.print_table(
      f"Multi-class losses, value+gradient on {MULTICLASS_SHAPE} float32 (fraction: of the same "
      "framework's copy; JAX speed-up: PyTorch's time over JAX's for the same loss)",
      ["variant", "ms", "GB_per_s", "fraction_of_copy", "jax_speedup"],
      [[r["variant"], f"{r['ms']:.1f}", f"{r['GB_per_s']:.1f}", f"{r['fraction_of_copy']:.2f}",
        f"{r['jax_speedup']:.2f}" if "jax_speedup" in r else ""] for r in rows])
  return {"shape": list(MULTICLASS_SHAPE), "rows": rows}
