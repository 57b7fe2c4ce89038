"""Event-driven engine vs the dense engine: the built-in models as deployed, against the
speed targets of issue #14, and a CRSNN-shaped network swept over firing rate and size.

    python benchmarks/bench_event.py                 # full run (about 10 minutes on 2 cores)
    python benchmarks/bench_event.py --quick         # a short run, nothing written
    python benchmarks/bench_event.py --model m.npz   # a trained model instead of the built-ins
    python benchmarks/bench_event.py --no-sweeps     # the models only

**Models as deployed** (``--model``, default the built-in ``default`` and ``sparse``): each
model runs at its ``n_steps`` (106 for the built-ins: every sample padded or cut to the
length that gives the model's accuracy, as ``evsim run`` runs it), and a second row at
each sample's own length, marked as such, with its accuracy.  The event engine runs in
``--precision`` (default ``auto``, as ``evsim run``: float32 for a neuron-cell model), the
dense engine in float64 (the issue's baseline).  Engine only: the samples are binned
before timing (``bench_builtin.py`` times the same models through ``evsim run``'s file
reading and binning).  Both engines run on one thread (numba and OpenBLAS), in alternating
order over ``--rounds`` rounds of CPU time: the event engine on ``--samples`` samples
spread over the test file, the dense engine on every ``--dense-every``-th of them; batch 1
and batch 64.  Batch 64 on all threads against one thread is wall time, alternating in
each round.  Reported: the medians of the per-round ratios; accuracy on those samples and
whether the dense engine predicts the same on its subset; the event engine's synaptic
additions per CPU second against a float32 SIMD add loop (``benchmarks/_simd.py``), the
core's floor.

**Sweeps** (random weights, each layer's scale calibrated by bisection so that a target
fraction of its neurons fires per step on real input; each sample at its own length): time
against firing rate and against hidden size, batch 1, one thread.  Streaming latency per
step and per ``push`` of raw events uses the first model.

Compilation is excluded (warm-up runs).  Writes ``benchmarks/results/event.json`` and the
``event`` block of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (blas_threads, cpu_seconds, environment, markdown_table, median_time,  # noqa: E402
                               wall_seconds, write_results)
from evsim.run import pad_batch  # noqa: E402

#: issue 14's targets: event / dense at batch 1 per built-in model, batch 64 against batch 1
#: (one thread), and batch 64 on two threads against one
TARGET_BATCH1 = {"default": 35.0, "sparse": 50.0}
TARGET_BATCH64 = 1.3
TARGET_THREADS = 1.9

DIGITS = "/work/shared/data/digits/digits_test.h5"
DT_MS = 10.0
POOL = 5
TAU = 1.169  # CRSNN conv-layer membrane time constant, steps


def load_samples(path: str, n: int, dt_ms: float = DT_MS, pool: int = POOL,
                 n_steps: int | None = None) -> tuple[list[np.ndarray], np.ndarray | None]:
    """``n`` samples spread over the file, binned to (steps, inputs) float64 counts, and
    their labels.  ``n_steps``: every sample padded with zeros or cut to that many steps
    (as ``evsim run`` runs a model that has ``n_steps``); None: each sample's own length."""
    from evsim.data import SpikeFile

    with SpikeFile(path) as f:
        idx = np.linspace(0, len(f) - 1, min(n, len(f))).astype(int)
        xs = [f.binned(int(i), dt_ms=dt_ms, pool=pool, n_steps=n_steps, dtype=np.float64) for i in idx]
        labels = None if f.labels is None else np.asarray(f.labels)[idx]
    return xs, labels


