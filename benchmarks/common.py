"""Helpers shared by the ``benchmarks/bench_*.py`` scripts.

* :func:`median_time` times a callable (after warm-up runs, so compilation is excluded) and
  returns the median of several runs; :func:`cpu_seconds` and :func:`wall_seconds` time
  one call;
* :func:`environment` records what the numbers depend on (numba/numpy versions, thread
  counts, CPU);
* :func:`blas_threads` limits NumPy's OpenBLAS threads, so "one core" means one core for
  the dense reference too;
* :func:`write_results` writes ``benchmarks/results/<name>.json`` and replaces the block
  between ``<!-- <name>:start -->`` and ``<!-- <name>:end -->`` in
  ``benchmarks/README.md`` with a markdown table.

Machines differ and are shared, so benchmarks report ratios of things measured in the
same run, never one absolute time on its own.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from evsim._io import atomic_write  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")
README = os.path.join(HERE, "README.md")


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1,
                min_seconds: float = 0.0) -> dict:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs.

    With ``min_seconds`` > 0, each timed run repeats ``fn`` until that long has passed and
    reports the time per call (for calls of microseconds).  Returns ``{"median": s,
    "min": s, "max": s, "runs": [...]}`` in seconds per call.
    """
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(max(1, repeats)):
        calls = 0
        start = time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        runs.append(elapsed / calls)
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs}


def cpu_seconds(fn: Callable, *args) -> float:
    """CPU seconds (user + system, every thread of the process) of one ``fn(*args)``."""
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


def wall_seconds(fn: Callable, *args) -> float:
    """Wall seconds of one ``fn(*args)``."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _openblas():
    """The OpenBLAS library NumPy loaded, and the prefix of its symbols (or None)."""
    from evsim._blas import openblas_library

    return openblas_library()


def get_blas_threads() -> int | None:
    lib, names = _openblas()
    if lib is None:
        return None
    prefix, suffix = names
    return int(getattr(lib, f"{prefix}get_num_threads{suffix}")())


@contextlib.contextmanager
def blas_threads(n: int):
    """Run the block with NumPy's OpenBLAS limited to ``n`` threads (best effort: without
    OpenBLAS the block runs unchanged)."""
    lib, names = _openblas()
    if lib is None:
        yield
        return
    prefix, suffix = names
    old = int(getattr(lib, f"{prefix}get_num_threads{suffix}")())
    getattr(lib, f"{prefix}set_num_threads{suffix}")(int(n))
    try:
        yield
    finally:
        getattr(lib, f"{prefix}set_num_threads{suffix}")(old)


def environment() -> dict:
    """Versions, threads and CPU: what the numbers depend on."""
    import numba

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "numba_max_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": numba.config.THREADING_LAYER,
        "blas_threads": get_blas_threads(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "command": " ".join([os.path.relpath(sys.argv[0]) if sys.argv else "?"] + sys.argv[1:]),
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def fmt(v):
        if isinstance(v, float):
            if v == 0 or 1e-3 <= abs(v) < 1e6:
                return f"{v:.4g}"
            return f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def write_results(name: str, results: dict, markdown: str, readme: str = README) -> str:
    """Write ``results/<name>.json`` (atomically) and put ``markdown`` between the
    ``<!-- <name>:start -->`` / ``<!-- <name>:end -->`` markers of the README (appended
    with the markers if they are missing).  Returns the JSON path."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    with atomic_write(path, "w") as fh:
        json.dump(_jsonable(results), fh, indent=2, sort_keys=True)
        fh.write("\n")

    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    text = open(readme).read() if os.path.exists(readme) else ""
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    with atomic_write(readme, "w") as fh:
        fh.write(text)
    return path
