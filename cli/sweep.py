"""`evsim sweep`: many training runs (settings x seeds) in parallel, then a summary table."""

from __future__ import annotations

import os

import click

from evsim.errors import EvsimError
from evsim.names import DATASETS, TRAINING_PRESETS

from .batch import parallel_options
from .common import dumps, percent, training_files


@click.command()
@click.argument("dataset", type=click.Choice(DATASETS), required=False)
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True, envvar="EVSIM_DATA",
              help="Directory holding the data: the official files of DATASET, and where --train/--test names are "
                   "looked up when they are not found as given. Default: $EVSIM_DATA, else ./data.")
@click.option("--train", "train_file", type=click.Path(dir_okay=False), help="Training file (SHD layout), instead of DATASET.")
@click.option("--test", "test_file", type=click.Path(dir_okay=False), help="Test file (SHD layout), with --train.")
@click.option("--file", "sweep_file", type=click.Path(dir_okay=False),
              help="TOML or JSON sweep file: preset, config, seeds, base, grid, runs (see the README).")
@click.option("--preset", default=None, help=f"Recipe of every run: {', '.join(TRAINING_PRESETS)} (default: default; see evsim train --help).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="JSON or TOML settings file for every run.")
@click.option("--set", "axes", multiple=True, metavar="KEY=V1,V2,...",
              help="A setting; several comma-separated values make it an axis of the grid, e.g. "
                   "--set lr=1e-3,2e-3 --set network.hidden=[64,64],[128,128]. Repeatable.")
@click.option("--seeds", default=None, help="Seeds of every setting: 0-4, 0,3,7 or 5. Default: 0 (or the sweep file's).")
@click.option("--folds", type=int, default=None,
              help="Speaker folds: run every setting and seed K times, run i validating on fold i of the training "
                   "file's speakers (--set val_folds=K val_fold=i), so that together they hold every speaker out "
                   "once; the summary pools them. Default: none (or the sweep file's).")
@click.option("--epochs", type=click.IntRange(1), help="Shorthand for --set epochs=N.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Sweep directory: one run directory per setting and seed, summary.json, summary.csv.")
@click.option("--resume", is_flag=True, help="Continue the sweep in --out: skip finished runs, resume interrupted ones.")
@click.option("--summary-only", is_flag=True, help="Print the summary of the sweep in --out without running anything.")
@parallel_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No line per finished run.")
def sweep(dataset, data_dir, train_file, test_file, sweep_file, preset, config_file, axes, seeds, folds, epochs, out_dir,
          resume, summary_only, jobs, threads, scheduler, as_json, quiet):
    """Train every setting x seed, in parallel, and summarise (mean +- std per setting).

    \b
    Three seeds of the default recipe, two jobs at once:
        evsim sweep --train digits_train.h5 --test digits_test.h5 --seeds 0-2 --jobs 2 --out sweeps/seeds
    A grid, on a Dask cluster:
        evsim sweep shd --data-dir data --set lr=1e-3,2e-3 --seeds 0-4 --scheduler tcp://head:8786 --out sweeps/lr
    Continue after an interruption:   evsim sweep --resume --out sweeps/lr
    """
    from evsim.parallel import Executor
    from evsim.training.sweep import prepare_sweep, run_jobs, summary_text

    given = any((dataset, train_file, test_file, sweep_file, preset, config_file, axes, seeds, epochs)) or folds is not None
    spec = _spec(dataset, data_dir, train_file, test_file, sweep_file, preset, config_file, axes, seeds, folds, epochs) \
        if given or not (resume or summary_only) else None
    if summary_only:
        summary = _existing_summary(out_dir)
    else:
        def report(job, result, error, n, total):
            if quiet:
                return
            what = (f"test {100 * result['test_accuracy']:.2f} % (validation {percent(result['validation_accuracy'])}), "
                    f"{result['train_seconds'] / 60:.1f} min" if error is None else f"FAILED: {error}")
            fold = "" if job.fold is None else f" fold {job.fold}"
            click.echo(f"[{n}/{total}] {job.label} seed {job.seed}{fold}: {what}; {job.run_dir}", err=True)

        out_dir, runs = prepare_sweep(spec, out_dir, resume)   # everything checked before any worker starts
        with Executor(jobs=jobs, scheduler=scheduler, threads=threads) as ex:
            if not quiet:
                click.echo(f"sweep of {len(runs)} runs into {out_dir} on {ex.describe()}", err=True)
            summary = run_jobs(out_dir, runs, ex, on_result=report)
    click.echo(dumps(summary) if as_json else summary_text(summary))
    if summary["n_failed"]:
        raise EvsimError(f"{summary['n_failed']} of {summary['n_runs']} runs failed (listed above and in "
                         f"{os.path.join(out_dir, 'status.json')}); retry them with evsim sweep --resume --out {out_dir}")


def _spec(dataset, data_dir, train_file, test_file, sweep_file, preset, config_file, axes, seeds, folds, epochs):
    from evsim.training.sweep import SweepSpec, load_sweep_file, parse_axis, parse_seeds

    train_file, test_file, valid = training_files(dataset, data_dir, train_file, test_file)
    fields = load_sweep_file(sweep_file) if sweep_file else {}
    base, grid = dict(fields.get("base", {})), [list(a) for a in fields.get("grid", [])]
    for key, values in map(parse_axis, axes):
        grid = [a for a in grid if a[0] != key]
        if len(values) == 1:
            base[key] = values[0]
        else:
            base.pop(key, None)
            grid.append([key, values])
    if epochs is not None:
        base["epochs"] = epochs
    return SweepSpec(train=os.path.abspath(train_file), test=os.path.abspath(test_file),
                     valid=os.path.abspath(valid) if valid else None, preset=preset or fields.get("preset", "default"),
                     config=os.path.abspath(config_file) if config_file else fields.get("config"), base=base,
                     grid=grid, runs=fields.get("runs", [{}]),
                     seeds=parse_seeds(seeds) if seeds is not None else fields.get("seeds", [0]),
                     folds=folds if folds is not None else fields.get("folds", 0))


def _existing_summary(out_dir):
    from evsim.training.sweep import load_errors, prepare_sweep, summarize

    out_dir, runs = prepare_sweep(None, out_dir, resume=True)
    return summarize(runs, load_errors(out_dir))
