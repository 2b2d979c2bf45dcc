"""Training and evaluation of one model: ``train_and_evaluate(config, workdir)``.

One loop for both kinds of run: a binary model of one category (``--category=person``, the
paper's) or one multi-class model of every class (``--category=all``). The loop: training
batches (binary: >= 1 positive each) -> compiled parallel train step; every ``eval_every``
steps and at the end, the dataset-level score on the model-selection split (20% of the train
list, ``sources``): IoU (binary) or mIoU (multi-class); the best state by it is kept. At the
end the best state is evaluated on the dataset's val split, and on test where it exists,
into results.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time

import jax
import numpy as np
from tqdm import tqdm

from fcn_iou_jax import (checkpoints, evaluation, file_locks, interrupts, losses, run_log,
                         steps)
from fcn_iou_jax.build import (Task, build_model, build_source, build_steps, build_task,
                               eval_input_scale, initial_params, read_init_weights)
from fcn_iou_jax.config import Config, incompatible_keys
from fcn_iou_jax.data import pipeline, sources
from fcn_iou_jax.errors import DivergedError, UserError

FINAL_SPLITS = ("val", "test")
def _check_config(config: Config, task: Task):
  devices, processes = jax.device_count(), jax.process_count()
  if config.class_weighting != "none" and not losses.takes_class_weights(
      config.loss, multiclass=task.multiclass):
    raise UserError(f"`class_weighting`={config.class_weighting} needs `category`=all and a "
                    f"loss with class weights ({', '.join(losses.WEIGHTED_LOSSES)} or their "
                    f"sum), not `loss`={config.loss}")
  if config.class_aware_crops and not (task.multiclass and config.crop_size):
    raise UserError("`class_aware_crops` needs `category`=all and `crop_size` (binary runs "
                    "already crop around the category)")
  if config.batch_size % devices:
    raise UserError(f"`batch_size`={config.batch_size} must be a multiple of the "
                    f"{devices} devices")
  if config.eval_batch_size % devices:
    raise UserError(f"`eval_batch_size`={config.eval_batch_size} must be a multiple of the "
                    f"{devices} devices")
  if config.batch_size // processes < 1:
    raise UserError("`batch_size` is smaller than the number of processes")
  # Before any data is prepared or any file written.
  pipeline.check_augmentation(config.crop_size, training_size(config), config.scale_jitter)


def training_size(config: Config) -> tuple[int, int]:
  """``(height, width)`` every training image is resized to: ``image_size``, else the
  dataset's."""
  return tuple(config.image_size or sources.get_spec(config.dataset).train_size)


