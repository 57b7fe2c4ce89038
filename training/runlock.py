"""One training run per output directory at a time: an advisory lock on ``<out>/train.lock``.

The lock is ``fcntl.flock`` on the file, so the kernel releases it when the holding
process ends in any way (``kill -9`` included): a lock left by a killed run never blocks.
The file's text names the holder (pid, host, start time, command) for the message a
second run gets; it is left in place after the run (removing it would let a process that
opened it just before race a newcomer that creates a new one) and its text is only
advisory -- the flock is what decides.  Where ``fcntl`` does not exist (Windows), runs
are not locked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from typing import Iterator

from evsim.errors import EvsimError

__all__ = ["RunLockedError", "run_lock", "LOCK_NAME"]

LOCK_NAME = "train.lock"


class RunLockedError(EvsimError):
    """Another process is training into the same output directory."""


def _holder_text(fh) -> str:
    try:
        fh.seek(0)
        info = json.loads(fh.read() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"
            + (f": {info['command']}" if info.get("command") else ""))


@contextlib.contextmanager
def run_lock(out_dir: str) -> Iterator[None]:
    """Hold the lock of ``out_dir`` (which must exist) for the ``with`` block, or raise
    :class:`RunLockedError` at once, naming the holder."""
    try:
        import fcntl
    except ImportError:      # no advisory locks on this platform
        yield
        return
    path = os.path.join(out_dir, LOCK_NAME)
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder_text(fh)
            raise RunLockedError(f"{out_dir} is in use by another evsim train ({holder}); wait for it to finish, "
                                 "or choose another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                             "command": " ".join(os.path.basename(a) if i == 0 else a
                                                 for i, a in enumerate(sys.argv))}) + "\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()
