"""The CS-GRU layer on a CPU: event kernel (both update gates) against a dense kernel.

    python benchmarks/bench_csgru.py            # full run (a few minutes; needs a quiet machine)
    python benchmarks/bench_csgru.py --quick    # a short check (~30 s)
    python benchmarks/bench_csgru.py --model runs/csgru/model.npz   # a trained model: event vs dense engines

Layer: the 1-D audio layout, 1 input channel x 140 positions (700 cochlea channels pooled
by 5, 10 ms steps, spoken-digit test samples), C channels (default 16), kernels k = 3,
delays uniform in 0..30 steps, random weights (U(-sqrt(1/C), sqrt(1/C)), input kernels
x3), the bias of the current set by bisection so that a target fraction of units fires
per step.  Batch 1, one thread, compilation excluded, medians of several runs.

* event: :func:`evsim.cells.csgru.event_run` (scatters per input value and per spike;
  ``K_zi * i`` dense for the "current" gate);
* dense: the training forward (:mod:`evsim.training.csgru_kernels`, serial build) with sigma = 0
  and H: the same equations with every convolution computed densely.

Writes ``benchmarks/results/csgru.json`` and the table in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import environment, markdown_table, median_time, write_results  # noqa: E402

DIGITS = "/work/shared/data/digits/digits_test.h5"


def load_samples(path, n):
    from evsim.data import SpikeFile

    with SpikeFile(path) as f:
        idx = np.linspace(0, len(f) - 1, min(n, len(f))).astype(int)
        return [f.binned(int(i), dt_ms=10.0, pool=5, dtype=np.float64)[:, None, :] for i in idx]


def make_layer(c, gate, bias_i, seed=0):
    from evsim.training.csgru import init_params

    p = init_params(c, 1, 140, 3, gate=gate, delay_range=(0, 30), rng=np.random.default_rng(seed))
    return p._replace(k_rx=p.k_rx * 3, k_ix=p.k_ix * 3, b_i=p.b_i + bias_i, delays=np.round(p.delays).astype(np.int64))


def firing_rate(params, samples):
    from evsim.cells.csgru import event_run

    runs = [event_run(params, x) for x in samples]
    return sum(r.spikes for r in runs) / sum(r.s.size for r in runs)


def calibrate(c, gate, target, samples, iters=14):
    lo, hi = -4.0, 4.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if firing_rate(make_layer(c, gate, mid), samples) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def time_pair(params, samples, repeats):
    import evsim.training.csgru_kernels as ck
    from evsim.cells.csgru import event_run
    from evsim.training.csgru import forward
    ck.PARALLEL_MIN_WORK = 10**15                      # the serial dense build

    def ev():
        for x in samples:
            event_run(params, x)

    def de():
        for x in samples:
            forward(params, x[None], sigma=0.0)

    t_ev = median_time(ev, repeats)["median"] / len(samples)
    t_de = median_time(de, repeats)["median"] / len(samples)
    runs = [event_run(params, x) for x in samples]
    steps = sum(x.shape[0] for x in samples)
    return {"event_ms": 1e3 * t_ev, "dense_ms": 1e3 * t_de, "ratio": t_de / t_ev,
            "rate": sum(r.spikes for r in runs) / sum(r.s.size for r in runs),
            "synaptic_events_per_step": sum(r.synaptic_events for r in runs) / steps}


def dense_kernel_run(model, x):
    """The model's CS-GRU layers through the dense training forward (serial, sigma 0, H),
    then the readout: the same equations with every convolution dense, in numba."""
    from evsim.reference import run_readout
    from evsim.training.csgru import forward

    h = x[None]
    for layer in model.layers:
        h = forward(layer.params(), h.reshape(1, h.shape[1], layer.in_channels, layer.positions), sigma=0.0).s
    spikes = h.reshape(1, h.shape[1], -1)
    return run_readout(model.readout, spikes, np.ones(spikes.shape[:2]))


def model_rows(path, data, n, repeats):
    """A trained model with CS-GRU layers: the event engine against the dense engine
    (``evsim run --engine dense``, the NumPy reference; timed once on the first 10 samples)
    and against the dense numba kernel, batch 1, one thread, per sample; predictions of all
    three must agree (checked on 3 samples)."""
    import evsim.training.csgru_kernels as ck
    from evsim import event, reference
    from evsim.data import SpikeFile
    from evsim.model import load_model

    ck.PARALLEL_MIN_WORK = 10**15
    model = load_model(path)
    with SpikeFile(data) as f:
        idx = np.linspace(0, len(f) - 1, min(n, len(f))).astype(int)
        xs = [f.binned(int(i), dt_ms=model.metadata.dt_ms, pool=model.metadata.pool, dtype=np.float64,
                       n_steps=model.metadata.n_steps) for i in idx]
    runs = [event.simulate(model, x) for x in xs]
    for x, r in zip(xs[:3], runs):
        assert reference.simulate(model, x).predictions[0] == r.predictions[0]
        assert np.argmax(dense_kernel_run(model, x)[1][0]) == r.predictions[0]

    def each(fn):
        return lambda: [fn(x) for x in xs]

    t_ev = median_time(each(lambda x: event.simulate(model, x)), repeats)["median"] / len(xs)
    t_kernel = median_time(each(lambda x: dense_kernel_run(model, x)), repeats)["median"] / len(xs)
    few = xs[:10]                                       # the NumPy reference is slow: 10 samples, once
    t_ref = median_time(lambda: [reference.simulate(model, x) for x in few], 1, warmup=0)["median"] / len(few)
    spikes = np.sum([r.stats["spikes_per_layer"][0] for r in runs], axis=0)
    units = np.array([l.n for l in model.layers]) * sum(x.shape[0] for x in xs)
    return {"model": path, "samples": len(xs), "event_ms": 1e3 * t_ev, "dense_kernel_ms": 1e3 * t_kernel,
            "reference_ms": 1e3 * t_ref, "kernel_over_event": t_kernel / t_ev, "reference_over_event": t_ref / t_ev,
            "rates": (spikes / units).tolist(), "gates": [l.gate for l in model.layers]}


def main_model(args):
    res = {"env": environment(), **model_rows(args.model, args.data, args.samples or (8 if args.quick else 50),
                                              1 if args.quick else 3)}
    env = res["env"]
    md = (f"Command: `{env['command']}`  \n{env['date_utc']} UTC, {env['cpu']}, numba {env['numba']}, "
          f"load {[round(v, 2) for v in env['load_average']]}.  \nModel: {args.model}, layers' gates {res['gates']}, "
          f"firing {', '.join(f'{100 * r:.1f} %' for r in res['rates'])}; {res['samples']} digit test samples; "
          "batch 1, one thread.\n\n"
          + markdown_table(["event ms/sample", "dense numba kernel ms/sample", "dense engine (reference) ms/sample",
                            "kernel / event", "reference / event"],
                           [[res["event_ms"], res["dense_kernel_ms"], res["reference_ms"], res["kernel_over_event"],
                             res["reference_over_event"]]]))
    if not args.quick:
        write_results("csgru_model", res, md)
    print(md)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--data", default=DIGITS)
    ap.add_argument("--model", default=None, help="a trained model with CS-GRU layers: event vs dense engines on it")
    ap.add_argument("--samples", type=int, default=None, help="test samples (default 100; --quick 8)")
    ap.add_argument("--rates", default=None, help="target firing rates, comma-separated (default 0.01,0.05,0.2)")
    args = ap.parse_args(argv)
    import numba

    numba.set_num_threads(1)
    if args.model:
        return main_model(args)
    n, repeats, rates = (8, 2, (0.05,)) if args.quick else (100, 5, (0.01, 0.05, 0.2))
    n = args.samples or n
    rates = tuple(float(r) for r in args.rates.split(",")) if args.rates else rates
    samples = load_samples(args.data, n)
    calib = samples[: max(4, n // 5)]
    rows = []
    for target in rates:
        for gate in ("current", "input"):
            bias = calibrate(args.channels, gate, target, calib)
            rows.append({"target": target, "gate": gate, "bias_i": bias,
                         **time_pair(make_layer(args.channels, gate, bias), samples, repeats)})
    res = {"env": environment(), "channels": args.channels, "samples": n, "rows": rows}
    env = res["env"]
    md = (f"Command: `{env['command']}`  \n{env['date_utc']} UTC, {env['cpu']}, numba {env['numba']}, "
          f"load {[round(v, 2) for v in env['load_average']]}.  \nLayer: {args.channels} channels x 140 positions, "
          f"k = 3, delays 0..30; {n} digit test samples; batch 1, one thread.\n\n"
          + markdown_table(["target rate", "gate", "measured rate", "event ms/sample", "dense ms/sample",
                            "dense / event", "synaptic events/step"],
                           [[r["target"], r["gate"], r["rate"], r["event_ms"], r["dense_ms"], r["ratio"],
                             r["synaptic_events_per_step"]] for r in rows]))
    if not args.quick:
        write_results("csgru", res, md)
    print(md)
    return res


if __name__ == "__main__":
    main()