def claim_workdir(config: Config, workdir: str):
  """Creates ``workdir`` with config.json, or refuses a run of an incompatible config there.

  A workdir without a checkpoint (a first run that failed before its first save) is not a
  run yet: any config may start there.
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "config.json")
  saved = run_log.read_json(path) if checkpoints.has_checkpoint(workdir) else None
  if saved is not None:
    differing = incompatible_keys(saved, config.to_dict())
    if differing:
      details = ", ".join(f"{k}: {saved.get(k)!r} -> {config.to_dict().get(k)!r}"
                          for k in differing)
      raise UserError(f"`workdir`={workdir} holds a run with another config ({details}); "
                      "use a new `workdir`")
  if jax.process_index() == 0:
    run_log.write_json(path, config.to_dict())


class _Throughput:
  """Images per second of training steps, excluding the first (compiling) step."""

  def __init__(self):
    self.images, self.seconds, self._start = 0, 0.0, None

  def start(self):
    self._start = time.perf_counter()

  def stop(self, images: int, *, count: bool):
    if count:
      self.images += images
      self.seconds += time.perf_counter() - self._start

  @property
  def rate(self) -> float:
    return self.images / self.seconds if self.seconds else 0.0


def train_and_evaluate(config: Config, workdir: str, *, force_eval: bool = False) -> dict:
  """Trains per ``config`` in ``workdir`` (resuming if it holds a run); returns results. A
  finished run returns its saved results, or with ``force_eval`` is scored again."""
  task = build_task(config)
  _check_config(config, task)
  given_mean = config.input_mean
  config, init_weights = read_init_weights(config)
  if config.input_mean != given_mean and jax.process_index() == 0:
    print(f"Input mean (B, G, R) from {config.init}: "
          + ", ".join(f"{v:.2f}" for v in config.input_mean), flush=True)
  os.makedirs(workdir, exist_ok=True)
  # One run per workdir; on several hosts, process 0 holds the lock for all.
  with (file_locks.hold_workdir(workdir) if jax.process_index() == 0 else contextlib.nullcontext()):
    return _train_and_evaluate_in(config, workdir, task=task, init_weights=init_weights,
                                  force_eval=force_eval)


def _train_and_evaluate_in(config: Config, workdir: str, *, task: Task, init_weights,
                           force_eval: bool) -> dict:
  claim_workdir(config, workdir)
  source = build_source(config)

  model = build_model(config)
  parallel = build_steps(config, task, source)
  init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed))
  host_state = steps.create_train_state(initial_params(config, model, init_rng, init_weights),
                                        parallel.tx, dropout_rng)
  store = checkpoints.RunCheckpoints(workdir)
  progress = checkpoints.Progress()
  if store.latest_step() is not None or store.latest_step("best") is not None:
    host_state, progress = store.restore_to_resume(jax.device_get(host_state))
    if jax.process_index() == 0:
      print(f"Resuming {workdir} from step {int(host_state.step)}", flush=True)
  start_step = int(host_state.step)
  saved_results = run_log.read_json(os.path.join(workdir, "results.json"))
  if (start_step >= config.train_steps and saved_results and not force_eval
      and saved_results.get("steps") == config.train_steps):
    if jax.process_index() == 0:
      print(f"{workdir} has finished its {start_step} steps: these are its saved results "
            "(run.py --force_eval scores it again)", flush=True)
    return saved_results

  evaluate = evaluation.SplitEvaluator(  # evaluate(params, split)
      parallel, source, category_id=task.category_id, batch_size=config.eval_batch_size,
      backbone=config.backbone, input_scale=eval_input_scale(config),
      input_mean=config.input_mean)
  state = parallel.put_state(host_state)
  if start_step < config.train_steps:
    with contextlib.closing(run_log.MetricsLog(workdir, resume_step=start_step)) as log:
      state, progress, throughput = _train(config, task, parallel, state, progress, source,
                                           store, log, evaluate, start_step)
  else:
    throughput = _Throughput()

  best_state, _ = store.restore_best(jax.device_get(host_state))
  best_params = parallel.put_state(best_state.params)
  results = {
      "dataset": config.dataset, "category": config.category, "loss": config.loss,
      "seed": config.seed, "best_step": progress.best_step, "steps": config.train_steps,
      "train_images_per_sec": throughput.rate or progress.train_images_per_sec,
      "selection": _best_selection(progress, task), "config": config.to_dict(),
  }
  if not task.multiclass:
    results["collapse_step"] = progress.collapse_step
  for split in FINAL_SPLITS:
    if split in source.available_splits():
      result = evaluate(best_params, split)
      results[split] = {key: result[key] for key in task.public_scores}
  if jax.process_index() == 0:
    run_log.write_json(os.path.join(workdir, "results.json"), results)
  return results


def _best_selection(progress: checkpoints.Progress, task: Task) -> dict:
  """The selection scores of the best step: IoU and per-image IoU, or mIoU and per-class IoU."""
  best = progress.best_evaluation()
  return {key: best[key] for key in task.public_scores[:2]} if best else {}


def _train(config, task, parallel, state, progress, source, store, log, evaluate, start_step):
  processes, shown = jax.process_count(), jax.process_index() == 0  # process 0 prints
  image_size = training_size(config)
  dataset, positives, total = pipeline.make_train_dataset(
      source.examples("selection_train", shard_index=jax.process_index(),
                      shard_count=processes),
      category_id=task.category_id, void=source.spec.labels.void, image_size=image_size,
      batch_size=config.batch_size // processes, backbone=config.backbone,
      # A resumed run continues the same sequence of batches where it stopped.
      seed=config.seed * 1_000_003, skip_batches=start_step,
      category_name=config.category,
      crop_size=config.crop_size, scale_jitter=config.scale_jitter,
      colour_jitter=config.colour_jitter, input_mean=config.input_mean,
      class_aware_crops=config.class_aware_crops)
  if shown:
    crop = f", cropped to {config.crop_size[0]}x{config.crop_size[1]}" if config.crop_size else ""
    images = (f"{total} training images, {len(task.class_names)} classes" if task.multiclass
              else f"{positives} of {total} training images contain the category")
    print(f"{config.dataset}/{config.category}: {images}; training "
          f"{config.train_steps - start_step} steps of {config.batch_size} images at "
          f"{image_size[0]}x{image_size[1]}{crop}", flush=True)
  batches = dataset.as_numpy_iterator()
  throughput = _Throughput()
  pending_loss = None  # the previous step's loss, read one step late to keep dispatch async
  last_save = time.monotonic()
  # A bar on a terminal; output to a file or pipe gets plain lines every log_every steps.
  # The bar is closed (its line ended) however the loop ends, so an error starts a new line.
  with tqdm(total=config.train_steps, initial=start_step, unit="step", dynamic_ncols=True,
            disable=not (shown and sys.stderr.isatty()), mininterval=2.0) as bar, \
       interrupts.StopRequest() as stop:
    bar.set_description_str("compiling")
    for step in range(start_step + 1, config.train_steps + 1):
      batch = parallel.put_batch(next(batches))
      throughput.start()
      state, metrics = parallel.train(state, batch)
      if pending_loss is not None:
        _check_finite(*pending_loss)
      pending_loss = (step, parallel.first(metrics["loss"]))
      jax.block_until_ready(metrics["loss"])
      throughput.stop(config.batch_size, count=step > start_step + 1)
      _advance(bar, step, first=step == start_step + 1)
      if step % config.log_every == 0:
        loss = float(pending_loss[1])
        bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{throughput.rate:.2f}")
        log.write(step, "train", {"loss": loss, "images_per_sec": throughput.rate})
        if shown and bar.disable:
          print(progress_line(step, config.train_steps, loss, throughput.rate,
                              config.batch_size), flush=True)
      evaluated = step % config.eval_every == 0 or step == config.train_steps
      if evaluated:  # evaluates and saves
        _check_finite(*pending_loss)
        with _paused(bar, "evaluating"):
          progress = _evaluate_and_save(step, state, task, parallel, progress, store, log,
                                        evaluate, throughput)
        if shown:
          name = "mIoU" if task.multiclass else "IoU"
          bar.write(f"step {step}: selection {name} "
                    f"{progress.evaluations[-1][task.score]:.4f} "
                    f"(best {progress.best_score:.4f} at step {progress.best_step})")
        last_save = time.monotonic()
      signal_number, save_due = interrupts.agree(
          stop.signal_number, _save_due(config.checkpoint_minutes, last_save))
      if not evaluated and (signal_number or save_due):
        _check_finite(*pending_loss)
        store.save("latest", step, parallel.get_state(state),
                   dataclasses.replace(progress, train_images_per_sec=throughput.rate))
        last_save = time.monotonic()
      if signal_number:
        raise interrupts.Interrupted(
            f"stopped by signal {signal_number} after step {step}, whose checkpoint is "
            "saved; rerun the same command to resume from it", signal_number)
  return state, progress, throughput


def progress_line(step: int, total: int, loss: float, images_per_sec: float,
                  batch_size: int) -> str:
  """The training progress as one log line; time left = steps left x batch / images per s
  (training steps only, evaluations not counted)."""
  left = ("" if not images_per_sec else
          f", {tqdm.format_interval((total - step) * batch_size / images_per_sec)} left")
  return f"step {step}/{total}: loss {loss:.4f}, {images_per_sec:.2f} img/s{left}"


def _advance(bar: tqdm, step: int, first: bool):
  """Shows ``step`` done on ``bar``. The ``first`` step (the one that compiled) restarts the
  bar's clock instead, so that its rate and time left count training steps only."""
  if not first:
    bar.update(1)
    return
  bar.reset(total=bar.total)
  bar.n = bar.last_print_n = bar.initial = step
  bar.set_description_str("", refresh=True)


