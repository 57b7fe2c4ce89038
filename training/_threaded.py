"""The NumPy work of a training step that runs outside the time-loop kernels, split over
numba's threads (``numba.get_num_threads()``) so that a step scales with cores as a whole,
not only its time loops (Amdahl: with the feed-forward products and the dropout masks on
one thread, two cores gave a training step 1.11x).

* :func:`matmul` (and :func:`matmul_tn` for ``a.T @ b``): ``a @ b`` as a fixed number of row blocks of ``a`` (:data:`ROW_BLOCKS`,
  set by the shape alone), each one single-threaded BLAS call (NumPy releases the GIL
  inside it), the blocks shared out among the threads.  OpenBLAS rounds a row differently
  depending on how the rows of one call are blocked, so the split is fixed: the result
  does not depend on the thread count (it differs from one ``a @ b`` call at rounding
  level).  Split only while NumPy's OpenBLAS runs one thread (as ``evsim`` sets it,
  ``cli/main.py``, and :func:`one_blas_thread` around a training step); with BLAS threads
  of its own it is one ``a @ b`` call.
* sparse inputs: a product whose left factor (:func:`matmul`) or right factor
  (:func:`matmul_tn`) is mostly zeros (a layer's output spikes through dropout, 3-9 % non-zero
  in training) skips the zeros in numba kernels, rows in parallel (:func:`sparse_matmul`) or
  fixed row blocks summed in block order (:func:`sparse_matmul_tn`), from
  :data:`SPARSE_MAX_DENSITY` non-zeros down: at 7 % 2-3x faster than BLAS, at ~25 % as fast.
  Float32 sums of float32 products as BLAS forms them, in another order (rounding level).
* :func:`dropout_mask`: Bernoulli(1 - p) / (1 - p), each entry kept exactly when NumPy's
  ``rng.random(float32) >= p`` would keep it for a uniform 24-bit integer u (u 2^-24 >= p,
  i.e. u >= T = ceil(p_32 2^24), p_32 = float32(p)), with fewer random bits: each entry
  reads one byte (the top 8 bits of its u) and decides unless that byte equals T's top 8
  bits (1 time in 256); those ties take their low 16 bits from words drawn after the
  mask's, in entry order.  For NumPy's default bit generator (PCG64) the mask's words
  (one per 8 entries, a quarter of the words of ``rng.random(float32)``) are drawn in one
  block per thread, each block from a copy of the generator advanced to its start
  (``PCG64.advance``), and the generator ends as if every word had been drawn in turn:
  the result does not depend on the thread count.  Another bit generator takes NumPy's
  own ``rng.random(shape, float32) >= p`` (the same distribution, its own stream).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading

import numpy as np

from evsim._blas import openblas_library
from evsim._shares import run_chunks
from evsim._numba_config import PARALLEL_TRAIN, TRAIN, import_numba

numba = import_numba()

#: a product is computed as this many row blocks (fewer when a block would have under
#: :data:`MIN_BLOCK_ROWS` rows), whatever the thread count
ROW_BLOCKS = 4
MIN_BLOCK_ROWS = 256
#: a factor with at most this share of non-zeros goes through the sparse kernels
SPARSE_MAX_DENSITY = 0.15
#: rows per parallel task of :func:`sparse_matmul`
SPARSE_CHUNK = 64
#: below this many 64-bit words (8 mask entries each) a mask is drawn on one thread
MIN_WORDS_PER_THREAD = 1 << 15


@functools.lru_cache(maxsize=None)
def _openblas_threads():
    """NumPy's OpenBLAS ``(get_num_threads, set_num_threads)`` functions, or (None, None)
    (another BLAS, not found, or not Linux)."""
    lib, names = openblas_library(numpy_only=True) if sys.platform.startswith("linux") else (None, None)
    if lib is None:
        return None, None
    prefix, suffix = names
    return getattr(lib, f"{prefix}get_num_threads{suffix}"), getattr(lib, f"{prefix}set_num_threads{suffix}")


_ONE_BLAS_LOCK = threading.Lock()
_one_blas_users = 0
_blas_threads_before = 1


@contextlib.contextmanager
def one_blas_thread():
    """NumPy's OpenBLAS on one thread inside, as ``evsim train`` runs it
    (``OPENBLAS_NUM_THREADS=1``, ``cli/main.py``), the user's count restored after: a
    step's products then run as row blocks over numba's threads (:func:`matmul`) and give
    the same results whatever the BLAS thread count.  With 2 OpenBLAS threads on 2 cores
    the CRSNN step took 0.064 s instead of 0.036-0.038 s (issue 14).  Counted, so nested
    and concurrent users share one setting; does nothing without NumPy's OpenBLAS on Linux.
    OpenBLAS's thread count is one per process: while a step runs, NumPy products on the
    user's other threads also run on one BLAS thread, and a count another thread sets
    meanwhile is replaced by the one saved on entry when the last user leaves."""
    global _one_blas_users, _blas_threads_before
    get, set_ = _openblas_threads()
    if set_ is None:
        yield
        return
    with _ONE_BLAS_LOCK:
        if _one_blas_users == 0:
            _blas_threads_before = int(get())
            if _blas_threads_before != 1:
                set_(1)
        _one_blas_users += 1
    try:
        yield
    finally:
        with _ONE_BLAS_LOCK:
            _one_blas_users -= 1
            if _one_blas_users == 0 and _blas_threads_before != 1:
                set_(_blas_threads_before)


def threads() -> int:
    """How many threads the NumPy work of a step may use: numba's thread count."""
    return int(numba.get_num_threads())


