"""Spike input in the Spiking Heidelberg Digits (SHD) HDF5 layout.

Layout (SHD, SSC and ``shared/data/digits`` alike)::

    /spikes/times[i]   variable-length float (SHD: float16), seconds, ascending
    /spikes/units[i]   variable-length unsigned int, channel 0..input_channels-1
    /labels[i]         optional, integer class of sample i
    /extra/keys[c]     optional, bytes, name of class c
    /extra/speaker[i]  optional, integer speaker id

Samples are read one at a time (h5py reads one variable-length row per access), so a
whole file is never loaded at once.  Times are cast to float64 before binning whatever
the stored precision.

Binning: spike at time ``t`` seconds of channel ``c`` adds 1 to bin
``floor(t * 1000 / dt_ms)`` of model input ``c // pool``; counts are summed, not clipped.
"""

from __future__ import annotations

import os
from typing import Iterator, NamedTuple

import numpy as np

from .errors import InputFileError

__all__ = ["SpikeFile", "Sample", "bin_spikes", "n_steps_for", "validate_events"]


class Sample(NamedTuple):
    """One raw sample: times (float64 seconds), units (int64 channels), label (or -1)."""

    times: np.ndarray
    units: np.ndarray
    label: int


def n_steps_for(times: np.ndarray, dt_ms: float) -> int:
    """Steps needed to hold every spike: floor(last_time / dt) + 1 (1 for no spikes)."""
    if times.size == 0:
        return 1
    return int(np.floor(float(times.max()) * 1000.0 / dt_ms)) + 1


def validate_events(times, units, n_channels: int, where: str = "input") -> tuple[np.ndarray, np.ndarray]:
    """Cast and check one sample's events; raise :class:`InputFileError` on bad data."""
    times = np.asarray(times)
    units = np.asarray(units)
    if times.ndim != 1 or units.ndim != 1:
        raise InputFileError(f"{where}: times and units must be 1-D (got shapes {times.shape} and {units.shape})")
    if times.shape != units.shape:
        raise InputFileError(f"{where}: times has {times.size} entries but units has {units.size}; they must pair up one to one")
    if times.size and not np.issubdtype(times.dtype, np.number):
        raise InputFileError(f"{where}: times dtype {times.dtype} is not numeric")
    if units.size and not np.issubdtype(units.dtype, np.integer):
        if np.issubdtype(units.dtype, np.floating) and np.all(units == np.round(units)):
            pass
        else:
            raise InputFileError(f"{where}: units dtype {units.dtype}; expected integer channel numbers")
    t = times.astype(np.float64)
    u = units.astype(np.int64)
    if t.size:
        if not np.all(np.isfinite(t)):
            raise InputFileError(f"{where}: NaN or infinite spike time")
        if t.min() < 0:
            raise InputFileError(f"{where}: negative spike time {t.min():g} s; times must be >= 0")
        if u.min() < 0 or u.max() >= n_channels:
            bad = u[(u < 0) | (u >= n_channels)][0]
            raise InputFileError(f"{where}: unit {bad} outside [0, {n_channels}); the model expects {n_channels} input channels")
    return t, u


