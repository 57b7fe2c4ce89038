"""Classify the samples of an SHD-layout file with a model: the library side of ``evsim run``.

Samples are binned to the model's ``dt`` and pooling, grouped into batches (padded, each
sample keeping its own length, so a sample's result never depends on its batch-mates)
and run by the chosen engine: ``"event"`` (Numba event queue), ``"dense"`` (the NumPy
reference) or ``"auto"`` (the default of ``evsim run``: the dense engine for jobs too small
to pay the event engine's start-up, see :mod:`evsim.engine_choice`); :attr:`Classification.engine` says
which one ran.  Both count the spikes of each layer (``stats["spikes_per_layer"]``); only
the event engine counts synaptic events (``stats["synaptic_events"]``).
"""

from __future__ import annotations

from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np

from .errors import EvsimError
from .precision import DEFAULT_PRECISION, check_precision_option
from .model import Model
from .names import ENGINES, RUN_ENGINES

__all__ = ["ENGINES", "RUN_ENGINES", "MAX_BATCH_BYTES", "check_batch_memory", "SampleResult", "Classification", "get_engine", "check_run_options", "classify_file",
           "classify_input", "classify_batches", "binned_batches", "pad_batch", "PaddedBatch"]


class SampleResult(NamedTuple):
    index: int
    prediction: int
    class_name: str
    score: float
    label: int  # -1 when the file has no labels
    n_steps: int


class Classification(NamedTuple):
    samples: list[SampleResult]
    accuracy: float | None  # None when the file has no labels
    engine: str             # the engine that ran: "event" or "dense" ("auto" resolved)
    stats: dict


#: Largest memory one batch's inputs and readout traces may take (float64, (B, T, n_inputs)
#: and (B, T, C)), checked before the samples are binned.
MAX_BATCH_BYTES = 1 << 30


def check_batch_memory(model: Model, batch: int, n_steps: int, where: str = "input") -> None:
    """Refuse a batch whose binned inputs and readout traces would exceed
    :data:`MAX_BATCH_BYTES`, before anything is allocated."""
    per_sample = int(n_steps) * (model.n_inputs + model.n_classes) * 8
    if batch * per_sample <= MAX_BATCH_BYTES:
        return
    fits = MAX_BATCH_BYTES // per_sample
    mib = f"{batch * per_sample / 2**20:.0f} MiB"
    if fits >= 1:
        raise EvsimError(f"{where}: a batch of {batch} samples of up to {n_steps} steps would need {mib} (inputs and "
                         f"readout traces), more than the {MAX_BATCH_BYTES >> 20} MiB limit; use a batch size of at most "
                         f"{fits} (--batch-size)")
    raise EvsimError(f"{where}: one sample of {n_steps} steps x ({model.n_inputs} inputs + {model.n_classes} classes) would "
                     f"need {per_sample / 2**20:.0f} MiB, more than the {MAX_BATCH_BYTES >> 20} MiB limit; the model's "
                     "n_steps or the sample's spike times are probably bogus")


def get_engine(name: str) -> Callable:
    """The simulate function of an engine, by name (``"auto"`` is resolved before, by
    :func:`evsim.engine_choice.resolve_engine`)."""
    if name == "dense":
        from .reference import simulate
        return simulate
    if name == "event":
        from .event import simulate
        return simulate
    if name == "auto":
        raise EvsimError("engine 'auto' picks event or dense by the number of samples; resolve it first "
                         "(evsim.engine_choice.resolve_engine) or pass event or dense")
    raise EvsimError(f"unknown engine {name!r}; expected one of: {', '.join(RUN_ENGINES)}")


def check_run_options(engine: str, precision: str) -> None:
    """Raise for an unknown engine (``"auto"`` is known: it is resolved once the samples
    are counted) or precision (``"auto"`` too: the engine resolves it for the model), so
    that a classification fails before reading any input."""
    if engine != "auto":
        get_engine(engine)
    check_precision_option(precision)