def blas_single_threaded() -> bool:
    """True when NumPy's BLAS is known to run one thread per call."""
    get = _openblas_threads()[0]
    return get is not None and int(get()) == 1


@functools.lru_cache(maxsize=256)
def _blocks(total: int, parts: int) -> tuple[tuple[int, int], ...]:
    """``parts`` near-equal ``(lo, hi)`` ranges of ``range(total)``; cached (a step asks
    for the same few splits tens of times, and ``np.linspace`` cost ~0.5 ms a call)."""
    edges = np.linspace(0, total, parts + 1).astype(np.int64)
    return tuple((int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo)


def run_blocks(fn, blocks, n_threads: int) -> None:
    """Run ``fn(lo, hi)`` for every block ``(lo, hi)`` on up to ``n_threads`` threads: this
    one and evsim's pool (:func:`evsim._shares.run_chunks`: blocks taken in turn; each
    block writes only its own part, so which thread runs it changes nothing)."""
    def run(first: int, stop: int) -> None:
        for k in range(first, stop):
            fn(*blocks[k])

    run_chunks(run, len(blocks), max(1, min(n_threads, len(blocks))))


def is_sparse(a: np.ndarray, nonzero: int | None = None) -> bool:
    """True when ``a`` is big enough and has at most :data:`SPARSE_MAX_DENSITY` non-zeros;
    ``nonzero``: their number when the caller knows it (e.g. from the kernel that wrote
    ``a``), else they are counted."""
    if a.shape[0] < MIN_BLOCK_ROWS:
        return False
    return (count_nonzero(a) if nonzero is None else nonzero) <= SPARSE_MAX_DENSITY * a.size


def count_nonzero(a: np.ndarray) -> int:
    """``np.count_nonzero(a)`` for a 2-D array, rows in parallel (NumPy's count ran on one
    thread, ~4 ms of serial work per product in a CRSNN step)."""
    if a.ndim != 2 or not a.flags.c_contiguous or a.dtype not in (np.float32, np.float64):
        return int(np.count_nonzero(a))
    return int(_count_nonzero_rows(a))


@numba.njit(**PARALLEL_TRAIN)
def _count_nonzero_rows(a) -> int:
    """The number of non-zeros of the 2-D array ``a``, row chunks in parallel."""
    rows = a.shape[0]
    n_chunks = (rows + SPARSE_CHUNK - 1) // SPARSE_CHUNK
    counts = np.zeros(n_chunks, np.int64)
    for chunk in numba.prange(n_chunks):
        k = 0
        for r in range(chunk * SPARSE_CHUNK, min(rows, (chunk + 1) * SPARSE_CHUNK)):
            a_r = a[r]
            for j in range(a_r.shape[0]):
                k += a_r[j] != 0.0
        counts[chunk] = k
    return counts.sum()


def matmul(a: np.ndarray, b: np.ndarray, sparse: bool | None = None) -> np.ndarray:
    """``a @ b`` for 2-D arrays, as fixed row blocks of ``a`` over the threads (module
    docstring), or :func:`sparse_matmul` when ``a`` is sparse (``sparse``: that decision,
    :func:`is_sparse`, when the caller has it; None: count); for the long sums of the
    weight gradients use :func:`matmul_tn`."""
    if is_sparse(a) if sparse is None else sparse:
        out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
        sparse_matmul(a, np.ascontiguousarray(b, dtype=out.dtype), out)
        return out
    n_blocks = min(ROW_BLOCKS, a.shape[0] // MIN_BLOCK_ROWS)
    if n_blocks <= 1 or not blas_single_threaded():
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))

    def block(lo, hi):
        np.matmul(a[lo:hi], b, out=out[lo:hi])

    run_blocks(block, _blocks(a.shape[0], n_blocks), threads())
    return out


