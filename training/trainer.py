"""The training run behind ``evsim train``: data, epochs, model selection, checkpoints, export.

One run writes into its output directory::

    config.json       the TrainConfig of the run
    checkpoint.npz    after every epoch, atomically: network, optimiser, random state,
                      the best network so far and the history (see training.checkpoint)
    log.jsonl         one JSON object per epoch (loss, accuracies, sigma, spike rates, time)
    model.npz         the exported model of the epoch with the best validation accuracy
    result.json       final figures: validation and test accuracy, times, parameter counts
    train.lock        held (flock) while a run writes here: a second run is refused at once,
                      naming the holder (see training.runlock)

The checkpoint also records the data files the run started on (path, size, SHA-256);
``--resume`` with different data is refused.  A failed write (disk full, permissions)
stops the run with a message naming the file and saying that the last checkpoint is intact.

Model selection and the test set: after every epoch the network is evaluated on the
validation split (speakers held out of the training file, or the official validation
file for SSC) with delays rounded, as the exported model runs.  The test file is
evaluated once, at the end, on the best epoch's exported ``model.npz``, with the evsim
event engine: the accuracy reported is exactly what ``evsim run`` gives on that file.
With ``ema > 0`` the network validated, kept and exported is the running average of the
weights (:mod:`evsim.training.average`), not the last ones; training continues from the
last ones, and the checkpoint holds both.

Resuming (``resume=True``) restores everything the next epoch depends on (parameters,
BatchNorm statistics, optimiser moments and step, the random generator, the best model
and the history), so an interrupted and resumed run ends with the same result as an
uninterrupted one with the same seed.  Ctrl-C stops at once; the checkpoint of the last
finished epoch stays valid and the best model so far is exported.  A NaN or infinite loss
stops the run with an error and leaves the last good checkpoint untouched.

``learn_delays=False`` (``--no-delay-learning``, the ablation) keeps every delay at its
random initial value, rounded to whole steps, and trains with sigma = 0 throughout.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, replace

import numpy as np

from evsim.errors import EvsimError

from .checkpoint import CheckpointError, load_checkpoint, rng_from_state, rng_state, save_checkpoint
from .presets import TrainConfig, rate_scale_at, sigma_at

__all__ = ["TrainingError", "Reporter", "RunFiles", "train"]


class TrainingError(EvsimError):
    """Training stopped: a diverging loss or an unusable checkpoint."""


class Reporter:
    """Callbacks for progress; the CLI draws bars, tests use the silent default."""

    def start(self, info: dict) -> None: ...
    def epoch_start(self, epoch: int, epochs: int, n_batches: int, sigma: float) -> None: ...
    def batch(self, stats: dict) -> None: ...
    def epoch_end(self, record: dict) -> None: ...
    def message(self, text: str) -> None: ...


@dataclass(frozen=True)
class RunFiles:
    out_dir: str

    def path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    @property
    def checkpoint(self) -> str:
        return self.path("checkpoint.npz")

    @property
    def model(self) -> str:
        return self.path("model.npz")

    @property
    def log(self) -> str:
        return self.path("log.jsonl")


def _prefixed(prefix: str, d: dict) -> dict:
    return {prefix + k: v for k, v in d.items()}


def _init_state(source: str) -> dict:
    """The network state that ``init_from`` names: the best network of the run in the
    directory (or checkpoint file) ``source``, else its last one."""
    path = os.path.join(source, "checkpoint.npz") if os.path.isdir(source) else source
    if not os.path.isfile(path):
        raise TrainingError(f"init_from: no checkpoint at {path}; give an earlier run's directory or its checkpoint.npz")
    ck = load_checkpoint(path)
    state = _unprefixed("best/", ck) or _unprefixed("net/", ck)
    if not state:
        raise TrainingError(f"init_from: {path} holds no network state")
    state.pop("config", None)
    return state


def _unprefixed(prefix: str, d: dict) -> dict:
    return {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}


def _evaluate(net, dataset, indices, batch_size: int = 256) -> dict:
    correct, loss_sum, n = 0, 0.0, 0
    for start in range(0, len(indices), batch_size):
        idx = indices[start:start + batch_size]
        res = net.evaluate(dataset.dense(idx), dataset.labels[idx])
        correct += res.stats["correct"]
        loss_sum += res.stats["loss"] * len(idx)
        n += len(idx)
    return {"accuracy": correct / max(n, 1), "loss": loss_sum / max(n, 1), "n": n}


def _check_test_labels(path: str, n_channels: int, n_classes: int) -> int:
    """Check the test file's labels against the classes; return its number of samples."""
    from evsim.inputs import open_input

    with open_input(path, n_channels=n_channels) as f:
        labels, n = f.labels, len(f)
    if labels is None:
        raise TrainingError(f"{path} has no labels; a test file needs them")
    if labels.size and labels.max() >= n_classes:
        raise TrainingError(f"{path}: label {labels.max()} is out of range for the {n_classes} classes of the training file")
    return n