def crsnn_model(scales, hidden=256, n_layers=4, k=5, max_delay=30, n_classes=20, seed=0):
    """A CRSNN-shaped model with random weights; ``scales[l]`` multiplies layer l's weights."""
    from evsim.model import HiddenLayer, Model, ModelMetadata, Readout

    rng = np.random.default_rng(seed)
    beta = 1.0 - 1.0 / TAU
    layers, prev = [], 700 // POOL
    for l in range(n_layers):
        w = rng.normal(0.0, 1.0, (hidden, prev)) / np.sqrt(prev) * scales[l]
        rec = "none" if l == 0 else "conv"
        layers.append(HiddenLayer(
            weight=w, bias=np.zeros(hidden), beta=np.full(hidden, beta),
            threshold=np.ones(hidden), gain=np.full(hidden, 1.0 - beta), reset="zero",
            recurrence=rec, recurrent=rng.normal(0.0, 0.5, k) if rec == "conv" else np.zeros(0),
            delays=rng.integers(0, max_delay + 1, hidden) if rec == "conv" else None,
            name=f"layer{l}"))
        prev = hidden
    readout = Readout(weight=rng.normal(0, 1, (n_classes, prev)) / np.sqrt(prev),
                      bias=np.zeros(n_classes), beta=np.full(n_classes, 0.9),
                      gain=np.ones(n_classes))
    meta = ModelMetadata(dt_ms=DT_MS, input_channels=700, pool=POOL,
                         provenance={"made_by": "benchmarks/bench_event.py", "weights": "random, calibrated"})
    return Model(layers=tuple(layers), readout=readout, metadata=meta)


def firing_rates(model, x, lengths) -> np.ndarray:
    """Fraction of neurons firing per counted step, per layer."""
    from evsim import event

    res = event.simulate(model, x, lengths)
    n = np.array([l.n for l in model.layers])
    return res.stats["spikes_per_layer"].sum(axis=0) / (n * lengths.sum())


def calibrate(target: float, samples, hidden=256, iters=12, seed=0):
    """Scale each layer (in order) by bisection in log space so ~``target`` of its neurons
    fire per step on ``samples``.  Returns (model, measured rates)."""
    x, lengths = pad_batch(samples)
    scales = [1.0] * 4
    for l in range(4):
        lo, hi = -4.0, 4.0  # log2 scale
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            scales[l] = 2.0 ** mid
            rate = firing_rates(crsnn_model(scales, hidden=hidden, seed=seed), x, lengths)[l]
            if rate < target:
                lo = mid
            else:
                hi = mid
        scales[l] = 2.0 ** (0.5 * (lo + hi))
    model = crsnn_model(scales, hidden=hidden, seed=seed)
    return model, firing_rates(model, x, lengths)


# -- measurements -------------------------------------------------------------------------

def per_sample(run, samples):
    def go():
        for s in samples:
            run(s)
    return go


def batches(samples, size):
    return [pad_batch(samples[i:i + size]) for i in range(0, len(samples), size)]


def engine_rounds(model, xs, dense_xs, rounds: int, precision: str, threads_all: int) -> dict:
    """ms per sample of both engines at batch 1 and 64 on one thread (CPU time, the order
    of the four runs reversed every other round) and the event engine's batch 64 on
    ``threads_all`` threads against one (wall, alternating); medians of per-round ratios."""
    import numba

    from evsim import event, reference

    eb, db = batches(xs, 64), batches(dense_xs, 64)
    runs = {"event_b1": (lambda: [event.simulate(model, x, precision=precision) for x in xs], len(xs)),
            "dense_b1": (lambda: [reference.simulate(model, x) for x in dense_xs], len(dense_xs)),
            "event_b64": (lambda: [event.simulate(model, x, n, precision=precision) for x, n in eb], len(xs)),
            "dense_b64": (lambda: [reference.simulate(model, x, n) for x, n in db], len(dense_xs))}
    per_round = []
    with blas_threads(1):
        numba.set_num_threads(1)
        for fn, _ in runs.values():
            fn()                                       # warm-up: loads the compiled kernels
        for r in range(rounds):
            numba.set_num_threads(1)
            keys = list(runs) if r % 2 == 0 else list(runs)[::-1]
            row = {k: cpu_seconds(runs[k][0]) / runs[k][1] * 1e3 for k in keys}
            if threads_all > 1:
                walls = {}
                for t in ((1, threads_all) if r % 2 == 0 else (threads_all, 1)):
                    numba.set_num_threads(t)
                    walls[t] = wall_seconds(runs["event_b64"][0])
                row["threads_vs_one"] = walls[1] / walls[threads_all]
            per_round.append(row)
        numba.set_num_threads(threads_all)
    med = statistics.median
    out = {k: med(r[k] for r in per_round) for k in per_round[0]}
    out["event_vs_dense_b1"] = med(r["dense_b1"] / r["event_b1"] for r in per_round)
    out["b64_vs_b1"] = med(r["event_b1"] / r["event_b64"] for r in per_round)
    out["rounds"] = per_round
    return out


