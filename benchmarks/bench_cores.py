"""What a second core gives on this machine: the ceiling of every two-thread target.

A two-thread speed-up can only be judged against what the machine's two cores deliver to
two independent processes.  On a virtual machine two "cores" may be hyperthreads of one
physical core, or share its memory bandwidth with other guests; then no program reaches
2x.  This script measures, in one run, the throughput of

* ``simd``: a float32 add loop on rows that stay in L1 cache (``benchmarks/_simd.py``),
  pure arithmetic;
* ``engine``: the event engine on the built-in ``default`` model, 64 test samples per
  call at its n_steps, float32, one numba thread (what ``evsim run`` runs);

alone, then as two processes at the same time, and for the engine also as one process
with two numba threads (``simulate`` on a batch, samples in parallel).  Each figure is
calls completed in a fixed wall-time window; the ratios are those throughputs.

    python benchmarks/bench_cores.py [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from common import environment, write_results

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "digits", "digits_test.h5")


def _workload(kind: str, data: str):
    """A callable doing one unit of ``kind``'s work (compiled and warmed first)."""
    import numpy as np

    if kind == "simd":
        from _simd import add_rows

        width = 256
        w = np.random.default_rng(0).random(16 * width).astype(np.float32)
        acc = np.zeros(width, np.float32)
        rows = np.tile(np.arange(16, dtype=np.int64), 4096)
        add_rows(acc, w, width, rows)
        return lambda: add_rows(acc, w, width, rows)
    if kind.startswith("engine"):
        import numba

        from evsim.data import SpikeFile
        from evsim.event import simulate
        from evsim.model_file import load_model
        from evsim.names import builtin_path
        from evsim.run import binned_batches

        numba.set_num_threads(2 if kind == "engine2" else 1)
        model = load_model(builtin_path("default_model.npz"))
        with SpikeFile(data) as f:
            x, lengths = next(binned_batches(model, f, list(range(0, 640, 10)), 64, data))
        simulate(model, x, lengths, precision="float32")
        return lambda: simulate(model, x, lengths, precision="float32")
    raise ValueError(f"unknown workload {kind!r} (simd, engine or engine2)")


def worker(kind: str, data: str, seconds: float, start_at: float) -> None:
    """Run ``kind`` from wall time ``start_at`` for ``seconds``; print the calls done."""
    call = _workload(kind, data)
    if time.time() >= start_at:   # a late start would time less than the window, or nothing
        raise SystemExit(f"worker {kind}: warming up took past the common start; rerun on a quieter machine")
    while time.time() < start_at:
        time.sleep(0.001)
    calls = 0
    end = start_at + seconds
    while time.time() < end:
        call()
        calls += 1
    print(json.dumps({"calls": calls, "seconds": time.time() - start_at}))


def throughput(kind: str, data: str, seconds: float, processes: int) -> float:
    """Calls per second of ``processes`` processes running ``kind`` at the same time."""
    start_at = time.time() + 10.0           # time for each process to import and warm up
    env = dict(os.environ, NUMBA_NUM_THREADS="2" if kind == "engine2" else "1", OPENBLAS_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", kind, "--data", data,
                               "--seconds", str(seconds), "--start-at", repr(start_at)],
                              stdout=subprocess.PIPE, env=env, text=True) for _ in range(processes)]
    total = 0.0
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"worker {kind} failed (exit {p.returncode}); see its message above")
        res = json.loads(out.strip().splitlines()[-1])
        total += res["calls"] / res["seconds"]
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="timed window per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.seconds, args.start_at)
        return
    runs = {"simd_1": [], "simd_2p": [], "engine_1": [], "engine_2p": [], "engine_2t": []}
    for r in range(args.rounds):
        for key, kind, n in (("simd_1", "simd", 1), ("simd_2p", "simd", 2), ("engine_1", "engine", 1),
                             ("engine_2p", "engine", 2), ("engine_2t", "engine2", 1)):
            runs[key].append(throughput(kind, args.data, args.seconds, n))
            print(f"round {r + 1}: {key} {runs[key][-1]:.2f} calls/s (load {os.getloadavg()[0]:.2f})", flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    ratios = {"simd two processes / one": med["simd_2p"] / med["simd_1"],
              "engine two processes / one": med["engine_2p"] / med["engine_1"],
              "engine two threads (one process, batch 64) / one": med["engine_2t"] / med["engine_1"]}
    env = environment()
    lines = [f"Command: `python benchmarks/bench_cores.py --seconds {args.seconds:g} --rounds {args.rounds}`  ",
             f"{env.get('date_utc', '') + ' UTC'}, {env.get('cpu', '')}; load average at the end "
             f"{[round(x, 2) for x in os.getloadavg()]}; medians of {args.rounds} rounds, "
             f"{args.seconds:g} s windows.", "",
             "| throughput ratio | median | per round |", "|---|---|---|"]
    per_round = {"simd two processes / one": ("simd_2p", "simd_1"),
                 "engine two processes / one": ("engine_2p", "engine_1"),
                 "engine two threads (one process, batch 64) / one": ("engine_2t", "engine_1")}
    for name, value in ratios.items():
        a, b = per_round[name]
        rounds = ", ".join(f"{x / y:.2f}" for x, y in zip(runs[a], runs[b]))
        lines.append(f"| {name} | {value:.3f} | {rounds} |")
    for name, value in ratios.items():
        print(f"{name}: {value:.3f}")
    write_results("cores", {"environment": env, "runs": runs, "ratios": ratios}, "\n".join(lines))


if __name__ == "__main__":
    main()