def _write_text(path: str, text: str) -> None:
    from evsim._io import atomic_write

    with atomic_write(path, "w") as fh:
        fh.write(text)


def saved_config(out_dir: str) -> TrainConfig:
    """The configuration of the run in ``out_dir`` (for ``--resume`` without options)."""
    path = RunFiles(os.fspath(out_dir)).checkpoint
    if not os.path.exists(path):
        raise CheckpointError(f"--resume: no checkpoint in {out_dir} (expected {path})")
    ck = load_checkpoint(path, keys=("config",))
    if "config" not in ck:
        raise CheckpointError(f"--resume: {path} records no configuration; it is not a checkpoint of evsim train")
    return TrainConfig.from_json(str(ck["config"]))


def train(config: TrainConfig, train_path: str, test_path: str, out_dir: str, *,
          valid_path: str | None = None, resume: bool = False, max_minutes: float | None = None,
          reporter: Reporter | None = None, stop_after_epochs: int | None = None) -> dict:
    """Run the recipe ``config`` and return the final figures (also in result.json).

    valid_path: a separate validation file (SSC); otherwise speakers are split off the
        training file (``config.val_fraction``)
    max_minutes: stop after the first epoch that ends past this wall-clock budget (> 0)
    stop_after_epochs: stop (as if interrupted) after this many epochs of this call; for
        testing resume

    The output directory is locked for the whole run (:mod:`evsim.training.runlock`): a second
    run into it is refused at once.  SIGTERM is handled like Ctrl-C (the best model so far
    is exported) while the run holds the main thread.
    """
    if max_minutes is not None and (isinstance(max_minutes, bool) or not isinstance(max_minutes, (int, float))
                                    or not math.isfinite(max_minutes) or max_minutes <= 0):
        raise TrainingError(f"--max-minutes: {max_minutes!r}; expected a positive number of minutes")
    out_dir = os.fspath(out_dir)
    created = not os.path.exists(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"cannot create the output directory {out_dir}: {(exc.strerror or str(exc)).lower()}") from None
    from .runlock import LOCK_NAME, run_lock

    try:
        with run_lock(out_dir), _sigterm_as_interrupt():
            return _train_locked(config, train_path, test_path, out_dir, valid_path=valid_path, resume=resume,
                                 max_minutes=max_minutes, reporter=reporter, stop_after_epochs=stop_after_epochs)
    except BaseException:
        # a run refused before it wrote anything leaves no empty directory behind
        if created and os.path.isdir(out_dir) and os.listdir(out_dir) in ([], [LOCK_NAME]):
            with contextlib.suppress(OSError):
                if os.listdir(out_dir):
                    os.unlink(os.path.join(out_dir, LOCK_NAME))
                os.rmdir(out_dir)
        raise


class Terminated(KeyboardInterrupt):
    """SIGTERM received during a run: handled exactly like Ctrl-C."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _file_record(path: str) -> dict:
    """What a data file was: absolute path, size and SHA-256 of its content."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": os.path.abspath(path), "bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def _check_same_data(saved: dict, current: dict, out_dir: str) -> None:
    """Refuse to resume on data other than the run was started on (content, not names)."""
    for role, now in current.items():
        before = saved.get(role)
        if before is None:
            continue
        if (before["bytes"], before["sha256"]) != (now["bytes"], now["sha256"]):
            raise CheckpointError(
                f"--resume: the run in {out_dir} was started on {role} file {before['path']} ({before['bytes']} bytes, "
                f"sha256 {before['sha256'][:12]}...), but the {role} file given now, {now['path']}, is different "
                f"({now['bytes']} bytes, sha256 {now['sha256'][:12]}...); resume with the same files, or start a new "
                "run in another --out")


