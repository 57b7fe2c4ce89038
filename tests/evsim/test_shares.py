"""Batches on several threads (evsim._shares): guided chunks cover a batch once, run on
several threads, stop on an error; simulate gives the same outputs, bit for bit, on any
number of threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from evsim import _shares, event
from tests.conftest import assert_same_results, make_small_model


def _all_chunks(n, threads):
    chunks = _shares.GuidedChunks(n, threads)
    out = []
    while (c := chunks.take()) is not None:
        out.append(c)
    return out


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 64, 1000])
def test_guided_chunks_cover_the_batch_once_largest_first(n, threads):
    chunks = _all_chunks(n, threads)
    covered = [i for a, b in chunks for i in range(a, b)]
    assert covered == list(range(n))
    sizes = [b - a for a, b in chunks]
    assert all(s >= 1 for s in sizes) and sizes == sorted(sizes, reverse=True)
    if n:
        assert sizes[0] == max(1, n // (2 * threads)) and sizes[-1] == 1


def test_guided_chunks_refuse_bad_sizes():
    with pytest.raises(ValueError, match="threads >= 1"):
        _shares.GuidedChunks(4, 0)
    with pytest.raises(ValueError, match="n >= 0"):
        _shares.GuidedChunks(-1, 2)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [0, 1, 9, 40])
def test_run_chunks_runs_every_item_once(n, threads):
    hits = np.zeros(n, np.int64)
    lock = threading.Lock()

    def run(a, b):
        with lock:
            hits[a:b] += 1

    _shares.run_chunks(run, n, threads)
    assert np.array_equal(hits, np.ones(n, np.int64))


def test_run_chunks_uses_the_pool_threads():
    """Two chunks, each waiting for the other at a barrier: only two threads at once pass."""
    barrier = threading.Barrier(2, timeout=30)
    seen = set()

    def run(a, b):
        seen.add(threading.get_ident())
        barrier.wait()

    _shares.run_chunks(run, 2, 2)
    assert threading.get_ident() in seen and len(seen) == 2


def test_an_error_in_a_chunk_stops_the_rest_and_is_raised():
    started = []

    def run(a, b):
        started.append(a)
        if a == 0:
            raise ValueError("chunk at 0")
        time.sleep(0.001)

    with pytest.raises(ValueError, match="chunk at 0"):
        _shares.run_chunks(run, 100, 2)
    assert len(started) < len(_all_chunks(100, 2))      # the chunks left were not run
    _shares.run_chunks(lambda a, b: None, 10, 2)   # the pool still works afterwards


def test_after_the_pool_refuses_work_the_caller_runs_every_chunk(monkeypatch):
    """At interpreter exit a pool takes no new work: the calling thread does it all."""
    class Closed:
        def submit(self, *args):
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr(_shares, "_pool", lambda: Closed())
    hits = []
    _shares.run_chunks(lambda a, b: hits.extend(range(a, b)), 50, 4)
    assert sorted(hits) == list(range(50))


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("batch", [2, 5, 13])
def test_simulate_on_any_number_of_threads_equals_one_thread(batch, precision, monkeypatch):
    model = make_small_model(seed=4, recurrence=("dense", "conv"))
    rng = np.random.default_rng(batch)
    x = rng.poisson(0.5, (batch, 30, model.n_inputs)).astype(np.float64)
    lengths = rng.integers(1, 31, batch)
    results, used = {}, []
    real = _shares.run_chunks
    monkeypatch.setattr(_shares, "run_chunks", lambda run, n, t: used.append(t) or real(run, n, t))
    for threads in (1, 2, 3, 4):
        monkeypatch.setattr(event, "_threads", lambda t=threads: t)
        results[threads] = event.simulate(model, x, lengths, record_spikes=True, precision=precision)
    assert used == [min(t, batch) for t in (2, 3, 4)]
    for threads in (2, 3, 4):
        assert_same_results(results[1], results[threads])


def _count_in_child(queue):
    hits = []
    _shares.run_chunks(lambda a, b: hits.extend(range(a, b)), 30, 3)
    queue.put(sorted(hits))


def test_a_forked_child_runs_chunks_on_its_own_pool():
    import multiprocessing

    _shares.run_chunks(lambda a, b: time.sleep(0.002), 20, 3)     # the parent's pool has threads
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_count_in_child, args=(queue,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0, "the child hung or failed"
    assert queue.get(timeout=5) == list(range(30))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_non_finite_input_is_refused_before_the_kernel_sees_it(bad, threads, monkeypatch):
    from evsim.errors import EvsimError

    model = make_small_model(seed=2)
    x = np.random.default_rng(0).poisson(0.5, (40, 12, model.n_inputs)).astype(np.float64)
    x[37, 5, 1] = bad
    seen = []
    real = event._direct

    def spy(name, precision):
        call = real(name, precision)
        return lambda *args: seen.append(args[5].copy()) or call(*args)

    monkeypatch.setattr(event, "_direct", spy)
    monkeypatch.setattr(event, "_threads", lambda: threads)
    with pytest.raises(EvsimError, match="input contains NaN or infinite values"):
        event.simulate(model, x)
    assert all(np.isfinite(part).all() for part in seen)


def test_an_interrupt_while_waiting_still_waits_for_the_running_chunk(monkeypatch):
    """Ctrl-C in the calling thread while it waits for the pool: the interrupt is raised
    only once the pool's thread has finished its chunk (nothing runs on after the call)."""
    from concurrent.futures import Future

    caller = threading.current_thread()
    pool_started = threading.Event()
    finished = []

    def run(a, b):
        if threading.current_thread() is caller:
            assert pool_started.wait(30)        # the pool's thread has the other chunk
        else:
            pool_started.set()
            time.sleep(0.2)
        finished.append(a)

    real_result = Future.result
    interrupts = []

    def interrupted_once(self, timeout=None):
        if not interrupts:
            interrupts.append(1)
            raise KeyboardInterrupt
        return real_result(self, timeout)

    monkeypatch.setattr(Future, "result", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        _shares.run_chunks(run, 2, 2)
    assert interrupts and sorted(finished) == [0, 1]


def test_a_batch_on_several_threads_does_not_start_numbas_threading_layer():
    """The engine's threads are Python threads: numba's threading layer (OpenMP, ~15 ms
    to start) stays unloaded, and the thread count still follows NUMBA_NUM_THREADS."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np; from evsim import event, _shares; from tests.conftest import assert_same_results, make_small_model\n"
            "from numba.np.ufunc import parallel\n"
            "used = []; real = _shares.run_chunks\n"
            "_shares.run_chunks = lambda run, n, t: used.append(t) or real(run, n, t)\n"
            "m = make_small_model(seed=1); x = np.ones((5, 20, m.n_inputs))\n"
            "event.simulate(m, x, precision='float32'); event.simulate(m, x)\n"
            "print(used, parallel._is_initialized)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, NUMBA_NUM_THREADS="2", PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[2, 2] False"
