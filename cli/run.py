"""`evsim run`: classify the samples of a spike file."""

from __future__ import annotations

import sys

import click

from evsim.names import BUILTIN_MODELS, BUILTIN_SAMPLES, ENGINES, RUN_ENGINES  # noqa: F401 (ENGINES: tests)
from evsim.precision import CLI_DEFAULT_PRECISION, CLI_PRECISIONS, resolve_precision

from .common import NoBar, default_path, display_name, dumps, model_path, note_compilation


@click.command()
@click.option("--model", "model_file", metavar="PATH", default=None,
              help="Model file (.npz), or a built-in spoken-digit model: default (the most accurate; "
                   "used when --model is not given) or sparse (fine-tuned to fire less: faster on the event engine).")
@click.option("--input", "input_path", metavar="PATH", default=None,
              help="Spike file in the SHD HDF5 layout, or recordings: a WAV file, a folder of them or a "
                   "labels.csv (encoded by the cochlea in memory). Default: the built-in samples.")
@click.option("--sample", type=click.IntRange(0), default=None, help="Classify only this sample (index from 0).")
@click.option("--engine", type=click.Choice(RUN_ENGINES), default="auto", show_default=True,
              help="auto: dense for a few samples (it starts faster), else event; event: Numba event-driven "
                   "engine (fastest per sample, ~0.6 s to start); dense: NumPy step-by-step reference. "
                   "Same results; the output says which ran.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Samples simulated together (in parallel over cores on the event engine); results do not depend on it.")
@click.option("--precision", type=click.Choice(CLI_PRECISIONS), default=CLI_DEFAULT_PRECISION, show_default=True,
              help="Arithmetic of both engines' states and sums: auto is float32 (faster on the event engine; the "
                   "same predictions as float64 for the built-in models) unless the model has CS-GRU layers "
                   "(float64 only); float64 gives the reference outputs bit for bit.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--quiet", "-q", is_flag=True, help="Only the summary line (text output).")
def run(model_file, input_path, sample, engine, batch_size, precision, as_json, quiet):
    """Classify the samples of a spike file and report the accuracy when it has labels.

    \b
    Each sample's line gives the predicted class and its score: with the built-in models
    (decision sum_softmax) the sum over the sample's steps of that class's softmax
    probability, so at most the number of steps; the prediction is the class with the
    highest score.  The firing rate is spikes / (hidden neurons x steps run).
    """
    from evsim.model import load_model
    from evsim.run import classify_input

    model_file = model_path(model_file)
    input_path = default_path(input_path, BUILTIN_SAMPLES, "input")
    model = load_model(model_file)
    precision_option, precision = precision, resolve_precision(precision, model)
    show_bar = not as_json and sample is None and sys.stderr.isatty()
    n_total = 0
    if show_bar or engine == "auto":
        n_total = 1 if sample is not None else _count_samples(input_path, model)
    chosen = _resolve_engine(engine, model, n_total, batch_size, input_path)
    if chosen == "event":
        from evsim.kernels import event as kernels

        note_compilation(kernels, "the event engine's")
    with click.progressbar(length=n_total, label="classifying", file=sys.stderr) if show_bar else NoBar() as bar:
        result = classify_input(model, input_path, sample=sample, engine=chosen, batch_size=batch_size,
                                progress=bar.update, precision=precision)
    activity = _activity(model, result)
    if as_json:
        click.echo(dumps({
            "model": model_file, "input": input_path, "engine": result.engine, "engine_option": engine,
            "precision": precision, "precision_option": precision_option, **activity,
            "n_samples": len(result.samples), "accuracy": result.accuracy,
            "samples": [{"index": r.index, "prediction": r.prediction, "class": r.class_name,
                         "score": r.score, "label": r.label if r.label >= 0 else None,
                         "correct": (r.prediction == r.label) if r.label >= 0 else None,
                         "steps": r.n_steps} for r in result.samples],
            "stats": result.stats,
        }))
        return
    if not quiet:
        notes = [f"auto, for {n_total} sample{'s' * (n_total != 1)}"] if engine == "auto" else []
        notes += [precision] if precision != "float64" else []
        shown = result.engine + (f" ({', '.join(notes)})" if notes else "")
        _echo_details(model, model_file, input_path, shown, result, activity)
    _echo_summary(result)


def _resolve_engine(engine, model, n_samples, batch_size, input_path) -> str:
    """The engine that will run (``auto`` resolved: :mod:`evsim.engine_choice`)."""
    from evsim.engine_choice import resolve_engine
    from evsim.inputs import is_recordings

    return resolve_engine(engine, model, n_samples, batch_size, numba_loaded=is_recordings(input_path) or None)


_SCORE_MEANING = {
    "sum_softmax": "score = sum over the sample's steps of the class's softmax probability (at most its steps)",
    "sum_membrane": "score = sum over the sample's steps of the class's readout membrane",
}


def _echo_details(model, model_file, input_path, engine, result, activity) -> None:
    where = display_name(input_path, {"samples": BUILTIN_SAMPLES})
    click.echo(f"model: {display_name(model_file, BUILTIN_MODELS)}; input: {where}; engine: {engine}")
    click.echo(_SCORE_MEANING[model.readout.decision] + "; prediction = the highest score")
    names = model.class_names
    for r in result.samples:
        line = f"sample {r.index}: {r.class_name} (score {r.score:.3f} of {r.n_steps} steps)"
        if r.label >= 0:
            truth = names[r.label] if r.label < len(names) else str(r.label)
            line += f"  label {truth} {'ok' if r.prediction == r.label else 'WRONG'}"
        click.echo(line)
    if activity:
        rates = ", ".join(f"{100 * r:.1f}" for r in activity["firing_rates"])
        events = activity["synaptic_events_per_step"]
        events = (f"{events:.0f} synaptic events per step" if events is not None
                  else "synaptic events not counted by the dense engine")
        click.echo(f"activity: firing rate {100 * activity['firing_rate']:.1f} % (spikes / (hidden neurons x steps run); "
                   f"layers: {rates} %), {events}")


def _echo_summary(result) -> None:
    n = len(result.samples)
    if result.accuracy is not None:
        n_ok = sum(r.prediction == r.label for r in result.samples)
        click.echo(f"accuracy: {100 * result.accuracy:.2f} % ({n_ok}/{n})")
    else:
        click.echo(f"{n} sample{'s' if n != 1 else ''} classified (the input has no labels, so no accuracy)")


def _activity(model, result) -> dict:
    """Firing rates (spikes per neuron per simulated step, per hidden layer and overall) and
    synaptic events per step (None when the engine did not count them: the dense one), from
    the engine's counters ({} when there are none)."""
    import numpy as np

    stats = result.stats or {}
    steps = sum(r.n_steps for r in result.samples)
    if "spikes_per_layer" not in stats or not steps:
        return {}
    sizes = np.array([layer.n for layer in model.layers])
    spikes = np.asarray(stats["spikes_per_layer"], float)
    return {"firing_rates": (spikes / (sizes * steps)).tolist(), "firing_rate": float(spikes.sum() / (sizes.sum() * steps)),
            "synaptic_events_per_step": float(stats["synaptic_events"]) / steps if "synaptic_events" in stats else None}


def _count_samples(path, model) -> int:
    from evsim.inputs import count_samples

    return count_samples(path, model.metadata.input_channels)
