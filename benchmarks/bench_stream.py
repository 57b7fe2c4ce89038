"""EventStream of this checkout against another one: ``step``, ``push`` and ``run_chunk``
on a built-in model at its ``n_steps``, alternating the two checkouts in fresh processes.

    python benchmarks/bench_stream.py --against DIR [--rounds 6] [--passes 5] [--model default]
                                      [--precision float64] [--write]

DIR is a source tree of the other evsim (e.g. ``git -C /work/main archive HEAD | tar -x -C
DIR``).  Each round runs one process per checkout (alternating which goes first), each with
one numba thread, timing on the built-in samples (``evsim/_builtin/samples.h5``, the same
file in both): ``step`` per 10 ms step, ``push`` of one step's raw events (with ``until``
the step's end, as a live input does), and ``run_chunk`` of whole samples (the model's own
work per step, without a call per step).  Each figure is the best of ``--passes`` passes
of CPU time (``time.process_time``: on a loaded machine, the time the process ran, not
the time it waited).  The report gives, per figure, the median over rounds of this
checkout's and the other's time and of the per-round ratio other / this (> 1: this one is
faster).  Ratios are what to read on a shared machine; absolute times move with the load.
With ``--write``: ``benchmarks/results/stream.json`` and the ``stream`` table of
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def worker(model_name: str, precision: str, passes: int) -> dict:
    """Time the evsim found on sys.path (run in a fresh process)."""
    import numba
    import numpy as np

    import evsim
    from evsim.data import SpikeFile, time_to_step
    from evsim.event import EventStream
    from evsim.model_file import load_model
    from evsim.names import BUILTIN_MODELS, builtin_path

    numba.set_num_threads(1)
    model = load_model(builtin_path(BUILTIN_MODELS[model_name]))
    meta = model.metadata
    with SpikeFile(os.path.join(os.path.dirname(evsim.__file__), "_builtin", "samples.h5")) as f:
        n = len(f)
        raw = [f.read(i) for i in range(n)]
        binned = [f.binned(i, dt_ms=meta.dt_ms, pool=meta.pool, n_steps=meta.n_steps, dtype=np.float64)
                  for i in range(n)]
    stream = EventStream(model, precision=precision)
    rows = [np.ascontiguousarray(r) for x in binned for r in x]
    pieces = []
    for s in raw:
        step_of = time_to_step(s.times, meta.dt_ms)
        edges = np.searchsorted(step_of, np.arange(meta.n_steps + 1), side="left")
        pieces.append([(s.times[a:b], s.units[a:b], (k + 1) * meta.dt_ms / 1e3)
                       for k, (a, b) in enumerate(itertools.pairwise(edges))])

    def by_step():
        for k, row in enumerate(rows):
            if k % meta.n_steps == 0:
                stream.reset()
            stream.step(row)

    def by_push():
        for p in pieces:
            stream.reset()
            for t, u, until in p:
                stream.push(t, u, until=until)

    def by_chunk():
        for x in binned:
            stream.reset()
            stream.run_chunk(x)

    out = {}
    for name, fn, per in (("step_us", by_step, len(rows)), ("push_us", by_push, sum(map(len, pieces))),
                          ("chunk_us", by_chunk, len(rows))):
        fn()                                          # loads the compiled kernels
        best = float("inf")
        for _ in range(passes):
            start = time.process_time()
            fn()
            best = min(best, time.process_time() - start)
        out[name] = best / per * 1e6
    return out


def run_worker(tree: str, args) -> dict:
    env = dict(os.environ, PYTHONPATH=tree, NUMBA_NUM_THREADS="1",
               NUMBA_CACHE_DIR="/tmp/numba_cache_bench_stream_" + hashlib.md5(os.path.abspath(tree).encode()).hexdigest()[:8])
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--model", args.model,
           "--precision", args.precision, "--passes", str(args.passes)]
    proc = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=tree)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", help="source tree of the other evsim")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--model", default="default")
    ap.add_argument("--precision", default="float64")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.model, args.precision, args.passes)))
        return {}
    trees = {"this": ROOT, "other": os.path.abspath(args.against)}
    for tree in trees.values():                      # compile (or load) each checkout's kernels once
        run_worker(tree, argparse.Namespace(**{**vars(args), "passes": 1}))
    per_round = []
    for r in range(args.rounds):
        order = ("this", "other") if r % 2 == 0 else ("other", "this")
        got = {who: run_worker(trees[who], args) for who in order}
        per_round.append({**got, "load": os.getloadavg()[0]})
        print(f"round {r + 1}: " + "; ".join(f"{k} this {got['this'][k]:.2f} other {got['other'][k]:.2f} us"
                                             for k in got["this"]), flush=True)
    figures = {}
    for key in per_round[0]["this"]:
        figures[key] = {"this": statistics.median(p["this"][key] for p in per_round),
                        "other": statistics.median(p["other"][key] for p in per_round),
                        "ratio": statistics.median(p["other"][key] / p["this"][key] for p in per_round)}
    res = {"command": "python benchmarks/bench_stream.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "against": trees["other"], "model": args.model, "precision": args.precision,
           "loads": [p["load"] for p in per_round], "figures": figures, "rounds": per_round}
    md = report(res)
    print(md)
    if args.write:
        sys.path.insert(0, ROOT)
        from benchmarks.common import write_results

        print("wrote", write_results("stream", res, md))
    return res


def report(res) -> str:
    names = {"step_us": "`step`, per 10 ms step", "push_us": "`push` of one step's raw events",
             "chunk_us": "`run_chunk` of whole samples, per step (the model's own work)"}
    lines = [f"Command: `{res['command']}`  ",
             (f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, model `{res['model']}` at its n_steps, "
              f"{res['precision']}, one thread, CPU time, best of the passes, median of {len(res['rounds'])} "
              f"alternating rounds; load average per round {[round(x, 1) for x in res['loads']]}; other = "
              f"`{res['against']}`."), "",
             "| figure | this (us) | other (us) | other / this |", "|---|---|---|---|"]
    for key, f in res["figures"].items():
        lines.append(f"| {names.get(key, key)} | {f['this']:.2f} | {f['other']:.2f} | {f['ratio']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
