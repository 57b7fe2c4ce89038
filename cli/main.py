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

ENGINES = ("event", "dense")  # evsim.run.ENGINES, repeated so --help needs no numpy

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
    return os.path.join(os.path.dirname(os.path.abspath(__import__("evsim").__file__)), "_builtin", name)


#: Models shipped with the package, by the name `--model NAME` takes (a file of that name wins).
BUILTIN_MODELS = {"default": "default_model.npz", "sparse": "sparse_model.npz"}


def _model_path(given: str | None) -> str:
    if given in BUILTIN_MODELS and not os.path.exists(given):
        return _default_path(None, BUILTIN_MODELS[given], "model")
    return _default_path(given, BUILTIN_MODELS["default"], "model")


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
@click.option("--model", "model_path", metavar="PATH", default=None,
              help="Model file (.npz), or a built-in spoken-digit model: default (the most accurate; "
                   "used when --model is not given) or sparse (fine-tuned to fire less: faster on the event engine).")
@click.option("--input", "input_path", metavar="PATH", default=None,
              help="Spike file in the SHD HDF5 layout. Default: the built-in samples.")
@click.option("--sample", type=int, default=None, help="Classify only this sample (index).")
@click.option("--engine", type=click.Choice(ENGINES), default="event", show_default=True,
              help="event: Numba event-driven engine; dense: NumPy step-by-step reference.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--quiet", "-q", is_flag=True, help="Only the summary line (text output).")
