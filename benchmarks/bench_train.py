"""Time of one training step (forward + backward through time) of the training core.

    python benchmarks/bench_train.py            # full run (a few minutes)
    python benchmarks/bench_train.py --quick    # short run (~1 min)

What is timed: ``Network.loss_and_grad`` on a batch of random Poisson counts (SHD-like
input, 140 channels), i.e. the training forward pass that records, the backward pass and
all gradients; the AdamW update is timed separately.  Shapes:

* CRSNN: 140 -> [LIF 256] -> 3 x [conv-recurrent LIF 256, k = 5, delays] -> 20, batch 32,
  100 steps, dropout 0.44 / 0.24 per step, BatchNorm;
* DelRec: 140 -> [LIF 256] -> [dense-recurrent LIF 256, delays] -> 20, same batch.

sigma sets the width of the delay spread (w = 1 + sigma): 10 at the start of training,
~0 at the end; the step time depends on it.  Compilation is excluded (warm-up), each time
is the median of several runs, and the claims are ratios measured in the same run:
train step / inference forward, 2 cores / 1 core, and the growth with batch, steps and
hidden size.  Peak memory is what NumPy allocates during one step (``tracemalloc``).

Writes ``benchmarks/results/train.json``, rewrites its table in ``benchmarks/README.md``
and prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from benchmarks.common import blas_threads, environment, markdown_table, median_time, write_results  # noqa: E402

import numba  # noqa: E402

from evsim.training import Network, NetworkConfig, make_optimizer



def crsnn(hidden=256, n_layers=4, **kw):
    return NetworkConfig(n_inputs=140, hidden=(hidden,) * n_layers, kernel_size=5, n_classes=20, **kw)


def delrec(hidden=256, **kw):
    return NetworkConfig(n_inputs=140, hidden=(hidden, hidden), recurrence=("none", "dense"), tau=1.05,
                         gain="one", detach_reset=True, dropout_mode="sequence", n_classes=20, **kw)


def batch(cfg, n_b, n_t, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.poisson(0.3, (n_b, n_t, cfg.n_inputs)).astype(np.float32)
    y = rng.integers(0, cfg.n_classes, n_b)
    return x, y


def time_step(cfg, n_b, n_t, sigma, repeats):
    net = Network.init(cfg, 0)
    x, y = batch(cfg, n_b, n_t)
    rng = np.random.default_rng(1)
    return median_time(lambda: net.loss_and_grad(x, y, rng, sigma), repeats=repeats, warmup=1)["median"]


def peak_memory(cfg, n_b, n_t, sigma=1.0):
    net = Network.init(cfg, 0)
    x, y = batch(cfg, n_b, n_t)
    net.loss_and_grad(x, y, 1, sigma)            # compile / warm up outside the trace
    tracemalloc.start()
    net.loss_and_grad(x, y, 1, sigma)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a smaller sweep")
    args = ap.parse_args(argv)
    rep = 3 if args.quick else 7
    results = {"environment": environment(), "quick": args.quick}
    rows = []

    # headline shapes
    for name, cfg in (("CRSNN 4x256 conv k=5", crsnn()), ("DelRec 2x256 dense", delrec())):
        net = Network.init(cfg, 0)
        x, y = batch(cfg, 32, 100)
        rng = np.random.default_rng(1)
        entry = {}
        for sigma in (0.0, 10.0):
            entry[f"step_s_sigma{sigma:g}"] = median_time(lambda: net.loss_and_grad(x, y, rng, sigma), repeats=rep)["median"]
        entry["eval_forward_s"] = median_time(lambda: net.evaluate(x), repeats=rep)["median"]
        _, grads, _ = net.loss_and_grad(x, y, rng, 1.0)
        opt = make_optimizer(net, total_steps=10_000)
        entry["adamw_s"] = median_time(lambda: opt.step(grads), repeats=rep)["median"]
        with blas_threads(1):
            entry["step_s_sigma0_blas1"] = median_time(lambda: net.loss_and_grad(x, y, rng, 0.0), repeats=max(2, rep // 2))["median"]
            numba.set_num_threads(1)
            try:
                entry["step_s_sigma0_1thread"] = median_time(lambda: net.loss_and_grad(x, y, rng, 0.0), repeats=max(2, rep // 2))["median"]
            finally:
                numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        entry["peak_mib"] = peak_memory(cfg, 32, 100)
        entry["n_params"] = net.n_params()
        results[name] = entry
        rows.append([name, entry["step_s_sigma0"], entry["step_s_sigma10"], entry["step_s_sigma0_blas1"],
                     entry["step_s_sigma0_1thread"], entry["adamw_s"],
                     entry["step_s_sigma0"] / entry["eval_forward_s"],
                     entry["step_s_sigma0_1thread"] / entry["step_s_sigma0"], entry["peak_mib"]])
    head = markdown_table(["shape (batch 32, 100 steps)", "train step s (sigma 0)", "train step s (sigma 10)",
                           "step s, BLAS 1 thread", "step s, 1 core", "AdamW s", "step / inference fwd",
                           "1 core / 2 cores", "peak MiB"], rows)

    # growth with batch, steps, hidden size (CRSNN shape, sigma 1)
    base = dict(n_b=32, n_t=100, hidden=256)
    sweeps = {"batch": [8, 16, 32, 64], "steps": [50, 100, 200], "hidden": [64, 128, 256, 512]}
    if args.quick:
        sweeps = {"batch": [16, 32], "steps": [50, 100], "hidden": [128, 256]}
    growth_rows = []
    results["growth"] = {}
    ref_time = None
    for what, values in sweeps.items():
        for v in values:
            p = dict(base, **{{"batch": "n_b", "steps": "n_t", "hidden": "hidden"}[what]: v})
            cfg = crsnn(hidden=p["hidden"])
            t = time_step(cfg, p["n_b"], p["n_t"], 1.0, max(2, rep // 2))
            mem = peak_memory(cfg, p["n_b"], p["n_t"]) if what == "steps" else None
            if p == base:
                ref_time = t
            results["growth"].setdefault(what, []).append({"value": v, "step_s": t, "peak_mib": mem, **p})
    for what, entries in results["growth"].items():
        for e in entries:
            growth_rows.append([what, e["value"], e["step_s"], e["step_s"] / ref_time if ref_time else float("nan"),
                                "" if e["peak_mib"] is None else f"{e['peak_mib']:.1f}"])
    growth = markdown_table(["varied (others: batch 32, 100 steps, 256)", "value", "step s", "x base", "peak MiB"], growth_rows)

    env = results["environment"]
    md = (f"numba {env.get('numba')}, numpy {env.get('numpy')}, {env.get('numba_threads')} numba threads, "
          f"BLAS threads {env.get('blas_threads')}, load {env.get('load_average')}\n\n{head}\n\n{growth}\n")
    results["markdown"] = md
    write_results("train", results, md)
    print(md)
    return results


if __name__ == "__main__":
    main()
