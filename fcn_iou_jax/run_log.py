"""What a run writes beside its checkpoints: config.json, metrics.jsonl, TensorBoard, results;
and its config read back (without TensorFlow, so that a wrong workdir is told at once).

JSON files are written atomically (temporary file, then rename). Only process 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import tensorboardX

from fcn_iou_jax.config import Config
from fcn_iou_jax.errors import UserError


def write_json(path: str, payload: dict):
  """Writes ``payload`` to ``path`` atomically."""
  temporary = f"{path}.tmp{os.getpid()}"
  with open(temporary, "w", encoding="utf-8") as handle:
    json.dump(payload, handle, indent=2, sort_keys=True)
    handle.write("\n")
  os.replace(temporary, path)


def read_json(path: str) -> dict | None:
  """The JSON object in ``path`` (``None`` if there is no such file); a damaged file is a
  :class:`UserError` naming it."""
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as handle:
    try:
      return json.load(handle)
    except json.JSONDecodeError as error:
      raise UserError(f"{path} is damaged ({error.msg} at line {error.lineno}); restore it or "
                      "start the run in a new `workdir`") from error


def read_config(workdir: str) -> Config:
  """The config a run in ``workdir`` was started with."""
  saved = read_json(os.path.join(workdir, "config.json"))
  if saved is None:
    raise UserError(f"`workdir`={workdir} holds no run (config.json is missing)")
  for key in ("image_size", "crop_size", "input_mean"):
    if saved.get(key) is not None:
      saved[key] = tuple(saved[key])
  known = {f.name for f in dataclasses.fields(Config)}
  return Config(**{k: v for k, v in saved.items() if k in known})


class MetricsLog:
  """``metrics.jsonl`` (one JSON object per line) plus TensorBoard scalars, by step."""

  def __init__(self, workdir: str, *, resume_step: int):
    self._active = jax.process_index() == 0
    self._path = os.path.join(workdir, "metrics.jsonl")
    if not self._active:
      return
    self._drop_records_after(resume_step)
    self._writer = tensorboardX.SummaryWriter(os.path.join(workdir, "tensorboard"))

  def _drop_records_after(self, step: int):
    """Forgets records written after the checkpoint we resume from (they will be redone).

    A torn last line (what a crash or a full disk leaves) was written after that checkpoint
    too, and is dropped with a note; a damaged line before the last is a UserError.
    """
    if not os.path.exists(self._path):
      return
    with open(self._path, encoding="utf-8") as handle:
      lines = [line for line in handle if line.strip()]
    records = []
    for number, line in enumerate(lines, 1):
      try:
        records.append((json.loads(line), line))
      except json.JSONDecodeError as error:
        if number < len(lines):
          raise UserError(f"{self._path}: line {number} is damaged ({error.msg}); remove it or "
                          "start the run in a new `workdir`") from error
        print(f"note: {self._path}: dropped its torn last line (written by an interrupted run)",
              flush=True)
    kept = [line.rstrip("\n") + "\n" for record, line in records if record["step"] <= step]
    temporary = f"{self._path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
      handle.writelines(kept)
    os.replace(temporary, self._path)

  def write(self, step: int, kind: str, values: dict):
    if not self._active:
      return
    with open(self._path, "a", encoding="utf-8") as handle:
      handle.write(json.dumps({"step": step, "kind": kind, **values}) + "\n")
    for name, value in values.items():
      if isinstance(value, (int, float)):
        self._writer.add_scalar(f"{kind}/{name}", value, step)
    self._writer.flush()

  def close(self):
    """Ends the TensorBoard writer's thread: a grid's runs each open one in one process."""
    if self._active:
      self._writer.close()