def _write_failure(exc: OSError, path: str, files: "RunFiles", saved_epoch: int) -> TrainingError:
    """The message for a failed write: what, where, and what is safe."""
    import errno

    why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc)).lower()
    if saved_epoch >= 1 and os.path.exists(files.checkpoint):
        safe = (f"the checkpoint of epoch {saved_epoch} in {files.checkpoint} is intact (files are replaced only by "
                "complete new ones): free space or fix the problem and continue with --resume")
    else:
        safe = "no epoch had been saved yet"
    return TrainingError(f"cannot write {path}: {why}; {safe}")


@dataclass
class _Data:
    """The run's data: training and validation sets, and what the test file holds."""

    train_ds: object
    val_ds: object
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_rows: np.ndarray | None      # the test samples evaluated (None: all)
    n_test: int
    record: dict                      # the files, as _file_record gives them (checked on --resume)
    augment: object | None
    steps_per_epoch: int


@dataclass
class _RunState:
    """Everything the next epoch depends on (what a checkpoint holds)."""

    net: object
    opt: object
    rng: np.random.Generator
    history: list
    best: dict
    best_state: dict | None
    start_epoch: int
    average: object | None = None     # training.average.WeightAverage when config.ema > 0


def _train_locked(config: TrainConfig, train_path: str, test_path: str, out_dir: str, *,
                  valid_path: str | None, resume: bool, max_minutes: float | None,
                  reporter: Reporter | None, stop_after_epochs: int | None) -> dict:
    """The run, in the lock: check, load the data, start or restore, epochs, finish."""
    rep = reporter or Reporter()
    t_start = time.time()
    train_path, test_path = os.fspath(train_path), os.fspath(test_path)
    valid_path = os.fspath(valid_path) if valid_path else None
    files = RunFiles(out_dir)
    _check_start(config, (train_path, test_path, valid_path), files, resume)
    init_state = _init_state(config.init_from) if config.init_from and not resume else None
    saved = load_checkpoint(files.checkpoint) if resume else None    # read once, used twice
    data = _load_data(config, train_path, test_path, valid_path, files, saved, rep)
    run = _start_or_restore(config, data, files, saved, init_state, rep)
    rep.start({"train": len(data.train_idx), "val": len(data.val_idx), "test": data.n_test,
               "n_steps": int(data.train_ds.n_steps), "steps_per_epoch": data.steps_per_epoch,
               "params": run.net.n_params(), "epochs": config.epochs, "start_epoch": run.start_epoch})

    stopped = None
    epochs_run = 0
    epoch = run.start_epoch - 1
    try:
        for epoch in range(run.start_epoch, config.epochs):
            record = _run_epoch(config, epoch, run, data, files, rep)
            _save_epoch(config, epoch, record, run, data, files)
            rep.epoch_end(record)
            epochs_run += 1
            if stop_after_epochs is not None and epochs_run >= stop_after_epochs and epoch + 1 < config.epochs:
                stopped = "stopped early on request"
                break
            if max_minutes is not None and (time.time() - t_start) / 60.0 > max_minutes and epoch + 1 < config.epochs:
                stopped = f"time budget of {max_minutes:g} min reached after epoch {epoch + 1}"
                break
    except KeyboardInterrupt as exc:
        if run.best_state is not None:
            _export_best(config, run, data, train_path, files)
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        raise TrainingError(f"{what} during epoch {epoch + 1}; the checkpoint of the last finished epoch is in "
                            f"{files.checkpoint} (continue with --resume)"
                            + (f", the best model so far in {files.model}" if run.best_state is not None else "")) from None

    if stopped == "stopped early on request":
        return {"stopped": stopped, "epochs_done": epoch + 1}
    if run.best_state is None:
        raise TrainingError("no epoch finished" + (f" with the rate penalty at full weight (its warm-up lasts "
                                                   f"{config.rate_warmup} epochs)" if config.rate_warmup else "")
                            + f"; nothing to export (continue with --resume from {files.checkpoint})")
    return _finish(config, run, data, train_path, test_path, files, epochs_done=epoch + 1, stopped=stopped,
                   t_start=t_start)


