"""Time of one training step (forward + backward through time) of the training core.

    python benchmarks/bench_train.py            # full run (a few minutes)
    python benchmarks/bench_train.py --quick    # short run (~1 min)
    python benchmarks/bench_train.py --against /tmp/old   # this checkout vs another, alternating

``--against DIR`` times the CRSNN step (sigma 0) of this checkout and of the checkout in
DIR (e.g. ``git -C REPO archive REV | tar -x -C DIR``) in worker processes, one per
checkout and thread count (``--threads 1,2``), asking them in turn, round after round
(``--rounds``), so that both see the same load; it reports the medians (CPU time at one
thread, which a loaded machine disturbs least; wall time, the only honest measure of a
multi-thread speed-up, which needs a quiet machine) and the median of the per-round
ratios, writes ``benchmarks/results/train_against.json`` and prints the table.

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


def core_ratio(net, x, y, rng, rounds: int) -> dict:
    """The CRSNN step on one core against two, as ``evsim train`` runs it (BLAS on one
    thread): ``rounds`` alternating rounds, each the fastest of two steps on 1 and on 2
    numba threads; the median and range of the per-round ratios (wall time), and the
    median step times (``step_s_sigma0_blas1``: on two threads, BLAS on one)."""
    import statistics

    one, two = [], []
    with blas_threads(1):
        try:
            for _ in range(rounds):
                for threads, times in ((1, one), (min(2, numba.config.NUMBA_NUM_THREADS), two)):
                    numba.set_num_threads(threads)
                    times.append(median_time(lambda: net.loss_and_grad(x, y, rng, 0.0), repeats=2, warmup=1)["min"])
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    ratios = [a / b for a, b in zip(one, two)]
    return {"step_s_sigma0_1thread": statistics.median(one), "step_s_sigma0_blas1": statistics.median(two),
            "cores_ratio": statistics.median(ratios), "cores_ratio_lo": min(ratios), "cores_ratio_hi": max(ratios)}


def peak_memory(cfg, n_b, n_t, sigma=1.0):
    net = Network.init(cfg, 0)
    x, y = batch(cfg, n_b, n_t)
    net.loss_and_grad(x, y, 1, sigma)            # compile / warm up outside the trace
    tracemalloc.start()
    net.loss_and_grad(x, y, 1, sigma)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


#: the worker of ``--against``: builds the CRSNN step in its checkout, then times one step
#: per line read from stdin and answers [cpu_s, wall_s]; only API both checkouts share
_WORKER = r"""
import json, os, sys, time
sys.path.insert(0, os.getcwd())
import numpy as np, numba
from benchmarks.common import blas_threads
from evsim.training import Network, NetworkConfig   # first: it sets GOMP_SPINCOUNT, read when numba's threads start
numba.set_num_threads(int(os.environ["EVSIM_BENCH_THREADS"]))
cfg = NetworkConfig(n_inputs=140, hidden=(256,) * 4, kernel_size=5, n_classes=20)
net = Network.init(cfg, 0)
rng = np.random.default_rng(0)
x = rng.poisson(0.3, (32, 100, 140)).astype(np.float32)
y = rng.integers(0, cfg.n_classes, 32)
drop = np.random.default_rng(1)
with blas_threads(1):
    net.loss_and_grad(x, y, drop, 0.0)
    net.loss_and_grad(x, y, drop, 0.0)
    print("ready", flush=True)
    for _ in sys.stdin:
        cpu, wall = time.process_time(), time.perf_counter()
        net.loss_and_grad(x, y, drop, 0.0)
        print(json.dumps([time.process_time() - cpu, time.perf_counter() - wall]), flush=True)
