"""Validation accuracy per held-out speaker of finished training runs (their ``--out`` folders).

    python tools/val_speakers.py runs/default_s0 runs/default_s1 [--train digits_train.h5]

For runs made before `evsim train` recorded ``validation_by_speaker`` in ``result.json``:
rebuilds each run's speaker split from its ``config.json`` (seed, validation fraction,
binning) and the training file its checkpoint records (or ``--train``), and runs the
exported ``model.npz`` on every held-out speaker's samples, as the trainer now does.
Prints one Markdown row per run, speakers worst first.
"""

import argparse
import json
import os
import sys

from evsim.errors import EvsimError


def training_file(folder: str, given: str | None) -> str:
    from evsim.training.checkpoint import load_checkpoint
    from evsim.training.trainer import RunFiles

    if given:
        return given
    return json.loads(str(load_checkpoint(RunFiles(folder).checkpoint, keys=("data",))["data"]))["train"]["path"]


def run_row(folder: str, train_path: str | None) -> str:
    from evsim.model import load_model
    from evsim.training.data import load_dataset, split_by_speaker
    from evsim.training.trainer import saved_config, validation_by_speaker

    config = saved_config(folder)
    dataset = load_dataset(training_file(folder, train_path), dt_ms=config.dt_ms, pool=config.pool,
                           input_channels=config.input_channels)
    val = split_by_speaker(dataset, fraction=config.val_fraction, seed=config.seed).val
    table = validation_by_speaker(load_model(os.path.join(folder, "model.npz")), dataset, val)
    n = sum(v["n"] for v in table.values())
    overall = sum(v["accuracy"] * v["n"] for v in table.values()) / n
    cells = ", ".join(f"{s}: {100 * v['accuracy']:.1f}" for s, v in table.items())
    return f"| {os.path.basename(os.path.normpath(folder))} | {100 * overall:.1f} % | {cells} |"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (evsim train --out)")
    parser.add_argument("--train", default=None, help="the training file (default: the one the checkpoint records)")
    args = parser.parse_args(argv)
    print("| run | validation | per speaker, worst first (accuracy %) |\n|---|---|---|")
    for folder in args.runs:
        try:
            print(run_row(folder, args.train))
        except (OSError, ValueError, KeyError, EvsimError) as exc:
            print(f"Error: {folder}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
