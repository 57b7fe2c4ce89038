"""The OpenBLAS library this process loaded, found through ``/proc/self/maps`` (Linux), so
its thread count can be read or set without importing anything heavy."""

from __future__ import annotations

import ctypes
import functools


@functools.lru_cache(maxsize=None)
def openblas_library(numpy_only: bool = False):
    """``(library, (prefix, suffix))`` of the loaded OpenBLAS whose symbols are
    ``{prefix}get_num_threads{suffix}`` and ``{prefix}set_num_threads{suffix}``, or
    ``(None, None)`` (another BLAS, no OpenBLAS loaded, or not Linux).  ``numpy_only``: only
    the copy NumPy ships (a path containing "numpy")."""
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({line.split()[-1] for line in fh if "openblas" in line and ".so" in line})
    except OSError:
        return None, None
    for path in paths:
        if numpy_only and "numpy" not in path:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                if hasattr(lib, f"{prefix}set_num_threads{suffix}") and hasattr(lib, f"{prefix}get_num_threads{suffix}"):
                    return lib, (prefix, suffix)
    return None, None
