"""Event-driven engine vs the dense reference, on a CRSNN-shaped network and spoken digits.

    python benchmarks/bench_event.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench_event.py --quick    # a short run
    python benchmarks/bench_event.py --model trained.npz   # a trained model instead

Model: 140 inputs (700 channels pooled by 5), 4 x 256 hidden (layer 0 plain LIF, layers
1-3 conv recurrence k = 5 with delays 0..30), 20 classes, 10 ms steps; CRSNN neuron
constants (tau = 1.169 steps, g = 1 - beta).  Without ``--model`` (and always in the
firing-rate and size sweeps) its weights are random, each layer's scale calibrated
(bisection) so that a target fraction of its neurons fires per step on real input
(default 3 %).

Measured, always both engines in the same run (the ratios are what to compare):
samples per second at batch 1 and 64 on one thread and on all cores; streaming latency
per step and real-time factor; synaptic events per second per core; and time against
firing rate and hidden size.  Compilation is excluded (warm-up runs), every figure is the
median of several runs.  Writes ``benchmarks/results/event.json`` and the table in
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import blas_threads, environment, markdown_table, median_time, write_results  # noqa: E402
from evsim.run import pad_batch  # noqa: E402

DIGITS = "/work/shared/data/digits/digits_test.h5"
DT_MS = 10.0
POOL = 5
TAU = 1.169  # CRSNN conv-layer membrane time constant, steps


def load_samples(path: str, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` samples (spread over the file) binned to (steps, 140) float64 counts."""
    from evsim.data import SpikeFile

    with SpikeFile(path) as f:
        idx = np.linspace(0, len(f) - 1, min(n, len(f))).astype(int)
        return [f.binned(int(i), dt_ms=DT_MS, pool=POOL, dtype=np.float64) for i in idx]


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


