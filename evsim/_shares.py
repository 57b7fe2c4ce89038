"""Run the samples of a batch on several threads: Python threads, each calling a serial,
GIL-free kernel on chunks of the batch it takes in turn.

Why not numba's ``prange``: issue 14 measured, in alternating rounds in one process, a
batch of 64 on two threads against one (``default`` model, float32): a ``prange`` kernel
gave 1.20-1.85x and used 1.07-1.65x the one-thread CPU time, while two Python threads
running the one-thread kernel on halves of the batch gave 1.87-1.97x at 0.99-1.04x the
CPU time (benchmarks/README.md, "Threads").  Python threads also need no threading layer
loaded, and each keeps its own cached state (``evsim.event._serial_state``).

Chunks are *guided*: a thread takes ``remaining // (2 * threads)`` samples (at least one),
so the first chunks are large (few calls) and the last are single samples, and the
threads finish within about one sample of each other even when the host slows one of
them.  Every sample is computed exactly as alone: which thread runs it changes nothing.
The training step's BLAS row blocks and dropout-mask blocks run on the same pool
(:func:`evsim.training._threaded.run_blocks`).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

#: the pool's thread limit: threads start only when a call needs them, so this only caps
#: a process whose calls together ask for more (their callers then do more of the work)
_MAX_POOL_THREADS = max(8, 4 * (os.cpu_count() or 1))

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The process's pool of share threads (one for every caller, made on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_MAX_POOL_THREADS, thread_name_prefix="evsim-share")
        return _POOL


def _forget_pool() -> None:
    """In a forked child: the parent's pool threads do not exist there, so start afresh
    (the copied pool would count them as idle and never run a task)."""
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


class GuidedChunks:
    """Hands out chunks ``(start, stop)`` covering ``range(n)`` once each, to any thread:
    ``remaining // (2 * threads)`` items at a time, at least one.  :meth:`stop` makes every
    later :meth:`take` return None (after an error, so the other threads finish early)."""

    def __init__(self, n: int, threads: int):
        if n < 0 or threads < 1:
            raise ValueError(f"need n >= 0 and threads >= 1, got n={n}, threads={threads}")
        self._n = n
        self._threads = threads
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[int, int] | None:
        with self._lock:
            start = self._next
            if start >= self._n:
                return None
            size = max(1, (self._n - start) // (2 * self._threads))
            self._next = start + size
            return start, start + size

    def stop(self) -> None:
        with self._lock:
            self._next = self._n


def _start(work: Callable[[], None], count: int) -> list:
    """Up to ``count`` pool tasks running ``work``: none once the interpreter is shutting
    down (a pool takes no new work then; the caller's own ``work`` does it all)."""
    futures = []
    for _ in range(count):
        try:
            futures.append(_pool().submit(work))
        except RuntimeError:
            break
    return futures


def run_chunks(run_chunk: Callable[[int, int], None], n: int, threads: int) -> None:
    """Call ``run_chunk(start, stop)`` on :class:`GuidedChunks` of ``range(n)`` from
    ``threads`` threads: this one and ``threads - 1`` of a pool.  ``run_chunk`` must only
    write its own rows.  Returns when every chunk is done.  An error (or an interrupt) in
    any thread stops the chunks not yet taken; once every thread has stopped, the
    calling thread's error is raised, else the first pool task's (in the order they were
    started)."""
    chunks = GuidedChunks(n, threads)

    def work() -> None:
        try:
            while (chunk := chunks.take()) is not None:
                run_chunk(*chunk)
        except BaseException:
            chunks.stop()
            raise

    futures, error = [], None
    try:
        futures = _start(work, threads - 1)
        work()
    except BaseException as e:   # re-raised once the pool's threads have stopped
        chunks.stop()
        error = e
    for f in futures:
        f.cancel()               # a task still queued (a busy pool) has nothing left to do
    for f in futures:
        while True:
            try:
                if not f.cancelled():
                    f.result()
            except BaseException as e:   # the thread's error, or an interrupt (Ctrl-C) while waiting
                chunks.stop()
                if error is None:
                    error = e
                if not f.done():         # interrupted: the thread ends its chunk, then stops
                    continue
            break
    if error is not None:
        try:
            raise error
        finally:
            error = None                 # no reference cycle through this frame
