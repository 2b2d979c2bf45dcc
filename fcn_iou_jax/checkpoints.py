"""Orbax checkpoints of a run: the latest state (to resume) and the best one (to keep).

Both are written atomically by Orbax (to a temporary folder, then renamed), so a run killed
at any moment leaves the previous checkpoint intact; the temporary folder of a save that was
interrupted is removed when the run is opened again (in the background; the next save waits
for it). Each checkpoint carries a JSON record
of the run's progress (best IoU so far, evaluation history) next to the state.
"""

from __future__ import annotations

import os

import orbax.checkpoint as ocp


class RunCheckpoints:
  """``WORKDIR/checkpoints/latest/<step>`` and ``WORKDIR/checkpoints/best/<step>``."""

  def __init__(self, workdir: str):
    root = os.path.join(os.path.abspath(workdir), "checkpoints")
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                           enable_async_checkpointing=False,
                                           cleanup_tmp_directories=True)
    self._managers = {name: ocp.CheckpointManager(os.path.join(root, name), options=options,
                                                  item_names=("state", "progress"))
                      for name in ("latest", "best")}

  def latest_step(self, which: str = "latest") -> int | None:
    return self._managers[which].latest_step()

  def save(self, which: str, step: int, state, progress: dict):
    manager = self._managers[which]
    if step in manager.all_steps():
      return  # the same step, saved before an interruption
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                               progress=ocp.args.JsonSave(progress)))
    manager.wait_until_finished()

  def restore(self, which: str, template):
    """``(state, progress)`` of the newest checkpoint ``which``, shaped like ``template``."""
    manager = self._managers[which]
    step = manager.latest_step()
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(template), progress=ocp.args.JsonRestore()))
    return restored["state"], restored["progress"]
