"""Everything a run is built from: its task, model, loss, optimiser, data source and initial
weights, each from the run's config; and a finished run's best parameters."""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from fcn_iou_jax import checkpoints, losses, models, precision, pretrained, run_log, steps
from fcn_iou_jax.config import Config
from fcn_iou_jax.data import sources, statistics, synthetic
from fcn_iou_jax.errors import UserError

# The public scores of each kind of run, in results.json (the selection score comes first).
BINARY_SCORES = ("iou", "per_image_iou", "tp", "fp", "fn", "baselines", "degenerate")
MULTICLASS_SCORES = ("miou", "per_class_iou", "pixel_accuracy", "mean_class_accuracy",
                     "frequency_weighted_iou", "confusion")


@dataclasses.dataclass(frozen=True)
class Task:
  """What a run learns: one category (``category_id``) or every class (``None``)."""
  category_id: int | None
  class_names: tuple[str, ...]

  @property
  def multiclass(self) -> bool:
    return self.category_id is None

  @property
  def num_outputs(self) -> int:
    return len(self.class_names) if self.multiclass else 1

  @property
  def score(self) -> str:
    """The selection score: dataset-level IoU, or mean IoU over classes."""
    return "miou" if self.multiclass else "iou"

  @property
  def public_scores(self) -> tuple[str, ...]:
    return MULTICLASS_SCORES if self.multiclass else BINARY_SCORES


def build_task(config: Config) -> Task:
  labels = sources.get_spec(config.dataset).labels
  return Task(labels.target(config.category, dataset=config.dataset), labels.names)


def build_model(config: Config) -> models.FCN32s:
  return models.FCN32s(backbone=config.backbone, width_mult=config.width_mult,
                       fc6_kernel=config.fc6_kernel, dropout_rate=config.dropout_rate,
                       learn_upsampling=config.learn_upsampling,
                       num_classes=build_task(config).num_outputs,
                       dtype=jnp.dtype(precision.resolve(config.dtype, jax.default_backend)[0]),
                       conv_forms=config.conv_forms)


def build_steps(config: Config, task: Task, source: sources.Source):
  """The run's compiled train and eval steps (:func:`steps.parallel_steps`) for its model,
  loss (:func:`class_weights`) and optimiser. Runs of one process whose settings of these
  agree, such as a grid's, are given the same steps: only the first traces and compiles."""
  return _shared_steps(config.parallel, build_model(config), config.loss, task.multiclass,
                       class_weights(config, task, source), _optimizer_settings(config))


@functools.lru_cache(maxsize=4)
def _shared_steps(parallel: str, model: models.FCN32s, loss: str, multiclass: bool,
                  weights: tuple[float, ...] | None, optimizer: tuple):
  loss_fn = losses.get_loss(loss, multiclass=multiclass, class_weights=(
      None if weights is None else np.asarray(weights, np.float32)))
  return steps.parallel_steps(parallel, model=model, loss_fn=loss_fn,
                              tx=steps.make_optimizer(**dict(optimizer)), multiclass=multiclass)


def class_weights(config: Config, task: Task, source: sources.Source):
  """The loss's class weights: median-frequency weights of the training pixels
  (:func:`statistics.median_frequency_weights`) where configured, else ``None``."""
  if config.class_weighting != "median_frequency":
    return None
  counts = statistics.class_pixel_counts(source.examples("selection_train"),
                                         len(task.class_names))
  weights = statistics.median_frequency_weights(counts).astype(np.float32)
  if jax.process_index() == 0:
    print("class weights: " + ", ".join(f"{name} {weight:.2f}" for name, weight
                                        in zip(task.class_names, weights)), flush=True)
  return tuple(float(weight) for weight in weights)


def build_optimizer(config: Config):
  return steps.make_optimizer(**dict(_optimizer_settings(config)))


def _optimizer_settings(config: Config) -> tuple:
  return (("name", config.optimizer), ("learning_rate", config.learning_rate),
          ("momentum", config.momentum), ("weight_decay", config.weight_decay),
          ("warmup_steps", config.warmup_steps))


def read_init_weights(config: Config):
  """``(config, state dict)``: the ``config.init`` weights (``None`` for scratch), and the
  config with ``input_mean`` taken from them where they carry one and none was given.

  ``config.init`` is a weights file (:func:`pretrained.read_state_dict`) or the folder of
  another run (its best checkpoint's conv1-fc7, such as a multi-class pre-training run's).
  """
  if config.init == "scratch":
    return config, None
  if os.path.isdir(config.init):
    run_config = run_log.read_config(config.init)
    state = pretrained.export_alexnet_state(load_best_params(config.init, run_config)[1])
  else:
    state = pretrained.read_state_dict(config.init)
  mean = pretrained.input_mean(state)
  if mean is not None and config.input_mean is None and config.backbone == "caffe":
    config = dataclasses.replace(config, input_mean=mean)
  return config, state


def initial_params(config: Config, model: models.FCN32s, rng, init_weights=None):
  """Scratch initialisation, or ``init_weights`` (ImageNet AlexNet, from ``config.init``)."""
  params = models.init_params(model, rng)
  if init_weights is None:
    return params
  return pretrained.load_alexnet_into(params, init_weights, source=config.init)


def eval_input_scale(config: Config) -> float:
  """Factor by which eval images are resized for the network: the training resize relative
  to the dataset's own training size (1 at the paper's sizes; 0.5 for CamVid at 180x240)."""
  if config.image_size is None:
    return 1.0
  return config.image_size[0] / sources.get_spec(config.dataset).train_size[0]


def build_source(config: Config) -> sources.Source:
  spec = sources.get_spec(config.dataset)
  size = spec.train_size
  return sources.Source(config.dataset, data_dir=config.data_dir,
                        prepared_dir=config.prepared_dir,
                        synthetic_spec=synthetic.SyntheticSpec(
                            height=size[0], width=size[1],
                            background_to_object=config.synthetic_ratio,
                            bar_background_to_object=config.synthetic_bar_ratio,
                            seed=config.seed))


def load_best_params(workdir: str, config: Config):
  """The best checkpoint's parameters (host arrays) of the run in ``workdir``."""
  store = checkpoints.RunCheckpoints(workdir)
  if store.latest_step("best") is None:
    raise UserError(f"`workdir`={workdir} has no best checkpoint yet (no evaluation ran)")
  model = build_model(config)
  tx = build_optimizer(config)
  params = jax.eval_shape(lambda: initial_params(config, model, jax.random.key(0)))
  template = jax.eval_shape(lambda: steps.create_train_state(params, tx, jax.random.key(0)))
  state, _ = store.restore_best(template)
  return model, state.params
