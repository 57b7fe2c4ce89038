"""The event engine's kernel on the built-in models, this checkout against another one and
against the dense engine, alternating, in fresh processes.

    git -C /work/main archive HEAD | tar -x -C /tmp/engine_base
    python benchmarks/bench_engine.py --against /tmp/engine_base [--rounds 5] [--samples 100]
    python benchmarks/bench_engine.py --quick          # 1 round, 8 samples, this checkout, nothing written

Each round runs one worker process per checkout (``PYTHONPATH`` = the checkout, its own
``NUMBA_CACHE_DIR``, kernels loaded before timing), the order of the checkouts alternating
from round to round.  A worker bins the first ``--samples`` test samples once, at the
built-in models' ``n_steps`` (106), and times, in CPU time (user + system of the
process), for ``default`` and ``sparse``:

* the event engine at batch 1 (``evsim.event.simulate`` sample by sample) and at batch 64,
  one numba thread;
* the dense engine (``evsim.reference.simulate``) at batch 1 on the first
  ``--dense-samples`` samples, one BLAS thread (its cost hardly depends on the sample:
  dense matrix products at every one of the 106 steps);
* with ``--threads 2``, the event engine at batch 64 on one and two numba threads in *wall*
  time (a figure that needs a quiet machine: under load the second thread waits for a core).

Reported, per round and as medians over the rounds: ms per sample, event / dense and
this / other (> 1: this checkout is faster), batch 64 / batch 1 per-sample throughput,
and the engine's synaptic additions per CPU second against a plain float32 SIMD add loop
(``benchmarks/_simd.py``), timed in this process each round.  Engine time only: reading
and binning the file are outside (``bench_builtin.py`` times the whole ``evsim run`` path).
Writes ``benchmarks/results/engine.json`` and the ``engine`` table of
``benchmarks/README.md``.
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import environment, markdown_table, write_results  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = "/work/shared/data/digits/digits_test.h5"
MODELS = ("default", "sparse")


# -- the worker (runs inside one checkout) -----------------------------------------------

def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _wall(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def worker(data: str, n: int, n_dense: int, threads: int) -> dict:
    """Times of this checkout's engines (the module docstring), as a dict."""
    import numba

    from benchmarks.common import blas_threads
    from evsim import event, reference
    from evsim.data import SpikeFile
    from evsim.model_file import load_model
    from evsim.names import BUILTIN_MODELS, builtin_path

    out = {}
    for name in MODELS:
        model = load_model(builtin_path(BUILTIN_MODELS[name]))
        meta = model.metadata
        with SpikeFile(data, n_channels=meta.input_channels) as f:
            xs = [f.binned(i, dt_ms=meta.dt_ms, pool=meta.pool, n_steps=meta.n_steps, dtype=np.float64)
                  for i in range(n)]
        batch = np.stack(xs)
        batches = [batch[i:i + 64] for i in range(0, n, 64)]
        numba.set_num_threads(1)
        res = event.simulate(model, batch[:2])                       # loads the compiled kernels
        event.simulate(model, xs[0])
        syn = int(event.simulate(model, batch).stats["synaptic_events"].sum())
        b1 = _cpu(lambda: [event.simulate(model, x) for x in xs]) / n
        b64 = _cpu(lambda: [event.simulate(model, b) for b in batches]) / n
        with blas_threads(1):
            reference.simulate(model, xs[0][:2])
            dense = _cpu(lambda: [reference.simulate(model, x) for x in xs[:n_dense]]) / n_dense
        row = {"event_b1_ms": b1 * 1e3, "event_b64_ms": b64 * 1e3, "dense_b1_ms": dense * 1e3,
               "synaptic_events_per_sample": syn / n, "predictions": res.predictions.tolist()}
        if threads > 1:
            numba.set_num_threads(threads)
            event.simulate(model, batches[0])
            row["event_b64_t2_wall_ms"] = _wall(lambda: [event.simulate(model, b) for b in batches]) / n * 1e3
            numba.set_num_threads(1)
            row["event_b64_t1_wall_ms"] = _wall(lambda: [event.simulate(model, b) for b in batches]) / n * 1e3
        out[name] = row
    return out