def throughput(model, samples, dense_samples, repeats, threads_all):
    """samples/s of both engines at batch 1 and 64, one thread and all cores."""
    import numba

    from evsim import event, reference

    audio_s = sum(s.shape[0] for s in samples) * DT_MS / 1000.0
    audio_dense_s = sum(s.shape[0] for s in dense_samples) * DT_MS / 1000.0
    out = {}
    syn = sum(int(event.simulate(model, s).stats["synaptic_events"][0]) for s in samples)
    for threads in sorted({1, threads_all}):
        numba.set_num_threads(threads)
        with blas_threads(threads):
            for bs in (1, 64):
                if bs == 1:
                    ev = per_sample(lambda s: event.simulate(model, s), samples)
                    de = per_sample(lambda s: reference.simulate(model, s), dense_samples)
                else:
                    eb, db = batches(samples, bs), batches(dense_samples, bs)
                    ev = per_sample(lambda b: event.simulate(model, b[0], b[1]), eb)
                    de = per_sample(lambda b: reference.simulate(model, b[0], b[1]), db)
                te = median_time(ev, repeats=repeats)["median"]
                td = median_time(de, repeats=max(1, repeats // 2 + 1))["median"]
                out[f"batch{bs}_threads{threads}"] = {
                    "batch": bs, "threads": threads,
                    "event_samples_per_s": len(samples) / te,
                    "dense_samples_per_s": len(dense_samples) / td,
                    "speedup": (len(samples) / te) / (len(dense_samples) / td),
                    "event_realtime_factor": audio_s / te,
                    "dense_realtime_factor": audio_dense_s / td,
                    # batch 1 runs on the calling thread whatever the thread count
                    "event_synaptic_events_per_s_per_core": syn / te / (1 if bs == 1 else threads),
                    "samples_event": len(samples), "samples_dense": len(dense_samples),
                }
                print(f"  batch {bs:2d}, {threads} thread(s): event {len(samples) / te:9.1f}/s, "
                      f"dense {len(dense_samples) / td:8.1f}/s, x{out[f'batch{bs}_threads{threads}']['speedup']:.1f}, "
                      f"RTF {audio_s / te:.0f}", flush=True)
    numba.set_num_threads(threads_all)
    return out, syn


@contextlib.contextmanager
def one_numba_thread():
    """numba limited to one thread inside the block, all of its threads again after it."""
    import numba

    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def streaming(model, samples, repeats):
    """Latency of EventStream.step (one 10 ms step) and of run_chunk (10 steps = 100 ms)."""
    from evsim import event

    with one_numba_thread():
        stream = event.EventStream(model)
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


def push_latency(model, path, n, repeats):
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
    stream = event.EventStream(model)
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


def compare_models(paths, samples, dense_samples, repeats):
    """Batch 1, one thread: event vs dense for each trained model, with its recorded
    accuracies (validation and test, from the model's provenance)."""
    from evsim.model import load_model

    rows = []
    audio_s = np.mean([s.shape[0] for s in samples]) * DT_MS / 1000.0
    with one_numba_thread():
        for path in paths:
            model = load_model(path)
            rates = firing_rates(model, *pad_batch(samples[:32]))
            prov = model.metadata.provenance
            row = {"model": str(path), "rates": rates.tolist(),
                   "validation_accuracy": prov.get("validation_accuracy"), "test_accuracy": prov.get("test_accuracy"),
                   **time_both(model, samples, dense_samples, repeats)}
            row["realtime_factor"] = audio_s / (row["event_ms_per_sample"] / 1e3)
            rows.append(row)
            print(f"  {path}: rates {np.round(rates, 3).tolist()}, {timing_text(row)}", flush=True)
    return rows


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


def report(res: dict) -> str:
    env = res["environment"]
    tp = res["throughput"]
    lines = [
        f"Command: `{res['command']}`  ",
        f"{env['date_utc']} UTC, {env['cpu']}, {env['cores']} cores, numba {env['numba']} "
        f"({env['numba_max_threads']} threads max), numpy {env['numpy']}, load {np.round(env['load_average'], 2).tolist()}.  ",
        f"Model: {res['model']['description']}; firing rates per layer {np.round(res['model']['rates'], 3).tolist()}"
        + ("".join(f", {k} accuracy {100 * res['model'][k]:.1f} %" for k in ("validation", "test")
                   if res["model"].get(k) is not None)) + "; "
        f"{res['samples']['event']} test samples (dense: {res['samples']['dense']}), mean {res['samples']['mean_steps']:.1f} steps of 10 ms.",
        "",
    ]
    load = env["load_average"]
    if load and load[0] > env["cores"]:
        lines += [f"Note: load average {load[0]:.1f} on {env['cores']} cores while this ran: other "
                  "processes shared the cores, so absolute rates are low and the all-cores rows "
                  "(thread pools competing for busy cores) are unreliable; ratios of the "
                  "one-thread rows still hold.", ""]
    lines += [
        markdown_table(
            ["batch", "threads", "event samples/s", "dense samples/s", "event / dense",
             "event x real time", "synaptic events/s/core"],
            [[v["batch"], v["threads"], v["event_samples_per_s"], v["dense_samples_per_s"], v["speedup"],
              v["event_realtime_factor"], v["event_synaptic_events_per_s_per_core"]] for v in tp.values()]),
        "",
    ]
    st = res["streaming"]
    lines += [markdown_table(
        ["streaming (1 thread)", "latency (us)", "x real time"],
        [["step (10 ms)", st["step_latency_us_median"], st["step_realtime_factor"]],
         ["step, p99", st["step_latency_us_p99"], 10e3 / st["step_latency_us_p99"]],
         ["run_chunk (100 ms)", st["chunk10_latency_us"], st["chunk10_realtime_factor"]]]
        + ([["push: raw events of 10 ms", st["push_latency_us_median"], st["push_realtime_factor"]]]
           if "push_latency_us_median" in st else [])), ""]
    lines += [markdown_table(
        ["target rate", "measured rates (per layer)", "event ms/sample", "dense ms/sample", "event / dense",
         "synaptic events/s"],
        [[r["target_rate"], str(np.round(r["measured_rates"], 3).tolist()), r["event_ms_per_sample"],
          r["dense_ms_per_sample"], r["speedup"], r["synaptic_events_per_s"]] for r in res["rate_sweep"]]), ""]
    lines += [markdown_table(
        ["hidden (4 layers)", "measured rates", "event ms/sample", "dense ms/sample", "event / dense",
         "synaptic events/s"],
        [[r["hidden"], str(np.round(r["measured_rates"], 3).tolist()), r["event_ms_per_sample"],
          r["dense_ms_per_sample"], r["speedup"], r["synaptic_events_per_s"]] for r in res["size_sweep"]]), ""]
    if res.get("compare"):
        def pct(v):
            return "-" if v is None else f"{100 * v:.1f} %"
        lines += ["Trained models, batch 1, one thread (accuracies as recorded by `evsim train`):", "", markdown_table(
            ["model", "firing rates (per layer)", "validation", "test", "event ms/sample", "dense ms/sample",
             "event / dense", "x real time"],
            [[r["model"], str(np.round(r["rates"], 3).tolist()), pct(r["validation_accuracy"]), pct(r["test_accuracy"]),
              r["event_ms_per_sample"], r["dense_ms_per_sample"], r["speedup"], r["realtime_factor"]]
             for r in res["compare"]]), ""]
    t = res["targets"]
    lines += ["Targets (batch 1, one thread): "
              f"event/dense x{t['speedup_batch1']:.1f} (>= 20: {'yes' if t['speedup_batch1'] >= 20 else 'NO'}), "
              f"real time x{t['realtime_factor_1core']:.0f} (>= 1000: {'yes' if t['realtime_factor_1core'] >= 1000 else 'NO'}), "
              f"{t['synaptic_events_per_s_per_core']:.3g} synaptic events/s/core (>= 2e8: "
              f"{'yes' if t['synaptic_events_per_s_per_core'] >= 2e8 else 'NO'})."]
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short run (fewer samples, sweeps and repeats)")
    ap.add_argument("--model", help="a trained .npz model to use instead of the calibrated random one")
    ap.add_argument("--data", default=DIGITS, help="SHD-layout test file (default: %(default)s)")
    ap.add_argument("--rate", type=float, default=0.03, help="target firing rate of the random model (default 0.03)")
    ap.add_argument("--compare", nargs="+", default=[], metavar="MODEL",
                    help="more trained .npz models to time against the dense engine in the same run (batch 1, one thread)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write JSON / README")
    args = ap.parse_args(argv)

    import numba

    from evsim import event
    from evsim.model import load_model

    quick = args.quick
    n_ev, n_de = (48, 12) if quick else (1000, 200)
    repeats = 3 if quick else 5
    threads_all = numba.config.NUMBA_NUM_THREADS
    print(f"loading {n_ev} samples from {args.data}", flush=True)
    samples = load_samples(args.data, n_ev)
    dense_samples = samples[::max(1, len(samples) // n_de)][:n_de]

    accuracies = {}
    if args.model:
        model = load_model(args.model)
        prov = model.metadata.provenance
        accuracies = {"validation": prov.get("validation_accuracy"), "test": prov.get("test_accuracy")}
        x, lengths = pad_batch(samples[:32])
        rates = firing_rates(model, x, lengths)
        desc = f"{args.model}: " + ", ".join(f"{l.n} {l.recurrence}" for l in model.layers)
    else:
        model, rates = calibrate(args.rate, samples[:16])
        desc = "CRSNN shape, 140 -> 4 x 256 (none, conv k=5 x 3, delays 0..30) -> 20, random weights"
    # compile once (cache=True makes later runs start warm)
    event.simulate(model, samples[0])
    print(f"model: {desc}; rates {np.round(rates, 4).tolist()}", flush=True)

    print("throughput", flush=True)
    tp, syn = throughput(model, samples, dense_samples, repeats, threads_all)
    print("streaming", flush=True)
    st = streaming(model, samples[:20 if quick else 100], repeats)
    st.update(push_latency(model, args.data, 20 if quick else 100, repeats))
    print("firing-rate sweep", flush=True)
    rate_list = [0.01, 0.05] if quick else [0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
    rs = rate_sweep(samples[:32 if quick else 128], dense_samples[:6 if quick else 24], rate_list, repeats)
    print("hidden-size sweep", flush=True)
    sizes = [256, 1024] if quick else [256, 512, 1024, 2048, 4096]
    ss = size_sweep(samples[:16 if quick else 64], dense_samples[:4 if quick else 8], sizes, 0.03, repeats)

    cmp_rows = []
    if args.compare:
        print("trained models", flush=True)
        cmp_rows = compare_models(args.compare, samples[:200 if not quick else 24], dense_samples[:40 if not quick else 6],
                                  repeats)

    b1 = tp["batch1_threads1"]
    res = {
        "command": "python benchmarks/bench_event.py" + (" --quick" if quick else "")
                   + (f" --model {args.model}" if args.model else "")
                   + (" --compare " + " ".join(args.compare) if args.compare else ""),
        "environment": environment(),
        "model": {"description": desc, "rates": rates.tolist(), **accuracies},
        "samples": {"event": len(samples), "dense": len(dense_samples),
                    "mean_steps": float(np.mean([s.shape[0] for s in samples])),
                    "synaptic_events_total": syn},
        "throughput": tp, "streaming": st, "rate_sweep": rs, "size_sweep": ss, "compare": cmp_rows,
        "targets": {"speedup_batch1": b1["speedup"], "realtime_factor_1core": b1["event_realtime_factor"],
                    "synaptic_events_per_s_per_core": b1["event_synaptic_events_per_s_per_core"]},
    }
    md = report(res)
    print(md)
    if not args.no_write:
        path = write_results("event", res, md)
        print(f"wrote {path} and benchmarks/README.md")
    return res


if __name__ == "__main__":
    main()
