"""Input readers: one function, :func:`open_input`, opens whatever holds spike samples.

Every reader gives random access to the samples of one input through the same small
interface (:class:`InputReader`); the commands and library functions that read samples
(``evsim run``'s spike-file path, ``evsim batch``, ``evsim plot raster``, training) open
their input with :func:`open_input` only, so a new reader is added here, in one place:

* **spike file** (the SHD HDF5 layout): :class:`evsim.data.SpikeFile`;
* **recordings** (an audio file, a folder of them, a ``labels.csv``; what
  :func:`evsim.audio.find_recordings` takes): :class:`RecordingsReader`, which encodes
  them with the cochlea (:mod:`evsim.audio`) exactly as ``evsim encode`` does (the same
  seed gives the same spikes, times rounded to float32 as that file stores them).

``evsim run`` uses :func:`evsim.run.classify_input`, which streams recordings (labels
named by the model's classes, :func:`evsim.audio.dataset.classify_recordings`) and sends
spike files to :func:`evsim.run.classify_file` (which uses :func:`open_input`).  Telling
the two apart (:func:`is_recordings`) imports nothing of the cochlea.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from .data import Events, Sample, SpikeFile, bin_validated, concat_samples, speaker_codes, validate_events
from .errors import InputFileError

__all__ = ["InputReader", "RecordingsReader", "open_input", "is_recordings", "count_samples"]


class InputReader(Protocol):
    """The samples of one input.  Also a context manager (``close`` on exit).

    path: what was opened
    labels: (n,) int64 class of each sample, or None when the input has none
    class_names: the classes' names, or None
    speakers: (n,) int64 speaker codes, or None
    """

    path: str
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    speakers: np.ndarray | None

    def __len__(self) -> int: ...
    def index(self, i: int) -> int:
        """``i`` checked: an integer in [0, len) (no negative indices), else InputFileError."""
    def read(self, i: int) -> Sample:
        """Sample ``i``: validated float64 times (s), int64 units, its label (or -1)."""
    def read_events(self, indices) -> Events:
        """Samples ``indices``, as :meth:`read` gives them, concatenated (:class:`evsim.data.Events`)."""
    def binned(self, i: int, *, dt_ms: float, pool: int = 1, n_steps: int | None = None,
               dtype=np.float32) -> np.ndarray:
        """Sample ``i`` binned to counts, (steps, ceil(n_channels / pool))."""
    def close(self) -> None: ...
    def __enter__(self): ...
    def __exit__(self, *exc): ...


def is_recordings(path) -> bool:
    """True when ``path`` names recordings (an audio file, a folder, a labels.csv)."""
    from .audio.io import is_audio_input

    return is_audio_input(path)


def count_samples(path, n_channels: int = 700) -> int:
    """The number of samples in ``path`` (recordings are found, not encoded)."""
    if is_recordings(path):
        from .audio.dataset import find_recordings

        return len(find_recordings([path]))
    with SpikeFile(path, n_channels=n_channels) as f:
        return len(f)


def open_input(path, n_channels: int = 700, *, class_names=None, seed: int = 0) -> InputReader:
    """Open ``path`` with the reader for its kind: recordings or else a spike file of
    ``n_channels`` channels.  For recordings, ``class_names`` (a model's) are the names their
    labels map onto (else the names found, sorted) and ``seed`` seeds the cochlea's random
    fibres (as ``evsim encode --seed``); a spike file's labels are its own integers."""
    if is_recordings(path):
        return RecordingsReader(path, n_channels=n_channels, class_names=class_names, seed=seed)
    return SpikeFile(path, n_channels=n_channels)


class RecordingsReader:
    """Recordings read as spike samples: each is encoded by the cochlea when first read.

    The cochlea's random fibres draw from one generator over the recordings in order (as
    ``evsim encode`` does), so reading sample ``i`` encodes every earlier recording not
    encoded yet; the spikes are kept (a few kB per second of sound).  Labels are resolved
    against ``class_names`` when given (as ``evsim run`` does), else as ``evsim encode``
    resolves them (names sorted).
    """

    def __init__(self, path, n_channels: int = 700, *, class_names=None, seed: int = 0):
        from .audio.dataset import find_recordings, resolve_labels
        from .audio.params import CochleaParams

        self.path = os.fspath(path)
        self.n_channels = int(n_channels)
        if self.n_channels != CochleaParams().channels:
            raise InputFileError(f"{self.path}: recordings give {CochleaParams().channels} channels (the cochlea's); "
                                 f"expected {self.n_channels}")
        self._items = find_recordings([self.path])
        labels, names = resolve_labels(self._items, class_names)
        self.labels = labels if len(labels) and (labels >= 0).all() else None
        self.class_names = names
        spoken_by = [it.speaker for it in self._items]
        self.speakers = speaker_codes(np.array(spoken_by)) if spoken_by and all(spoken_by) else None
        self._seed = seed
        self._encoder = None
        self._encoded: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._items)

    def index(self, i: int) -> int:
        n = len(self._items)
        if not isinstance(i, (int, np.integer)) or isinstance(i, (bool, np.bool_)):
            raise InputFileError(f"sample index must be an integer, got {i!r}")
        if not 0 <= i < n:
            raise InputFileError(f"sample {i} out of range: {self.path} has {n} recordings "
                                 + (f"(0..{n - 1})" if n else "(none)"))
        return int(i)

    def read(self, i: int) -> Sample:
        from .audio.dataset import encode_recordings

        i = self.index(i)
        if self._encoder is None:
            self._encoder = encode_recordings(self._items, seed=self._seed)
        while len(self._encoded) <= i:
            times, units = next(self._encoder)
            self._encoded.append((times.astype(np.float32), units))   # as `evsim encode` stores them
        times, units = self._encoded[i]
        where = f"{self._items[i].path}"
        t, u = validate_events(times, units, self.n_channels, where=where)
        return Sample(t, u, int(self.labels[i]) if self.labels is not None else -1)

    def read_events(self, indices) -> Events:
        return concat_samples(self.read(i) for i in indices)

    def binned(self, i: int, *, dt_ms: float, pool: int = 1, n_steps: int | None = None,
               dtype=np.float32) -> np.ndarray:
        s = self.read(i)
        return bin_validated(s.times, s.units, dt_ms=dt_ms, n_channels=self.n_channels, pool=pool,
                             n_steps=n_steps, dtype=dtype, where=self._items[i].path)

    def close(self) -> None:
        self._encoder = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
