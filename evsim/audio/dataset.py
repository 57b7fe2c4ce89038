"""Many recordings at once: finding them, their labels, and writing or classifying them.

Inputs (``paths``: files, folders, or a ``labels.csv``):

* an audio file: itself, no label;
* a ``labels.csv`` (columns ``file,label``, optional ``word``, ``speaker``; ``file``
  relative to the csv's folder): its rows, in order;
* a folder holding a ``labels.csv``: that csv;
* any other folder: its audio files (``.wav``, ``.flac``, ``.ogg``; sorted, recursive).
  When they sit in subfolders, the first-level subfolder's name is the label (the
  class-per-folder layout); files directly in the folder have none.

A label is an integer class or a class name.  Names are turned into integers by the
class names in use: the model's (``evsim run``) or, for ``evsim encode``, the sorted
names (or, for integer labels, the ``word`` column when it names each class once).
"""

from __future__ import annotations

import csv
import os
from typing import Callable, NamedTuple, Sequence

import numpy as np

from ..errors import InputFileError
from ..precision import DEFAULT_PRECISION
from .io import AudioFileError, DEFAULT_MAX_SECONDS, is_audio_input, is_audio_path, read_audio
from .params import CochleaParams

__all__ = ["AudioItem", "find_recordings", "is_audio_input", "resolve_labels", "encode_recordings",
           "write_encoded", "classify_recordings"]


class AudioItem(NamedTuple):
    path: str
    label: object = None     # int, str, or None
    word: str | None = None
    speaker: str | None = None


def _read_csv(path: str) -> list[AudioItem]:
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"{path}: cannot read labels ({exc})") from exc
    if not rows:
        raise InputFileError(f"{path}: no rows; expected a header 'file,label[,word,speaker]' and one row per recording")
    missing = {"file", "label"} - set(rows[0])
    if missing:
        raise InputFileError(f"{path}: missing column(s) {', '.join(sorted(missing))}; got {', '.join(rows[0])}; "
                             "expected 'file,label[,word,speaker]'")
    items = []
    for n, row in enumerate(rows, start=2):
        label = (row["label"] or "").strip()
        if not row["file"] or not label:
            raise InputFileError(f"{path} line {n}: empty file or label")
        items.append(AudioItem(os.path.join(base, row["file"]), int(label) if label.lstrip("-").isdigit() else label,
                               (row.get("word") or None), (row.get("speaker") or None)))
    return items


def find_recordings(paths: Sequence) -> list[AudioItem]:
    """The recordings named by ``paths`` (see the module docstring), in order."""
    items: list[AudioItem] = []
    for given in paths:
        path = os.fspath(given)
        if not os.path.exists(path):
            raise InputFileError(f"not found: {path}")
        if os.path.isdir(path):
            csv_path = os.path.join(path, "labels.csv")
            if os.path.exists(csv_path):
                items += _read_csv(csv_path)
                continue
            found = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if is_audio_path(name):
                        rel = os.path.relpath(os.path.join(root, name), path)
                        parts = rel.split(os.sep)
                        found.append(AudioItem(os.path.join(root, name), parts[0] if len(parts) > 1 else None))
            if not found:
                raise InputFileError(f"{path}: no audio files (.wav, .flac, .ogg) in this folder")
            items += found
        elif path.lower().endswith(".csv"):
            items += _read_csv(path)
        elif is_audio_path(path):
            items.append(AudioItem(path))
        else:
            raise AudioFileError(f"{path}: not an audio file (expected .wav, .flac or .ogg), a folder or a labels.csv")
    return items


