"""The train and eval steps, and their two parallel wrappings (``pmap`` and sharded ``jit``).

One per-device function does forward, loss, gradient and optax update. Parallel
semantics, proved by tests against one device on the concatenated batch:
  * ``pmap``: the loss sums its statistics (IoU's I and U, cross-entropy's total and count)
    over the ``batch`` axis with ``psum`` before the ratio, so every device holds the loss of
    the global batch; gradients are then averaged with ``pmean`` (each device's gradient
    carries the psum's transpose, a factor N that the mean removes).
  * ``jit``: the same function on global arrays whose batch axis is sharded over a ``data``
    mesh; XLA inserts the collectives, the loss needs no ``axis_name``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils

from fcn_iou_jax import metrics

AXIS = "batch"


def donated_state() -> tuple[int, ...]:
  """``donate_argnums`` of the ``pmap`` train step: the state (updated in place) on GPUs and
  TPUs, where that saves a copy of parameters and optimiser state in device memory; nothing
  on XLA:CPU, where the in-place update under ``pmap`` copies every state array first: the
  CPU-protocol step runs 3-7% faster without donation, width 1 4% (docs/performance.md),
  with the same results."""
  return () if jax.default_backend() == "cpu" else (0,)


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array  # dropout key; folded with the step (and device) each step


def create_train_state(params, tx: optax.GradientTransformation, rng) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    rng=jax.random.key_data(rng))


def make_optimizer(name: str, *, learning_rate: float, momentum: float, weight_decay: float,
                   warmup_steps: int = 0):
  """The paper's SGD (decay added to kernel gradients, then momentum), or Adam.

  With ``warmup_steps`` the step size rises linearly, ``lr_t = lr * min(t / warmup_steps, 1)``
  (not in the paper; a remedy tried against the soft-IoU collapse).
  """
  if warmup_steps:
    learning_rate = optax.linear_schedule(0.0, learning_rate, warmup_steps)
  decay_kernels = optax.add_decayed_weights(
      weight_decay, mask=lambda params: jax.tree_util.tree_map_with_path(
          lambda path, _: path[-1].key == "kernel", params))
  if name == "sgd":
    return optax.chain(decay_kernels, optax.sgd(learning_rate, momentum=momentum))
  if name == "adam":
    return optax.chain(decay_kernels, optax.adam(learning_rate))
  raise ValueError(f"unknown optimizer {name!r}; choose from sgd, adam")


def train_step(state: TrainState, batch, *, model, loss_fn: Callable, tx, axis_name=None):
  """One SGD step on ``batch = {image [B,H,W,3], label [B,H,W], mask [B,H,W]}``.

  Returns ``(new_state, {"loss": scalar})``.
  """
  rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  labels = batch["label"].astype(jnp.float32)
  mask = batch["mask"].astype(jnp.float32)

  def loss_of(params):
    logits = model.apply({"params": params}, batch["image"], train=True, rngs={"dropout": rng})
    return loss_fn(logits, labels, mask, axis_name=axis_name)

  loss, grads = jax.value_and_grad(loss_of)(state.params)
  if axis_name is not None and jax.lax.axis_size(axis_name) > 1:  # one device: a copy only
    grads = jax.lax.pmean(grads, axis_name)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                            opt_state=opt_state)
  return new_state, {"loss": loss}


def eval_step(params, batch, *, model):
  """Per-image confusion counts ``{tp, fp, fn, tn, valid}: [B]`` of ``batch``.

  ``batch["valid"]`` is 0 for the empty images that pad a short final batch. Scores of an
  image given at another scale than its label are resized (bilinear) to the label's grid.
  """
  logits = model.apply({"params": params}, batch["image"], train=False)
  if logits.shape != batch["label"].shape:
    logits = jax.image.resize(logits, batch["label"].shape, "bilinear")
  probs = jax.nn.sigmoid(logits)
  counts = metrics.confusion_counts(probs, batch["label"], batch["mask"], per_image=True)
  return dict(counts, valid=batch["valid"])


def multiclass_eval_step(params, batch, *, model, axis_name=None):
  """The ``[C, C]`` confusion matrix (rows: labels) of the argmax prediction on ``batch``,
  summed over the devices of ``axis_name``; padding and void pixels have ``mask = 0``.

  Scores of an image given at another scale than its label are resized (bilinear) to the
  label's grid before the argmax.
  """
  logits = model.apply({"params": params}, batch["image"], train=False)
  num_classes = logits.shape[-1]
  if logits.shape[:-1] != batch["label"].shape:
    logits = jax.image.resize(logits, (*batch["label"].shape, num_classes), "bilinear")
  confusion = metrics.confusion_matrix(logits.argmax(-1), batch["label"], batch["mask"],
                                       num_classes)
  return confusion if axis_name is None else jax.lax.psum(confusion, axis_name)


PARALLEL_MODES = ("auto", "pmap", "jit")


def parallel_steps(mode: str, *, model, loss_fn, tx, multiclass: bool = False):
  """The compiled train/eval steps of ``mode`` (:data:`PARALLEL_MODES`) and the data placement
  it needs: a :class:`PmapSteps` or a :class:`JitSteps` (:func:`resolve_parallel`).

  ``multiclass``: the eval step is :func:`multiclass_eval_step` (one confusion matrix over
  all devices) instead of the binary per-image counts of :func:`eval_step`.
  """
  placement = {"pmap": PmapSteps, "jit": JitSteps}[resolve_parallel(mode)]
  return placement(model=model, loss_fn=loss_fn, tx=tx, multiclass=multiclass)


def resolve_parallel(mode: str) -> str:
  """``pmap`` or ``jit``: ``mode`` itself, or for ``auto`` jit where JAX has one device and
  pmap on several. On one device the two compute the same step (tests/test_train.py), and
  jit's is faster: 12% at batch 1 and 5-8% at batch 4 (float32, 360x480, AMD Zen 3; even at
  the CPU protocol's size; docs/performance.md), with no device axis to carry."""
  if mode not in PARALLEL_MODES:
    raise ValueError(f"unknown parallel mode {mode!r}; choose from {', '.join(PARALLEL_MODES)}")
  if mode == "auto":
    return "jit" if jax.device_count() == 1 else "pmap"
  return mode


