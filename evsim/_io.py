"""Atomic file writing: a temporary file in the target's folder, fsync, then a rename.

A crash, Ctrl-C or full disk during the write leaves the previous file (or none) in
place, never a half-written one.  The result gets the permissions a plain ``open`` would
give (0666 less the umask), not ``mkstemp``'s private 0600.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str, path: str) -> None:
    """Give the finished temporary file ``tmp`` ordinary permissions and rename it to
    ``path`` (atomic on one file system)."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """``with atomic_write(path) as fh: fh.write(...)`` — ``path`` appears only when the
    block finishes without an exception."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".evsim-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
