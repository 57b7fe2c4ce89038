"""`evsim plot`: pictures of a model and its runs (optional extra evsim[plot])."""

from __future__ import annotations

import os

import click

from evsim.names import BUILTIN_SAMPLES

from .common import default_path, model_path

_OUT = dict(type=click.Path(dir_okay=False), help="Picture file: .png or .svg.")


@click.group()
def plot():
    """Pictures (PNG or SVG): spike rasters, delays, training curves, confusion matrices."""


@plot.command("raster")
@click.argument("model_file", metavar="MODEL")
@click.option("--input", "input_path", metavar="PATH", default=None, help="Spike file (SHD layout). Default: the built-in samples.")
@click.option("--sample", type=int, default=0, show_default=True, help="Index of the sample to show.")
@click.option("-o", "--output", default="raster.png", show_default=True, **_OUT)
def raster(model_file, input_path, sample, output):
    """Input spikes, every hidden layer's spikes and the running class scores of one sample."""
    from evsim.inputs import open_input
    from evsim.model import load_model
    from evsim.plot import raster_figure, save_figure

    model = load_model(model_path(model_file))
    input_path = default_path(input_path, BUILTIN_SAMPLES, "input")
    meta = model.metadata
    with open_input(input_path, n_channels=meta.input_channels, class_names=model.class_names) as f:
        counts = f.binned(sample, dt_ms=meta.dt_ms, pool=meta.pool, n_steps=meta.n_steps, dtype=float)
        label = int(f.labels[f.index(sample)]) if f.labels is not None else None
    if label is not None and label >= model.n_classes:
        label = None
    title = f"{os.path.basename(model_path(model_file))} on {os.path.basename(input_path)}, sample {sample}"
    save_figure(raster_figure(model, counts, title=title, label=label), output)
    click.echo(output)


@plot.command("delays")
@click.argument("model_file", metavar="MODEL")
@click.option("-o", "--output", default="delays.png", show_default=True, **_OUT)
def delays(model_file, output):
    """Histogram of the learned delays of each recurrent layer (with the initial range when the model records it)."""
    from evsim.model import load_model
    from evsim.plot import delays_figure, save_figure

    path = model_path(model_file)
    save_figure(delays_figure(load_model(path), title=f"delays of {os.path.basename(path)}"), output)
    click.echo(output)


@plot.command("training")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=False))
@click.option("-o", "--output", default="training.png", show_default=True, **_OUT)
def training(run_dir, output):
    """Loss, accuracy (train / validation), sigma and firing rate per epoch of a training run (its log.jsonl)."""
    from evsim.plot import read_log, save_figure, training_figure

    name = os.path.basename(os.path.normpath(run_dir))
    save_figure(training_figure(read_log(run_dir), title=f"training run {name}"), output)
    click.echo(output)


@plot.command("confusion")
@click.argument("model_file", metavar="MODEL")
@click.option("--input", "input_path", metavar="PATH", required=True, help="Labelled spike file (SHD layout).")
@click.option("-o", "--output", default="confusion.png", show_default=True, **_OUT)
def confusion(model_file, input_path, output):
    """Confusion matrix of MODEL on a labelled file (event engine)."""
    import numpy as np

    from evsim.errors import EvsimError
    from evsim.model import load_model
    from evsim.plot import confusion_figure, confusion_matrix, save_figure
    from evsim.run import classify_file

    model = load_model(model_path(model_file))
    result = classify_file(model, input_path)
    if result.accuracy is None:
        raise EvsimError(f"{input_path} has no labels; a confusion matrix needs them")
    labels = np.array([r.label for r in result.samples])
    preds = np.array([r.prediction for r in result.samples])
    matrix = confusion_matrix(labels, preds, model.n_classes)
    save_figure(confusion_figure(matrix, model.class_names, title=os.path.basename(input_path)), output)
    click.echo(output)
