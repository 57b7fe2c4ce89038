"""`evsim batch`: classify the samples of many spike files in parallel, as JSON lines."""

from __future__ import annotations

import contextlib
import json
import sys
import time

import click

from evsim.names import ENGINES
from evsim.precision import CLI_DEFAULT_PRECISION, CLI_PRECISIONS, resolve_precision

from .common import model_path

PARALLEL_OPTIONS = [
    click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True,
                 help="Tasks at once: worker processes (joblib; --jobs 1 runs in this process), or the "
                      "workers of --scheduler local."),
    click.option("--threads", type=click.IntRange(1), default=None,
                 help="numba threads per task. Default: cores // jobs (1 on a tcp:// cluster)."),
    click.option("--scheduler", metavar="local|tcp://HOST:PORT", default=None,
                 help="Run on Dask: 'local' starts a LocalCluster of --jobs workers here; an address "
                      "uses a running cluster whose workers see the same paths."),
]


def parallel_options(fn):
    for option in reversed(PARALLEL_OPTIONS):
        fn = option(fn)
    return fn


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--model", "model_file", metavar="PATH", default=None,
              help="Model file (.npz) or a built-in model name (default, sparse).")
@click.option("--engine", type=click.Choice(ENGINES), default="event", show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True)
@click.option("--chunk-size", type=click.IntRange(1), default=256, show_default=True,
              help="Samples per task (consecutive samples of one file).")
@click.option("--precision", type=click.Choice(CLI_PRECISIONS), default=CLI_DEFAULT_PRECISION, show_default=True,
              help="Arithmetic of both engines' states and sums, as in evsim run.")
@parallel_options
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the JSON lines to this file (it appears complete or not at all) instead of stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No summary line on stderr.")
def batch(inputs, model_file, engine, batch_size, chunk_size, precision, jobs, threads, scheduler, output, quiet):
    """Classify every sample of INPUT files (or of the .h5 files in INPUT directories).

    \b
    Prints one JSON line per sample, in file and sample order:
        {"file": ..., "index": 0, "prediction": 3, "class": ..., "score": ..., "scores": [...], "label": 3}
    and a summary on stderr (samples, accuracy where files have labels, samples/s).
    \b
        evsim batch data/ --model model.npz --jobs 2 > predictions.jsonl
        evsim batch a.h5 b.h5 --scheduler tcp://head:8786 -o predictions.jsonl
    """
    import os

    from evsim.batch import classify_many, input_files, plan_chunks
    from evsim.model import load_model
    from evsim.parallel import Executor

    model_file = os.path.abspath(model_path(model_file))
    model = load_model(model_file)
    precision = resolve_precision(precision, model)
    files = input_files(inputs)
    chunks, n_total = plan_chunks(model, model_file, files, chunk_size=chunk_size, engine=engine,
                                  batch_size=batch_size, precision=precision)
    t0 = time.perf_counter()
    n = n_labelled = n_correct = 0
    with _sink(output) as out, Executor(jobs=jobs, scheduler=scheduler, threads=threads) as ex:
        t_start = time.perf_counter()
        for record in classify_many(model, model_file, chunks, ex):
            out.write(json.dumps(record) + "\n")
            n += 1
            if record["label"] is not None:
                n_labelled += 1
                n_correct += record["prediction"] == record["label"]
        seconds = time.perf_counter() - t_start
    if not quiet:
        acc = f", accuracy {100 * n_correct / n_labelled:.2f} % ({n_correct}/{n_labelled})" if n_labelled else ""
        click.echo(f"{n} samples from {len(files)} file(s){acc}; {seconds:.1f} s, {n / max(seconds, 1e-9):.1f} samples/s "
                   f"({ex.describe()}; start-up {t_start - t0:.1f} s)", err=True)


@contextlib.contextmanager
def _sink(output):
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    from evsim._io import atomic_write

    with atomic_write(output, "w") as fh:
        yield fh
