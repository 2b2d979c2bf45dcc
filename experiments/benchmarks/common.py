"""What the benchmarks share: the image size, timing, Markdown tables, inputs and set-ups."""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from fcn_iou_jax import config, losses, models, steps

HEIGHT, WIDTH = 360, 480


def interleaved_samples(runners: dict, repeats: int) -> dict:
  """Seconds of each call of each runner, ``repeats`` per runner, timed round-robin so that
  machine noise hits all of them alike. Each runner is called once first (compile, warm-up),
  untimed."""
  for run in runners.values():
    run()
  samples = {name: [] for name in runners}
  for _ in range(repeats):
    for name, run in runners.items():
      start = time.perf_counter()
      run()
      samples[name].append(time.perf_counter() - start)
  return samples


def interleaved_medians(runners: dict, repeats: int) -> dict:
  """Median seconds per call of each runner (:func:`interleaved_samples`)."""
  return {name: float(np.median(values))
          for name, values in interleaved_samples(runners, repeats).items()}


def print_table(title, header, rows):
  print(f"\n### {title}\n")
  print("| " + " | ".join(header) + " |")
  print("|" + "---|" * len(header))
  for row in rows:
    print("| " + " | ".join(str(v) for v in row) + " |")


def make_batch(batch_size, size=(HEIGHT, WIDTH), seed=0):
  rng = np.random.default_rng(seed)
  return {"image": (50 * rng.standard_normal((batch_size, *size, 3))).astype(np.float32),
          "label": (rng.uniform(size=(batch_size, *size)) < 0.2).astype(np.uint8),
          "mask": np.ones((batch_size, *size), np.uint8)}


@functools.lru_cache(maxsize=None)
def initial_params(width_mult=1.0):
  """The weights every benchmarked step starts from (host arrays; same seed every call)."""
  params = models.init_params(models.FCN32s(width_mult=width_mult), jax.random.key(0))
  params["score"]["kernel"] = 0.01 * jax.random.normal(jax.random.key(1),
                                                       params["score"]["kernel"].shape)
  return jax.device_get(params)


def jax_parallel_mode() -> str:
  """The parallel mode of the benchmarked JAX step: run.py's default, as resolved here."""
  return steps.resolve_parallel(config.Config().parallel)


def jax_setup(width_mult=1.0, dropout_rate=0.5, dtype="float32", conv_forms="tuned"):
  model = models.FCN32s(width_mult=width_mult, dropout_rate=dropout_rate, dtype=jnp.dtype(dtype),
                        conv_forms=conv_forms)
  tx = steps.make_optimizer("sgd", learning_rate=1e-4, momentum=0.99, weight_decay=5e-4)
  params = initial_params(width_mult)
  parallel = steps.parallel_steps(jax_parallel_mode(), model=model,
                                 loss_fn=losses.soft_iou_loss_from_logits, tx=tx)
  state = parallel.put_state(steps.create_train_state(params, tx, jax.random.key(2)))
  return model, params, parallel, state


def on_gpu() -> bool:
  return jax.default_backend() == "gpu"


def torch_device(torch) -> str:
  """PyTorch runs where JAX does: on CUDA when JAX's backend is a GPU, else on the CPU."""
  return "cuda" if on_gpu() and torch.cuda.is_available() else "cpu"


def torch_images(torch, images, device):
  return torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(device)


def torch_inputs(torch, batch, device):
  return (torch_images(torch, batch["image"], device),
          torch.from_numpy(batch["label"].astype(np.float32)).to(device))
