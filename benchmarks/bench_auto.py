"""Where the dense engine stops beating the event engine in a fresh process: the
crossover behind ``evsim run --engine auto`` (:mod:`evsim.engine_choice`).

    python benchmarks/bench_auto.py [--sizes 1,10,30,100,300] [--rounds 3] [--model default]

For each number of samples n (the first n of the test file, the model at its own
``n_steps``, batch 64, one numba and one BLAS thread, compiled kernels cached), a fresh
Python process loads the model and runs ``evsim.run.classify_file`` with the event and
then the dense engine (alternating the order over rounds), everything a one-shot
``evsim run`` pays: imports (numba and the kernel cache for the event engine), reading,
binning, simulating.  Reported: the median CPU and wall seconds of each, the ratio, the
crossover n (interpolated where dense / event passes 1), and what
:func:`evsim.engine_choice.choose_engine` picks at each n.  CPU time moves less than wall
time under load.  Nothing is written unless ``--write``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import markdown_table, write_results  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = "/work/shared/data/digits/digits_test.h5"

_CODE = """
import sys
from evsim.model_file import load_model
from evsim.names import BUILTIN_MODELS, builtin_path
from evsim.run import classify_file
m = load_model(builtin_path(BUILTIN_MODELS[sys.argv[1]]))
classify_file(m, sys.argv[2], indices=range(int(sys.argv[3])), engine=sys.argv[4], batch_size=64)
"""


def one(model: str, data: str, n: int, engine: str) -> tuple[float, float]:
    """(CPU s, wall s) of a fresh process classifying the first n samples with ``engine``."""
    env = dict(os.environ, PYTHONPATH=HERE, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _CODE, model, data, str(n), engine], env=env, check=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), elapsed


def crossover(sizes, ratios):
    """n where dense / event first reaches 1, interpolated in log n; None if never."""
    import math

    for (n0, r0), (n1, r1) in zip(zip(sizes, ratios), zip(sizes[1:], ratios[1:])):
        if r0 < 1 <= r1:
            f = (1 - r0) / (r1 - r0)
            return math.exp(math.log(n0) + f * (math.log(n1) - math.log(n0)))
    return None


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,10,30,100,300", help="numbers of samples (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="default", choices=("default", "sparse"))
    ap.add_argument("--data", default=DIGITS)
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/auto.json")
    args = ap.parse_args(argv)
    import datetime

    from evsim.engine_choice import choose_engine
    from evsim.model_file import load_model
    from evsim.names import BUILTIN_MODELS, builtin_path

    model = load_model(builtin_path(BUILTIN_MODELS[args.model]))
    sizes = [int(s) for s in args.sizes.split(",")]
    one(args.model, args.data, 2, "event")                      # the kernel cache filled
    cpu = {(n, e): [] for n in sizes for e in ("event", "dense")}
    wall = {k: [] for k in cpu}
    loads = []
    for r in range(args.rounds):
        for n in sizes:
            for engine in (("event", "dense") if r % 2 == 0 else ("dense", "event")):
                c, w = one(args.model, args.data, n, engine)
                cpu[n, engine].append(c)
                wall[n, engine].append(w)
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}/{args.rounds}: load {loads[-1]:.1f}", flush=True)
    med = {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in cpu}
    rows, ratios = [], []
    for n in sizes:
        ratio = med[n, "dense"][0] / med[n, "event"][0]
        ratios.append(ratio)
        rows.append([n, med[n, "event"][0], med[n, "dense"][0], ratio, med[n, "event"][1], med[n, "dense"][1],
                     choose_engine(model, n, batch_size=64)])
    cross = crossover(sizes, ratios)
    res = {"model": args.model, "sizes": sizes, "median_cpu_wall": {f"{n} {e}": v for (n, e), v in med.items()},
           "crossover_samples": cross, "load_per_round": loads,
           "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}
    md = "\n".join([
        f"Command: `python benchmarks/bench_auto.py --sizes {args.sizes} --rounds {args.rounds} --model {args.model}`  ",
        f"{res['date_utc']} UTC, load average per round {[round(x, 1) for x in loads]}; built-in `{args.model}` at "
        f"{model.metadata.n_steps} steps, batch 64, one thread, fresh processes (medians).", "",
        markdown_table(["samples", "event CPU s", "dense CPU s", "dense / event (CPU)", "event wall s", "dense wall s",
                        "auto picks"], rows), "",
        f"Crossover (dense / event CPU = 1): {'%.0f samples' % cross if cross else 'not within the sizes'}."])
    print(md)
    if args.write:
        print("wrote", write_results("auto", res, md))
    return res


if __name__ == "__main__":
    main()
