"""Coming to rest (issue #14): how many steps the event engine's hidden layers run on the
built-in models at their ``n_steps``, and what the rest test costs or saves.

    python benchmarks/bench_rest.py [--samples 1000] [--timed 60] [--passes 3] [--model M.npz ...]
    python benchmarks/bench_rest.py --quick          # 100 samples counted, 8 timed, 1 pass, nothing written

For each model: the test samples binned at its ``n_steps`` as ``evsim run`` bins them, run
by ``evsim.event.simulate`` (batch 64) in float64 and float32; reported: the hidden
layers' steps (``stats["hidden_steps"]``) against the samples' steps, and how many samples
came to rest.  Then, in one process, one numba thread, CPU time, the first ``--timed``
samples at batch 1 with ``rest=True`` and ``rest=False`` alternately, sample by sample
(the same compiled code: the ratio is the rest test's cost where nothing rests, its
saving where samples do); the outputs of the two are checked bit for bit equal.  Writes
``benchmarks/results/rest.json`` and the ``rest`` table of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import environment, markdown_table, write_results  # noqa: E402

DIGITS = "/work/shared/data/digits/digits_test.h5"


def binned(model, path: str, n: int) -> list:
    """The first ``n`` samples of ``path`` as padded batches of 64 (``evsim run``'s binning)."""
    from evsim.inputs import open_input
    from evsim.run import binned_batches

    with open_input(path, n_channels=model.metadata.input_channels, class_names=model.class_names) as f:
        return list(binned_batches(model, f, list(range(min(n, len(f)))), 64, path, engine="event"))


def steps_run(model, batches, precision: str) -> dict:
    from evsim.event import simulate

    ran, total, rested = 0, 0, 0
    for x, lengths in batches:
        hidden = simulate(model, x, lengths, precision=precision).stats["hidden_steps"]
        ran += int(hidden.sum())
        total += int(lengths.sum())
        rested += int(np.sum(hidden < lengths))
    return {"hidden_steps": ran, "steps": total, "rested": rested}


def timed(model, batches, n: int, passes: int) -> dict:
    """CPU s per sample at batch 1, rest on and off alternately, median over passes."""
    from evsim.event import simulate

    samples = [(x[i:i + 1], lengths[i:i + 1]) for x, lengths in batches for i in range(x.shape[0])][:n]
    for x, lengths in samples[:2]:                 # warm-up (kernels cached)
        simulate(model, x, lengths)
    on, off = [], []
    for p in range(passes):
        t_on = t_off = 0.0
        for k, (x, lengths) in enumerate(samples):
            order = (True, False) if (k + p) % 2 == 0 else (False, True)
            for rest in order:
                start = time.process_time()
                res = simulate(model, x, lengths, rest=rest)
                spent = time.process_time() - start
                if rest:
                    t_on += spent
                    fast = res
                else:
                    t_off += spent
                    full = res
            if not (np.array_equal(fast.readout, full.readout) and np.array_equal(fast.scores, full.scores)):
                raise SystemExit(f"rest changed the outputs of sample {k}")
        on.append(t_on / len(samples))
        off.append(t_off / len(samples))
    return {"rest_ms": 1e3 * statistics.median(on), "full_ms": 1e3 * statistics.median(off),
            "full_over_rest": statistics.median(b / a for a, b in zip(on, off))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=1000, help="test samples counted (default all 1000)")
    ap.add_argument("--timed", type=int, default=60, help="samples timed at batch 1 (default 60)")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--model", action="append", default=[], help="more model files (besides the built-in ones)")
    ap.add_argument("--data", default=DIGITS)
    ap.add_argument("--quick", action="store_true", help="100 samples counted, 8 timed, 1 pass, nothing written")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.timed, args.passes = 100, 8, 1
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from evsim.model_file import load_model

    from evsim.names import BUILTIN_MODELS, builtin_path

    models = {**{name: builtin_path(f) for name, f in BUILTIN_MODELS.items()}, **{m: m for m in args.model}}
    rows, results = [], {"env": environment(), "args": vars(args), "models": {}}
    for name, path in models.items():
        model = load_model(path)
        batches = binned(model, args.data, args.samples)
        counts = {p: steps_run(model, batches, p) for p in ("float64", "float32")}
        speed = timed(model, batches, args.timed, args.passes)
        results["models"][name] = {"counts": counts, "speed": speed}
        c64, c32 = counts["float64"], counts["float32"]
        print(f"{name}: hidden steps {c64['hidden_steps']} of {c64['steps']} (float64), {c32['hidden_steps']} "
              f"(float32); rested {c64['rested']}; full / rest {speed['full_over_rest']:.3f}")
        n_samples = sum(b.x.shape[0] for b in batches)
        rows.append([name, c64["steps"] / max(1, n_samples), c64["hidden_steps"], c64["steps"], c64["rested"], c32["hidden_steps"], c32["rested"],
                     speed["rest_ms"], speed["full_ms"], speed["full_over_rest"]])
    load = os.getloadavg()[0]
    table = markdown_table(["model", "steps per sample", "hidden steps run, float64", "of", "samples at rest, float64",
                            "hidden steps, float32", "at rest, float32", "b1 ms/sample, rest", "b1 ms/sample, every step",
                            "every step / rest"], rows)
    markdown = (f"Command: `python benchmarks/bench_rest.py --samples {args.samples} --timed {args.timed} --passes "
                f"{args.passes}`  \n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load:.1f}; "
                f"{args.samples} test samples counted, {args.timed} timed at batch 1 (CPU time, one thread, medians "
                f"of {args.passes} passes).\n\n{table}\n")
    print(markdown)
    if not args.quick:
        print("wrote", write_results("rest", results, markdown))


if __name__ == "__main__":
    main()
