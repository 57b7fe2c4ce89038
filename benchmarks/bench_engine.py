"""The event engine's kernel on the built-in models, this checkout against another one and
against the dense engine, interleaved sample by sample in one process.

    git -C /work/main archive HEAD | tar -x -C /tmp/engine_base
    python benchmarks/bench_engine.py --against /tmp/engine_base [--passes 5] [--samples 60]
    python benchmarks/bench_engine.py --quick          # 1 pass, 8 samples, this checkout, nothing written
    python benchmarks/bench_engine.py --compare-precisions [--passes 5] [--samples 60]

The other checkout's ``evsim`` package is copied to a temporary directory as
``evsim_other`` (its ``evsim.`` imports renamed) and imported beside this one, so both
engines run in the same process on the same binned samples: the first ``--samples`` test
samples at the built-in models' ``n_steps`` (106).  On a shared, loaded machine the speed
of a process drifts by tens of percent within a minute; timing the two checkouts sample
by sample, in alternating order, puts the same drift on both (separate processes per
checkout, alternating, gave per-round ratios from 0.6 to 1.5 under a load of 6).

Per pass, in CPU time (user + system of the process), for ``default`` and ``sparse``:

* the event engine at batch 1 (``simulate`` sample by sample, the two checkouts
  interleaved), then at batch 64 (batches interleaved), one numba thread;
* the dense engine (``evsim.reference.simulate``) at batch 1 on the first
  ``--dense-samples`` samples, one BLAS thread (its cost hardly depends on the sample:
  dense matrix products at every one of the 106 steps);
* a plain float32 SIMD add loop (``benchmarks/_simd.py``), the core's add rate;
* with ``--threads 2``, this checkout's event engine at batch 64 on one and two numba
  threads in *wall* time (a figure that needs a quiet machine: under load the second
  thread waits for a core).

With ``--compare-precisions`` the two engines timed alternately are this checkout's in
float32 and in float64 (``precision=``, :mod:`evsim.precision`), the dense engine is timed
in both precisions, "this / other" reads float32 / float64, and instead of bit-equal
outputs the predictions of the two precisions are compared on all the samples; it writes
``benchmarks/results/engine_precision.json`` and the ``engine_precision`` table.
``--precision float32`` runs this checkout's engine and ``--against``'s in float32 (the
other checkout must take ``precision=``), their outputs compared bit for bit.

Reported, as medians over the passes: ms per sample, event / dense, this / other (> 1:
this checkout is faster), batch 64 / batch 1 per-sample throughput, and the engine's
synaptic additions per CPU second against the SIMD add loop.  The two checkouts' outputs
are checked equal (readout traces and scores, bit for bit) on the first samples.  Engine
time only: reading and binning the file are outside (``bench_builtin.py`` times the whole
``evsim run`` path).  Writes ``benchmarks/results/engine.json`` and the ``engine`` table
of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import cpu_seconds, environment, markdown_table, wall_seconds, write_results

DIGITS = "/work/shared/data/digits/digits_test.h5"
MODELS = ("default", "sparse")


def _each(simulate, model, xs) -> None:
    for x in xs:
        simulate(model, x)


def import_other(checkout: str):
    """The other checkout's ``evsim.event`` and ``evsim.model_file``, imported as package
    ``evsim_other`` from a renamed copy in a temporary directory."""
    import importlib
    import re
    import shutil

    root = tempfile.mkdtemp(prefix="evsim_other_")
    dest = os.path.join(root, "evsim_other")
    shutil.copytree(os.path.join(checkout, "evsim"), dest, ignore=shutil.ignore_patterns("__pycache__"))
    pattern = re.compile(r"\b(from|import) evsim(\.| import\b)")
    for folder, _, files in os.walk(dest):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as fh:
                    text = fh.read()
                new = pattern.sub(lambda m: f"{m.group(1)} evsim_other{m.group(2)}", text)
                if new != text:
                    with open(path, "w") as fh:
                        fh.write(new)
    sys.path.insert(0, root)
    return importlib.import_module("evsim_other.event"), importlib.import_module("evsim_other.model_file")


def _in_precision(simulate, precision: str):
    """``simulate(model, x)`` of this checkout's engine ``simulate`` in ``precision``."""
    def run(model, x):
        return simulate(model, x, precision=precision)
    return run


