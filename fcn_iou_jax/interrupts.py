"""SIGINT and SIGTERM during training: finish the step, save, then stop.

A first signal only sets a flag that the training loop reads after each step; the loop then
writes the latest checkpoint and raises :class:`Interrupted`. A second signal stops at once
(``KeyboardInterrupt``). Handlers are installed only in the main thread, and the previous
ones come back when the ``with`` block ends. On several processes (hosts) each receives its
own signals: :func:`agree` makes them all save and stop at the same step.
"""

from __future__ import annotations

import signal
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

from fcn_iou_jax.errors import UserError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(UserError):
  """Training stopped on a signal after saving; the exit status is 128 + the signal number."""

  def __init__(self, message: str, signal_number: int):
    super().__init__(message)
    self.exit_code = 128 + signal_number


class StopRequest:
  """``with StopRequest() as stop:`` ... ``if stop.signal_number: save and stop``."""

  def __init__(self):
    self.signal_number = None
    self._previous = {}

  def _handle(self, signal_number, frame):
    del frame
    if self.signal_number is not None:
      raise KeyboardInterrupt  # the second signal: stop now
    self.signal_number = signal_number

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
    return self

  def __exit__(self, *exc_info):
    for number, handler in self._previous.items():
      signal.signal(number, handler)
    return False


def agree(signal_number: int | None, save_due: bool) -> tuple[int | None, bool]:
  """What every process does after a step: ``(signal, save)``, on several processes the
  first signal any of them received and whether any is due a time-based save (one small
  all-gather per step), so that all write the same checkpoint; on one process, its own."""
  if jax.process_count() == 1:
    return signal_number, save_due
  gathered = np.asarray(multihost_utils.process_allgather(
      np.array([signal_number or 0, int(save_due)], np.int32))).reshape(-1, 2)
  received = [int(number) for number in gathered[:, 0] if number]
  return (received[0] if received else None), bool(gathered[:, 1].any())
