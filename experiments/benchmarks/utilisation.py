"""How much of the machine's matmul peak the train step uses: the step's matmul and
convolution FLOPs per second over a plain matmul's, both measured in this process."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common, step_runners

# Products timed for the peak: fc6's at batch 4, and a square one.
PEAK_SHAPES = ((768, 9216, 4096), (4096, 4096, 4096))


def matmul_flops(jaxpr) -> int:
  """FLOPs of every ``dot_general`` and ``conv_general_dilated`` in ``jaxpr`` and the jaxprs
  inside it, as computed: ``2 * outputs * (terms each output sums)``; a convolution's terms
  are one filter, ``kernel.size / out_features`` (grouped and weight-gradient forms alike;
  a padded input gradient counts its products with the padding)."""
  total = 0
  for eqn in jaxpr.eqns:
    out = eqn.outvars[0].aval
    if eqn.primitive.name == "dot_general":
      (contracting, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval
      total += 2 * math.prod(out.shape) * math.prod(lhs.shape[d] for d in contracting)
    elif eqn.primitive.name == "conv_general_dilated":
      kernel = eqn.invars[1].aval
      out_features = kernel.shape[eqn.params["dimension_numbers"].rhs_spec[0]]
      total += 2 * math.prod(out.shape) * math.prod(kernel.shape) // out_features
    for value in eqn.params.values():
      for inner in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(inner, jax.extend.core.ClosedJaxpr):
          total += matmul_flops(inner.jaxpr)
        elif isinstance(inner, jax.extend.core.Jaxpr):
          total += matmul_flops(inner)
  return total


def peak_runners(dtype: str) -> dict:
  """:data:`PEAK_SHAPES` as plain ``dtype`` products (float32 results, as the network's):
  ``{name: (no-argument runner, FLOPs)}``."""
  rng = np.random.default_rng(0)
  product = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
  runners = {}
  for rows, inner, cols in PEAK_SHAPES:
    a = jnp.asarray(rng.standard_normal((rows, inner)), dtype)
    b = jnp.asarray(rng.standard_normal((inner, cols)), dtype)
    runners[f"{rows}x{inner} @ {inner}x{cols}"] = (
        lambda a=a, b=b: jax.block_until_ready(product(a, b)), 2 * rows * inner * cols)
  return runners


def bench_utilisation(batch_sizes, dtypes, width_mult, size, conv_forms, repeats):
  """Per batch size and dtype: the train step's matmul/conv GFLOP/s and its share of the
  same dtype's matmul peak (the fastest of the plain products), the step and the products
  timed interleaved in this one process, so that the machine's drifts reach both alike."""
  rows = []
  for dtype in dtypes:
    products = peak_runners(dtype)
    for batch_size in batch_sizes:
      step = step_runners.JaxStep(common.make_batch(batch_size, size), dtype, width_mult,
                                  conv_forms)
      flops = matmul_flops(jax.make_jaxpr(step.parallel.train)(step.state,
                                                                step.device_batch).jaxpr)
      seconds = common.interleaved_medians(
          {"step": step, **{name: run for name, (run, _) in products.items()}}, repeats)
      peak_shape = max(products, key=lambda name: products[name][1] / seconds[name])
      peak = products[peak_shape][1] / seconds[peak_shape]
      rows.append({"dtype": dtype, "batch_size": batch_size, "step_GFLOP": flops / 1e9,
                   "step_s": seconds["step"], "step_GFLOP_per_s": flops / seconds["step"] / 1e9,
                   "peak_GFLOP_per_s": peak / 1e9, "peak_product": peak_shape,
                   "share_of_peak": flops / seconds["step"] / peak})
  common.print_table(
      f"Train step's matmul/conv FLOPs against a plain matmul's peak, width {width_mult}, "
      f"{size[0]}x{size[1]} ({jax.devices()[0]})", list(rows[0]),
      [[f"{r[k]:.3g}" if isinstance(r[k], float) else r[k] for k in rows[0]] for r in rows])
  return {"rows": rows}