def engines_for(path: str, args, other) -> dict:
    """{key: (simulate(model, x), model, precision)}: the engines timed against each other,
    the first key the one whose speed-up is reported (this checkout, or float32)."""
    from evsim import event
    from evsim.model_file import load_model

    if args.compare_precisions:
        model = load_model(path)
        return {p: (_in_precision(event.simulate, p), model, p) for p in ("float32", "float64")}
    engines = {"this": (_in_precision(event.simulate, args.precision), load_model(path), args.precision)}
    if other is not None:
        other_simulate = other[0].simulate if args.precision == "float64" else _in_precision(other[0].simulate, args.precision)
        engines["other"] = (other_simulate, other[1].load_model(path), args.precision)
    return engines


def measure(name: str, args, other) -> dict:
    """All passes for one built-in model (the module docstring)."""
    import numba

    from benchmarks._simd import adds_per_s
    from benchmarks.common import blas_threads
    from evsim import reference
    from evsim.data import SpikeFile
    from evsim.names import BUILTIN_MODELS, builtin_path

    path = builtin_path(BUILTIN_MODELS[name])
    engines = engines_for(path, args, other)
    keys = list(engines)
    meta = engines[keys[0]][1].metadata
    with SpikeFile(args.data, n_channels=meta.input_channels) as f:
        xs = [f.binned(i, dt_ms=meta.dt_ms, pool=meta.pool, n_steps=meta.n_steps, dtype=np.float64)
              for i in range(args.samples)]
    batch = np.stack(xs)
    batches = [batch[i:i + 64] for i in range(0, len(xs), 64)]
    numba.set_num_threads(1)
    first = {key: sim(m, batch[:3]) for key, (sim, m, _) in engines.items()}   # loads (or compiles) the kernels
    for x in xs[:2]:
        for sim, m, _ in engines.values():
            sim(m, x)
    if args.compare_precisions:   # how many predictions the two precisions share, over every sample
        preds = [sim(m, batch).predictions for sim, m, _ in engines.values()]
        same = int(np.sum(preds[0] == preds[1]))
    else:
        same = all(np.array_equal(first[keys[0]].readout, r.readout) and np.array_equal(first[keys[0]].scores, r.scores)
                   for r in first.values())
    sim, m, _ = engines[keys[-1]]
    syn = float(sim(m, batch).stats["synaptic_events"].mean())
    precisions = sorted({p for _, _, p in engines.values()})
    passes = []
    for p in range(args.passes):
        b1 = {k: 0.0 for k in keys}
        for i, x in enumerate(xs):
            for key in (keys if (i + p) % 2 == 0 else keys[::-1]):
                sim, m, _ = engines[key]
                b1[key] += cpu_seconds(sim, m, x)
        b64 = {k: 0.0 for k in keys}
        for key in (keys if p % 2 == 0 else keys[::-1]):
            sim, m, _ = engines[key]
            b64[key] = cpu_seconds(_each, sim, m, batches)
        dense = {}
        with blas_threads(1):
            model = engines[keys[0]][1]
            for prec in precisions:
                dense_sim = _in_precision(reference.simulate, prec)
                dense_sim(model, xs[0][:2])
                dense[prec] = cpu_seconds(_each, dense_sim, model, xs[:args.dense_samples]) / args.dense_samples * 1e3
        row = {"simd_adds_per_s": adds_per_s(), "load": os.getloadavg()[0],
               "dense_b1_ms": dense.get("float64", dense[precisions[0]]), "dense_b1_ms_by_precision": dense}
        for key in keys:
            row[key] = {"event_b1_ms": b1[key] / len(xs) * 1e3, "event_b64_ms": b64[key] / len(xs) * 1e3,
                        "precision": engines[key][2]}
        if args.threads > 1:
            sim, m, _ = engines[keys[0]]
            numba.set_num_threads(args.threads)
            sim(m, batches[0])
            row[keys[0]]["event_b64_t2_wall_ms"] = wall_seconds(_each, sim, m, batches) / len(xs) * 1e3
            numba.set_num_threads(1)
            row[keys[0]]["event_b64_t1_wall_ms"] = wall_seconds(_each, sim, m, batches) / len(xs) * 1e3
        passes.append(row)
        print(f"  {name} pass {p + 1}: event b1 ms/sample " + " / ".join(f"{key} {row[key]['event_b1_ms']:.3f}" for key in keys)
              + f", dense {row['dense_b1_ms']:.2f}, load {row['load']:.1f}", flush=True)
    return summarise(passes, keys, syn, same)


