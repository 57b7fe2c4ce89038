"""Spike input in the Spiking Heidelberg Digits (SHD) HDF5 layout.

Layout (SHD, SSC and ``shared/data/digits`` alike)::

    /spikes/times[i]   variable-length float (SHD: float16), seconds, ascending
    /spikes/units[i]   variable-length unsigned int, channel 0..input_channels-1
    /labels[i]         optional, integer class of sample i
    /extra/keys[c]     optional, bytes, name of class c
    /extra/speaker[i]  optional, speaker of sample i (see "Speakers" below)

Samples are read one at a time, or, when read in order, a block of rows at a time
(:data:`READ_BLOCK`), so a whole file is never loaded at once.  Times are cast to float64 before binning whatever
the stored precision.

Binning: spike at time ``t`` seconds of channel ``c`` adds 1 to bin
``floor(t * 1000 / dt_ms)`` of model input ``c // pool``; counts are summed, not clipped.
That rule is written once, in :func:`time_to_step`; :func:`n_steps_for`,
:func:`bin_spikes` and ``training.data`` all use it, so a sample's last spike always
falls inside the ``n_steps_for`` steps it is given.  (``t * (1000 / dt_ms)`` rounds
differently: with dt_ms = 7, t = 1.001 s it gives step 143 where ``t * 1000 / dt_ms``
gives 142; mixing the two once dropped such a sample's last spike.)
A sample that would need more than :data:`MAX_STEPS` steps (one bogus spike time, say
6e4 s) is refused with :class:`InputFileError` rather than binned to a huge array.

Speakers: integer ids are kept as they are (int64).  Any other labels (strings, bytes,
floats) are mapped to integer codes 0..n-1 in sorted order of the labels
(``np.unique(..., return_inverse=True)``): a speaker is only an identity, used to keep one
speaker's samples on one side of a validation split, so only equality matters.
"""

from __future__ import annotations

import os
from typing import Iterator, NamedTuple

import numpy as np

from .errors import InputFileError
from .model import pooled_inputs

__all__ = ["MAX_STEPS", "SpikeFile", "Sample", "Events", "bin_spikes", "bin_validated", "bin_batch", "batch_steps",
           "concat_samples", "n_steps_for", "speaker_codes", "time_to_step", "validate_events"]

#: Rows of spikes/times and spikes/units :meth:`SpikeFile.read` fetches at once when
#: samples are read in order (a block of SHD samples takes a few MB).
READ_BLOCK = 256

#: Longest sample, in steps, that :func:`n_steps_for` accepts (SHD at dt = 1 ms: ~1400).
MAX_STEPS = 1_000_000

# Steps are clipped to this before the cast to int64, so that absurd times (1e300 s) give
# a huge step rather than an undefined integer; it is far beyond any usable n_steps.
_STEP_CLIP = 2.0**62


class Sample(NamedTuple):
    """One raw sample: times (float64 seconds), units (int64 channels), label (or -1)."""

    times: np.ndarray
    units: np.ndarray
    label: int


class Events(NamedTuple):
    """The validated events of several samples, concatenated: sample ``k``'s are
    ``times[offsets[k]:offsets[k + 1]]`` (float64 seconds) and the same rows of ``units``
    (int64 channels); ``offsets`` (B + 1,) int64."""

    times: np.ndarray
    units: np.ndarray
    offsets: np.ndarray


def concat_samples(samples) -> Events:
    """:class:`Events` of already validated samples (:class:`Sample` or (times, units))."""
    samples = list(samples)
    offsets = np.zeros(len(samples) + 1, np.int64)
    np.cumsum([len(s[0]) for s in samples], out=offsets[1:])
    if not samples:
        return Events(np.zeros(0), np.zeros(0, np.int64), offsets)
    return Events(np.concatenate([s[0] for s in samples]).astype(np.float64, copy=False),
                  np.concatenate([s[1] for s in samples]).astype(np.int64, copy=False), offsets)


def time_to_step(times, dt_ms: float) -> np.ndarray:
    """Step of each spike time: ``floor(t * 1000 / dt_ms)``, int64, same shape as ``times``.

    times: seconds (any real dtype; computed in float64); dt_ms: step length in ms, > 0.
    The one place the binning rule is written.  Steps above 2**62 are clipped to 2**62.
    """
    t = np.asarray(times, dtype=np.float64)
    return np.minimum(np.floor(t * 1000.0 / dt_ms), _STEP_CLIP).astype(np.int64)


