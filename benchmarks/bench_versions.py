"""Event engine of this checkout against an older one: batch-1 throughput and stream-step
latency, alternating between the two in fresh processes.

    python benchmarks/bench_versions.py --old DIR [--rounds 8] [--samples 10] [--hidden 128]

DIR is a source tree of the older evsim (e.g. ``git archive 7df0697 | tar -x -C DIR``).
Each round runs one process per version (alternating which goes first), each timing the
same CRSNN-shaped random model (written as a schema-1 file, which both read) on the
built-in samples with one numba thread: one ``simulate`` call per sample (batch 1) and
``EventStream.step`` per step, best of a few passes.  The report gives the ratio of the
two versions' best times over all rounds (the runs least disturbed by other processes)
and the median of the per-round ratios (old time / new time: > 1 means the new one is
faster).  Separate processes, because two copies of the *same* code imported into one
process differ by up to ~8 % (code placement), which would hide a small difference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def as_schema1(arrays: dict) -> dict:
    """A LIF model's arrays as a schema-1 file (no cell entries), which older evsim reads."""
    meta = json.loads(str(arrays["metadata"]))
    for layer in meta["layers"]:
        assert layer.pop("cell", "lif") == "lif"
    return {**arrays, "metadata": np.array(json.dumps(meta, sort_keys=True)),
            "schema_version": np.array(1, np.int64)}


def worker(model_path: str, n_samples: int, passes: int) -> dict:
    """Time the evsim on sys.path (run in a fresh process)."""
    import numba

    from evsim import event
    from evsim.data import SpikeFile
    from evsim.model import load_model

    numba.set_num_threads(1)
    model = load_model(model_path)
    import evsim

    with SpikeFile(os.path.join(os.path.dirname(evsim.__file__), "_builtin", "samples.h5")) as f:
        samples = [f.binned(i % len(f), dt_ms=model.metadata.dt_ms, pool=model.metadata.pool, dtype=np.float64)
                   for i in range(n_samples)]
    steps = np.concatenate(samples)
    stream = event.EventStream(model)

    def batch1():
        for s in samples:
            event.simulate(model, s)

    def stream_steps():
        stream.reset()
        for row in steps:
            stream.step(row)

    out = {}
    for name, fn, per in (("batch1", batch1, len(samples)), ("stream_step", stream_steps, len(steps))):
        fn()
        best = float("inf")
        for _ in range(passes):
            t0 = time.perf_counter()
            fn()
            best = min(best, (time.perf_counter() - t0) / per)
        out[name] = best
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", help="source tree of the older evsim")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "SAMPLES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.passes)))
        return {}
    sys.path.insert(0, HERE)
    from bench_event import crsnn_model

    path = os.path.join(tempfile.mkdtemp(), "bench.npz")
    np.savez(path, **as_schema1(crsnn_model([3.0, 2.0, 2.0, 2.0], hidden=args.hidden).to_arrays()))
    trees = {"old": os.path.abspath(args.old), "new": os.path.dirname(HERE)}
    times = {"old": [], "new": []}
    for r in range(args.rounds):
        for who in (("old", "new") if r % 2 == 0 else ("new", "old")):
            env = dict(os.environ, PYTHONPATH=trees[who],
                       NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", tempfile.gettempdir()) + f"_bench_{who}")
            res = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", path, str(args.samples),
                                  "--passes", str(args.passes)], env=env, cwd=trees[who], capture_output=True,
                                 text=True, check=True)
            times[who].append(json.loads(res.stdout.strip().splitlines()[-1]))
    import numba

    out = {"numba": numba.__version__, "threads": 1, "hidden": args.hidden, "samples": args.samples,
           "rounds": args.rounds, "load_avg_after": os.getloadavg()}
    for what in ("batch1", "stream_step"):
        old = [t[what] for t in times["old"]]
        new = [t[what] for t in times["new"]]
        out[what] = {"old_best_s": min(old), "new_best_s": min(new),
                     "speedup_best": min(old) / min(new),
                     "speedup_median_of_rounds": statistics.median(o / n for o, n in zip(old, new))}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