def resolve_labels(items: Sequence[AudioItem], class_names: Sequence[str] | None = None):
    """Integer labels (-1 = none) and class names.

    With ``class_names`` (a model's), names map onto them (case-insensitive) and integers
    must be in range; without, names are sorted, and integer labels take their class
    names from the ``word`` column when it is consistent.
    """
    raw = [it.label for it in items]
    names = list(class_names) if class_names is not None else None
    if names is None:
        text = sorted({str(v) for v in raw if isinstance(v, str)})
        if text and any(isinstance(v, int) for v in raw):
            raise InputFileError("labels mix class numbers and class names; use one kind")
        if text:
            names = text
        elif any(v is not None for v in raw):
            words = {}
            for it in items:
                if isinstance(it.label, int) and it.word:
                    words.setdefault(it.label, set()).add(it.word)
            n = max(v for v in raw if v is not None) + 1
            if all(len(words.get(c, ())) == 1 for c in range(n)):
                names = [next(iter(words[c])) for c in range(n)]
    lookup = {n.lower(): i for i, n in enumerate(names or [])}
    labels = []
    for it in items:
        v = it.label
        if v is None:
            labels.append(-1)
        elif isinstance(v, str):
            if v.lower() not in lookup:
                raise InputFileError(f"{it.path}: label {v!r} is not a class name; classes: {', '.join(names or [])}")
            labels.append(lookup[v.lower()])
        else:
            if v < 0 or (names is not None and v >= len(names)):
                raise InputFileError(f"{it.path}: label {v} out of range (0..{len(names) - 1 if names else '?'})")
            labels.append(int(v))
    return np.array(labels, np.int64), (tuple(names) if names else None)


def encode_recordings(items: Sequence[AudioItem], params: CochleaParams | None = None, seed=0,
                      max_seconds: float | None = DEFAULT_MAX_SECONDS,
                      progress: Callable[[int], None] | None = None,
                      notes: Callable[[str], None] | None = None, exact: bool = False,
                      membrane: str | None = None):
    """Yield (times, units) per recording, in order (one Generator from ``seed`` for all).
    exact: the full-rate membrane bank for every channel; membrane: the bank by name
    (:data:`~evsim.audio.basilar.MEMBRANES`; None: by ``exact``, else the offline default)."""
    from .cochlea import encode_waveform

    params = params or CochleaParams()
    rng = np.random.default_rng(seed)
    for it in items:
        rec = read_audio(it.path, sample_rate=params.sample_rate, max_seconds=max_seconds)
        if notes is not None:
            for note in rec.notes:
                notes(f"{it.path}: {note}")
        yield encode_waveform(rec.samples, params, rng=rng, exact=exact, membrane=membrane)
        if progress is not None:
            progress(1)


