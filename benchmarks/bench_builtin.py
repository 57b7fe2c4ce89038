"""The built-in models as users run them, against the speed targets of issue #14.

    python benchmarks/bench_builtin.py [--samples 200] [--rounds 3] [--data FILE]

Every figure uses the built-in models at their own ``n_steps`` (106 steps: the setting
that gives their accuracy) and is a ratio or a time measured in this one run:

* **batch 1, one thread**: ``evsim.run.classify_file`` (reading, binning and the engine:
  what ``evsim run --batch-size 1`` does) with the event engine in ``--precision`` (default
  ``auto``, as ``evsim run``: float32 for the built-in models), the dense engine in
  float64 (the baseline of the issue's ratios) and the dense engine in the event engine's
  precision, alternating over ``--rounds`` rounds; median ms per sample, both ratios, and
  the accuracy on those samples (both engines must agree);
* **batching**: the event engine's per-sample throughput at batch 64 on one and on two
  threads, relative to batch 1 on one thread;
* **``evsim run`` wall time** in a fresh process (compiled kernels cached, default engine
  ``auto``): the whole test file, one sample, and ``python -c pass`` for the
  interpreter's own start-up;
* **streaming**: ``EventStream.step`` per 10 ms step and ``push`` of a step's raw events,
  and ``run_chunk`` of whole samples per step (the model's work without a call per step);
* **distance to the floor**: the engine's synaptic additions per second at batch 1 (engine
  only) against the same fan-out kernel on rows that stay in L1 cache, and against a plain
  float32 add loop (the core's SIMD add rate).

Writes ``benchmarks/results/builtin.json`` and the ``builtin`` table of
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import blas_threads, environment, markdown_table, median_time, write_results  # noqa: E402

DIGITS = "/work/shared/data/digits/digits_test.h5"
TARGETS = {"default_batch1_vs_dense": 35.0, "sparse_batch1_vs_dense": 50.0, "batch64_vs_batch1": 1.3,
           "batch64_two_threads_vs_one": 1.9, "run_file_s": 0.75, "run_one_s": 0.4, "stream_step_us": 6.0,
           "push_us": 15.0}


def builtin(name: str):
    from evsim.model_file import load_model
    from evsim.names import BUILTIN_MODELS, builtin_path

    return load_model(builtin_path(BUILTIN_MODELS[name]))


#: the event engine's precision (set by --precision; "auto" resolves as `evsim run` resolves it)
#: and the dense engine's: the float64 reference of the issue's baseline
RUN = {"precision": "float32", "dense_precision": "float64"}


def classify_ms(model, path, n, engine, batch, precision=None) -> tuple[float, float]:
    """(ms per sample, accuracy) of classify_file on the first ``n`` samples in
    ``precision`` (default: ``RUN["precision"]`` for the event engine,
    ``RUN["dense_precision"]`` for the dense one)."""
    from evsim.run import classify_file

    if precision is None:
        precision = RUN["precision"] if engine == "event" else RUN["dense_precision"]
    start = time.perf_counter()
    res = classify_file(model, path, indices=range(n), engine=engine, batch_size=batch, precision=precision)
    return (time.perf_counter() - start) / n * 1e3, res.accuracy


def batch1(name, path, n, rounds) -> dict:
    """Event (in ``RUN["precision"]``) vs dense in float64 and dense in the event engine's
    precision, at batch 1 on one thread, rotating the order each round."""
    model = builtin(name)
    classify_ms(model, path, 2, "event", 1)                      # load the compiled kernels
    runs = {"event": ("event", RUN["precision"]), "dense": ("dense", RUN["dense_precision"]),
            "dense_same": ("dense", RUN["precision"])}
    classify_ms(model, path, 2, "dense", 1, RUN["precision"])
    times, acc = {key: [] for key in runs}, {}
    with blas_threads(1):
        for r in range(rounds):
            order = list(runs)[r % 3:] + list(runs)[:r % 3]
            for key in order:
                ms, acc[key] = classify_ms(model, path, n, runs[key][0], 1, runs[key][1])
                times[key].append(ms)
    row = {"model": name, "event_ms": statistics.median(times["event"]), "dense_ms": statistics.median(times["dense"]),
           "dense_same_ms": statistics.median(times["dense_same"]),
           "accuracy_event": acc["event"], "accuracy_dense": acc["dense"], "accuracy_dense_same": acc["dense_same"],
           "samples": n}
    row["ratio"] = row["dense_ms"] / row["event_ms"]
    row["ratio_same"] = row["dense_same_ms"] / row["event_ms"]
    print(f"  {name}: event {row['event_ms']:.3f} ms, dense {row['dense_ms']:.2f} ms ({RUN['dense_precision']}), "
          f"{row['dense_same_ms']:.2f} ms ({RUN['precision']}); x{row['ratio']:.1f}, x{row['ratio_same']:.1f}; "
          f"accuracy {acc['event']:.3f} / {acc['dense']:.3f} / {acc['dense_same']:.3f}", flush=True)
    return row


def batching(path, n, rounds) -> dict:
    """Per-sample throughput of the event engine on ``default`` at batch 64 (1 and 2
    threads) relative to batch 1 on one thread."""
    import numba

    model = builtin("default")
    times = {"b1_t1": [], "b64_t1": [], "b64_t2": []}
    for _ in range(rounds):
        for key, batch, threads in (("b1_t1", 1, 1), ("b64_t1", 64, 1), ("b64_t2", 64, 2)):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            classify_ms(model, path, min(n, 64), "event", batch)   # warm (compiles the parallel kernel once)
            times[key].append(classify_ms(model, path, n, "event", batch)[0])
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"ms_per_sample": med, "batch64_vs_batch1": med["b1_t1"] / med["b64_t1"],
           "batch64_two_threads_vs_one": med["b64_t1"] / med["b64_t2"]}
    print(f"  batch 64 / batch 1 (1 thread) x{out['batch64_vs_batch1']:.2f}; 2 threads / 1 thread at batch 64 "
          f"x{out['batch64_two_threads_vs_one']:.2f}", flush=True)
    return out


def wall(cmd, repeats=3) -> float:
    """Best wall time of ``cmd`` in a fresh process with one numba thread and Python's
    bytecode cache on (as in an installation, whatever ``PYTHONDONTWRITEBYTECODE`` says)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def run_walls(path) -> dict:
    evsim = [sys.executable, "-m", "evsim", "run", "-q", "--input", path]
    for warm in (["--sample", "0"], ["--sample", "0", "--engine", "event"]):      # fill the caches
        subprocess.run(evsim + warm, check=True, stdout=subprocess.DEVNULL,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    out = {"run_file_s": wall(evsim), "run_one_s": wall(evsim + ["--sample", "0"]),
           "python_s": wall([sys.executable, "-c", "pass"])}
    print(f"  evsim run, whole file {out['run_file_s']:.2f} s; one sample {out['run_one_s']:.2f} s; "
          f"python -c pass {out['python_s']:.2f} s", flush=True)
    return out


def stream_latency(path, n) -> dict:
    """EventStream.step per 10 ms step and push of one step's raw events, ``default``,
    one thread, over the first ``n`` samples at the model's n_steps."""
    import numba

    from evsim.data import SpikeFile, time_to_step
    from evsim.event import EventStream

    numba.set_num_threads(1)
    model = builtin("default")
    meta = model.metadata
    with SpikeFile(path) as f:
        raw = [f.read(i) for i in range(n)]
        binned = [f.binned(i, dt_ms=meta.dt_ms, pool=meta.pool, n_steps=meta.n_steps, dtype=np.float64)
                  for i in range(n)]
    stream = EventStream(model, precision=RUN["precision"])
    steps = np.concatenate(binned)

    def by_step():
        for k, row in enumerate(steps):
            if k % meta.n_steps == 0:
                stream.reset()
            stream.step(row)

    pieces = []
    for s in raw:
        step_of = time_to_step(s.times, meta.dt_ms)
        edges = np.searchsorted(step_of, np.arange(meta.n_steps + 1), side="left")
        pieces.append([(s.times[a:b], s.units[a:b], (k + 1) * meta.dt_ms / 1e3)
                       for k, (a, b) in enumerate(zip(edges[:-1], edges[1:]))])

    def by_push():
        for p in pieces:
            stream.reset()
            for t, u, until in p:
                stream.push(t, u, until=until)

    def by_chunk():                       # the model's work per step, without a call per step
        for x in binned:
            stream.reset()
            stream.run_chunk(x)

    out = {"stream_step_us": median_time(by_step, repeats=5)["median"] / len(steps) * 1e6,
           "chunk_step_us": median_time(by_chunk, repeats=5)["median"] / len(steps) * 1e6,
           "push_us": median_time(by_push, repeats=5)["median"] / sum(map(len, pieces)) * 1e6}
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    print(f"  stream step {out['stream_step_us']:.2f} us (run_chunk of whole samples: {out['chunk_step_us']:.2f} us "
          f"per step), push {out['push_us']:.2f} us", flush=True)
    return out


def floor(path, n) -> dict:
    """Synaptic additions per second: the engine (batch 1, one thread, engine only) against
    its fan-out kernel on L1-resident rows and against a float32 SIMD add loop."""
    import numba

    from benchmarks._simd import adds_per_s
    from evsim import event
    from evsim.kernels.event import fan_out_spikes

    numba.set_num_threads(1)
    model = builtin("default")
    meta = model.metadata
    from evsim.data import SpikeFile

    with SpikeFile(path) as f:
        xs = [f.binned(i, dt_ms=meta.dt_ms, pool=meta.pool, n_steps=meta.n_steps, dtype=np.float64) for i in range(n)]
    p = RUN["precision"]
    syn = sum(int(event.simulate(model, x, precision=p).stats["synaptic_events"][0]) for x in xs)
    t_engine = median_time(lambda: [event.simulate(model, x, precision=p) for x in xs], repeats=5)["median"]
    rows, width = 16, 256                                       # 16 KB of float32 rows: L1
    w = np.random.default_rng(0).normal(size=rows * width).astype(np.float32)
    cur = np.zeros(width)
    spk = np.tile(np.arange(rows, dtype=np.int64), 64)
    t_fan = median_time(lambda: fan_out_spikes(cur, w, width, spk, spk.size), repeats=7, min_seconds=0.05)["median"]
    adds = spk.size * width
    out = {"engine_adds_per_s": syn / t_engine, "fan_out_l1_adds_per_s": adds / t_fan,
           "float32_simd_adds_per_s": adds_per_s(), "synaptic_events_per_sample": syn / n}
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    out["engine_vs_fan_out_l1"] = out["engine_adds_per_s"] / out["fan_out_l1_adds_per_s"]
    out["engine_vs_float32_simd"] = out["engine_adds_per_s"] / out["float32_simd_adds_per_s"]
    print(f"  adds/s: engine {out['engine_adds_per_s']:.3g}, fan-out in L1 {out['fan_out_l1_adds_per_s']:.3g}, "
          f"float32 SIMD {out['float32_simd_adds_per_s']:.3g}", flush=True)
    return out


def report(res) -> str:
    env, t = res["environment"], res["targets"]
    lines = [f"Command: `{res['command']}`  ",
             f"{env['date_utc']} UTC, {env['cpu']}, {env['cores']} cores, numba {env['numba']}, "
             f"load {_loads(res)}; built-in models at their n_steps (106); event engine "
             f"in {res.get('precision', 'float64')}, dense engine in {res.get('dense_precision', 'float64')}.", ""]
    p, dp = res.get("precision", "float64"), res.get("dense_precision", "float64")
    lines += [markdown_table(
        ["model", f"event ms/sample ({p})", f"dense ms/sample ({dp})", "event / dense", "target",
         f"dense ms/sample ({p})", "event / dense, same precision", "accuracy (event = dense)"],
        [[r["model"], r["event_ms"], r["dense_ms"], r["ratio"], f">= {TARGETS[r['model'] + '_batch1_vs_dense']:g}",
          r.get("dense_same_ms", float("nan")), r.get("ratio_same", float("nan")),
          f"{100 * r['accuracy_event']:.1f} %"] for r in res["batch1"]]), ""]
    b, w, s, f = res["batching"], res["run"], res["stream"], res["floor"]
    lines += [markdown_table(["measure", "value", "target"], [
        ["batch 64 / batch 1, per-sample throughput, 1 thread", b["batch64_vs_batch1"], ">= 1.3"],
        ["batch 64, 2 threads / 1 thread", b["batch64_two_threads_vs_one"], ">= 1.9"],
        ["`evsim run` whole test file, wall s", w["run_file_s"], "<= 0.75"],
        ["`evsim run --sample 0`, wall s", w["run_one_s"], "<= 0.4"],
        ["`python -c pass`, wall s (start-up floor)", w["python_s"], ""],
        ["stream step, us", s["stream_step_us"], "<= 6"],
        ["  the model's work per step (run_chunk of whole samples), us", s.get("chunk_step_us", float("nan")), ""],
        ["push of one step's raw events, us", s["push_us"], "<= 15"],
        ["engine synaptic adds/s", f["engine_adds_per_s"], ""],
        ["  / fan-out kernel on L1-resident rows", f["engine_vs_fan_out_l1"], ""],
        ["  / float32 SIMD add loop", f["engine_vs_float32_simd"], ""],
    ]), ""]
    lines.append("Targets met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in t.items()) + ".")
    return "\n".join(lines)


def _loads(res) -> str:
    """The load averages at the start and at the end of the run, marked LOADED above 1.5
    (another process held a core: absolute times are not the quiet machine's)."""
    end = res["environment"]["load_average"]
    start = res.get("load_start", end)
    text = f"{np.round(start, 2).tolist()} at the start, {np.round(end, 2).tolist()} at the end"
    return text + (" (**LOADED**: absolute times are a loaded machine's; the ratios are measured in this run)"
                   if max(start[0], end[0]) > 1.5 else "")


def met(res) -> dict:
    rows = {r["model"]: r["ratio"] for r in res["batch1"]}
    return {"default x35": rows["default"] >= 35, "sparse x50": rows["sparse"] >= 50,
            "batch64 x1.3": res["batching"]["batch64_vs_batch1"] >= 1.3,
            "2 threads x1.9": res["batching"]["batch64_two_threads_vs_one"] >= 1.9,
            "run file 0.75 s": res["run"]["run_file_s"] <= 0.75, "run one 0.4 s": res["run"]["run_one_s"] <= 0.4,
            "stream 6 us": res["stream"]["stream_step_us"] <= 6, "push 15 us": res["stream"]["push_us"] <= 15}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=200, help="test samples per timing (default 200)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--data", default=DIGITS, help="SHD-layout test file (default: %(default)s)")
    ap.add_argument("--precision", default="auto", choices=("auto", "float32", "float64"),
                    help="the event engine's precision (default auto, as evsim run: float32 for the built-in "
                         "models); the dense engine runs in float64, the issue's baseline")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    from evsim.precision import resolve_precision

    load_start = os.getloadavg()
    RUN["precision"] = resolve_precision(args.precision, builtin("default"))
    print(f"batch 1, one thread (event engine in {RUN['precision']})", flush=True)
    res = {"command": f"python benchmarks/bench_builtin.py --samples {args.samples} --rounds {args.rounds}"
                      + (f" --precision {args.precision}" if args.precision != "auto" else ""),
           **RUN, "load_start": load_start,
           "batch1": [batch1(name, args.data, args.samples, args.rounds) for name in ("default", "sparse")]}
    print("batching", flush=True)
    res["batching"] = batching(args.data, max(args.samples, 128), args.rounds)
    print("evsim run", flush=True)
    res["run"] = run_walls(args.data)
    print("streaming", flush=True)
    res["stream"] = stream_latency(args.data, min(args.samples, 50))
    print("floor", flush=True)
    res["floor"] = floor(args.data, min(args.samples, 50))
    res["environment"] = environment()
    res["targets"] = met(res)
    md = report(res)
    print(md)
    if not args.no_write:
        print("wrote", write_results("builtin", res, md))
    return res


if __name__ == "__main__":
    main()
