"""Independent tasks on an existing engine: this process, joblib's worker processes, or a
Dask cluster.  evsim has no cluster code of its own; this module only chooses the engine,
sets every worker's threads and hands back the results.

Back ends (:class:`Executor`):

- ``serial`` (``jobs=1``, no scheduler): the tasks run one after another in this process;
  no extra package needed.
- ``joblib`` (``jobs > 1``): ``jobs`` worker processes of loky, the process pool behind
  ``joblib.Parallel`` (``pip install 'evsim[parallel]'``).  It is used through its
  futures interface (``joblib.externals.loky.get_reusable_executor``) rather than
  ``Parallel`` because that is where a worker's environment can be set before it starts:
  numba fixes its thread pool size from ``NUMBA_NUM_THREADS`` when it is first imported,
  and ``Parallel`` would set numba's and BLAS's threads to the same number.
- ``dask`` (a ``scheduler``): ``"local"`` starts a ``LocalCluster`` of ``jobs`` worker
  processes (one task slot each) on this machine; ``"tcp://host:8786"`` uses a running
  cluster (``pip install 'evsim[dask]'``).  Tasks carry file *paths*: the workers read the
  data themselves, so paths must be valid on every worker (a shared file system).

Threads: each task runs evsim's numba kernels on ``threads`` threads and BLAS on one
(numba's threads do the parallel work; BLAS threads on top of them made a training step 3x
slower on 2 cores, see ``cli/main.py``).  By default ``threads = cores // jobs``, so
``jobs x threads <= cores``.  The worker processes started here get
``NUMBA_NUM_THREADS=threads`` and ``OMP/OPENBLAS/MKL_NUM_THREADS=1`` in their environment
at start; in every back end the task itself also calls ``numba.set_num_threads(threads)``
(numba's setting is per thread, and a running Dask worker may have imported numba
already; Dask's nanny already starts workers with one BLAS thread).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from .errors import EvsimError

__all__ = ["BACKENDS", "Executor", "Outcome", "ParallelError", "cpu_count", "default_threads", "thread_env",
           "worker_threads"]

BACKENDS = ("serial", "joblib", "dask")

_INSTALL = {"joblib": "pip install 'evsim[parallel]' (joblib)",
            "dask": "pip install 'evsim[dask]' (dask[distributed])"}


class ParallelError(EvsimError):
    """A back end that cannot be used: a missing package, a bad scheduler address."""


class Outcome(NamedTuple):
    """One finished task: its input, its return value, or the exception it raised."""

    item: Any
    value: Any
    error: BaseException | None


def cpu_count() -> int:
    """Cores this process may use (its CPU affinity where the system reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(jobs: int) -> int:
    """numba threads per task so that ``jobs x threads <= cores`` (at least 1)."""
    return max(1, cpu_count() // max(1, jobs))


def thread_env(threads: int) -> dict[str, str]:
    """Environment of a worker process that runs tasks on ``threads`` numba threads."""
    return {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def _set_threads(threads: int) -> None:
    if "numba" not in sys.modules:  # numba reads NUMBA_NUM_THREADS when first imported
        os.environ.update(thread_env(threads))
    from ._numba_config import import_numba     # sets OpenMP's spin policy before the threads start

    numba = import_numba()

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _call(fn: Callable, threads: int, item, in_worker: bool = True):
    """What a worker runs: set this thread's numba threads, then ``fn(item)``.  In this
    process (``in_worker=False``) the environment is left alone."""
    if in_worker:
        _set_threads(threads)
    else:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return fn(item)


def worker_threads(_item=None) -> dict:
    """The thread settings a task sees: its process, numba threads and BLAS variables."""
    import numba

    return {"pid": os.getpid(), "numba_threads": numba.get_num_threads(),
            "numba_pool": numba.config.NUMBA_NUM_THREADS,
            **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}


def _import(module: str, backend: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ParallelError(f"the {backend} back end needs the package {module.split('.')[0]}, which is not "
                            f"installed; {_INSTALL[backend]}, or run with --jobs 1") from None


class Executor:
    """Runs ``fn(item)`` for many items on one back end; a context manager.

    jobs: tasks at once (worker processes of joblib, or of the ``"local"`` Dask cluster);
        with a ``tcp://`` scheduler the cluster's workers decide and ``jobs`` only sets how
        many tasks :meth:`map_ordered` keeps in flight (default: the cluster's task slots)
    scheduler: None (serial or joblib), ``"local"`` or a Dask scheduler address
    threads: numba threads per task; default ``cores // jobs`` (1 on a ``tcp://`` cluster,
        whose cores this machine cannot see)

    ``fn`` must be a module-level function of an importable module and items small
    (paths and settings, never arrays).
    """

    def __init__(self, jobs: int = 1, scheduler: str | None = None, threads: int | None = None):
        if jobs < 1:
            raise ParallelError(f"--jobs {jobs}: expected a positive number of parallel tasks")
        if threads is not None and threads < 1:
            raise ParallelError(f"--threads {threads}: expected a positive number of threads per task")
        self.jobs, self.scheduler = jobs, scheduler
        remote = scheduler is not None and scheduler != "local"
        self.threads = threads or (1 if remote else default_threads(jobs))
        self.backend = "dask" if scheduler else ("joblib" if jobs > 1 else "serial")
        if scheduler and scheduler != "local" and "://" not in scheduler:
            raise ParallelError(f"--scheduler {scheduler!r}: expected 'local' or a Dask scheduler address "
                                "such as tcp://host:8786")
        self._pool = self._client = self._cluster = None

    # -- lifetime ----------------------------------------------------------------------
    def __enter__(self) -> "Executor":
        if self.backend == "joblib":
            loky = _import("joblib.externals.loky", "joblib")
            self._pool = loky.get_reusable_executor(max_workers=self.jobs, env=thread_env(self.threads), reuse=False)
        elif self.backend == "dask":
            self._start_dask()
        return self

    def _start_dask(self) -> None:
        distributed = _import("distributed", "dask")
        if self.scheduler == "local":
            import logging

            self._cluster = distributed.LocalCluster(n_workers=self.jobs, threads_per_worker=1, processes=True,
                                                     dashboard_address=None, env=thread_env(self.threads),
                                                     silence_logs=logging.ERROR)
            self._client = distributed.Client(self._cluster)
            return
        try:
            self._client = distributed.Client(self.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ParallelError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
        slots = sum(w.get("nthreads", 1) for w in self._client.scheduler_info()["workers"].values())
        self.jobs = max(self.jobs, slots, 1)

    def __exit__(self, *exc) -> bool:
        if self._pool is not None:
            self._pool.shutdown(wait=exc[0] is None, kill_workers=exc[0] is not None)
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        return False

    def describe(self) -> str:
        where = {"serial": "this process", "joblib": f"joblib, {self.jobs} processes",
                 "dask": f"Dask at {self.scheduler}" + (f", {self.jobs} workers" if self.scheduler == "local" else "")}
        return f"{where[self.backend]}, {self.threads} numba thread(s) per task"

    # -- running -----------------------------------------------------------------------
    def _submit(self, fn: Callable, item):
        if self.backend == "joblib":
            return self._pool.submit(_call, fn, self.threads, item)
        if self.backend == "dask":
            return self._client.submit(_call, fn, self.threads, item, pure=False)
        return _Done(fn, self.threads, item)

    def map_ordered(self, fn: Callable, items: Iterable, window: int | None = None) -> Iterator:
        """``fn(item)`` for every item, results in the items' order, at most ``window``
        (default ``2 x jobs``) tasks submitted and not yet handed back, so memory stays
        bounded however many items there are.  A task's exception is raised here."""
        window = window or (1 if self.backend == "serial" else 2 * self.jobs)
        items = iter(items)
        pending: deque = deque()
        for item in items:
            pending.append(self._submit(fn, item))
            if len(pending) >= window:
                break
        while pending:
            value = pending.popleft().result()
            for item in items:  # keep the window full while the caller handles this result
                pending.append(self._submit(fn, item))
                break
            yield value

    def map_unordered(self, fn: Callable, items: Iterable) -> Iterator[Outcome]:
        """``fn(item)`` for every item, as each finishes; a task's exception (or a lost
        worker) comes back in its :class:`Outcome` instead of stopping the others."""
        items = list(items)
        if self.backend == "serial":
            for item in items:
                yield _outcome(item, _Done(fn, self.threads, item))
            return
        futures = {self._submit(fn, item): item for item in items}
        if self.backend == "joblib":
            import concurrent.futures

            finished = concurrent.futures.as_completed(futures)
        else:
            finished = _import("distributed", "dask").as_completed(futures)
        for fut in finished:
            yield _outcome(futures[fut], fut)


def _outcome(item, fut) -> Outcome:
    try:
        return Outcome(item, fut.result(), None)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - reported per task, not fatal to the others
        return Outcome(item, None, exc)


class _Done:
    """A task run at once in this process, with the interface of a future."""

    def __init__(self, fn: Callable, threads: int, item):
        self._value = self._error = None
        try:
            self._value = _call(fn, threads, item, in_worker=False)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - raised by result(), as a future does
            self._error = exc

    def result(self):
        if self._error is not None:
            raise self._error
        return self._value
