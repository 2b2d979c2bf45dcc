"""Advisory file locks: one run per workdir (``WORKDIR/run.lock``, held for the run's life; a
second run is refused) and one process at a time preparing a dataset (the others wait).

``fcntl.flock`` locks belong to the open file, and the kernel releases them when the holding
process ends, however it ends: a lock left by a killed run is simply taken over. The file
names the holder (pid and host) so that a refused run can say who has the workdir. Where
``fcntl`` does not exist (Windows) runs are not locked.
"""

from __future__ import annotations

import contextlib
import os
import socket

from fcn_iou_jax.errors import UserError

try:
  import fcntl
except ImportError:  # pragma: no cover - not on POSIX
  fcntl = None

WORKDIR_LOCK = "run.lock"


@contextlib.contextmanager
def hold_workdir(workdir: str):
  """Holds ``workdir``'s lock inside the ``with`` block; UserError if another run holds it."""
  if fcntl is None:
    yield
    return
  path = os.path.join(workdir, WORKDIR_LOCK)
  with open(path, "a+", encoding="utf-8") as handle:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
      handle.seek(0)
      holder = handle.read().strip() or "another process"
      raise UserError(f"`workdir`={workdir} is in use by a run ({holder}); wait for it to end "
                      "or use another `workdir`") from error
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def wait_for(path: str):
  """Holds an exclusive lock on the file ``path`` inside the ``with`` block, waiting first
  while another process holds it."""
  if fcntl is None:
    yield
    return
  with open(path, "a+", encoding="utf-8") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)