def n_steps_for(times: np.ndarray, dt_ms: float, where: str = "input") -> int:
    """Steps needed to hold every spike: ``time_to_step(last time) + 1`` (1 for no spikes).

    Raises :class:`InputFileError` when that is more than :data:`MAX_STEPS`.
    """
    times = np.asarray(times)
    if times.size == 0:
        return 1
    last = float(np.max(times))
    n = int(time_to_step(last, dt_ms)) + 1       # floor is monotonic: the last spike's step
    if n > MAX_STEPS:
        raise InputFileError(
            f"{where}: spike time {last:g} s implies {_step_count(n, last * 1000.0 / dt_ms)} steps at dt = {dt_ms:g} ms, "
            f"more than the limit of {MAX_STEPS} steps (MAX_STEPS); the spike time is probably bogus (times are in "
            f"seconds) - fix the file, or pass n_steps to cut the sample")
    return n


def _step_count(n: int, exact: float) -> str:
    """A step count for a message: the integer while it is exact, else ``about 1e+32``
    (``time_to_step`` clips at 2**62, which must not be shown as if it were the count)."""
    return str(n) if exact < 2.0**53 else f"about {exact:.3g}"


def validate_events(times, units, n_channels: int, where: str = "input") -> tuple[np.ndarray, np.ndarray]:
    """Cast and check one sample's events; raise :class:`InputFileError` on bad data.
    Returns float64 times and int64 units (the given arrays themselves when they already
    have those dtypes: no copy)."""
    times = np.asarray(times)
    units = np.asarray(units)
    if times.ndim != 1 or units.ndim != 1:
        raise InputFileError(f"{where}: times and units must be 1-D (got shapes {times.shape} and {units.shape})")
    if times.shape != units.shape:
        raise InputFileError(f"{where}: times has {times.size} entries but units has {units.size}; they must pair up one to one")
    # dtype kinds, not np.issubdtype: this runs on every live push (see EventStream.push)
    if times.size and times.dtype.kind not in "iuf":
        raise InputFileError(f"{where}: times dtype {times.dtype}; expected real numbers (seconds)")
    if units.size and units.dtype.kind not in "iu":
        if not (units.dtype.kind == "f" and np.all(units == np.round(units))):
            raise InputFileError(f"{where}: units dtype {units.dtype}; expected integer channel numbers")
    if units.size:
        # range-check in the stored dtype, so a huge uint64 is not shown as a negative int64
        lo, hi = units.min(), units.max()
        if lo < 0 or hi >= n_channels:
            bad = lo if lo < 0 else hi
            raise InputFileError(f"{where}: unit {bad:g} outside [0, {n_channels}); the model expects {n_channels} input channels"
                                 if units.dtype.kind == "f" else
                                 f"{where}: unit {bad} outside [0, {n_channels}); the model expects {n_channels} input channels")
    t = times.astype(np.float64, copy=False)
    u = units.astype(np.int64, copy=False)
    if t.size:
        if not np.isfinite(t).all():
            raise InputFileError(f"{where}: NaN or infinite spike time")
        if t.min() < 0:
            raise InputFileError(f"{where}: negative spike time {t.min():g} s; times must be >= 0")
    return t, u


def bin_spikes(times, units, *, dt_ms: float, n_channels: int, pool: int = 1,
               n_steps: int | None = None, dtype=np.float32, where: str = "input") -> np.ndarray:
    """Bin one sample to a (n_steps, ceil(n_channels / pool)) array of spike counts.

    With ``n_steps=None`` the sample gets :func:`n_steps_for` steps (so no spike is
    dropped; more than :data:`MAX_STEPS` raises :class:`InputFileError`); otherwise spikes
    at or beyond ``n_steps`` are dropped and shorter samples are padded with zeros.
    ``where`` names the sample in error messages.
    """
    t, u = validate_events(times, units, n_channels, where=where)
    return bin_validated(t, u, dt_ms=dt_ms, n_channels=n_channels, pool=pool, n_steps=n_steps,
                         dtype=dtype, where=where)


