"""Seed table and accuracy-vs-time curve of finished training runs (their ``--out`` folders).

    python tools/accuracy_curve.py runs/default_s0 runs/default_s1 runs/default_s2 [--every 4]

Prints, as Markdown: each run's test and validation accuracy (``result.json``), their mean
+- sample standard deviation over the runs, then validation accuracy against the minutes
of training (cumulative epoch times in ``log.jsonl``), mean +- std over the runs at every
``--every``-th epoch.  Validation is what the run itself saw; the test accuracy is that of
the model the run exported (the best validation epoch).
"""

import argparse
import json
import os
import statistics
import sys


def mean_std(values: list[float]) -> str:
    """``mean +- std`` of the values; ``-`` for none (runs without validation)."""
    if not values:
        return "-"
    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} +- {statistics.stdev(values):.1f}"


def read_run(folder: str) -> tuple[dict, list[dict]]:
    with open(os.path.join(folder, "result.json")) as fh:
        result = json.load(fh)
    with open(os.path.join(folder, "log.jsonl")) as fh:
        log = [json.loads(line) for line in fh if line.strip()]
    return result, log


def seed_table(runs: dict[str, tuple[dict, list[dict]]]) -> list[str]:
    lines = ["| run | test % | validation % | best epoch | minutes |", "|---|---|---|---|---|"]
    tests, vals = [], []
    for name, (result, _) in runs.items():
        tests.append(100 * result["test_accuracy"])
        val = result["validation_accuracy"]
        vals += [] if val is None else [100 * val]
        lines.append(f"| {name} | {tests[-1]:.1f} | {'-' if val is None else f'{100 * val:.1f}'} | {result['best_epoch']} of "
                     f"{result['epochs_done']} | {result['train_seconds'] / 60:.0f} |")
    lines.append(f"| mean +- std ({len(tests)}) | {mean_std(tests)} | {mean_std(vals)} | | |")
    return lines


def time_curve(runs: dict[str, tuple[dict, list[dict]]], every: int) -> list[str]:
    lines = ["| epoch | minutes (mean) | validation % |", "|---|---|---|"]
    n_epochs = min(len(log) for _, log in runs.values())
    for epoch in range(every, n_epochs + 1, every):
        minutes = [sum(row["seconds"] for row in log[:epoch]) / 60 for _, log in runs.values()]
        vals = [100 * log[epoch - 1]["val_accuracy"] for _, log in runs.values()
                if log[epoch - 1]["val_accuracy"] is not None]
        lines.append(f"| {epoch} | {statistics.mean(minutes):.0f} | {mean_std(vals)} |")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (evsim train --out)")
    parser.add_argument("--every", type=int, default=4, help="epochs between rows of the curve")
    args = parser.parse_args(argv)
    try:
        runs = {os.path.basename(os.path.normpath(f)): read_run(f) for f in args.runs}
    except (OSError, ValueError, KeyError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(seed_table(runs) + [""] + time_curve(runs, max(1, args.every))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