def bin_spikes(times, units, *, dt_ms: float, n_channels: int, pool: int = 1,
               n_steps: int | None = None, dtype=np.float32) -> np.ndarray:
    """Bin one sample to a (n_steps, ceil(n_channels / pool)) array of spike counts.

    With ``n_steps=None`` the sample gets :func:`n_steps_for` steps; otherwise spikes at or
    beyond ``n_steps`` are dropped and shorter samples are padded with zeros.
    """
    t, u = validate_events(times, units, n_channels)
    if n_steps is None:
        n_steps = n_steps_for(t, dt_ms)
    n_in = -(-n_channels // pool)
    out = np.zeros((n_steps, n_in), dtype=dtype)
    if t.size:
        bins = np.floor(t * (1000.0 / dt_ms)).astype(np.int64)
        keep = bins < n_steps
        np.add.at(out, (bins[keep], u[keep] // pool), 1)
    return out


class SpikeFile:
    """An SHD-layout HDF5 file, read lazily.

    >>> with SpikeFile("digits_test.h5") as f:          # doctest: +SKIP
    ...     x = f.binned(0, dt_ms=10, pool=5)           # (steps, 140) counts
    ...     print(len(f), f.labels[:5], f.class_names[:2])
    """

    def __init__(self, path: str | os.PathLike, n_channels: int = 700):
        import h5py

        self.path = os.fspath(path)
        self.n_channels = int(n_channels)
        if not os.path.exists(self.path):
            raise InputFileError(f"input file not found: {self.path}")
        if os.path.isdir(self.path):
            raise InputFileError(f"input path is a directory, not a file: {self.path}")
        try:
            is_h5 = h5py.is_hdf5(self.path)
        except OSError as exc:
            raise InputFileError(f"cannot read input file {self.path}: {exc}") from exc
        if not is_h5:
            raise InputFileError(f"{self.path} is not an HDF5 file; expected the SHD layout (spikes/times, spikes/units, labels)")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise InputFileError(f"cannot open input file {self.path}: {exc}") from exc
        try:
            self._check_layout()
        except BaseException:
            self._h5.close()
            raise

    def _check_layout(self):
        h5 = self._h5
        for key in ("spikes/times", "spikes/units"):
            if key not in h5:
                raise InputFileError(f"{self.path}: missing dataset '{key}'; expected the SHD layout (spikes/times, spikes/units, labels)")
        self._times = h5["spikes/times"]
        self._units = h5["spikes/units"]
        if self._times.ndim != 1 or self._units.ndim != 1:
            raise InputFileError(f"{self.path}: spikes/times and spikes/units must be 1-D lists of samples")
        if len(self._times) != len(self._units):
            raise InputFileError(f"{self.path}: spikes/times has {len(self._times)} samples but spikes/units has {len(self._units)}")
        self._n = len(self._times)
        self._labels = None
        if "labels" in h5:
            labels = np.asarray(h5["labels"][()])
            if labels.shape != (self._n,):
                raise InputFileError(f"{self.path}: labels has shape {labels.shape}, expected ({self._n},)")
            if not np.issubdtype(labels.dtype, np.integer):
                raise InputFileError(f"{self.path}: labels dtype {labels.dtype}; expected integers")
            if self._n and labels.min() < 0:
                raise InputFileError(f"{self.path}: negative label {labels.min()}")
            self._labels = labels.astype(np.int64)
        self._keys = None
        if "extra/keys" in h5:
            self._keys = tuple(k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
                               for k in h5["extra/keys"][()])
        self._speakers = None
        if "extra/speaker" in h5:
            sp = np.asarray(h5["extra/speaker"][()])
            if sp.shape == (self._n,):
                self._speakers = sp.astype(np.int64)

    # -- context manager ---------------------------------------------------------------
    def close(self):
        self._h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self) -> int:
        return self._n

    # -- metadata ----------------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray | None:
        """(n,) int64 labels, or None when the file has none."""
        return self._labels

    @property
    def speakers(self) -> np.ndarray | None:
        return self._speakers

    @property
    def class_names(self) -> tuple[str, ...] | None:
        return self._keys

    # -- samples -----------------------------------------------------------------------
    def _index(self, i: int) -> int:
        if not isinstance(i, (int, np.integer)):
            raise InputFileError(f"sample index must be an integer, got {i!r}")
        if not -self._n <= i < self._n:
            raise InputFileError(f"sample {i} out of range: {self.path} has {self._n} samples (0..{self._n - 1})")
        return int(i) % self._n

    def read(self, i: int) -> Sample:
        """Sample ``i`` as validated float64 times and int64 units."""
        i = self._index(i)
        t, u = validate_events(self._times[i], self._units[i], self.n_channels, where=f"{self.path} sample {i}")
        label = int(self._labels[i]) if self._labels is not None else -1
        return Sample(t, u, label)

    def binned(self, i: int, *, dt_ms: float, pool: int = 1, n_steps: int | None = None,
               dtype=np.float32) -> np.ndarray:
        """Sample ``i`` binned to counts, (steps, ceil(n_channels / pool))."""
        s = self.read(i)
        return bin_spikes(s.times, s.units, dt_ms=dt_ms, n_channels=self.n_channels, pool=pool,
                          n_steps=n_steps, dtype=dtype)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(self._n):
            yield self.read(i)


def write_spike_file(path, samples, labels=None, class_names=None, speakers=None) -> None:
    """Write samples [(times, units), ...] in the SHD layout (float16 times, uint16 units).

    Used by the tests and to ship small example inputs.
    """
    import h5py

    with h5py.File(path, "w") as h5:
        ft = h5py.vlen_dtype(np.dtype("float16"))
        fu = h5py.vlen_dtype(np.dtype("uint16"))
        g = h5.create_group("spikes")
        dt = g.create_dataset("times", (len(samples),), dtype=ft)
        du = g.create_dataset("units", (len(samples),), dtype=fu)
        for i, (t, u) in enumerate(samples):
            dt[i] = np.asarray(t, np.float16)
            du[i] = np.asarray(u, np.uint16)
        if labels is not None:
            h5.create_dataset("labels", data=np.asarray(labels, np.uint16))
        extra = h5.create_group("extra")
        if class_names is not None:
            extra.create_dataset("keys", data=np.array([c.encode() for c in class_names]))
        if speakers is not None:
            extra.create_dataset("speaker", data=np.asarray(speakers, np.uint16))