@contextlib.contextmanager
def _paused(bar: tqdm, description: str):
  """Shows ``description`` on ``bar`` while the block runs and leaves the block's time out of
  the bar's elapsed time, rate and time left (an evaluation is not a training step)."""
  bar.set_description_str(description, refresh=True)
  started = time.time()  # tqdm's clock
  try:
    yield
  finally:
    if not bar.disable:
      paused = time.time() - started
      bar.start_t += paused
      bar.last_print_t += paused
    bar.set_description_str("")


def _save_due(minutes: float, last_save: float) -> bool:
  """A time-based save of the latest state is due (``minutes = 0``: never)."""
  return bool(minutes) and time.monotonic() - last_save > 60 * minutes


def collapsed(best_iou: float, result: dict) -> bool:
  """The model stopped predicting the category at all after it had learned some of it.

  With the soft-IoU loss this is the saturated-sigmoid failure: every pixel at p ~ 0 makes
  the loss exactly 1 and Eq. 8's gradient vanishes through the sigmoid, so it seldom
  recovers (README, Results: collapse).
  """
  return best_iou > 0.05 and result["tp"] + result["fp"] == 0


def _check_finite(step: int, loss):
  if not np.isfinite(loss):
    raise DivergedError(f"training loss became {float(loss)} at step {step}; stopping (resume "
                        "restarts from the last checkpoint; lower `learning_rate`?)")


def _evaluate_and_save(step, state, task, parallel, progress, store, log, evaluate,
                       throughput):
  result = evaluate(state.params, "selection")
  if task.multiclass:  # the matrix stays out of the logs; per-class IoUs say what it does
    result = {key: value for key, value in result.items() if key != "confusion"}
  record = {"step": step, **result}
  log.write(step, "selection", result)
  evaluations = (*(e for e in progress.evaluations if e["step"] < step), record)
  progress = dataclasses.replace(progress, evaluations=evaluations,
                                 train_images_per_sec=throughput.rate)
  if (not task.multiclass and collapsed(progress.best_score, result)
      and progress.collapse_step is None):
    progress = dataclasses.replace(progress, collapse_step=step)
    log.write(step, "collapse", {"previous_best_iou": progress.best_score})
    if jax.process_index() == 0:
      tqdm.write(f"warning: collapse at step {step}: no pixel is predicted as the category "
                 f"any more (best selection IoU so far {progress.best_score:.4f})")
  host_state = parallel.get_state(state)
  if result[task.score] > progress.best_score or store.latest_step("best") is None:
    progress = dataclasses.replace(progress, best_score=result[task.score], best_step=step)
    store.save("best", step, host_state, progress)
  store.save("latest", step, host_state, progress)
  return progress
