"""Arrays that start on a 64-byte boundary: a cache line, and one AVX-512 register.

The event engine adds weight rows of 256 float32 (1 KB) into a layer's input current with
64-byte vector loads and stores.  NumPy allocates on 16 bytes and numba on 32, so most of
those loads straddled two cache lines.  With the packed model, the states and the stream
buffers on 64 bytes the built-in models run 1.13-1.16x faster at batch 1, bit for bit the
same: alignment changes no arithmetic (benchmarks/README.md, "Aligned arrays and reference
counts").

This module needs NumPy only (a kernel's own allocation on 64 bytes is
:func:`evsim.kernels.event.aligned_vector`).
"""

from __future__ import annotations

import numpy as np

#: bytes: where every array made here starts
ALIGN = 64


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-ordered, writable array of ``shape`` and ``dtype`` whose data
    starts on an :data:`ALIGN`-byte boundary (a view into a slightly larger buffer)."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffer = np.empty(nbytes + ALIGN, np.uint8)
    start = -buffer.ctypes.data % ALIGN
    return buffer[start:start + nbytes].view(dtype).reshape(shape)


def aligned_zeros(shape, dtype=np.float64) -> np.ndarray:
    """:func:`aligned_empty`, filled with zeros."""
    out = aligned_empty(shape, dtype)
    out[...] = 0
    return out


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """A C-ordered, writable, :data:`ALIGN`-byte aligned copy of ``a`` (same dtype and shape)."""
    out = aligned_empty(a.shape, a.dtype)
    out[...] = a
    return out


def is_aligned(a: np.ndarray) -> bool:
    """True when ``a``'s data starts on an :data:`ALIGN`-byte boundary."""
    return a.ctypes.data % ALIGN == 0