def write_encoded(out: str, items: Sequence[AudioItem], params: CochleaParams | None = None, seed=0,
                  max_seconds: float | None = DEFAULT_MAX_SECONDS, progress=None, notes=None,
                  exact: bool = False, membrane: str | None = None) -> dict:
    """Encode ``items`` into one SHD-layout HDF5 file at ``out`` (written to a temporary
    name and renamed: nothing half-written).  Times are stored as float32 seconds (SHD
    uses float16; float32 keeps the 0.09 ms sample grid), units uint16, labels uint16 when
    every recording has one, ``extra/keys`` when the class names are known,
    ``extra/speaker`` when every row names one, ``extra/files`` (the sources), and the
    cochlea parameters, the seed and the membrane bank (``"fast"``, ``"exact"`` or
    ``"recursive"``) as JSON in the root attribute ``cochlea``."""
    import dataclasses
    import json
    import tempfile

    import h5py

    from .._io import publish

    from .basilar import membrane_kind
    from .cochlea import OFFLINE_MEMBRANE

    params = params or CochleaParams()
    bank = membrane_kind(membrane, exact, default=OFFLINE_MEMBRANE)
    labels, names = resolve_labels(items)
    directory = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".evsim-", suffix=".h5.tmp", dir=directory)
    os.close(fd)
    n_spikes = 0
    try:
        with h5py.File(tmp, "w") as h5:
            g = h5.create_group("spikes")
            dt = g.create_dataset("times", (len(items),), dtype=h5py.vlen_dtype(np.dtype("float32")))
            du = g.create_dataset("units", (len(items),), dtype=h5py.vlen_dtype(np.dtype("uint16")))
            for i, (t, u) in enumerate(encode_recordings(items, params, seed, max_seconds, progress, notes,
                                                         membrane=bank)):
                dt[i] = t.astype(np.float32)
                du[i] = u.astype(np.uint16)
                n_spikes += t.size
            if items and (labels >= 0).all():
                h5.create_dataset("labels", data=labels.astype(np.uint16))
            extra = h5.create_group("extra")
            if names:
                extra.create_dataset("keys", data=np.array([n.encode() for n in names]))
            speakers = [it.speaker for it in items]
            if items and all(s is not None for s in speakers):
                sp = [int(s) if str(s).isdigit() else str(s) for s in speakers]
                extra.create_dataset("speaker", data=np.array(sp) if all(isinstance(s, int) for s in sp)
                                     else np.array([str(s).encode() for s in sp]))
            extra.create_dataset("files", data=np.array([os.path.basename(it.path).encode() for it in items]))
            h5.attrs["cochlea"] = json.dumps({**dataclasses.asdict(params), "seed": seed,
                                              "membrane": bank})
        publish(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return {"samples": len(items), "spikes": n_spikes, "labelled": bool(items and (labels >= 0).all()),
            "class_names": names}


def classify_recordings(model, path, sample: int | None = None, engine: str = "event", batch_size: int = 64,
                        progress=None, seed=0, notes=None, max_seconds: float | None = DEFAULT_MAX_SECONDS,
                        precision: str = DEFAULT_PRECISION):
    """:func:`evsim.run.classify_file` for recordings: encode each (in memory), bin it as
    the model's files are binned, and classify.  Returns the same ``Classification``."""
    from ..data import bin_spikes
    from ..engine_choice import resolve_engine
    from ..run import Classification, SampleResult, check_run_options, classify_batches

    meta = model.metadata
    if meta.input_channels != CochleaParams().channels:
        raise InputFileError(f"the model takes {meta.input_channels} input channels; the cochlea gives "
                             f"{CochleaParams().channels}")
    check_run_options(engine, precision)    # before any recording is read
    items = find_recordings([path])
    indices = list(range(len(items)))
    if sample is not None:
        if not -len(items) <= sample < len(items):
            raise InputFileError(f"sample {sample} out of range: {path} has {len(items)} recordings")
        indices = [sample % len(items)]
        items = [items[indices[0]]]
    engine = resolve_engine(engine, model, len(items), batch_size, numba_loaded=True)   # the cochlea runs on numba
    labels, _ = resolve_labels(items, model.class_names)
    encoded = encode_recordings(items, seed=seed, max_seconds=max_seconds, notes=notes)
    steps: list[int] = []

    def batches():
        chunk = []
        for (t, u), it in zip(encoded, items):
            t = t.astype(np.float32)           # as `evsim encode` stores them: the same bins either way
            chunk.append(bin_spikes(t, u, dt_ms=meta.dt_ms, n_channels=meta.input_channels, pool=meta.pool,
                                    n_steps=meta.n_steps, dtype=np.float64, where=it.path))
            steps.append(chunk[-1].shape[0])
            if len(chunk) == batch_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    preds, scores, stats = classify_batches(model, batches(), engine=engine, progress=progress, precision=precision)
    results = [SampleResult(index=indices[k], prediction=int(preds[k]), class_name=model.class_names[int(preds[k])],
                            score=float(scores[k, preds[k]]), label=int(labels[k]), n_steps=steps[k])
               for k in range(len(items))]
    known = [r for r in results if r.label >= 0]
    accuracy = float(np.mean([r.prediction == r.label for r in known])) if known and len(known) == len(results) else None
    return Classification(samples=results, accuracy=accuracy, engine=engine,
                          stats={k: np.asarray(v).tolist() for k, v in stats.items()})