def _check_start(config: TrainConfig, paths: tuple, files: RunFiles, resume: bool) -> None:
    """Refuse a run that cannot start: missing data, --resume without a checkpoint (or a
    new run over one), an invalid network configuration."""
    for p in paths:
        if p and not os.path.isfile(p):
            raise EvsimError(f"data file not found: {p}")
    if resume and not os.path.exists(files.checkpoint):
        raise CheckpointError(f"--resume: no checkpoint in {files.out_dir} (expected {files.checkpoint})")
    if not resume and os.path.exists(files.checkpoint):
        raise TrainingError(f"{files.out_dir} already holds a run (checkpoint.npz); use --resume to continue it or choose another --out")
    config.network_config()  # validate before loading data


def _load_data(config: TrainConfig, train_path: str, test_path: str, valid_path: str | None, files: RunFiles,
               saved: dict | None, rep: Reporter) -> _Data:
    """Load the training data, split off validation, check the test file's labels and that
    the epochs can run; on --resume (``saved``: the checkpoint), check the files are the
    ones the run started on."""
    from .augment import Augment
    from .data import load_dataset, n_batches, split_by_speaker, split_speaker_fold

    data_kw = dict(dt_ms=config.dt_ms, pool=config.pool, input_channels=config.input_channels)
    data_record = {"train": _file_record(train_path), "test": _file_record(test_path)}
    if valid_path:
        data_record["valid"] = _file_record(valid_path)
    if saved is not None:
        if "data" in saved:
            _check_same_data(json.loads(str(saved["data"])), data_record, files.out_dir)
        else:
            rep.message(f"warning: the checkpoint in {files.out_dir} does not record its data files (made by an older "
                        "evsim); make sure --train and --test are the files the run started on")
    train_rows = _limited(train_path, config.limit, config.seed, config.input_channels)
    train_ds = load_dataset(train_path, indices=train_rows, **data_kw)
    if len(train_ds) == 0:
        raise TrainingError(f"{train_path} holds no samples; a training file needs some")
    n_classes = train_ds.n_classes
    n_test = _check_test_labels(test_path, config.input_channels, n_classes)
    test_rows = _draw_rows(n_test, config.limit, config.seed + 2)   # the test file is opened once
    if test_rows is not None:
        n_test = len(test_rows)
    if valid_path:
        val_ds = load_dataset(valid_path, n_steps=train_ds.n_steps, n_classes=n_classes, **data_kw)
        train_idx = np.arange(len(train_ds.labels))
        val_idx = np.arange(len(val_ds.labels))
    elif config.val_folds:
        try:
            split = split_speaker_fold(train_ds, config.val_folds, config.val_fold)
        except EvsimError as err:
            raise TrainingError(str(err)) from None
        train_idx, val_idx = np.asarray(split.train), np.asarray(split.val)
        val_ds = train_ds
    elif config.val_fraction == 0:      # every training speaker trained on, nothing validated
        train_idx, val_idx = np.arange(len(train_ds.labels)), np.arange(0)
        val_ds = train_ds
    else:
        split = split_by_speaker(train_ds, fraction=config.val_fraction, seed=config.seed)
        if split.warning:
            rep.message(f"warning: {split.warning}")
        train_idx, val_idx = np.asarray(split.train), np.asarray(split.val)
        val_ds = train_ds
    if len(val_idx) == 0 and (valid_path or config.val_folds or config.val_fraction):
        raise TrainingError("the validation split is empty; raise val_fraction or give a validation file")
    if len(train_idx) == 0:
        raise TrainingError("the training split is empty (every speaker went to validation); give more samples "
                            "or lower val_fraction")
    if config.augment and config.shift_max >= train_ds.n_steps:
        raise TrainingError(f"shift_max: {config.shift_max} steps, not less than the samples' {train_ds.n_steps} steps: "
                            "the shift augmentation would move every spike out of the sample; expected 0.."
                            f"{train_ds.n_steps - 1} (the default 10 steps is 100 ms at dt = 10 ms)")
    for name, why in (("freq_shift", "every spike would leave the sample"),
                      ("freq_mask", "a mask could silence every input")):
        if config.augment and getattr(config, name) >= train_ds.n_inputs:
            raise TrainingError(f"{name}: {getattr(config, name)} inputs, not less than the model's {train_ds.n_inputs} "
                                f"inputs: {why}; expected 0..{train_ds.n_inputs - 1}")
    augment = Augment(max_shift=config.shift_max, freq_shift=config.freq_shift,
                      time_stretch=config.time_stretch, freq_mask=config.freq_mask,
                      freq_masks=config.freq_masks, spike_drop=config.spike_drop) if config.augment else None
    steps_per_epoch = n_batches(len(train_idx), config.batch_size, augment)
    total_steps = steps_per_epoch * config.epochs
    one_cycle = config.lr_schedule == "one_cycle" or (config.learn_delays and config.delay_schedule == "one_cycle")
    if one_cycle and total_steps < 2:
        raise TrainingError(
            f"this run would make only {total_steps} optimiser step ({len(train_idx)} training samples"
            f"{' x 3 with augmentation' if augment else ''} in batches of {config.batch_size}, {config.epochs} "
            "epoch(s)); the one_cycle learning-rate schedule needs at least 2: use a smaller --batch-size, more "
            "--epochs, or --set lr_schedule=constant")
    return _Data(train_ds=train_ds, val_ds=val_ds, train_idx=train_idx, val_idx=val_idx, test_rows=test_rows,
                 n_test=n_test, record=data_record, augment=augment, steps_per_epoch=steps_per_epoch)