def predictions(model, xs, precision):
    from evsim import event

    return np.concatenate([event.simulate(model, x, n, precision=precision).predictions for x, n in batches(xs, 64)])


def deployed(name, model, args, threads_all) -> list[dict]:
    """The rows of one model: at its n_steps (batch 1 and 64, threads) and at each sample's
    own length (batch 1 and 64, one thread), with accuracy and synaptic additions."""
    from evsim import event, reference

    meta = model.metadata
    rules = ([("n_steps", meta.n_steps)] if meta.n_steps else []) + [("own length", None)]
    rows = []
    for rule, n_steps in rules:
        xs, labels = load_samples(args.data, args.samples, meta.dt_ms, meta.pool, n_steps)
        dense_xs = xs[::args.dense_every]
        pred = predictions(model, xs, args.precision)
        dense_pred = np.concatenate([reference.simulate(model, x, n).predictions for x, n in batches(dense_xs, 64)])
        syn = sum(int(event.simulate(model, x, precision=args.precision).stats["synaptic_events"][0]) for x in xs)
        t = engine_rounds(model, xs, dense_xs, args.rounds, args.precision, threads_all if n_steps else 1)
        row = {"model": name, "rule": rule, "mean_steps": float(np.mean([x.shape[0] for x in xs])),
               "samples": len(xs), "dense_samples": len(dense_xs),
               "accuracy": None if labels is None else float(np.mean(pred == labels)),
               "dense_same_predictions": int(np.sum(dense_pred == pred[::args.dense_every])),
               "adds_per_sample": syn / len(xs), "adds_per_cpu_s": syn / (t["event_b1"] * 1e-3 * len(xs)), **t}
        rows.append(row)
        print(f"  {name}, {rule}: event b1 {t['event_b1']:.3f} ms, dense b1 {t['dense_b1']:.2f} ms, "
              f"x{t['event_vs_dense_b1']:.1f}; b64/b1 {t['b64_vs_b1']:.2f}"
              + (f", {threads_all} threads / 1 {t['threads_vs_one']:.2f}" if "threads_vs_one" in t else "")
              + (f"; accuracy {100 * row['accuracy']:.1f} %" if row["accuracy"] is not None else ""), flush=True)
    return rows


