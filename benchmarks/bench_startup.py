"""Start-up and per-file overhead of ``evsim run`` (and ``evsim info``), this checkout
against another one, alternating, in fresh processes.

    git archive <commit> | tar -x -C /tmp/evsim-old
    python benchmarks/bench_startup.py --against /tmp/evsim-old [--rounds 5] [--data FILE]
    python benchmarks/bench_startup.py --quick            # 1 round, this checkout only, no files written

Each command runs in a fresh ``python -m evsim`` process with one numba thread, its
compiled kernels cached (a warm-up run per checkout fills each checkout's own
``NUMBA_CACHE_DIR``), the two checkouts alternating over ``--rounds`` rounds.  Reported:
the median wall time and CPU time (user + system of the process) of each command per
checkout and their ratios (other / this; > 1: this checkout is faster), with the load
average, since these machines are shared: the ratios hold where absolute times move with
the load, and under load the CPU time moves less than the wall time.  ``python -c pass`` is the interpreter's
own floor.

Commands: ``evsim run`` on one sample, on the 20 built-in samples and on the whole file
(built-in ``default`` model at its ``n_steps``, each checkout's default engine: ``auto``
where it has one, else ``event``), ``evsim run --engine event`` and ``--engine dense`` on
one sample, ``evsim info``.  Python's bytecode cache is on for every run (as in an
installation), whatever ``PYTHONDONTWRITEBYTECODE`` says.
Writes ``benchmarks/results/startup.json`` and the ``startup`` table of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import markdown_table, write_results  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = "/work/shared/data/digits/digits_test.h5"


def commands(data: str) -> dict:
    """The commands timed, each with its checkout's default engine unless it names one
    (``auto`` where the checkout has it, else ``event``)."""
    run = ["-m", "evsim", "run", "-q", "--input", data]
    return {"evsim run --sample 0": run + ["--sample", "0"],
            "evsim run --engine event --sample 0": run + ["--engine", "event", "--sample", "0"],
            "evsim run --engine dense --sample 0": run + ["--engine", "dense", "--sample", "0"],
            "evsim run (20 built-in samples)": ["-m", "evsim", "run", "-q"],
            "evsim run (whole file)": run,
            "evsim info": ["-m", "evsim", "info"],
            "python -c pass": ["-c", "pass"]}


def environment_for(checkout: str) -> dict:
    """One numba thread, the checkout's own kernel cache, and Python's bytecode cache
    allowed (an installation has its ``.pyc`` files: pip writes them), whatever the
    calling shell says (``PYTHONDONTWRITEBYTECODE`` would recompile every module of
    evsim in every run, ~0.07 s)."""
    cache = os.path.join(tempfile.gettempdir(), "evsim_bench_startup_cache_" + checkout.strip("/").replace("/", "_"))
    env = dict(os.environ, PYTHONPATH=checkout, NUMBA_CACHE_DIR=cache, NUMBA_NUM_THREADS="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall(argv, env, cwd) -> tuple[float, float]:
    """(wall s, CPU s: user + system of the child) of one run of ``python argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(checkouts: dict, data: str, rounds: int) -> dict:
    cmds = commands(data)
    for checkout in checkouts.values():               # fill each checkout's kernel cache
        env = environment_for(checkout)
        for argv in cmds.values():
            wall(argv, env, checkout)
    times = {name: {c: [] for c in checkouts} for name in cmds}
    cpu = {name: {c: [] for c in checkouts} for name in cmds}
    loads = []
    for r in range(rounds):
        order = list(checkouts) if r % 2 == 0 else list(reversed(checkouts))
        for name, argv in cmds.items():
            for label in order:
                w, c = wall(argv, environment_for(checkouts[label]), checkouts[label])
                times[name][label].append(w)
                cpu[name][label].append(c)
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}/{rounds}: load {loads[-1]:.1f}", flush=True)
    return {"times": times, "cpu": cpu, "load_per_round": loads}


def report(res: dict) -> str:
    labels = list(res["checkouts"])
    rows = []
    for name in res["times"]:
        row = [name]
        for kind in ("times", "cpu"):
            med = {c: statistics.median(v) for c, v in res[kind][name].items()}
            row += [med[c] for c in labels]
            if len(labels) == 2:
                row.append(med[labels[1]] / med[labels[0]])
        rows.append(row)
    header = ["command (1 numba thread, kernels cached)"]
    for kind in ("wall", "CPU"):
        header += [f"{c}: {kind} s" for c in labels]
        if len(labels) == 2:
            header.append(f"{kind} {labels[1]} / {labels[0]}")
    lines = [f"Command: `{res['command']}`  ",
             f"{res['date_utc']} UTC, {res['rounds']} alternating rounds (medians), load average per round "
             f"{[round(x, 1) for x in res['load_per_round']]}; checkouts: "
             + ", ".join(f"{k} = `{v}`" for k, v in res["checkouts"].items()) + ".", "",
             markdown_table(header, rows)]
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", metavar="DIR", help="another evsim checkout (e.g. an older commit's git archive)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--data", default=DIGITS, help="SHD-layout test file (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="one round, print only")
    args = ap.parse_args(argv)
    import datetime

    checkouts = {"this": HERE}
    if args.against:
        checkouts = {"this": HERE, "other": os.path.abspath(args.against)}
    rounds = 1 if args.quick else args.rounds
    res = measure(checkouts, args.data, rounds)
    res.update(checkouts=checkouts, rounds=rounds,
               date_utc=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
               command="python benchmarks/bench_startup.py" + (f" --against {args.against}" if args.against else "")
               + f" --rounds {rounds}")
    md = report(res)
    print(md)
    if not args.quick:
        print("wrote", write_results("startup", res, md))
    return res


if __name__ == "__main__":
    main()