def bin_validated(t: np.ndarray, u: np.ndarray, *, dt_ms: float, n_channels: int, pool: int = 1,
                  n_steps: int | None = None, dtype=np.float32, where: str = "input") -> np.ndarray:
    """:func:`bin_spikes` for events already checked by :func:`validate_events` (float64
    times, int64 units in range), e.g. a :class:`Sample` from :meth:`SpikeFile.read`."""
    if n_steps is None:
        n_steps = n_steps_for(t, dt_ms, where=where)
    n_in = pooled_inputs(n_channels, pool)
    steps = time_to_step(t, dt_ms)
    keep = steps < n_steps
    flat = steps[keep] * n_in + u[keep] // pool
    return np.bincount(flat, minlength=n_steps * n_in).reshape(n_steps, n_in).astype(dtype, copy=False)


def batch_steps(events: Events, dt_ms: float, n_steps: int | None = None, where=None) -> np.ndarray:
    """Each sample's step count, (B,) int64: ``n_steps`` for all, or with None each
    sample's :func:`n_steps_for` (its last spike's step + 1; 1 for no spikes; more than
    :data:`MAX_STEPS` raises :class:`InputFileError` naming the sample: ``where(k)``)."""
    b = len(events.offsets) - 1
    if n_steps is not None:
        return np.full(b, int(n_steps), np.int64)
    lengths = np.ones(b, np.int64)
    starts = events.offsets[:-1][np.diff(events.offsets) > 0]
    if starts.size:             # the maximum over each non-empty sample (empty ones add nothing)
        last = np.maximum.reduceat(events.times, starts)
        lengths[np.diff(events.offsets) > 0] = time_to_step(last, dt_ms) + 1
    for k in np.flatnonzero(lengths > MAX_STEPS):   # raises, naming the sample
        n_steps_for(events.times[events.offsets[k]:events.offsets[k + 1]], dt_ms,
                    where=where(int(k)) if where else f"sample {k}")
    return lengths


def bin_batch(events: Events, lengths: np.ndarray, *, dt_ms: float, n_channels: int, pool: int = 1,
              compiled: bool = False) -> np.ndarray:
    """Bin several samples at once into a zero-padded float64 batch (B, max lengths,
    ceil(n_channels / pool)): sample ``k`` as :func:`bin_validated` bins it with
    ``n_steps=lengths[k]`` (its spikes at or past that step dropped), zeros beyond.  The
    same counts as binning the samples one by one and padding (:func:`evsim.run.pad_batch`),
    in a few NumPy passes over all the events, or with ``compiled`` in one pass of a numba
    kernel (:func:`evsim.kernels.event.bin_events`; imports numba: for the event engine)."""
    b = len(lengths)
    n_in = pooled_inputs(n_channels, pool)
    n_t = int(np.max(lengths)) if b else 0
    if compiled:
        from .kernels.event import bin_events

        x = np.zeros((b, n_t, n_in))
        def typed(a, dtype):        # one compiled signature: C-ordered, writable
            return np.require(a, dtype, "CW")

        bin_events(typed(events.times, np.float64), typed(events.units, np.int64), typed(events.offsets, np.int64),
                   typed(lengths, np.int64), float(dt_ms), int(pool), x)
        return x
    steps = time_to_step(events.times, dt_ms)
    sample = np.repeat(np.arange(b, dtype=np.int64), np.diff(events.offsets))
    keep = steps < np.asarray(lengths, np.int64)[sample]
    flat = (sample[keep] * n_t + steps[keep]) * n_in + events.units[keep] // pool
    counts = np.bincount(flat, minlength=b * n_t * n_in)
    return counts.reshape(b, n_t, n_in).astype(np.float64)