"""


def _start_worker(checkout: str, threads: int):
    import subprocess

    checkout = os.path.abspath(checkout)
    env = dict(os.environ, PYTHONPATH=checkout, EVSIM_BENCH_THREADS=str(threads), OPENBLAS_NUM_THREADS="1",
               NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", "/tmp/numba_cache") + "_" + checkout.strip("/").replace("/", "_"))
    proc = subprocess.Popen([sys.executable, "-c", _WORKER], cwd=checkout, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"the worker in {checkout} did not start (see its error above)")
    return proc


def against(other: str, rounds: int, thread_counts: list[int]) -> dict:
    """The CRSNN step here and in ``other``, alternating (module docstring)."""
    import json
    import statistics

    here = os.path.dirname(HERE)
    names = {"this": here, "other": os.path.abspath(other)}
    workers = {(name, n): _start_worker(path, n) for name, path in names.items() for n in thread_counts}
    times = {key: [] for key in workers}
    keys = list(workers)
    for r in range(rounds):
        for key in keys if r % 2 == 0 else keys[::-1]:
            workers[key].stdin.write("go\n")
            workers[key].stdin.flush()
            times[key].append(json.loads(workers[key].stdout.readline()))
    for proc in workers.values():
        proc.stdin.close()
        proc.wait()

    def med(key, k):
        return statistics.median(t[k] for t in times[key])

    def ratio(a, b, k):
        return statistics.median(x[k] / y[k] for x, y in zip(times[a], times[b]))

    results = {"environment": environment(), "other": names["other"], "rounds": rounds, "times": {f"{a}/{n}": times[(a, n)] for a, n in keys}}
    rows = []
    for n in thread_counts:
        this, old = ("this", n), ("other", n)
        rows.append([f"{n} thread{'s' if n > 1 else ''}", med(this, 0), med(old, 0), ratio(this, old, 0),
                     med(this, 1), med(old, 1), ratio(this, old, 1)])
        results[f"threads{n}"] = {"this_cpu_s": rows[-1][1], "other_cpu_s": rows[-1][2], "cpu_ratio": rows[-1][3],
                                  "this_wall_s": rows[-1][4], "other_wall_s": rows[-1][5], "wall_ratio": rows[-1][6]}
    table = markdown_table(["CRSNN step (B32, T100, sigma 0)", "this CPU s", "other CPU s", "this / other (CPU)",
                            "this wall s", "other wall s", "this / other (wall)"], rows)
    scaling = ""
    if 1 in thread_counts:
        extra = [[name, n, ratio((name, 1), (name, n), 1)] for name in names for n in thread_counts if n > 1]
        if extra:
            scaling = "\n\n" + markdown_table(["checkout", "threads", "speed-up over 1 thread (wall)"], extra)
            results["speedup_wall"] = {f"{a}/{n}": s for a, n, s in extra}
    env = results["environment"]
    md = (f"this = {here}, other = {names['other']}; {rounds} rounds, alternating; numba {env.get('numba')}, "
          f"load {env.get('load_average')}\n\n{table}{scaling}\n")
    results["markdown"] = md
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "train_against.json"), "w") as fh:
        json.dump(results, fh, indent=1)
    print(md)
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a smaller sweep")
    ap.add_argument("--against", metavar="DIR", help="time the CRSNN step here and in the checkout DIR, alternating")
    ap.add_argument("--rounds", type=int, default=10, help="rounds of --against (default 10)")
    ap.add_argument("--threads", default="1,2", help="thread counts of --against (default 1,2)")
    args = ap.parse_args(argv)
    if args.against:
        return against(args.against, args.rounds, [int(n) for n in args.threads.split(",")])
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
        entry.update(core_ratio(net, x, y, rng, rounds=3 if args.quick else 7))
        entry["peak_mib"] = peak_memory(cfg, 32, 100)
        entry["n_params"] = net.n_params()
        results[name] = entry
        rows.append([name, entry["step_s_sigma0"], entry["step_s_sigma10"], entry["step_s_sigma0_blas1"],
                     entry["step_s_sigma0_1thread"], entry["adamw_s"],
                     entry["step_s_sigma0"] / entry["eval_forward_s"],
                     f"{entry['cores_ratio']:.3f} ({entry['cores_ratio_lo']:.2f}-{entry['cores_ratio_hi']:.2f})",
                     entry["peak_mib"]])
    head = markdown_table(["shape (batch 32, 100 steps)", "train step s (sigma 0)", "train step s (sigma 10)",
                           "step s, BLAS 1 thread", "step s, 1 core", "AdamW s", "step / inference fwd",
                           "1 core / 2 cores (BLAS 1 thread; rounds)", "peak MiB"], rows)

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
