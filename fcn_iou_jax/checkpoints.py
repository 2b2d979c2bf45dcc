"""Orbax checkpoints of a run: the latest state (to resume) and the best one (to keep).

Both are written atomically by Orbax (to a temporary folder, then renamed), so a run killed
at any moment leaves the previous checkpoint intact; the temporary folder of a save that was
interrupted is removed when the run is opened again (in the background; the next save waits
for it). Each checkpoint carries the run's :class:`Progress` (best score so far, evaluation
history) as JSON next to the state, and the CRC-32 of each of its arrays, checked when it is
read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gc
import logging
import os
import shutil
import sys
import zlib

import jax
import numpy as np
import orbax.checkpoint as ocp

from fcn_iou_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Progress:
  """Where training stands, saved with every checkpoint."""
  best_score: float = -1.0  # selection IoU (binary) or mIoU (multi-class) at best_step
  best_step: int = 0
  evaluations: tuple[dict, ...] = ()  # selection records {"step": ..., scores}, oldest first
  collapse_step: int | None = None  # binary: the first evaluation that predicted nothing
  train_images_per_sec: float = 0.0

  def to_json(self) -> dict:
    return dict(dataclasses.asdict(self), evaluations=list(self.evaluations))

  @classmethod
  def from_json(cls, record: dict) -> Progress:
    record = dict(record)
    if "best_iou" in record:  # its name in checkpoints written by earlier versions
      record["best_score"] = record.pop("best_iou")
    known = {field.name for field in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in record.items() if key in known}
               | {"evaluations": tuple(record.get("evaluations", ()))})

  def best_evaluation(self) -> dict | None:
    return next((e for e in self.evaluations if e["step"] == self.best_step), None)


def has_checkpoint(workdir: str) -> bool:
  """Whether ``workdir`` holds a saved checkpoint: until it does, it is not a run yet."""
  root = os.path.join(workdir, "checkpoints")
  return any(name.isdigit() for which in ("latest", "best")
             if os.path.isdir(os.path.join(root, which))
             for name in os.listdir(os.path.join(root, which)))


class DamagedCheckpoint(Exception):
  """A checkpoint whose files decode, but to arrays other than those saved."""


def array_checksums(state) -> dict[str, int]:
  """CRC-32 of each array of ``state``, by its path (``params/conv1/kernel``), so that a
  state restored as plain dicts checks against the saved one. Saved with each checkpoint,
  they find damage that still decodes (a flipped byte in compressed data can)."""
  return {"/".join(str(getattr(key, "name", getattr(key, "key", getattr(key, "idx", key))))
                   for key in path):
          zlib.crc32(np.ascontiguousarray(leaf).reshape(-1).view(np.uint8))
          for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]}


# Room left beside a checkpoint's arrays for its metadata and progress JSON.
SPACE_MARGIN_BYTES = 1 << 20
# Reads of a best checkpoint that a running run replaced before evaluate.py gives up.
BEST_READ_ATTEMPTS = 3


class RunCheckpoints:
  """``WORKDIR/checkpoints/latest/<step>`` and ``WORKDIR/checkpoints/best/<step>``."""

  def __init__(self, workdir: str):
    root = self._root = os.path.join(os.path.abspath(workdir), "checkpoints")
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                           enable_async_checkpointing=False,
                                           cleanup_tmp_directories=True)
    self._managers = {name: ocp.CheckpointManager(os.path.join(root, name), options=options,
                                                  item_names=("state", "progress", "checksums"))
                      for name in ("latest", "best")}

  def latest_step(self, which: str = "latest") -> int | None:
    return self._managers[which].latest_step()

  def save(self, which: str, step: int, state, progress: Progress):
    """Saves ``state`` and ``progress`` as checkpoint ``which`` of ``step``; a full disk is a
    :class:`UserError` (checked before writing, when the state plainly does not fit), and the
    previous checkpoint stays intact."""
    manager = self._managers[which]
    if step in manager.all_steps():
      return  # the same step, saved before an interruption
    state_bytes = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(state))
    if shutil.disk_usage(self._root).free < state_bytes + SPACE_MARGIN_BYTES:
      raise self._disk_full(which, step)
    try:
      with _orbax_error_logs_off():  # a failed save raises its error here, logged or not
        manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(progress.to_json()),
            checksums=ocp.args.JsonSave({"crc32": array_checksums(state)})))
        manager.wait_until_finished()
    except Exception as error:  # pylint: disable=broad-exception-caught  # see the next line
      # TensorStore reports a full disk as a ValueError whose text carries the OS error.
      if "No space left on device" in str(error) or getattr(error, "errno", None) == errno.ENOSPC:
        _drop_closed_loop_reports()
        gc.collect()  # TensorStore's pending writes end now, while their reports are dropped
        raise self._disk_full(which, step) from error
      raise

  def _disk_full(self, which: str, step: int) -> UserError:
    resumable = self.latest_step("latest")
    resume = (f"rerun to resume from step {resumable}" if resumable is not None
              else "rerun to start again")
    return UserError(f"no space left on the device of {self._root} while writing the {which} "
                     f"checkpoint of step {step}; free space and {resume}")

  def restore_to_resume(self, template):
    """``(state, progress)`` to resume from: the latest checkpoint, or, when it cannot be
    read (damaged files), the best one, saying so in one line; the damaged checkpoint's
    folder is kept aside as ``<step>.damaged``. :class:`UserError` naming the damaged folders
    when neither can be read."""
    damaged = []
    for which in ("latest", "best"):
      step = self.latest_step(which)
      if step is None:
        continue
      try:
        restored = self.restore(which, template)
      except Exception as error:  # pylint: disable=broad-exception-caught  # see the next line
        # Damaged files fail in many ways inside Orbax and TensorStore; each means the same.
        damaged.append(f"{self._folder(which, step)} ({type(error).__name__})")
        continue
      if damaged:
        print(f"note: the checkpoint {damaged[0]} cannot be read; resuming from the {which} "
              f"checkpoint of step {step}", flush=True)
        self._set_aside_latest()
      return restored
    raise UserError(f"no checkpoint of {self._root} can be read: {'; '.join(damaged)}; move "
                    "the workdir away and rerun to start over")

  def _folder(self, which: str, step: int) -> str:
    return os.path.join(self._managers[which].directory, str(step))

  def _set_aside_latest(self):
    """Renames the unreadable latest checkpoint (``<step>.damaged``, ``<step>.damaged-2``
    when that step was damaged before), so that saves of earlier steps can follow."""
    manager = self._managers["latest"]
    for step in manager.all_steps():
      folder = self._folder("latest", step)
      aside = f"{folder}.damaged"
      copies = 1
      while os.path.exists(aside):  # the same step damaged before
        copies += 1
        aside = f"{folder}.damaged-{copies}"
      os.rename(folder, aside)
    manager.reload()

  def restore(self, which: str, template):
    """``(state, progress)`` of the newest checkpoint ``which``, shaped like ``template``."""
    manager = self._managers[which]
    step = manager.latest_step()
    items = {"state": ocp.args.StandardRestore(template), "progress": ocp.args.JsonRestore()}
    checked = os.path.isdir(os.path.join(self._folder(which, step), "checksums"))
    if checked:  # (checkpoints of earlier versions have none)
      items["checksums"] = ocp.args.JsonRestore()
    restored = manager.restore(step, args=ocp.args.Composite(**items))
    if checked and array_checksums(restored["state"]) != restored["checksums"]["crc32"]:
      raise DamagedCheckpoint(f"{self._folder(which, step)}: its arrays differ from their "
                              "checksums")
    return restored["state"], Progress.from_json(restored["progress"])

  def restore_best(self, template):
    """:meth:`restore` of the best checkpoint. A run still training may replace it while it
    is read (the new best is written, then the old one removed): the read then starts over
    from the newer one. A damaged one is a :class:`UserError` naming it."""
    manager = self._managers["best"]
    for _ in range(BEST_READ_ATTEMPTS):
      step = manager.latest_step()
      try:
        return self.restore("best", template)
      except Exception as error:  # pylint: disable=broad-exception-caught  # see restore_to_resume
        manager.reload()
        if manager.latest_step() == step:
          raise UserError(f"the best checkpoint {self._folder('best', step)} cannot be read "
                          f"({type(error).__name__}); rerun training in a new workdir") from error
    raise UserError(f"the best checkpoint in {manager.directory} was replaced "
                    f"{BEST_READ_ATTEMPTS} times while being read by the run training there; "
                    "retry when it evaluates less often, or when it ends")

@contextlib.contextmanager
def _orbax_error_logs_off():
  """Orbax logs a failed write from each of its threads, traceback included, before the save
  raises it: those logs are off inside the block."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    logger.setLevel(level)


def _drop_closed_loop_reports():
  """After a failed save, TensorStore's pending writes call back into Orbax's closed event
  loop until the process ends, each reported as an unraisable RuntimeError: drop those."""
  report = sys.unraisablehook

  def hook(unraisable):
    if not (isinstance(unraisable.exc_value, RuntimeError)
            and "Event loop is closed" in str(unraisable.exc_value)):
      report(unraisable)

  sys.unraisablehook = hook
