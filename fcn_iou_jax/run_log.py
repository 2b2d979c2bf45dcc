"""What a run writes beside its checkpoints: config.json, metrics.jsonl, TensorBoard, results.

JSON files are written atomically (temporary file, then rename). Only process 0 writes.
"""

from __future__ import annotations

import json
import os

import jax
import tensorboardX


def write_json(path: str, payload: dict):
  """Writes ``payload`` to ``path`` atomically."""
  temporary = f"{path}.tmp{os.getpid()}"
  with open(temporary, "w", encoding="utf-8") as handle:
    json.dump(payload, handle, indent=2, sort_keys=True)
    handle.write("\n")
  os.replace(temporary, path)


def read_json(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as handle:
    return json.load(handle)


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
    """Forgets records written after the checkpoint we resume from (they will be redone)."""
    if not os.path.exists(self._path):
      return
    with open(self._path, encoding="utf-8") as handle:
      kept = [line for line in handle if line.strip() and json.loads(line)["step"] <= step]
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