def _start_or_restore(config: TrainConfig, data: _Data, files: RunFiles, saved: dict | None,
                      init_state: dict | None, rep: Reporter) -> _RunState:
    """A new network and optimiser (from ``init_state`` if given; config.json written), or,
    on --resume, the state of the checkpoint ``saved`` (refused if made with another
    configuration)."""
    from .optim import make_optimizer

    net_config = config.network_config(n_classes=data.train_ds.n_classes)
    net = _network_class(net_config).init(net_config, seed=config.seed)
    if init_state is not None:
        try:
            net.load_state_dict(init_state)
        except EvsimError as exc:
            raise TrainingError(f"init_from {config.init_from}: {exc}; its network must have this run's "
                                "architecture (layers, recurrences, kernel size, inputs and classes)") from None
    if not config.learn_delays:
        for name in net.delay_names:
            net.params[name][...] = np.rint(net.params[name])
    opt = make_optimizer(net, total_steps=data.steps_per_epoch * config.epochs, lr=config.lr,
                         weight_decay=config.weight_decay, delay_lr=config.delay_lr, schedule=config.lr_schedule,
                         delay_schedule=config.delay_schedule, learn_delays=config.learn_delays)
    run = _RunState(net=net, opt=opt, rng=np.random.default_rng(config.seed + 1), history=[],
                    best={"epoch": -1, "val_accuracy": -1.0}, best_state=None, start_epoch=0)
    if config.ema > 0:
        from .average import WeightAverage

        run.average = WeightAverage(net.state_dict(), config.ema)
    if saved is not None:
        _restore(config, run, files, saved)
        rep.message(f"resuming {files.out_dir} after epoch {run.start_epoch}")
    else:
        try:
            _write_text(files.path("config.json"), json.dumps(json.loads(config.to_json()), indent=2) + "\n")
        except OSError as exc:
            raise _write_failure(exc, files.path("config.json"), files, 0) from None
        if os.path.exists(files.log):
            os.unlink(files.log)
    return run


def _network_class(net_config):
    """:class:`~evsim.training.network.Network`, or for a CS-GRU recipe
    :class:`~evsim.training.stack.StackNetwork` (the same interface)."""
    from .network import Network
    from .stack import StackConfig, StackNetwork

    return StackNetwork if isinstance(net_config, StackConfig) else Network


def _restore(config: TrainConfig, run: _RunState, files: RunFiles, ck: dict) -> None:
    """Load the checkpoint ``ck`` of ``files`` into ``run`` (the inverse of :func:`_save_epoch`)."""
    try:   # compared as settings, so a field added since (with its default) does not count
        same = TrainConfig.from_json(str(ck.get("config", ""))) == config
    except (EvsimError, TypeError, ValueError):
        same = False
    if not same:
        raise CheckpointError(f"--resume: the checkpoint in {files.out_dir} was made with a different configuration; "
                              "resume with the same options, or start a new run in another --out")
    run.net.load_state_dict(_unprefixed("net/", ck))
    run.opt.load_state_dict(_unprefixed("opt/", ck))
    run.rng = rng_from_state(ck["rng"])
    run.start_epoch = int(ck["epoch"]) + 1
    run.history = json.loads(str(ck["history"]))
    run.best = json.loads(str(ck["best"]))
    run.best_state = _unprefixed("best/", ck) or None
    if run.average is not None:
        run.average.load_state_dict(_unprefixed("ema/", ck))
    # the log may lag the checkpoint by one epoch if a stop fell between the two writes
    _write_text(files.log, "".join(json.dumps(r) + "\n" for r in run.history))


