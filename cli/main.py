"""The ``evsim`` command line: one click group, thin commands.

Each command parses its options, calls one library function and formats the answer.
Library errors (:class:`evsim.errors.EvsimError`) become a one-line ``Error: ...`` and
exit status 1 in one place, :class:`EvsimGroup`; heavy modules (numba, h5py) are imported
inside commands so ``evsim --help`` answers at once.
"""

from __future__ import annotations

import json
import os
import sys

import click

from evsim.errors import EvsimError


class EvsimGroup(click.Group):
    """Turns library errors into click errors: no tracebacks for bad input."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EvsimError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:  # disk full, permissions, ... while writing output
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from exc


def _builtin(name: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__import__("evsim").__file__)), "data", name)


def _default_path(given: str | None, name: str, what: str) -> str:
    if given:
        return given
    path = _builtin(name)
    if not os.path.exists(path):
        raise EvsimError(f"no {what} given and this installation ships no built-in default ({name}); pass --{what}")
    return path


def _dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)


@click.group(cls=EvsimGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="evsim", prog_name="evsim")
def evsim():
    """evsim: spiking networks with learnable axonal delays and convolutional
    recurrences, trained with hand-written BPTT and run by a sparse event-driven engine.

    \b
    Classify the built-in spoken-digit samples with the built-in model:
        evsim run
    Your own files (SHD HDF5 layout):
        evsim run --model model.npz --input shd_test.h5
    """


@evsim.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Model file (.npz). Default: the built-in spoken-digit model.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False), default=None,
              help="Spike file in the SHD HDF5 layout. Default: the built-in samples.")
@click.option("--sample", type=int, default=None, help="Classify only this sample (index).")
@click.option("--engine", type=click.Choice(["event", "dense"]), default="event", show_default=True,
              help="event: Numba event-driven engine; dense: NumPy step-by-step reference.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--quiet", "-q", is_flag=True, help="Only the summary line (text output).")
def run(model_path, input_path, sample, engine, batch_size, as_json, quiet):
    """Classify the samples of a spike file and report the accuracy when it has labels."""
    from evsim.model import load_model
    from evsim.run import classify_file

    model_path = _default_path(model_path, "default_model.npz", "model")
    input_path = _default_path(input_path, "samples.h5", "input")
    model = load_model(model_path)
    n_total = _count_samples(input_path, model) if sample is None else 1
    show_bar = not as_json and n_total > 1 and sys.stderr.isatty()
    with click.progressbar(length=n_total, label="classifying", file=sys.stderr) if show_bar else _NoBar() as bar:
        result = classify_file(model, input_path, sample=sample, engine=engine, batch_size=batch_size,
                               progress=bar.update)
    names = model.class_names
    if as_json:
        click.echo(_dumps({
            "model": model_path, "input": input_path, "engine": engine,
            "n_samples": len(result.samples), "accuracy": result.accuracy,
            "samples": [{"index": r.index, "prediction": r.prediction, "class": r.class_name,
                         "score": r.score, "label": r.label if r.label >= 0 else None,
                         "correct": (r.prediction == r.label) if r.label >= 0 else None,
                         "steps": r.n_steps} for r in result.samples],
            "stats": result.stats,
        }))
        return
    if not quiet:
        for r in result.samples:
            line = f"sample {r.index}: {r.class_name} (score {r.score:.3f})"
            if r.label >= 0:
                truth = names[r.label] if r.label < len(names) else str(r.label)
                line += f"  label {truth} {'ok' if r.prediction == r.label else 'WRONG'}"
            click.echo(line)
    if result.accuracy is not None:
        n_ok = sum(r.prediction == r.label for r in result.samples)
        click.echo(f"accuracy: {100 * result.accuracy:.2f} % ({n_ok}/{len(result.samples)})")


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


def _count_samples(path, model) -> int:
    from evsim.data import SpikeFile

    with SpikeFile(path, n_channels=model.metadata.input_channels) as f:
        return len(f)


@evsim.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def info(model_path, as_json):
    """Architecture, parameter counts and delay distribution of a model file."""
    from evsim.info import describe, format_description
    from evsim.model import load_model

    model_path = _default_path(model_path, "default_model.npz", "model")
    d = describe(load_model(model_path))
    click.echo(_dumps(d) if as_json else format_description(d, model_path))


def main():
    evsim(prog_name="evsim")


if __name__ == "__main__":
    main()
