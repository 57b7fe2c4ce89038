"""`evsim train`: train a network and export its model file."""

from __future__ import annotations

import os
import sys

import click

from evsim.names import DATASETS

from .common import dumps, percent, training_files


class _TrainReporter:
    """Progress for `evsim train`: a bar per epoch (loss, accuracy, sigma, spikes per step)
    on a terminal, and one line per epoch always."""

    def __init__(self, quiet: bool, every_seconds: float = 30.0):
        self.quiet = quiet
        self.bar = None
        self.n = self.loss = self.correct = 0
        self.every = every_seconds       # progress lines when stderr is not a terminal
        self.last_line = 0.0
        self.batches = self.n_batches = 0

    def start(self, info):
        from evsim.training import _kernels

        from .common import note_compilation

        note_compilation(_kernels, "the training")  # after the checks: a refused run prints only its error
        if not self.quiet:
            click.echo(f"train {info['train']} / validation {info['val']} / test {info['test']} samples, "
                       f"{info['n_steps']} steps each, {info['params']} parameters, "
                       f"{info['steps_per_epoch']} batches per epoch", err=True)

    def epoch_start(self, epoch, epochs, n_batches, sigma):
        import time

        self.n = self.loss = self.correct = 0
        self.epochs = epochs
        self.epoch = epoch + 1
        self.batches, self.n_batches = 0, n_batches
        self.epoch_t0 = self.last_line = time.time()
        if not self.quiet and sys.stderr.isatty():
            self.bar = click.progressbar(length=n_batches, label=f"epoch {epoch + 1}/{epochs}", file=sys.stderr,
                                         item_show_func=lambda s: s)
            self.bar.__enter__()

    def batch(self, stats):
        self.n += stats["batch"]
        self.loss += stats["loss"] * stats["batch"]
        self.correct += stats["correct"]
        self.batches += 1
        if self.bar is None and not self.quiet:
            import time

            now = time.time()
            if now - self.last_line >= self.every:
                self.last_line = now
                click.echo(f"epoch {self.epoch}/{self.epochs}: batch {self.batches}/{self.n_batches}, loss "
                           f"{self.loss / self.n:.3f}, train {100 * self.correct / self.n:.1f} %, "
                           f"{now - self.epoch_t0:.0f} s", err=True)
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
                       f"validation {percent(r['val_accuracy'])}, sigma {r['sigma']:.3f}, {r['seconds']:.0f} s", err=True)

    def message(self, text):
        click.echo(text, err=True)


@click.command()
@click.argument("dataset", type=click.Choice(DATASETS), required=False)
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True, envvar="EVSIM_DATA",
              help="Directory holding the data: the official files of DATASET (see `evsim data download`), and where "
                   "--train/--test names are looked up when they are not found as given. Default: $EVSIM_DATA, else ./data.")
@click.option("--train", "train_file", type=click.Path(dir_okay=False), help="Training file (SHD layout), instead of DATASET.")
@click.option("--test", "test_file", type=click.Path(dir_okay=False), help="Test file (SHD layout), with --train.")
@click.option("--preset", default=None, help="Recipe: default (crsnn trained longer with voice transforms, label smoothing and weight "
                                              "averaging; the built-in default model's recipe), crsnn (the CRSNN paper's recipe: conv recurrence with delays), delrec (dense "
                                              "recurrence with delays), adlif (crsnn with adaptive LIF cells; learns, but more slowly than crsnn: "
                                              "19 % against 43 % test accuracy after 3 short epochs on the digits), tiny "
                                              "(2 x 64, 3 epochs: a quick trial) or csgru (two CS-GRU layers of 8 channels x 140 "
                                              "positions, delays in the second) or csgru-lif (a LIF input layer 140 -> 140 then "
                                              "the csgru layers; any neuron-cell layers go into a CS-GRU stack with "
                                              "--set network.cells.0.hidden=[140] and the like, see the README).")
@click.option("--limit", type=click.IntRange(1), help="Train on N training samples drawn at random (and test on N test "
                                                     "samples): a quick trial. Shorthand for --set limit=N.")
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
def train(dataset, data_dir, train_file, test_file, preset, limit, config_file, overrides, epochs, batch_size, lr, seed,
          no_delay_learning, init_from, out_dir, resume, max_minutes, as_json, quiet):
    """Train a delay-learning spiking network and export model.npz.

    \b
    Official data:   evsim train shd --data-dir DIR
    Any SHD-layout:  evsim train --train digits_train.h5 --test digits_test.h5
    """
    from evsim.training.presets import make_config, parse_overrides
    from evsim.training.trainer import saved_config
    from evsim.training.trainer import train as run_training

    train_file, test_file, valid_file = training_files(dataset, data_dir, train_file, test_file)
    sets = parse_overrides(list(overrides))
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("seed", seed), ("limit", limit)):
        if value is not None:
            sets[key] = value
    if no_delay_learning:
        sets["learn_delays"] = False
    if init_from:
        sets["init_from"] = os.path.abspath(init_from)
    explicit = bool(sets or config_file or preset)
    # --resume alone continues with the run's own settings; given settings must match them
    config = saved_config(out_dir) if resume and not explicit else make_config(preset or "default", config_file, sets)
    result = run_training(config, train_file, test_file, out_dir, valid_path=valid_file, resume=resume,
                          max_minutes=max_minutes, reporter=_TrainReporter(quiet))
    if as_json:
        click.echo(dumps(result))
    else:
        click.echo(f"test accuracy {100 * result['test_accuracy']:.2f} % (validation {percent(result['validation_accuracy'])}, "
                   f"epoch {result['best_epoch']}), {result['train_seconds'] / 60:.1f} min; model: {result['model']}")
        by_speaker = result.get("validation_by_speaker")
        if by_speaker:
            click.echo("validation by speaker, worst first: " + ", ".join(
                f"{s} {100 * v['accuracy']:.1f} % ({v['n']})" for s, v in by_speaker.items()))
