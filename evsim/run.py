"""Classify the samples of an SHD-layout file with a model: the library side of ``evsim run``.

Samples are binned to the model's ``dt`` and pooling, grouped into batches (padded, each
sample keeping its own length, so a sample's result never depends on its batch-mates)
and run by the chosen engine: ``"event"`` (Numba event queue, the default) or
``"dense"`` (the NumPy reference).
"""

from __future__ import annotations

from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np

from .errors import EvsimError
from .model import Model

ENGINES = ("event", "dense")

__all__ = ["ENGINES", "SampleResult", "Classification", "get_engine", "classify_file", "classify_arrays"]


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
    engine: str
    stats: dict


def get_engine(name: str) -> Callable:
    """The simulate function of an engine, by name."""
    if name == "dense":
        from .reference import simulate
        return simulate
    if name == "event":
        from .event import simulate
        return simulate
    raise EvsimError(f"unknown engine {name!r}; expected one of: {', '.join(ENGINES)}")


def classify_arrays(model: Model, samples: Sequence[np.ndarray], engine: str = "event",
                    batch_size: int = 64, progress: Callable[[int], None] | None = None):
    """Run ``samples`` (each (T_i, n_inputs) counts) in padded batches.

    Returns (predictions (n,), scores (n, C), stats) where stats sums the engine's
    counters when it reports any.
    """
    simulate = get_engine(engine)
    n = len(samples)
    preds = np.zeros(n, np.int64)
    scores = np.zeros((n, model.n_classes))
    totals: dict = {}
    for start in range(0, n, batch_size):
        chunk = samples[start:start + batch_size]
        lengths = np.array([c.shape[0] for c in chunk], np.int64)
        x = np.zeros((len(chunk), int(lengths.max()), model.n_inputs), np.float64)
        for i, c in enumerate(chunk):
            x[i, :c.shape[0]] = c
        res = simulate(model, x, lengths=lengths)
        preds[start:start + len(chunk)] = res.predictions
        scores[start:start + len(chunk)] = res.scores
        for key, value in (res.stats or {}).items():
            if key in ("synaptic_events", "spikes_per_layer"):
                totals[key] = totals.get(key, 0) + np.asarray(value).sum(axis=0)
        if progress is not None:
            progress(len(chunk))
    return preds, scores, totals


def classify_file(model: Model, path: str, sample: int | None = None, engine: str = "event",
                  batch_size: int = 64, progress: Callable[[int], None] | None = None,
                  indices: Iterable[int] | None = None) -> Classification:
    """Classify every sample of ``path`` (or only ``sample``) with ``model``."""
    from .data import SpikeFile

    meta = model.metadata
    if engine not in ENGINES:
        raise EvsimError(f"unknown engine {engine!r}; expected one of: {', '.join(ENGINES)}")
    with SpikeFile(path, n_channels=meta.input_channels) as f:
        if sample is not None:
            idx = [f._index(sample)]
        elif indices is not None:
            idx = [f._index(i) for i in indices]
        else:
            idx = list(range(len(f)))
        labels = f.labels
        if labels is not None and labels.size and labels.max() >= model.n_classes:
            raise EvsimError(f"{path}: label {labels.max()} is out of range for a model with {model.n_classes} classes")
        xs = [f.binned(i, dt_ms=meta.dt_ms, pool=meta.pool, n_steps=meta.n_steps, dtype=np.float64) for i in idx]
    preds, scores, stats = classify_arrays(model, xs, engine=engine, batch_size=batch_size, progress=progress)
    names = model.class_names
    results = []
    for k, i in enumerate(idx):
        p = int(preds[k])
        results.append(SampleResult(index=i, prediction=p, class_name=names[p], score=float(scores[k, p]),
                                    label=int(labels[i]) if labels is not None else -1, n_steps=int(xs[k].shape[0])))
    accuracy = None
    if labels is not None and results:
        accuracy = float(np.mean([r.prediction == r.label for r in results]))
    stats = {k: np.asarray(v).tolist() for k, v in stats.items()}
    return Classification(samples=results, accuracy=accuracy, engine=engine, stats=stats)
