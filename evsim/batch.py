"""Batch inference over many spike files, split over processes or a Dask cluster: the
library side of ``evsim batch``.

The samples of all files are cut into chunks of ``chunk_size`` consecutive samples of one
file; a task classifies one chunk (``evsim.run.classify_batches``, the same batching as
``evsim run``) and returns its predictions and scores, never the spikes.  A task carries
only the model's path, the file's path and the sample range: the worker reads the files
itself.  Results come back in file and sample order (:meth:`Executor.map_ordered`, at
most ``2 x jobs`` chunks in flight), so memory stays flat for any number of files and the
output of ``--jobs N`` equals that of one process line for line: every sample keeps its
own length in a padded batch, so its result does not depend on its batch-mates.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from .errors import InputFileError
from .precision import DEFAULT_PRECISION
from .parallel import Executor

__all__ = ["INPUT_SUFFIXES", "Chunk", "input_files", "plan_chunks", "classify_chunk", "classify_many"]

#: File name endings taken from a directory given as input.
INPUT_SUFFIXES = (".h5", ".hdf5")


class Chunk(NamedTuple):
    """One task: samples ``start..stop-1`` of ``path`` with the model in ``model_path``."""

    model_path: str
    path: str
    start: int
    stop: int
    engine: str
    batch_size: int
    precision: str = DEFAULT_PRECISION


def input_files(paths: Iterable[str]) -> list[str]:
    """Absolute paths of the files to classify: files as given, directories expanded to
    their ``*.h5`` / ``*.hdf5`` files (sorted by name, not recursive)."""
    files: list[str] = []
    for given in paths:
        if os.path.isdir(given):
            found = sorted(os.path.join(given, n) for n in os.listdir(given)
                           if n.endswith(INPUT_SUFFIXES) and os.path.isfile(os.path.join(given, n)))
            if not found:
                raise InputFileError(f"input directory {given} holds no {' or '.join(INPUT_SUFFIXES)} files")
            files.extend(found)
        elif os.path.isfile(given):
            files.append(given)
        else:
            raise InputFileError(f"input not found: {given}; expected a spike file (SHD layout) or a directory of them")
    if not files:
        raise InputFileError("no input given; expected spike files or directories")
    return [os.path.abspath(f) for f in files]


def plan_chunks(model, model_path: str, files: list[str], chunk_size: int = 256, engine: str = "event",
                batch_size: int = 64, precision: str = DEFAULT_PRECISION) -> tuple[list[Chunk], int]:
    """Check every file's layout and labels against ``model`` (so a bad file fails before
    any work) and cut the samples into chunks.  Returns (chunks, number of samples)."""
    from .inputs import open_input
    from .run import check_run_options

    check_run_options(engine, precision)

    chunks, total = [], 0
    for path in files:
        with open_input(path, n_channels=model.metadata.input_channels, class_names=model.class_names) as f:
            n, labels = len(f), f.labels
        if labels is not None and labels.size and labels.max() >= model.n_classes:
            raise InputFileError(f"{path}: label {labels.max()} is out of range for a model with {model.n_classes} classes")
        chunks.extend(Chunk(model_path, path, start, min(start + chunk_size, n), engine, batch_size, precision)
                      for start in range(0, n, chunk_size))
        total += n
    return chunks, total


_MODELS: dict = {}


def _model(path: str):
    """The model in ``path``, loaded once per worker process (and again if the file changes)."""
    from .model import load_model

    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_model(path)
    return _MODELS[key]


def classify_chunk(chunk: Chunk) -> dict:
    """Run in a worker: predictions (n,), scores (n, C) and labels (n,) (-1: none) of one chunk."""
    from .inputs import open_input
    from .run import binned_batches, classify_batches

    model = _model(chunk.model_path)
    meta = model.metadata
    with open_input(chunk.path, n_channels=meta.input_channels, class_names=model.class_names) as f:
        idx = range(chunk.start, chunk.stop)
        batches = binned_batches(model, f, idx, chunk.batch_size, chunk.path, engine=chunk.engine)
        preds, scores, _ = classify_batches(model, batches, engine=chunk.engine, precision=chunk.precision)
        labels = f.labels[chunk.start:chunk.stop] if f.labels is not None else np.full(len(idx), -1)
    return {"predictions": preds, "scores": scores, "labels": labels}


def classify_many(model, model_path: str, chunks: list[Chunk], executor: Executor) -> Iterator[dict]:
    """One record per sample, in file and sample order: ``file``, ``index``,
    ``prediction``, ``class``, ``score`` (of the prediction), ``scores`` (every class),
    ``label`` (None when the file has none)."""
    names = model.class_names
    for chunk, out in zip(chunks, executor.map_ordered(classify_chunk, chunks)):
        for k in range(chunk.stop - chunk.start):
            p, label = int(out["predictions"][k]), int(out["labels"][k])
            scores = out["scores"][k]
            yield {"file": chunk.path, "index": chunk.start + k, "prediction": p, "class": names[p],
                   "score": float(scores[p]), "scores": [float(s) for s in scores],
                   "label": label if label >= 0 else None}