def matmul_tn(a: np.ndarray, b: np.ndarray, sparse: bool | None = None) -> np.ndarray:
    """``a.T @ b`` for 2-D arrays with many rows (a weight gradient: a sum over the B T
    rows), as the sum of fixed row blocks' products, added in block order; splitting the
    output instead would pack the whole of ``b`` once per block (measured 1.9x slower);
    :func:`sparse_matmul_tn` when ``b`` is sparse (``sparse``: as in :func:`matmul`)."""
    n_blocks = min(ROW_BLOCKS, a.shape[0] // MIN_BLOCK_ROWS)
    if n_blocks > 1 and (is_sparse(b) if sparse is None else sparse):
        dtype = np.result_type(a, b)
        parts = np.zeros((n_blocks, b.shape[1], a.shape[1]), dtype)
        edges = np.array([lo for lo, _ in _blocks(a.shape[0], n_blocks)] + [a.shape[0]], np.int64)
        sparse_matmul_tn(np.ascontiguousarray(a, dtype=dtype), np.ascontiguousarray(b, dtype=dtype), edges, parts)
        return np.ascontiguousarray(parts[0].T)
    if n_blocks <= 1 or not blas_single_threaded():
        return a.T @ b
    blocks = _blocks(a.shape[0], n_blocks)
    parts = [None] * len(blocks)

    def block(lo, hi):
        parts[blocks.index((lo, hi))] = a[lo:hi].T @ b[lo:hi]

    run_blocks(block, blocks, threads())
    out = parts[0]
    for part in parts[1:]:
        out += part
    return out


@numba.njit(**TRAIN)
def _nonzero_columns(row, nonzero) -> int:
    """The columns of ``row``'s non-zeros into ``nonzero[:k]``, in order; returns k
    (compacted without a branch)."""
    k = 0
    for j in range(row.shape[0]):
        nonzero[k] = j
        k += row[j] != 0.0
    return k


@numba.njit(**PARALLEL_TRAIN)
def sparse_matmul(a, bt, out):
    """out = a @ bt for ``a`` (rows, n_in) with few non-zeros per row: each row of ``out``
    is the sum, in column order, of a[r, j] bt[j] over the non-zero a[r, j] (float32 sums
    of float32 products, as BLAS, in another order); rows in parallel."""
    rows, n_in = a.shape
    n_out = bt.shape[1]
    for chunk in numba.prange((rows + SPARSE_CHUNK - 1) // SPARSE_CHUNK):
        nonzero = np.empty(n_in, np.int64)
        for r in range(chunk * SPARSE_CHUNK, min(rows, (chunk + 1) * SPARSE_CHUNK)):
            a_r, out_r = a[r], out[r]
            k = _nonzero_columns(a_r, nonzero)
            out_r[:] = 0.0
            for e in range(k):
                j = nonzero[e]
                v, b_j = a_r[j], bt[j]
                for i in range(n_out):
                    out_r[i] += v * b_j[i]


@numba.njit(**PARALLEL_TRAIN)
def sparse_matmul_tn(a, b, edges, parts):
    """``a.T @ b`` for ``b`` (rows, n_in) with few non-zeros per row, transposed: ``parts[0]``
    (n_in, n_out) = b.T @ a.  Rows in the fixed blocks ``edges[k]:edges[k+1]`` (one per
    entry of ``parts``, zeros on entry), each block's sum in its own ``parts[k]``, blocks in
    parallel, then the blocks added in order (as :func:`matmul_tn`): the result does not
    depend on the thread count."""
    n_in = b.shape[1]
    n_out = a.shape[1]
    for k in numba.prange(parts.shape[0]):
        part = parts[k]
        nonzero = np.empty(n_in, np.int64)
        for r in range(edges[k], edges[k + 1]):
            a_r, b_r = a[r], b[r]
            m = _nonzero_columns(b_r, nonzero)
            for e in range(m):
                j = nonzero[e]
                v, part_j = b_r[j], part[j]
                for i in range(n_out):
                    part_j[i] += v * a_r[i]
    for k in range(1, parts.shape[0]):
        parts[0] += parts[k]


@numba.njit(**TRAIN)
def _mask_from_bytes(top8, t_hi, scale, out):
    """out[i] = scale where the byte ``top8[i]`` > t_hi, 0 where it is < t_hi, -1 (a tie,
    decided by :func:`_resolve_ties`, which finds it again in the words) where equal; returns the number of ties (one pass
    without branches: it vectorises)."""
    ties = 0
    for i in range(out.shape[0]):
        b = np.int64(top8[i])
        out[i] = scale if b > t_hi else (-1.0 if b == t_hi else 0.0)
        ties += b == t_hi
    return ties


_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)


@numba.njit(**TRAIN)
def _resolve_ties(out, words, t_hi, low16, t_lo, scale):
    """The ties of ``out`` (the entries whose byte of ``words``, 8 per word, low byte first,
    equals t_hi), in order: the k-th kept (scale) when its low 16 bits ``low16[k]`` >= t_lo,
    else 0.  A pass over the words: one without a byte equal to t_hi (a zero byte of
    ``w ^ t_hi * 0x01..01``: ``(x - 0x01..01) & ~x & 0x80..80`` is non-zero exactly when x
    has one) is skipped whole, so a mask's bytes are looked at one by one only in the ~3 %
    of words that hold a tie."""
    pattern = np.uint64(t_hi) * _ONES
    size = out.shape[0]
    k = 0
    for w in range(words.shape[0]):
        x = words[w] ^ pattern
        if (x - _ONES) & ~x & _HIGHS:
            for byte in range(min(8, size - 8 * w)):
                if (x >> np.uint64(8 * byte)) & np.uint64(0xFF) == np.uint64(0):
                    out[8 * w + byte] = scale if np.int64(low16[k]) >= t_lo else 0.0
                    k += 1


def dropout_mask(rng: np.random.Generator, p: float, shape: tuple, dtype) -> np.ndarray:
    """Bernoulli(1 - p) / (1 - p) of ``shape`` in ``dtype``, each entry kept when its
    uniform 24-bit integer u >= ceil(float32(p) 2^24), as ``rng.random(float32) >= p``
    decides, from 8 random bits per entry and 16 more on a tie (module docstring); over
    threads when ``rng`` is a PCG64 generator, else NumPy's own draw."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    bitgen = rng.bit_generator
    scale = dtype.type(1.0 / (1.0 - p))
    if type(bitgen) is not np.random.PCG64 or sys.byteorder != "little":
        mask = (rng.random(shape, dtype=np.float32) >= p).astype(dtype)
        mask *= 1.0 / (1.0 - p)
        return mask
    threshold = int(np.ceil(float(np.float32(p)) * 2.0**24))     # keep iff u >= threshold
    t_hi, t_lo = threshold >> 16, threshold & 0xFFFF
    n_words = (size + 7) // 8
    out = np.empty(size, dtype)
    blocks = _blocks(n_words, max(1, min(threads(), n_words // MIN_WORDS_PER_THREAD)))
    if len(blocks) == 1:
        words = bitgen.random_raw(n_words)
        n_ties = _mask_from_bytes(words.view(np.uint8), t_hi, scale, out)
        if n_ties:
            low16 = bitgen.random_raw((n_ties + 3) // 4).view(np.uint16)
            _resolve_ties(out, words, t_hi, low16, t_lo, scale)
        return out.reshape(shape)
    start = bitgen.state
    words_of = [None] * len(blocks)
    ties = np.zeros(len(blocks) + 1, np.int64)        # per block, then their running sum

    def entries(lo, hi):
        return out[8 * lo:min(8 * hi, size)]

    def draw(lo, hi):
        k = blocks.index((lo, hi))
        gen = np.random.PCG64()
        gen.state = start
        gen.advance(lo)
        words_of[k] = gen.random_raw(hi - lo)
        ties[k + 1] = _mask_from_bytes(words_of[k].view(np.uint8), t_hi, scale, entries(lo, hi))

    run_blocks(draw, blocks, len(blocks))
    bitgen.advance(n_words)                 # as random_raw(n_words) would leave it: advance
    state = bitgen.state                    # drops a buffered half word, random_raw keeps it
    state["has_uint32"], state["uinteger"] = start["has_uint32"], start["uinteger"]
    bitgen.state = state
    np.cumsum(ties, out=ties)
    if ties[-1]:
        low16 = bitgen.random_raw((int(ties[-1]) + 3) // 4).view(np.uint16)

        def resolve(lo, hi):
            k = blocks.index((lo, hi))
            _resolve_ties(entries(lo, hi), words_of[k], t_hi, low16[ties[k]:ties[k + 1]], t_lo, scale)

        run_blocks(resolve, blocks, len(blocks))
    return out.reshape(shape)