class PmapSteps:
  """``pmap`` over this process's devices: state replicated with a leading device axis,
  batches split ``[devices, B / devices, ...]``, the loss's sums ``psum``'d over :data:`AXIS`."""

  def __init__(self, *, model, loss_fn, tx, multiclass: bool):
    self.local_device_count = jax.local_device_count()
    self.tx = tx  # the optimiser the train step applies
    self.train = jax.pmap(functools.partial(train_step, model=model, loss_fn=loss_fn, tx=tx,
                                            axis_name=AXIS),
                          axis_name=AXIS, donate_argnums=donated_state())
    evaluate = (functools.partial(multiclass_eval_step, axis_name=AXIS) if multiclass
                else eval_step)
    self.eval = jax.pmap(functools.partial(evaluate, model=model), axis_name=AXIS)

  def put_state(self, state):
    """Host pytree (a TrainState, or parameters) -> replicated across devices."""
    # Through an identity pmap, so the arrays carry the sharding pmap outputs carry: the
    # train step, whose state is donated and fed back, then compiles once, not twice.
    return _pmapped_identity(flax.jax_utils.replicate(state))

  def get_state(self, state):
    """Device state -> one host copy (numpy): this process's first device's replica, read as
    it is (indexing the device array would run, and first compile, an op per leaf)."""
    local = jax.device_get(jax.tree_util.tree_map(lambda x: x.addressable_data(0), state))
    return jax.tree_util.tree_map(lambda x: x[0], local)

  def put_batch(self, batch):
    """This process's part of the global batch, ``[B_local, ...]`` leaves, split
    ``[local_devices, B_local / local_devices, ...]`` (the one place a batch is split)."""
    return {k: np.reshape(v, (self.local_device_count, -1, *np.shape(v)[1:]))
            for k, v in batch.items()}

  def gather_counts(self, counts):
    """Eval step output -> flat host arrays over all processes' images."""
    return _gathered({k: np.asarray(v).reshape(-1) for k, v in counts.items()})

  def first(self, value):
    """A replicated per-device value (e.g. the loss) as one host number."""
    return self.get_state(value)


# One function for every put_state, so a state of a shape seen before is not traced again.
_pmapped_identity = jax.pmap(lambda tree: tree, axis_name=AXIS)


class JitSteps:
  """Sharded ``jit``: global arrays whose batch axis is sharded over a ``data`` mesh of every
  device, state replicated; XLA inserts the collectives."""

  def __init__(self, *, model, loss_fn, tx, multiclass: bool):
    self.local_device_count = jax.local_device_count()
    self.tx = tx  # the optimiser the train step applies
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",),
                             axis_types=(jax.sharding.AxisType.Auto,))
    self._replicated = jax.NamedSharding(mesh, jax.P())
    self._sharded = jax.NamedSharding(mesh, jax.P("data"))
    self.train = jax.jit(functools.partial(train_step, model=model, loss_fn=loss_fn, tx=tx),
                         donate_argnums=(0,), out_shardings=self._replicated)
    # The confusion matrix replicated on every device, so each process reads the total.
    self.eval = jax.jit(functools.partial(multiclass_eval_step if multiclass else eval_step,
                                          model=model),
                        out_shardings=self._replicated if multiclass else None)

  def put_state(self, state):
    """Host pytree (a TrainState, or parameters) -> replicated across devices, always a copy:
    the train step donates the state it is given, and arrays already on the one device would
    otherwise be given as they are, then deleted under their holder."""
    return jax.device_put(state, self._replicated, may_alias=False)

  def get_state(self, state):
    """Device state -> one host copy (numpy)."""
    return jax.device_get(state)

  def put_batch(self, batch):
    """This process's part of the global batch -> its shards of the global arrays."""
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(self._sharded, x), batch)

  def gather_counts(self, counts):
    """Eval step output -> flat host arrays over all processes' images."""
    return _gathered(counts)

  def first(self, value):
    """A replicated value (e.g. the loss) as one host number."""
    return np.asarray(value)


def _gathered(counts):
  """Per-image counts of every process, concatenated, as flat host arrays."""
  return {k: np.asarray(v).reshape(-1)
          for k, v in multihost_utils.process_allgather(counts, tiled=True).items()}