# -- the driver ----------------------------------------------------------------------------

def run_worker(checkout: str, args) -> dict:
    cache = os.path.join(tempfile.gettempdir(), "evsim_bench_engine_cache_" + checkout.strip("/").replace("/", "_"))
    env = dict(os.environ, PYTHONPATH=f"{checkout}{os.pathsep}{HERE}", NUMBA_CACHE_DIR=cache,
               NUMBA_NUM_THREADS=str(max(args.threads, 1)), OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--data", args.data, "--samples", str(args.samples),
           "--dense-samples", str(args.dense_samples), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, env=env, cwd=checkout, check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def simd_adds_per_s() -> float:
    """A float32 add loop over L1-resident rows (``benchmarks/_simd.py``): additions/s."""
    from benchmarks._simd import add_rows

    rows, width = 16, 256
    w = np.random.default_rng(0).normal(size=rows * width).astype(np.float32)
    acc = np.zeros(width, np.float32)
    spk = np.tile(np.arange(rows, dtype=np.int64), 256)
    add_rows(acc, w, width, spk)
    best = min(_cpu(lambda: [add_rows(acc, w, width, spk) for _ in range(50)]) for _ in range(5))
    return spk.size * width * 50 / best


def summarise(rounds: list, label_this: str, label_other: str | None) -> dict:
    med = statistics.median
    out = {}
    for name in MODELS:
        this = [r["this"][name] for r in rounds]
        s = {"event_b1_ms": med(r["event_b1_ms"] for r in this), "event_b64_ms": med(r["event_b64_ms"] for r in this),
             "dense_b1_ms": med(r["dense_b1_ms"] for r in this),
             "event_vs_dense": med(r["dense_b1_ms"] / r["event_b1_ms"] for r in this),
             "batch64_vs_batch1": med(r["event_b1_ms"] / r["event_b64_ms"] for r in this),
             "synaptic_events_per_sample": this[0]["synaptic_events_per_sample"],
             "adds_per_cpu_s": med(r["synaptic_events_per_sample"] / r["event_b1_ms"] * 1e3 for r in this)}
        s["adds_vs_simd"] = med(x["this"][name]["synaptic_events_per_sample"] / x["this"][name]["event_b1_ms"] * 1e3
                                / x["simd_adds_per_s"] for x in rounds)
        if "event_b64_t2_wall_ms" in this[0]:
            s["two_threads_vs_one"] = med(r["event_b64_t1_wall_ms"] / r["event_b64_t2_wall_ms"] for r in this)
        if label_other is not None:
            other = [r["other"][name] for r in rounds]
            s["other"] = {"event_b1_ms": med(r["event_b1_ms"] for r in other),
                          "event_b64_ms": med(r["event_b64_ms"] for r in other),
                          "dense_b1_ms": med(r["dense_b1_ms"] for r in other),
                          "event_vs_dense": med(r["dense_b1_ms"] / r["event_b1_ms"] for r in other),
                          "batch64_vs_batch1": med(r["event_b1_ms"] / r["event_b64_ms"] for r in other)}
            s["this_vs_other_b1"] = med(o["event_b1_ms"] / t["event_b1_ms"] for t, o in zip(this, other))
            s["this_vs_other_b64"] = med(o["event_b64_ms"] / t["event_b64_ms"] for t, o in zip(this, other))
            s["same_predictions"] = all(t["predictions"] == o["predictions"] for t, o in zip(this, other))
        out[name] = s
    return out


def report(res: dict) -> str:
    env, summ = res["environment"], res["summary"]
    loads = ", ".join(f"{r['load']:.1f}" for r in res["rounds"])
    lines = [f"Command: `{res['command']}`  ",
             f"{env['date_utc']} UTC, {env['cpu']}, {env['cores']} cores, numba {env['numba']}; "
             f"{len(res['rounds'])} alternating rounds (medians), load average per round [{loads}]; "
             f"{res['samples']} test samples (dense engine: {res['dense_samples']}) at the models' n_steps (106); "
             f"CPU time, engine only.", ""]
    other = res.get("against")
    header = ["model", "checkout", "event b1 ms/sample", "event b64 ms/sample", "dense b1 ms/sample",
              "event / dense (b1)", "b64 / b1 throughput"]
    rows = []
    for name in MODELS:
        s = summ[name]
        rows.append([name, "this", s["event_b1_ms"], s["event_b64_ms"], s["dense_b1_ms"], s["event_vs_dense"],
                     s["batch64_vs_batch1"]])
        if other:
            o = s["other"]
            rows.append([name, "other", o["event_b1_ms"], o["event_b64_ms"], o["dense_b1_ms"], o["event_vs_dense"],
                         o["batch64_vs_batch1"]])
    lines += [markdown_table(header, rows), ""]
    rows = []
    for name in MODELS:
        s = summ[name]
        row = [name, s["synaptic_events_per_sample"], s["adds_per_cpu_s"], s["adds_vs_simd"]]
        if other:
            row += [s["this_vs_other_b1"], s["this_vs_other_b64"], "yes" if s["same_predictions"] else "NO"]
        if "two_threads_vs_one" in s:
            row.append(s["two_threads_vs_one"])
        rows.append(row)
    header = ["model", "synaptic adds/sample", "adds per CPU s (b1)", "/ float32 SIMD add loop"]
    if other:
        header += ["this / other, b1", "this / other, b64", "same predictions"]
    if "two_threads_vs_one" in summ[MODELS[0]]:
        header.append("b64: 2 threads / 1 (wall)")
    lines += [markdown_table(header, rows)]
    if other:
        lines += ["", f"Other checkout: `{other}`; float32 SIMD add loop: "
                      f"{statistics.median(r['simd_adds_per_s'] for r in res['rounds']):.3g} adds/s."]
    return "\n".join(lines)


def main(argv=None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", help="another checkout (a directory with evsim/) to compare with")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--samples", type=int, default=100, help="test samples for the event engine (default 100)")
    ap.add_argument("--dense-samples", type=int, default=20, help="samples for the dense engine (default 20)")
    ap.add_argument("--threads", type=int, default=1, help="2: also time batch 64 on two threads (wall; quiet machine)")
    ap.add_argument("--data", default=DIGITS)
    ap.add_argument("--quick", action="store_true", help="1 round, 8 samples (4 dense), nothing written")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.data, args.samples, args.dense_samples, args.threads)))
        return None
    if args.quick:
        args.rounds, args.samples, args.dense_samples = 1, 8, 4
    checkouts = {"this": HERE}
    if args.against:
        checkouts["other"] = os.path.abspath(args.against)
    rounds = []
    for r in range(args.rounds):
        order = list(checkouts) if r % 2 == 0 else list(reversed(checkouts))
        got = {"load": os.getloadavg()[0], "simd_adds_per_s": simd_adds_per_s()}
        for key in order:
            got[key] = run_worker(checkouts[key], args)
        rounds.append(got)
        msg = ", ".join(f"{name} b1 " + " / ".join(f"{got[k][name]['event_b1_ms']:.3f}" for k in checkouts)
                        for name in MODELS)
        print(f"round {r + 1}: ms/sample ({' / '.join(checkouts)}) {msg}; load {got['load']:.1f}", flush=True)
    cmd = "python benchmarks/bench_engine.py" + (f" --against {args.against}" if args.against else "") + \
        f" --rounds {args.rounds} --samples {args.samples} --dense-samples {args.dense_samples}" + \
        (f" --threads {args.threads}" if args.threads > 1 else "")
    res = {"command": cmd, "against": checkouts.get("other"), "samples": args.samples,
           "dense_samples": args.dense_samples, "rounds": rounds,
           "summary": summarise(rounds, "this", "other" if args.against else None), "environment": environment()}
    md = report(res)
    print(md)
    if not args.quick:
        print("wrote", write_results("engine", res, md))
    return res


if __name__ == "__main__":
    main()
