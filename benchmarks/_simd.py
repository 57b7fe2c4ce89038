"""A plain float32 add loop: the core's SIMD add rate, the floor the event engine's
fan-out is compared with (``bench_builtin.py``, ``bench_engine.py``, ``bench_event.py``)."""

import time

import numba
import numpy as np


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def add_rows(acc, w, width, rows):
    """acc += w[r] for each row r in ``rows`` (float32 throughout, 4 rows per pass as the
    engine's fan-out does): additions only, no conversion."""
    e = 0
    m = rows.shape[0]
    while e + 4 <= m:
        r0, r1, r2, r3 = rows[e] * width, rows[e + 1] * width, rows[e + 2] * width, rows[e + 3] * width
        w0, w1, w2, w3 = w[r0:r0 + width], w[r1:r1 + width], w[r2:r2 + width], w[r3:r3 + width]
        for i in range(width):
            acc[i] = acc[i] + w0[i] + w1[i] + w2[i] + w3[i]
        e += 4
    return np.float32(acc[0])


def adds_per_s() -> float:
    """float32 additions per CPU second of :func:`add_rows` over 16 rows of 256 (in L1
    cache), one thread: the best of five runs of 50 calls."""
    rows, width = 16, 256
    w = np.random.default_rng(0).normal(size=rows * width).astype(np.float32)
    acc = np.zeros(width, np.float32)
    spk = np.tile(np.arange(rows, dtype=np.int64), 256)
    add_rows(acc, w, width, spk)                 # compiled (or loaded) outside the timing
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(50):
            add_rows(acc, w, width, spk)
        best = min(best, time.process_time() - start)
    return spk.size * width * 50 / best
