"""Parallel back ends: batch-inference scaling with --jobs and per-task overhead of Dask vs joblib.

    python benchmarks/bench_parallel.py                 # the 1000 spoken-digit test samples (~2 min)
    python benchmarks/bench_parallel.py --quick         # 128 samples, fewer tasks (~40 s)

1. Batch inference (``evsim.batch.classify_many``, the code behind ``evsim batch``) with
   the built-in model on ``--input``: this process with 1 and with all numba threads,
   joblib with 2 processes of 1 thread, a Dask LocalCluster of 2 workers of 1 thread.
   Worker start-up (processes, imports, loading the cached kernels) is excluded: every
   back end first classifies a few small chunks, then the whole file is timed (median of
   ``--repeats``).  Figures: samples/s and the ratio to one process on one thread, and
   the CPU time per sample of this process and its workers (psutil), which a loaded
   machine does not change much: it shows what a back end costs beyond the work.
2. Per-task overhead: ``--tasks`` tasks that do nothing, through ``map_unordered`` and
   ``map_ordered`` (2 x jobs in flight), joblib vs Dask, 2 workers each, after warm-up:
   milliseconds per task and the ratio Dask / joblib.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import environment, markdown_table, median_time, write_results  # noqa: E402

DEFAULT_INPUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                             "digits", "digits_test.h5")


def _noop(item):
    return item


def _backends(cores: int) -> list[tuple[str, dict]]:
    rows = [("1 process, 1 thread", dict(jobs=1, threads=1))]
    if cores > 1:
        rows.append((f"1 process, {cores} threads", dict(jobs=1, threads=cores)))
    rows += [("joblib, 2 processes x 1 thread", dict(jobs=2, threads=1)),
             ("Dask LocalCluster, 2 workers x 1 thread", dict(jobs=2, threads=1, scheduler="local"))]
    return rows


def _cpu_seconds() -> float | None:
    """CPU time (user + system) of this process and all its descendants (the workers), or
    None without psutil (it comes with the dask extra)."""
    try:
        import psutil
    except ImportError:
        return None
    me = psutil.Process()
    total = 0.0
    for p in [me] + me.children(recursive=True):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def bench_batch(path: str, n_samples: int | None, repeats: int) -> list[dict]:
    from evsim.batch import classify_many, input_files, plan_chunks
    from evsim.model import load_model
    from evsim.parallel import Executor, cpu_count
    from evsim.cli.common import model_path

    model_file = os.path.abspath(model_path("default"))
    model = load_model(model_file)
    chunks, total = plan_chunks(model, model_file, input_files([path]), chunk_size=128)
    if n_samples:
        chunks = [c for c in chunks if c.start < n_samples]
        chunks[-1] = chunks[-1]._replace(stop=min(chunks[-1].stop, n_samples))
    n = sum(c.stop - c.start for c in chunks)
    warm = [c._replace(stop=c.start + 4) for c in chunks[:4]]
    rows = []
    for name, kw in _backends(cpu_count()):
        with Executor(**kw) as ex:
            list(classify_many(model, model_file, warm, ex))
            cpu0 = _cpu_seconds()
            t = median_time(lambda: sum(1 for _ in classify_many(model, model_file, chunks, ex)),
                            repeats=repeats, warmup=0)
            cpu1 = _cpu_seconds()
        cpu_ms = None if cpu0 is None else 1e3 * (cpu1 - cpu0) / (n * repeats)
        rows.append({"backend": name, **kw, "samples": n, "seconds": t["median"], "samples_per_s": n / t["median"],
                     "cpu_ms_per_sample": cpu_ms})
        print(f"{name}: {n / t['median']:.1f} samples/s, CPU {cpu_ms} ms/sample", file=sys.stderr)
    for r in rows:
        r["ratio"] = r["samples_per_s"] / rows[0]["samples_per_s"]
    return rows


def bench_overhead(n_tasks: int, repeats: int) -> list[dict]:
    from evsim.parallel import Executor

    rows = []
    for name, kw in (("joblib", dict(jobs=2, threads=1)), ("Dask LocalCluster", dict(jobs=2, threads=1, scheduler="local"))):
        with Executor(**kw) as ex:
            list(ex.map_ordered(_noop, range(8)))
            unordered = median_time(lambda: list(ex.map_unordered(_noop, range(n_tasks))), repeats=repeats, warmup=0)
            ordered = median_time(lambda: list(ex.map_ordered(_noop, range(n_tasks))), repeats=repeats, warmup=0)
        rows.append({"backend": name, "tasks": n_tasks, "unordered_ms_per_task": 1e3 * unordered["median"] / n_tasks,
                     "ordered_ms_per_task": 1e3 * ordered["median"] / n_tasks})
        print(f"{name}: {rows[-1]['unordered_ms_per_task']:.3f} / {rows[-1]['ordered_ms_per_task']:.3f} ms per task",
              file=sys.stderr)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", default=DEFAULT_INPUT, help="spike file (SHD layout)")
    ap.add_argument("--quick", action="store_true", help="128 samples, 200 tasks, 2 repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--tasks", type=int, default=None)
    args = ap.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 3)
    t0 = time.time()
    batch = bench_batch(os.path.abspath(args.input), 128 if args.quick else None, repeats)
    overhead = bench_overhead(args.tasks or (200 if args.quick else 1000), repeats)
    dask, joblib = overhead[1], overhead[0]
    results = {"environment": environment(), "quick": args.quick, "input": args.input, "batch": batch,
               "overhead": overhead, "seconds": time.time() - t0,
               "dask_over_joblib_unordered": dask["unordered_ms_per_task"] / joblib["unordered_ms_per_task"],
               "dask_over_joblib_ordered": dask["ordered_ms_per_task"] / joblib["ordered_ms_per_task"]}
    env = results["environment"]
    md = (f"Batch inference, built-in `default` model, {batch[0]['samples']} samples of `{os.path.basename(args.input)}`, "
          f"median of {repeats} (load average at start {env['load_average'][0]:.1f} on {env['cores']} cores):\n\n"
          + markdown_table(["back end", "samples/s", "x 1 process 1 thread", "CPU ms/sample, all processes"],
                           [[r["backend"], r["samples_per_s"], r["ratio"], r["cpu_ms_per_sample"] or "-"] for r in batch])
          + f"\n\nPer-task overhead, {overhead[0]['tasks']} empty tasks, 2 workers:\n\n"
          + markdown_table(["back end", "ms/task (unordered)", "ms/task (ordered, 2 x jobs in flight)"],
                           [[r["backend"], r["unordered_ms_per_task"], r["ordered_ms_per_task"]] for r in overhead])
          + f"\n\nDask / joblib: {results['dask_over_joblib_unordered']:.1f}x (unordered), "
            f"{results['dask_over_joblib_ordered']:.1f}x (ordered).")
    write_results("parallel", results, md)
    print(md)


if __name__ == "__main__":
    main()