def speaker_codes(speakers) -> np.ndarray:
    """Speaker labels as int64: integers kept, anything else coded 0..n-1 in sorted order.

    See "Speakers" in the module docstring.  Labels that cannot be sorted together (a mix
    of types) are coded in order of first appearance.
    """
    sp = np.asarray(speakers)
    if np.issubdtype(sp.dtype, np.integer):
        return sp.astype(np.int64)
    try:
        _, codes = np.unique(sp, return_inverse=True)
    except TypeError:                                   # e.g. a mix of str and bytes
        first: dict = {}
        codes = np.array([first.setdefault(v, len(first)) for v in sp.ravel().tolist()])
    return np.asarray(codes, dtype=np.int64).reshape(sp.shape)


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
        try:
            self._read_layout()
        except (OSError, TypeError, ValueError, KeyError) as exc:   # h5py on a dataset of an odd type
            raise InputFileError(f"{self.path}: cannot read the SHD layout ({exc}); expected spikes/times and "
                                 "spikes/units (variable-length numbers), labels (integers)") from exc

    def _read_layout(self):
        import h5py

        h5 = self._h5
        for key in ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker"):
            if key in h5 and not isinstance(h5[key], h5py.Dataset):
                raise InputFileError(f"{self.path}: '{key}' is a {type(h5[key]).__name__.lower()}, not a dataset; "
                                     "expected the SHD layout (spikes/times, spikes/units, labels)")
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
        self._block = None          # (first row, times rows, units rows) read by slice; see read
        self._last = -2             # the row read last
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
                self._speakers = speaker_codes(sp)

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
    def index(self, i: int) -> int:
        """``i`` checked: an integer in [0, len) (no negative indices), else InputFileError."""
        if not isinstance(i, (int, np.integer)):
            raise InputFileError(f"sample index must be an integer, got {i!r}")
        if isinstance(i, (bool, np.bool_)) or not 0 <= i < self._n:   # no Python-style negative indices
            raise InputFileError(f"sample {i} out of range: {self.path} has {self._n} samples "
                                 + (f"(0..{self._n - 1})" if self._n else "(none)"))
        return int(i)

    def read(self, i: int) -> Sample:
        """Sample ``i`` as validated float64 times and int64 units.

        Reading in order is fast: from the second of two consecutive indices on, rows are
        fetched :data:`READ_BLOCK` at a time (h5py reads a slice of variable-length rows
        about five times faster per row than one row per access); memory stays bounded by
        one block.  Any other order reads one row per access."""
        i = self.index(i)
        times, units = self._row(i)
        t, u = validate_events(times, units, self.n_channels, where=f"{self.path} sample {i}")
        label = int(self._labels[i]) if self._labels is not None else -1
        return Sample(t, u, label)

    def read_events(self, indices) -> Events:
        """Samples ``indices`` as one :class:`Events` (the same values as :meth:`read` of
        each), validated together: one pass of checks over all their events instead of one
        per sample.  A bad sample raises :meth:`read`'s error for it."""
        idx = [self.index(i) for i in indices]
        rows = [self._row(i) for i in idx]
        times = [np.asarray(t) for t, _ in rows]
        units = [np.asarray(u) for _, u in rows]
        if idx and all(t.ndim == 1 and u.ndim == 1 and t.shape == u.shape for t, u in zip(times, units)):
            try:
                t, u = validate_events(np.concatenate(times), np.concatenate(units), self.n_channels,
                                       where=f"{self.path} samples {idx[0]}..{idx[-1]}")
            except (InputFileError, TypeError, ValueError):
                pass                                   # found below, sample by sample
            else:
                offsets = np.zeros(len(idx) + 1, np.int64)
                np.cumsum([len(x) for x in times], out=offsets[1:])
                return Events(t, u, offsets)
        return concat_samples(self.read(i) for i in idx)

    def _row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored (times, units) of row ``i``, from the current block when it holds it."""
        sequential, self._last = i == self._last + 1, i
        block = self._block
        if block is not None and block[0] <= i < block[0] + len(block[1]):
            k = i - block[0]
            return block[1][k], block[2][k]
        if sequential:
            stop = min(i + READ_BLOCK, self._n)
            try:
                self._block = (i, self._times[i:stop], self._units[i:stop])
                return self._block[1][0], self._block[2][0]
            except (OSError, TypeError, ValueError, KeyError, RuntimeError):
                self._block = None                   # read row by row: the failing row is named below
        try:
            return self._times[i], self._units[i]
        except (OSError, TypeError, ValueError, KeyError, RuntimeError) as exc:   # h5py: unreadable row
            raise InputFileError(f"{self.path} sample {i}: cannot read spikes/times or spikes/units ({exc})") from exc

    def binned(self, i: int, *, dt_ms: float, pool: int = 1, n_steps: int | None = None,
               dtype=np.float32) -> np.ndarray:
        """Sample ``i`` binned to counts, (steps, ceil(n_channels / pool))."""
        s = self.read(i)
        return bin_validated(s.times, s.units, dt_ms=dt_ms, n_channels=self.n_channels, pool=pool,
                             n_steps=n_steps, dtype=dtype, where=f"{self.path} sample {i}")

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