def summarise(passes: list, keys: list, syn: float, same) -> dict:
    med = statistics.median
    out = {"synaptic_events_per_sample": syn, "same_outputs": same, "passes": passes, "keys": keys}
    for key in keys:
        rows = [p[key] for p in passes]
        prec = rows[0]["precision"]
        s = {"event_b1_ms": med(r["event_b1_ms"] for r in rows), "event_b64_ms": med(r["event_b64_ms"] for r in rows),
             "event_vs_dense": med(p["dense_b1_ms"] / p[key]["event_b1_ms"] for p in passes),
             "event_vs_dense_same_precision": med(p["dense_b1_ms_by_precision"][prec] / p[key]["event_b1_ms"]
                                                  for p in passes),
             "batch64_vs_batch1": med(r["event_b1_ms"] / r["event_b64_ms"] for r in rows),
             "adds_per_cpu_s": med(syn / r["event_b1_ms"] * 1e3 for r in rows),
             "adds_vs_simd": med(syn / p[key]["event_b1_ms"] * 1e3 / p["simd_adds_per_s"] for p in passes)}
        if "event_b64_t2_wall_ms" in rows[0]:
            s["two_threads_vs_one"] = med(r["event_b64_t1_wall_ms"] / r["event_b64_t2_wall_ms"] for r in rows)
        out[key] = s
    out["dense_b1_ms"] = med(p["dense_b1_ms"] for p in passes)
    if len(keys) == 2:   # this / other, or float32 / float64: > 1 when the first is faster
        a, b = keys
        out["this_vs_other_b1"] = med(p[b]["event_b1_ms"] / p[a]["event_b1_ms"] for p in passes)
        out["this_vs_other_b64"] = med(p[b]["event_b64_ms"] / p[a]["event_b64_ms"] for p in passes)
    return out