def _run_epoch(config: TrainConfig, epoch: int, run: _RunState, data: _Data, files: RunFiles,
               rep: Reporter) -> dict:
    """Train one epoch, validate, and keep the network if it is the best so far; returns
    the epoch's record (also appended to ``run.history``)."""
    from . import optim
    from .data import iterate_batches

    sigma = sigma_at(config, epoch) if config.learn_delays else 0.0
    rate_scale = rate_scale_at(config, epoch)
    t0 = time.time()
    rep.epoch_start(epoch, config.epochs, data.steps_per_epoch, sigma)
    loss_sum, correct, seen = 0.0, 0, 0
    rates = None
    net, opt = run.net, run.opt
    for x, y in iterate_batches(data.train_ds, data.train_idx, config.batch_size, run.rng, shuffle=True,
                                augment=data.augment):
        try:
            loss, stats = optim.train_step(net, opt, x, y, run.rng, sigma, clip=config.grad_clip or None,
                                           rate_scale=rate_scale)
        except optim.DivergedError as exc:
            raise TrainingError(f"{exc} at epoch {epoch + 1}; training stopped. "
                                f"The last good checkpoint (end of epoch {epoch}) is kept in {files.checkpoint}; "
                                "try a lower --lr or a smaller grad_clip") from None
        if run.average is not None:
            run.average.update(net.state_dict())
        loss_sum += loss * len(y)
        correct += stats["correct"]
        seen += len(y)
        r = np.asarray(stats["spike_rate"], float)
        rates = r if rates is None else rates + r
        stats["sigma"] = sigma
        rep.batch(stats)
    judged = net if run.average is None else type(net).from_state_dict(run.average.network_state(net.state_dict()))
    val = _evaluate(judged, data.val_ds, data.val_idx) if len(data.val_idx) else {"accuracy": None, "loss": None}
    record = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
              "val_loss": val["loss"], "val_accuracy": val["accuracy"], "sigma": sigma,
              "spike_rate": (rates / data.steps_per_epoch).tolist(), "lr": opt.lr("weights"),
              "delays_mean": float(np.mean([net.params[n].mean() for n in net.delay_names])) if net.delay_names else None,
              "seconds": time.time() - t0}
    run.history.append(record)
    # during the penalty's warm-up a network is not yet trained to be sparse: only
    # epochs at full penalty weight are candidates for the exported model
    if rate_scale == 1.0 and _better(val["accuracy"], run.best["val_accuracy"]):
        run.best = {"epoch": epoch + 1, "val_accuracy": val["accuracy"]}
        run.best_state = {k: np.array(v) for k, v in judged.state_dict().items()}
    return record


def _better(accuracy: float | None, best: float) -> bool:
    """Whether an epoch of ``accuracy`` replaces the best so far; without validation
    (accuracy None: ``val_fraction = 0``, every epoch's) every epoch does, so the last one
    is exported.  In a validated run ``best`` is a number (-1 before the first epoch)."""
    return accuracy is None or accuracy > best