def pad_batch(samples: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Samples (T_i, n_inputs) -> a zero-padded float64 batch (B, max T_i, n_inputs) and
    their lengths (B,), the form every engine's ``simulate`` takes."""
    lengths = np.array([c.shape[0] for c in samples], np.int64)
    x = np.zeros((len(samples), int(lengths.max()), samples[0].shape[1]), np.float64)
    for i, c in enumerate(samples):
        x[i, :c.shape[0]] = c
    return x, lengths


class PaddedBatch(NamedTuple):
    """A batch ready for an engine: ``x`` (B, T, n_inputs) float64 counts, zero-padded,
    and each sample's length ``lengths`` (B,) int64 (what :func:`pad_batch` returns)."""

    x: np.ndarray
    lengths: np.ndarray


def classify_batches(model: Model, batches: Iterable[Sequence[np.ndarray] | PaddedBatch], engine: str = "event",
                     progress: Callable[[int], None] | None = None, precision: str = DEFAULT_PRECISION):
    """Run batches of samples (each sample (T_i, n_inputs) counts), padded per batch with
    every sample keeping its own length; a batch may also come padded already
    (:class:`PaddedBatch`).

    Returns (predictions (n,), scores (n, C), stats) where stats sums the engine's
    counters: ``spikes_per_layer`` (L,) from either engine (the dense one from its spike
    rasters), ``synaptic_events`` from the event engine only (the dense engine does not
    count them).  ``precision``: float64, float32 or auto (:mod:`evsim.precision`).
    """
    simulate = get_engine(engine)
    rasters = engine == "dense"
    preds, scores = [], []
    totals: dict = {}
    for chunk in batches:
        x, lengths = chunk if isinstance(chunk, PaddedBatch) else pad_batch(chunk)
        res = simulate(model, x, lengths=lengths, record_spikes=rasters, precision=precision)
        preds.append(res.predictions)
        scores.append(res.scores)
        counters = dict(res.stats or {})
        if rasters and res.spikes is not None:
            counters["spikes_per_layer"] = _spikes_in(res.spikes, lengths)
        for key, value in counters.items():
            if key in ("synaptic_events", "spikes_per_layer"):
                totals[key] = totals.get(key, 0) + np.asarray(value).sum(axis=0)
        if progress is not None:
            progress(len(lengths))
    if not preds:
        return np.zeros(0, np.int64), np.zeros((0, model.n_classes)), totals
    return np.concatenate(preds), np.concatenate(scores), totals


def _spikes_in(rasters, lengths) -> np.ndarray:
    """Spikes per sample and layer, (B, L) int64, of rasters (B, T, n_l), counting each
    sample's own steps only."""
    steps = np.arange(rasters[0].shape[1]) if rasters else np.zeros(0)
    inside = steps[None, :] < np.asarray(lengths)[:, None]                     # (B, T)
    return np.stack([np.einsum("bt,btn->b", inside, r, dtype=np.int64) for r in rasters], axis=1)


#: fewest samples for which :func:`binned_batches` bins with the numba kernel: loading it
#: from the cache costs about as much as NumPy's slower binning of ~500 samples (measured:
#: the kernel load 56-67 ms; binning 1000 test samples 64-85 ms compiled, 190-207 ms NumPy)
BIN_KERNEL_MIN_SAMPLES = 512


def binned_batches(model, f, idx, batch_size: int, path, steps: list | None = None, engine: str = "dense"):
    """Batches (:class:`PaddedBatch`) of the samples ``idx`` of an open input ``f``,
    binned for ``model``, a whole batch at a time (:meth:`read_events`,
    :func:`evsim.data.bin_batch`: the counts of binning each sample alone); each batch is
    checked against the memory limit (:func:`check_batch_memory`) before it is binned.
    Each sample's step count is appended to ``steps`` when given.  For the ``"event"``
    engine and at least :data:`BIN_KERNEL_MIN_SAMPLES` samples the binning is a numba
    kernel (numba is loaded for the engine anyway); otherwise NumPy bins them (the same
    counts), which saves loading that kernel."""
    from .data import batch_steps, bin_batch

    meta = model.metadata
    for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        events = f.read_events(chunk)
        lengths = batch_steps(events, meta.dt_ms, meta.n_steps, where=lambda k: f"{path} sample {chunk[k]}")
        check_batch_memory(model, len(chunk), int(lengths.max()), path)
        x = bin_batch(events, lengths, dt_ms=meta.dt_ms, n_channels=meta.input_channels, pool=meta.pool,
                      compiled=engine == "event" and len(idx) >= BIN_KERNEL_MIN_SAMPLES)
        if steps is not None:
            steps.extend(lengths.tolist())
        yield PaddedBatch(x, lengths)


def classify_file(model: Model, path: str, sample: int | None = None, engine: str = "event",
                  batch_size: int = 64, progress: Callable[[int], None] | None = None,
                  indices: Iterable[int] | None = None, precision: str = DEFAULT_PRECISION) -> Classification:
    """Classify every sample of ``path`` (or only ``sample``, or ``indices``) with ``model``.

    Samples are read and binned one batch at a time, so memory stays bounded by the batch.
    ``engine``: ``"event"``, ``"dense"`` or ``"auto"`` (picked by the number of samples,
    :func:`evsim.engine_choice.choose_engine`); the result's ``engine`` is the one that ran.
    """
    from .engine_choice import resolve_engine
    from .inputs import open_input

    meta = model.metadata
    check_run_options(engine, precision)    # before the file is opened
    with open_input(path, n_channels=meta.input_channels, class_names=model.class_names) as f:
        if sample is not None:
            idx = [f.index(sample)]
        elif indices is not None:
            idx = [f.index(i) for i in indices]
        else:
            idx = list(range(len(f)))
        engine = resolve_engine(engine, model, len(idx), batch_size)
        labels = f.labels
        if labels is not None and labels.size and labels.max() >= model.n_classes:
            raise EvsimError(f"{path}: label {labels.max()} is out of range for a model with {model.n_classes} classes")
        steps: list[int] = []
        preds, scores, stats = classify_batches(model, binned_batches(model, f, idx, batch_size, path, steps, engine),
                                                engine=engine, progress=progress, precision=precision)
    names = model.class_names
    results = []
    for k, i in enumerate(idx):
        p = int(preds[k])
        results.append(SampleResult(index=i, prediction=p, class_name=names[p], score=float(scores[k, p]),
                                    label=int(labels[i]) if labels is not None else -1, n_steps=steps[k]))
    accuracy = None
    if labels is not None and results:
        accuracy = float(np.mean([r.prediction == r.label for r in results]))
    stats = {k: np.asarray(v).tolist() for k, v in stats.items()}
    return Classification(samples=results, accuracy=accuracy, engine=engine, stats=stats)


def classify_input(model: Model, path, **kwargs) -> Classification:
    """``evsim run``'s input, whatever it is: recordings (an audio file, a folder, a
    labels.csv) go through :func:`evsim.audio.dataset.classify_recordings`, anything else
    is a spike file for :func:`classify_file`; same keyword arguments."""
    from .inputs import is_recordings

    if is_recordings(path):
        from .audio.dataset import classify_recordings

        return classify_recordings(model, path, **kwargs)
    return classify_file(model, path, **kwargs)
