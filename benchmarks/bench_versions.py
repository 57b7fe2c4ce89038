"""Event engine of this checkout against an older one, in the same process, interleaved.

    python benchmarks/bench_versions.py --old DIR [--samples 20] [--rounds 7] [--hidden 128]

DIR is a source tree of the older evsim (e.g. ``git archive 7df0697 | tar -x -C DIR``);
its ``evsim`` package is imported under the name ``evsim_old``.  Both engines run the same
CRSNN-shaped random model (written by this checkout as a schema-1 file, read by both) on
the built-in samples, one numba thread: batch-1 throughput (samples/s, one simulate call
per sample) and stream-step latency (EventStream.step).  Each round times old then new,
or new then old (alternating), so load from other processes hits both alike; the report
is the median over rounds of the new/old ratio.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def import_old(src: str):
    """The evsim package of source tree ``src``, imported as ``evsim_old``."""
    root = tempfile.mkdtemp(prefix="evsim_old_")
    shutil.copytree(os.path.join(src, "evsim"), os.path.join(root, "evsim_old"))
    sys.path.insert(0, root)
    return importlib.import_module("evsim_old")


def builtin_samples(n: int, dt_ms: float, pool: int):
    import evsim
    from evsim.data import SpikeFile

    path = os.path.join(os.path.dirname(evsim.__file__), "_builtin", "samples.h5")
    with SpikeFile(path) as f:
        return [f.binned(i % len(f), dt_ms=dt_ms, pool=pool, dtype=np.float64) for i in range(n)]


def batch1(pkg, model, samples):
    sim = importlib.import_module(pkg.__name__ + ".event").simulate

    def go():
        for s in samples:
            sim(model, s)
    return go


def stream_steps(pkg, model, samples):
    stream = importlib.import_module(pkg.__name__ + ".event").EventStream(model)
    steps = np.concatenate(samples)

    def go():
        stream.reset()
        for row in steps:
            stream.step(row)
    return go, len(steps)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="source tree of the older evsim")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--hidden", type=int, default=128)
    args = ap.parse_args(argv)
    import numba

    numba.set_num_threads(1)
    import evsim
    from bench_event import crsnn_model
    from evsim.model import load_model

    old = import_old(args.old)
    model_new = crsnn_model([3.0, 2.0, 2.0, 2.0], hidden=args.hidden)
    path = os.path.join(tempfile.mkdtemp(), "bench.npz")
    model_new.save(path)
    model_new = load_model(path)
    model_old = importlib.import_module("evsim_old.model").load_model(path)
    samples = builtin_samples(args.samples, model_new.metadata.dt_ms, model_new.metadata.pool)
    # same outputs, and compile both before timing
    r_new = importlib.import_module("evsim.event").simulate(model_new, samples[0])
    r_old = importlib.import_module("evsim_old.event").simulate(model_old, samples[0])
    assert np.array_equal(r_new.readout, r_old.readout), "old and new engines disagree"
    fns = {"batch1": {"old": batch1(old, model_old, samples), "new": batch1(evsim, model_new, samples)}}
    so, n_steps = stream_steps(old, model_old, samples)
    sn, _ = stream_steps(evsim, model_new, samples)
    fns["stream_step"] = {"old": so, "new": sn}
    for f in (*fns["batch1"].values(), so, sn):
        f()
    times = {k: {"old": [], "new": []} for k in fns}
    for r in range(args.rounds):
        for what, pair in fns.items():
            for who in (("old", "new") if r % 2 == 0 else ("new", "old")):
                t0 = time.perf_counter()
                pair[who]()
                times[what][who].append(time.perf_counter() - t0)
    out = {"numba": numba.__version__, "threads": 1, "hidden": args.hidden, "samples": args.samples,
           "rounds": args.rounds, "load_avg": os.getloadavg()}
    for what in fns:
        ratios = [o / n for o, n in zip(times[what]["old"], times[what]["new"])]
        per = args.samples if what == "batch1" else n_steps
        out[what] = {"old_median_s_per_item": statistics.median(times[what]["old"]) / per,
                     "new_median_s_per_item": statistics.median(times[what]["new"]) / per,
                     "speedup_new_over_old_median": statistics.median(ratios),
                     "speedup_min": min(ratios), "speedup_max": max(ratios)}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