def run(model_path, input_path, sample, engine, batch_size, as_json, quiet):
    """Classify the samples of a spike file and report the accuracy when it has labels."""
    from evsim.model import load_model
    from evsim.run import classify_file

    model_path = _model_path(model_path)
    input_path = _default_path(input_path, "samples.h5", "input")
    model = load_model(model_path)
    show_bar = not as_json and sample is None and sys.stderr.isatty()
    n_total = _count_samples(input_path, model) if show_bar else 0
    with click.progressbar(length=n_total, label="classifying", file=sys.stderr) if show_bar else _NoBar() as bar:
        result = classify_file(model, input_path, sample=sample, engine=engine, batch_size=batch_size,
                               progress=bar.update)
    names = model.class_names
    activity = _activity(model, result)
    if as_json:
        click.echo(_dumps({
            "model": model_path, "input": input_path, "engine": engine, **activity,
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
    if not result.samples:
        click.echo("0 samples")
    elif activity and not quiet:
        rates = ", ".join(f"{100 * r:.1f}" for r in activity["firing_rates"])
        click.echo(f"activity: {100 * activity['firing_rate']:.1f} % of hidden neurons fire per step (layers: {rates} %), "
                   f"{activity['synaptic_events_per_step']:.0f} synaptic events per step")
    if result.accuracy is not None:
        n_ok = sum(r.prediction == r.label for r in result.samples)
        click.echo(f"accuracy: {100 * result.accuracy:.2f} % ({n_ok}/{len(result.samples)})")


def _activity(model, result) -> dict:
    """Firing rates (spikes per neuron per simulated step, per hidden layer and overall) and
    synaptic events per step, from the event engine's counters ({} for the dense engine)."""
    import numpy as np

    stats = result.stats or {}
    steps = sum(r.n_steps for r in result.samples)
    if "spikes_per_layer" not in stats or not steps:
        return {}
    sizes = np.array([layer.n for layer in model.layers])
    spikes = np.asarray(stats["spikes_per_layer"], float)
    return {"firing_rates": (spikes / (sizes * steps)).tolist(), "firing_rate": float(spikes.sum() / (sizes.sum() * steps)),
            "synaptic_events_per_step": float(stats["synaptic_events"]) / steps}


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
@click.argument("model_path", metavar="MODEL", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def info(model_path, as_json):
    """Architecture, parameter counts and delay distribution of a model file (or of a
    built-in model: default, sparse)."""
    from evsim.info import describe, format_description
    from evsim.model import load_model

    model_path = _model_path(model_path)
    d = describe(load_model(model_path))
    click.echo(_dumps(d) if as_json else format_description(d, model_path))


class _TrainReporter:
    """Progress for `evsim train`: a bar per epoch (loss, accuracy, sigma, spikes per step)
    on a terminal, and one line per epoch always."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None
        self.n = self.loss = self.correct = 0

    def start(self, info):
        if not self.quiet:
            click.echo(f"train {info['train']} / validation {info['val']} / test {info['test']} samples, "
                       f"{info['n_steps']} steps each, {info['params']} parameters, "
                       f"{info['steps_per_epoch']} batches per epoch", err=True)

    def epoch_start(self, epoch, epochs, n_batches, sigma):
        self.n = self.loss = self.correct = 0
        self.epochs = epochs
        if not self.quiet and sys.stderr.isatty():
            self.bar = click.progressbar(length=n_batches, label=f"epoch {epoch + 1}/{epochs}", file=sys.stderr,
                                         item_show_func=lambda s: s)
            self.bar.__enter__()

    def batch(self, stats):
        self.n += stats["batch"]
        self.loss += stats["loss"] * stats["batch"]
        self.correct += stats["correct"]
        if self.bar is not None:
            rate = sum(stats["spike_rate"]) / len(stats["spike_rate"])
            self.bar.update(1, f"loss {self.loss / self.n:.3f} acc {100 * self.correct / self.n:.1f}% "
                               f"sigma {stats['sigma']:.2f} spikes/step {rate:.3f}")

    def epoch_end(self, r):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        if not self.quiet:
            click.echo(f"epoch {r['epoch']}/{self.epochs}: loss {r['train_loss']:.4f}, train {100 * r['train_accuracy']:.2f} %, "
                       f"validation {100 * r['val_accuracy']:.2f} %, sigma {r['sigma']:.3f}, {r['seconds']:.0f} s", err=True)

    def message(self, text):
        click.echo(text, err=True)


@evsim.command()
@click.argument("dataset", type=click.Choice(["shd", "ssc"]), required=False)
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Directory holding the official files of DATASET (see `evsim data download`).")
@click.option("--train", "train_file", type=click.Path(dir_okay=False), help="Training file (SHD layout), instead of DATASET.")
@click.option("--test", "test_file", type=click.Path(dir_okay=False), help="Test file (SHD layout), with --train.")
@click.option("--preset", default=None, help="Recipe: crsnn (conv recurrence with delays, the default) or delrec (dense recurrence with delays).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="JSON or TOML file of settings (overrides the preset).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Any setting, e.g. --set epochs=20 --set network.hidden=[128,128]. Repeatable; wins over --config.")
@click.option("--epochs", type=click.IntRange(1), help="Shorthand for --set epochs=N.")
@click.option("--batch-size", type=click.IntRange(1), help="Shorthand for --set batch_size=N.")
@click.option("--lr", type=float, help="Shorthand for --set lr=X.")
@click.option("--seed", type=click.IntRange(0), help="Shorthand for --set seed=N.")
@click.option("--no-delay-learning", is_flag=True, help="Ablation: keep the delays at their (rounded) initial values.")
@click.option("--init-from", type=click.Path(), metavar="RUN", help="Start from the best network of an earlier run (its --out directory or checkpoint.npz) instead of a random one, e.g. to fine-tune it sparser.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/latest", show_default=True, help="Output directory (model.npz, checkpoint.npz, log.jsonl, result.json).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--max-minutes", type=float, help="Stop after the first epoch that ends past this many minutes.")
@click.option("--json", "as_json", is_flag=True, help="Print the final result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def train(dataset, data_dir, train_file, test_file, preset, config_file, overrides, epochs, batch_size, lr, seed,
          no_delay_learning, init_from, out_dir, resume, max_minutes, as_json, quiet):
    """Train a delay-learning spiking network and export model.npz.

    \b
    Official data:   evsim train shd --data-dir DIR
    Any SHD-layout:  evsim train --train digits_train.h5 --test digits_test.h5
    """
    from training.presets import make_config, parse_overrides
    from training.trainer import saved_config
    from training.trainer import train as run_training

    valid_file = None
    if dataset and (train_file or test_file):
        raise EvsimError("give either DATASET (shd or ssc) or --train/--test, not both")
    if dataset:
        from evsim.datasets import check_dir

        paths = check_dir(dataset, data_dir)
        train_file, test_file, valid_file = paths["train"], paths["test"], paths.get("valid")
    elif not (train_file and test_file):
        raise EvsimError("nothing to train on: give DATASET (shd or ssc) with --data-dir, or both --train FILE and --test FILE")
    sets = parse_overrides(list(overrides))
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("seed", seed)):
        if value is not None:
            sets[key] = value
    if no_delay_learning:
        sets["learn_delays"] = False
    if init_from:
        sets["init_from"] = os.path.abspath(init_from)
    explicit = bool(sets or config_file or preset)
    # --resume alone continues with the run's own settings; given settings must match them
    config = saved_config(out_dir) if resume and not explicit else make_config(preset or "crsnn", config_file, sets)
    result = run_training(config, train_file, test_file, out_dir, valid_path=valid_file, resume=resume,
                          max_minutes=max_minutes, reporter=_TrainReporter(quiet))
    if as_json:
        click.echo(_dumps(result))
    else:
        click.echo(f"test accuracy {100 * result['test_accuracy']:.2f} % (validation {100 * result['validation_accuracy']:.2f} %, "
                   f"epoch {result['best_epoch']}), {result['train_seconds'] / 60:.1f} min; model: {result['model']}")


@evsim.group()
def data():
    """Fetch and check the official SHD and SSC files."""


@data.command("download")
@click.argument("name", type=click.Choice(["shd", "ssc"]))
@click.option("--dir", "dest_dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Directory to put the .h5 files in.")
@click.option("--timeout", type=float, default=15.0, show_default=True, help="Seconds to wait for the server.")
def data_download(name, dest_dir, timeout):
    """Download the official NAME files, verify their checksums and unpack them.

    Offline, fails at once and says which files to put in --dir by hand.
    """
    import warnings

    from evsim.datasets import UnverifiedDownloadWarning, download

    bars: dict = {}

    def progress(file_name, done, total):
        if not sys.stderr.isatty():
            return
        bar = bars.get(file_name)
        if bar is None:
            bar = bars[file_name] = click.progressbar(length=total or 0, label=file_name, file=sys.stderr)
            bar.__enter__()
            bar.last = 0
        bar.update(done - bar.last)
        bar.last = done

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnverifiedDownloadWarning)
        try:
            paths = download(name, dest_dir, progress=progress, timeout=timeout)
        finally:
            for bar in bars.values():
                bar.__exit__(None, None, None)
    for w in caught:
        click.echo(f"Warning: {w.message}", err=True)
    for p in paths:
        click.echo(p)


@data.command("check")
@click.argument("name", type=click.Choice(["shd", "ssc"]))
@click.option("--dir", "data_dir", type=click.Path(file_okay=False), default="data", show_default=True)
def data_check(name, data_dir):
    """Check that --dir holds the NAME files that `evsim train NAME` expects."""
    from evsim.datasets import check_dir

    for split, path in check_dir(name, data_dir).items():
        click.echo(f"{split}: {path}")


def main():
    # numba's prange threads do evsim's parallel work; BLAS threads on top of them wait on
    # each other (a training step measured 3x slower with 2 OpenBLAS threads on 2 cores).
    # Set before numpy is first imported; an explicit setting by the user wins.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    evsim(prog_name="evsim")


if __name__ == "__main__":
    main()