def report(res: dict) -> str:
    env = res["environment"]
    loads = sorted(p["load"] for name in MODELS for p in res[name]["passes"])
    lines = [f"Command: `{res['command']}`  ",
             (f"{env['date_utc']} UTC, {env['cpu']}, {env['cores']} cores, numba {env['numba']}; "
              f"{res['passes']} passes (medians), load average {loads[0]:.1f}-{loads[-1]:.1f}; "
              f"{res['samples']} test samples (dense engine: {res['dense_samples']}) at the models' n_steps (106); "
              "CPU time, engine only, one thread."), ""]
    other = res.get("against")
    by_precision = res.get("compare_precisions")
    keys = res[MODELS[0]]["keys"]
    rows = []
    for name in MODELS:
        s = res[name]
        for key in keys:
            row = [name, key, s[key]["event_b1_ms"], s[key]["event_b64_ms"], s["dense_b1_ms"],
                   s[key]["event_vs_dense"], s[key]["batch64_vs_batch1"], s[key]["adds_per_cpu_s"],
                   s[key]["adds_vs_simd"]]
            if by_precision:
                row.insert(6, s[key]["event_vs_dense_same_precision"])
            rows.append(row)
    header = ["model", "precision" if by_precision else "checkout", "event b1 ms/sample", "event b64 ms/sample",
              "dense b1 ms/sample (float64)", "event / dense float64 (b1)", "b64 / b1 throughput",
              "synaptic adds per CPU s (b1)", "/ float32 SIMD add loop"]
    if by_precision:
        header.insert(6, "event / dense, same precision (b1)")
    lines += [markdown_table(header, rows), ""]
    rows, header = [], ["model", "synaptic adds/sample"]
    if by_precision:
        header += ["float32 / float64 speed, b1", "float32 / float64 speed, b64",
                   f"same predictions (of {res['samples']})"]
    elif other:
        header += ["this / other, b1", "this / other, b64", "outputs bit for bit equal"]
    if "two_threads_vs_one" in res[MODELS[0]][keys[0]]:
        header.append("b64: 2 threads / 1 (wall)")
    for name in MODELS:
        s = res[name]
        row = [name, s["synaptic_events_per_sample"]]
        if by_precision:
            row += [s["this_vs_other_b1"], s["this_vs_other_b64"], s["same_outputs"]]
        elif other:
            row += [s["this_vs_other_b1"], s["this_vs_other_b64"], "yes" if s["same_outputs"] else "NO"]
        if "two_threads_vs_one" in s[keys[0]]:
            row.append(s[keys[0]]["two_threads_vs_one"])
        rows.append(row)
    lines.append(markdown_table(header, rows))
    simd = statistics.median(p["simd_adds_per_s"] for p in res[MODELS[0]]["passes"])
    lines += ["", f"float32 SIMD add loop: {simd:.3g} adds per CPU s" + (f"; other checkout: `{other}`." if other else ".")]
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", help="another checkout (a directory with evsim/) to compare with")
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--samples", type=int, default=60, help="test samples for the event engine (default 60)")
    ap.add_argument("--dense-samples", type=int, default=8, help="samples for the dense engine (default 8)")
    ap.add_argument("--threads", type=int, default=1, help="2: also time batch 64 on two threads (wall; quiet machine)")
    ap.add_argument("--data", default=DIGITS)
    ap.add_argument("--precision", choices=("float64", "float32"), default="float64",
                    help="this checkout's engine precision (default float64)")
    ap.add_argument("--compare-precisions", action="store_true",
                    help="time this checkout in float32 against float64 (instead of --against)")
    ap.add_argument("--quick", action="store_true", help="1 pass, 8 samples (4 dense), nothing written")
    args = ap.parse_args(argv)
    if args.compare_precisions and args.against:
        ap.error("--compare-precisions times this checkout only; drop --against")
    if args.quick:
        args.passes, args.samples, args.dense_samples = 1, 8, 4
    other = import_other(os.path.abspath(args.against)) if args.against else None
    cmd = "python benchmarks/bench_engine.py" + (f" --against {args.against}" if args.against else "") + \
        f" --passes {args.passes} --samples {args.samples} --dense-samples {args.dense_samples}" + \
        (f" --threads {args.threads}" if args.threads > 1 else "") + \
        (" --compare-precisions" if args.compare_precisions else "") + \
        (f" --precision {args.precision}" if args.precision != "float64" else "")
    res = {"command": cmd, "against": os.path.abspath(args.against) if args.against else None,
           "samples": args.samples, "dense_samples": args.dense_samples, "passes": args.passes,
           "compare_precisions": args.compare_precisions, "precision": args.precision}
    for name in MODELS:
        res[name] = measure(name, args, other)
    res["environment"] = environment()
    md = report(res)
    print(md)
    if not args.quick:
        print("wrote", write_results("engine_precision" if args.compare_precisions else "engine", res, md))
    return res


if __name__ == "__main__":
    main()