@contextlib.contextmanager
def one_numba_thread():
    """numba limited to one thread inside the block, all of its threads again after it."""
    import numba

    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def streaming(model, samples, repeats, precision="float64"):
    """Latency of EventStream.step (one 10 ms step) and of run_chunk (10 steps = 100 ms)."""
    from evsim import event

    with one_numba_thread():
        stream = event.EventStream(model, precision=precision)
        steps = np.concatenate(samples)

        def by_step():
            stream.reset()
            for row in steps:
                stream.step(row)

        def by_chunk():
            stream.reset()
            for i in range(0, len(steps), 10):
                stream.run_chunk(steps[i:i + 10])

        t_step = median_time(by_step, repeats=repeats)["median"] / len(steps)
        n_chunks = -(-len(steps) // 10)
        t_chunk = median_time(by_chunk, repeats=repeats)["median"] / n_chunks
        # per-step latencies of one pass, for the tail
        stream.reset()
        lat = np.empty(len(steps))
        for i, row in enumerate(steps):
            t0 = time.perf_counter()
            stream.step(row)
            lat[i] = time.perf_counter() - t0
    res = {"step_latency_us_median": t_step * 1e6, "step_latency_us_p99": float(np.percentile(lat, 99) * 1e6),
           "step_realtime_factor": DT_MS / 1000.0 / t_step,
           "chunk10_latency_us": t_chunk * 1e6, "chunk10_realtime_factor": 10 * DT_MS / 1000.0 / t_chunk,
           "steps": len(steps)}
    print(f"  streaming: step {t_step * 1e6:.1f} us (p99 {res['step_latency_us_p99']:.1f}), RTF {res['step_realtime_factor']:.0f}; "
          f"100 ms chunk {t_chunk * 1e6:.1f} us, RTF {res['chunk10_realtime_factor']:.0f}", flush=True)
    return res


def push_latency(model, path, n, repeats, precision="float64"):
    """Latency of EventStream.push with the raw events (times, channels) of each 10 ms,
    ``until`` = the end of those 10 ms: binning, pooling and one step, as a live encoder
    would feed it."""
    from evsim import event
    from evsim.data import SpikeFile, time_to_step

    with SpikeFile(path) as f:
        raw = [f.read(int(i)) for i in np.linspace(0, len(f) - 1, min(n, len(f))).astype(int)]
    pieces = []                     # per sample: [(times, units, until)] per 10 ms
    for s in raw:
        order = np.argsort(s.times, kind="stable")
        t, u = s.times[order], s.units[order]
        steps = time_to_step(t, DT_MS)
        n_steps = int(steps[-1]) + 1 if t.size else 1
        edges = np.searchsorted(steps, np.arange(n_steps + 1), side="left")
        pieces.append([(t[a:b], u[a:b], (k + 1) * DT_MS / 1000.0) for k, (a, b) in enumerate(zip(edges[:-1], edges[1:]))])
    stream = event.EventStream(model, precision=precision)
    total = sum(len(p) for p in pieces)

    def go():
        for p in pieces:
            stream.reset()
            for t, u, until in p:
                stream.push(t, u, until=until)

    with one_numba_thread():
        t_push = median_time(go, repeats=repeats)["median"] / total
    print(f"  push (raw events of 10 ms): {t_push * 1e6:.1f} us, RTF {DT_MS / 1000.0 / t_push:.0f}", flush=True)
    return {"push_latency_us_median": t_push * 1e6, "push_realtime_factor": DT_MS / 1000.0 / t_push, "pushes": total}


def time_both(model, ev_samples, de_samples, repeats):
    """Milliseconds per sample (batch 1, one thread) of each engine, their ratio and the
    event engine's synaptic events per second."""
    from evsim import event, reference

    te = median_time(per_sample(lambda s: event.simulate(model, s), ev_samples), repeats=repeats)["median"]
    with blas_threads(1):
        td = median_time(per_sample(lambda s: reference.simulate(model, s), de_samples),
                         repeats=max(1, repeats // 2))["median"]
    syn = sum(int(event.simulate(model, s).stats["synaptic_events"][0]) for s in ev_samples)
    te, td = te / len(ev_samples), td / len(de_samples)
    return {"event_ms_per_sample": te * 1e3, "dense_ms_per_sample": td * 1e3, "speedup": td / te,
            "synaptic_events_per_s": syn / (te * len(ev_samples))}


def timing_text(row) -> str:
    return (f"event {row['event_ms_per_sample']:.3f} ms, dense {row['dense_ms_per_sample']:.2f} ms, "
            f"x{row['speedup']:.1f}, {row['synaptic_events_per_s']:.3g} syn/s")


def rate_sweep(samples, dense_samples, rates, repeats):
    rows = []
    with one_numba_thread():
        for target in rates:
            model, measured = calibrate(target, samples[:16])
            row = {"target_rate": target, "measured_rates": measured.tolist(),
                   **time_both(model, samples, dense_samples, repeats)}
            rows.append(row)
            print(f"  rate {target:.3f} (measured {np.round(measured, 3).tolist()}): {timing_text(row)}", flush=True)
    return rows


def size_sweep(samples, dense_samples, sizes, rate, repeats):
    rows = []
    with one_numba_thread():
        for hidden in sizes:
            model, measured = calibrate(rate, samples[:8], hidden=hidden, iters=10)
            n_ev = max(4, len(samples) * 256 // hidden)
            n_de = max(2, len(dense_samples) * 256 // hidden)
            row = {"hidden": hidden, "measured_rates": measured.tolist(),
                   **time_both(model, samples[:n_ev], dense_samples[:n_de], max(2, repeats // 2))}
            rows.append(row)
            print(f"  hidden {hidden}: {timing_text(row)} (rates {np.round(measured, 3).tolist()})", flush=True)
    return rows


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _spread(row, key) -> str:
    """The median of a per-round ratio, with its range over the rounds."""
    if key not in row:
        return "-"
    per_round = [r[key] for r in row["rounds"]]
    return f"{row[key]:.3g} ({min(per_round):.3g}-{max(per_round):.3g})"


def _met(value, target) -> str:
    return "-" if target is None else f">= {target:g}: {'yes' if value >= target else 'NO'}"


def report(res: dict) -> str:
    env = res["environment"]
    load = env["load_average"]
    lines = [
        f"Command: `{res['command']}`  ",
        f"{env['date_utc']} UTC, {env['cpu']}, {env['cores']} cores, numba {env['numba']} "
        f"({env['numba_max_threads']} threads max), numpy {env['numpy']}, load {np.round(load, 2).tolist()} at the start, "
        f"{np.round(res['load_end'], 2).tolist()} at the end.  ",
        f"Event engine in {res['precision']}, dense engine in float64; engine only (samples binned before timing); "
        f"one thread unless stated; CPU time, medians of {res['rounds']} alternating rounds; float32 SIMD add loop "
        f"{res['simd_adds_per_s']:.3g} adds/s.",
        "",
    ]
    if load and load[0] > env["cores"] * 0.75:
        lines += [f"**LOADED**: load average {load[0]:.1f} on {env['cores']} cores while this ran; the ratios of "
                  "one-thread rows still compare like with like, the threads column does not.", ""]
    rows = []
    for r in res["models"]:
        at_n = r["rule"] == "n_steps"
        rows.append([r["model"], f"{r['rule']} ({r['mean_steps']:.1f})", r["samples"], _pct(r["accuracy"]),
                     f"{r['dense_same_predictions']}/{r['dense_samples']}", r["event_b1"], r["dense_b1"],
                     r["event_vs_dense_b1"], _met(r["event_vs_dense_b1"], TARGET_BATCH1.get(r["model"]) if at_n else None),
                     r["event_b64"], r["b64_vs_b1"], _met(r["b64_vs_b1"], TARGET_BATCH64 if at_n else None),
                     _spread(r, "threads_vs_one"),
                     _met(r["threads_vs_one"], TARGET_THREADS) if "threads_vs_one" in r else "-",
                     r["adds_per_cpu_s"], r["adds_per_cpu_s"] / res["simd_adds_per_s"]])
    lines += [markdown_table(
        ["model", "steps (mean)", "samples", "accuracy", "dense: same predictions", "event b1 ms/sample",
         "dense b1 ms/sample", "event / dense (b1)", "target", "event b64 ms/sample", "b64 / b1", "target",
         f"b64, {res['threads_all']} threads / 1 (rounds)", "target",
         "synaptic adds per CPU s (b1)", "/ SIMD add loop"], rows),
        "", "The `own length` rows run each sample for its own length, which costs the built-in models their "
        "accuracy (the delayed recurrent spikes keep arriving after the word ends); the targets apply to the "
        "`n_steps` rows.", ""]
    st = res.get("streaming")
    if st:
        lines += [markdown_table(
            [f"streaming `{res['models'][0]['model']}` (1 thread)", "latency (us)", "x real time"],
            [["step (10 ms)", st["step_latency_us_median"], st["step_realtime_factor"]],
             ["step, p99", st["step_latency_us_p99"], 10e3 / st["step_latency_us_p99"]],
             ["run_chunk (100 ms)", st["chunk10_latency_us"], st["chunk10_realtime_factor"]],
             ["push: raw events of 10 ms", st["push_latency_us_median"], st["push_realtime_factor"]]]), ""]
    if res.get("rate_sweep"):
        lines += ["Random weights, each sample at its own length, batch 1, one thread, event engine in float64:", "",
                  markdown_table(
            ["target rate", "measured rates (per layer)", "event ms/sample", "dense ms/sample", "event / dense",
             "synaptic events/s"],
            [[r["target_rate"], str(np.round(r["measured_rates"], 3).tolist()), r["event_ms_per_sample"],
              r["dense_ms_per_sample"], r["speedup"], r["synaptic_events_per_s"]] for r in res["rate_sweep"]]), "",
                  markdown_table(
            ["hidden (4 layers)", "measured rates", "event ms/sample", "dense ms/sample", "event / dense",
             "synaptic events/s"],
            [[r["hidden"], str(np.round(r["measured_rates"], 3).tolist()), r["event_ms_per_sample"],
              r["dense_ms_per_sample"], r["speedup"], r["synaptic_events_per_s"]] for r in res["size_sweep"]]), ""]
    return "\n".join(lines).rstrip()


def load_model_arg(name: str):
    """A built-in model's name or a model file's path."""
    from evsim.model import load_model
    from evsim.names import BUILTIN_MODELS, builtin_path

    return load_model(builtin_path(BUILTIN_MODELS[name]) if name in BUILTIN_MODELS else name)


def sweeps(args) -> tuple[list, list]:
    quick = args.quick
    samples, _ = load_samples(args.data, 128 if not quick else 32)
    dense_samples = samples[::4]
    repeats = 3 if quick else 5
    print("firing-rate sweep", flush=True)
    rate_list = [0.01, 0.05] if quick else [0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
    rs = rate_sweep(samples, dense_samples[:6 if quick else 24], rate_list, repeats)
    print("hidden-size sweep", flush=True)
    sizes = [256, 1024] if quick else [256, 512, 1024, 2048, 4096]
    ss = size_sweep(samples[:16 if quick else 64], dense_samples[:4 if quick else 8], sizes, 0.03, repeats)
    return rs, ss


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", nargs="+", default=["default", "sparse"],
                    help="built-in model names or .npz paths (default: default sparse)")
    ap.add_argument("--data", default=DIGITS, help="SHD-layout test file (default: %(default)s)")
    ap.add_argument("--samples", type=int, default=1000, help="event-engine samples, spread over the file (default 1000)")
    ap.add_argument("--dense-every", type=int, default=20, help="the dense engine runs every n-th of them (default 20)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--precision", default="auto", choices=("auto", "float32", "float64"),
                    help="the event engine's precision (default auto, as evsim run)")
    ap.add_argument("--no-sweeps", action="store_true", help="skip the random-weight sweeps")
    ap.add_argument("--quick", action="store_true", help="a short run (fewer samples and rounds), nothing written")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write JSON / README")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.dense_every, args.rounds = min(args.samples, 64), 16, 2

    import numba

    from benchmarks._simd import adds_per_s
    from evsim.precision import resolve_precision

    threads_all = numba.config.NUMBA_NUM_THREADS
    env = environment()
    models = [(name, load_model_arg(name)) for name in args.model]
    args.precision = resolve_precision(args.precision, models[0][1])
    rows = []
    for name, model in models:
        print(f"{name}: {', '.join(f'{l.n} {l.recurrence}' for l in model.layers)}", flush=True)
        rows += deployed(name, model, args, threads_all)
    name, model = models[0]
    meta = model.metadata
    stream_xs, _ = load_samples(args.data, 20 if args.quick else 100, meta.dt_ms, meta.pool, meta.n_steps)
    print("streaming", flush=True)
    st = streaming(model, stream_xs, 3 if args.quick else 5, args.precision)
    st.update(push_latency(model, args.data, 20 if args.quick else 100, 3 if args.quick else 5, args.precision))
    rs, ss = ([], []) if args.no_sweeps else sweeps(args)
    res = {"command": "python benchmarks/bench_event.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])
                                                             ).rstrip(),
           "environment": env, "precision": args.precision, "rounds": args.rounds, "threads_all": threads_all,
           "simd_adds_per_s": adds_per_s(), "models": rows, "streaming": st, "rate_sweep": rs, "size_sweep": ss,
           "load_end": os.getloadavg()}
    md = report(res)
    print(md)
    if not (args.no_write or args.quick):
        path = write_results("event", res, md)
        print(f"wrote {path} and benchmarks/README.md")
    return res


if __name__ == "__main__":
    main()