def _save_epoch(config: TrainConfig, epoch: int, record: dict, run: _RunState, data: _Data, files: RunFiles) -> None:
    """Write the checkpoint of ``epoch`` (atomically), then its line of the log."""
    ck = {**_prefixed("net/", run.net.state_dict()), **_prefixed("opt/", run.opt.state_dict()),
          **_prefixed("best/", run.best_state or {}),
          **_prefixed("ema/", run.average.state_dict() if run.average is not None else {}), "rng": rng_state(run.rng), "epoch": np.array(epoch),
          "history": np.array(json.dumps(run.history)), "best": np.array(json.dumps(run.best)),
          "config": np.array(config.to_json()), "data": np.array(json.dumps(data.record))}
    try:
        save_checkpoint(files.checkpoint, ck)
    except OSError as exc:
        raise _write_failure(exc, files.checkpoint, files, epoch) from None
    try:
        with open(files.log, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise _write_failure(exc, files.log, files, epoch + 1) from None


def _export_best(config: TrainConfig, run: _RunState, data: _Data, train_path: str, files: RunFiles):
    """Export the best network so far to model.npz (with its provenance) and return it."""
    from evsim.model import ModelMetadata

    best_net = type(run.net).from_state_dict(run.best_state)
    provenance = {"recipe": config.preset, "config": json.loads(config.to_json()),
                  "train_file": os.path.basename(train_path), "data": data.record, "epoch": run.best["epoch"],
                  "validation_accuracy": run.best["val_accuracy"],
                  "learn_delays": config.learn_delays}
    model = best_net.export(ModelMetadata(**data.train_ds.metadata(), provenance=provenance))
    try:
        model.save(files.model)  # saved before the test run, so a failure there loses nothing
    except OSError as exc:
        raise _write_failure(exc, files.model, files, len(run.history)) from None
    return model


def _finish(config: TrainConfig, run: _RunState, data: _Data, train_path: str, test_path: str, files: RunFiles, *,
            epochs_done: int, stopped: str | None, t_start: float) -> dict:
    """Export the best model, evaluate it once on the test file with the event engine,
    and write result.json (and the test accuracy into the model's provenance)."""
    from evsim.info import delay_summary
    from evsim.run import classify_file

    model = _export_best(config, run, data, train_path, files)
    by_speaker = validation_by_speaker(model, data.val_ds, data.val_idx)
    t_test = time.time()
    test = classify_file(model, test_path, engine="event", indices=data.test_rows)
    result = {
        "test_accuracy": test.accuracy, "validation_accuracy": run.best["val_accuracy"],
        "best_epoch": run.best["epoch"], "epochs_done": epochs_done, "epochs_planned": config.epochs,
        "stopped": stopped, "train_seconds": time.time() - t_start, "test_seconds": time.time() - t_test,
        "params_total": model.n_params(), "params_recurrent": model.n_recurrent_params(),
        "delays": {f"layer{i}": delay_summary(l.delays) for i, l in enumerate(model.layers) if l.recurrence != "none"},
        "model": files.model, "test_file": test_path, "validation_by_speaker": by_speaker,
    }
    provenance = dict(model.metadata.provenance, test_accuracy=test.accuracy,
                      trained=time.strftime("%Y-%m-%d"), train_minutes=round(result["train_seconds"] / 60, 1))
    try:
        replace(model, metadata=replace(model.metadata, provenance=provenance)).save(files.model)
        _write_text(files.path("result.json"), json.dumps(result, indent=2) + "\n")
    except OSError as exc:
        raise _write_failure(exc, files.path("result.json"), files, len(run.history)) from None
    return result


def validation_by_speaker(model, dataset, indices, batch_size: int = 256) -> dict[str, dict] | None:
    """The exported ``model``'s accuracy on each validation speaker (event engine), worst
    first: ``{speaker id: {"n": samples, "accuracy": fraction}}``; None when the samples
    have no speaker ids.  One hard voice can move a 6-speaker validation set by 10 points
    or more; this says which."""
    from evsim.run import classify_batches

    indices = np.asarray(indices)
    if dataset.speakers is None or indices.size == 0:
        return None
    batches = (list(dataset.dense(indices[start:start + batch_size], dtype=np.float64))
               for start in range(0, indices.size, batch_size))
    predictions, _, _ = classify_batches(model, batches, engine="event")
    correct = predictions == dataset.labels[indices]
    speakers = dataset.speakers[indices]
    table = {str(int(s)): {"n": int(np.sum(speakers == s)), "accuracy": float(np.mean(correct[speakers == s]))}
             for s in np.unique(speakers)}
    return dict(sorted(table.items(), key=lambda kv: (kv[1]["accuracy"], int(kv[0]))))


def _limited(path: str, limit: int, seed: int, n_channels: int):
    """``limit`` sample indices of ``path`` drawn at random (sorted), or None for all."""
    if not limit:
        return None
    from evsim.inputs import open_input

    with open_input(path, n_channels=n_channels) as f:
        n = len(f)
    return _draw_rows(n, limit, seed)


def _draw_rows(n: int, limit: int, seed: int):
    """``limit`` of ``n`` sample indices drawn at random (sorted), or None for all."""
    if not limit or limit >= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
