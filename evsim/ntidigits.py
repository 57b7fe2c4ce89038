"""N-TIDIGITS (silicon-cochlea spoken digits) converted to the SHD layout.

The source is the one published HDF5 file (``n-tidigits.hdf5``, Anumula et al. 2018): for
each split (``train``, ``test``) a dataset ``{split}_labels`` of sample keys (bytes) and
two groups ``{split}_addresses`` and ``{split}_timestamps`` holding, under each key, the
sample's channel addresses (0..63, the 64 cochlea channels) and spike times (seconds).
A key reads ``<group>-<speaker>-<take>-<digits>``, e.g. ``man-im-a-7557``: "7 5 5 7",
take "a", spoken by the man "im".

The output is one SHD-layout file per split (see :mod:`evsim.data`): ``spikes/times``
(float64 seconds, ascending within a sample; the source's precision is kept, where SHD
stores float16), ``spikes/units`` (uint16 channel, ``input_channels`` = 64), ``labels``,
``extra/keys`` (class names), ``extra/speaker`` (``<group>-<speaker>``, so a validation
split by speaker keeps a speaker's samples together) and ``extra/sample_id`` (the source
key).  Only the isolated digits (keys whose last part is one character) are kept, the
usual 11-class task; the digit sequences are skipped and counted.  Classes: label 0-9 is
the digit spoken (``z`` = zero), 10 is ``o`` ("oh").

Both files are written to temporary names and renamed only when both are complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import NamedTuple

import numpy as np

from ._io import publish
from .errors import InputFileError

__all__ = ["CLASS_NAMES", "N_CHANNELS", "ConvertedSplit", "convert_ntidigits", "digit_class"]

N_CHANNELS = 64
CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh")
_CLASS_OF = {"z": 0, **{str(d): d for d in range(1, 10)}, "o": 10}
SPLITS = ("train", "test")


class ConvertedSplit(NamedTuple):
    """One converted split: its file, the samples written, the digit sequences skipped."""

    path: str
    n_samples: int
    n_skipped: int


def digit_class(key: str, where: str = "") -> int | None:
    """Class of an isolated-digit key (see the module docstring); None for a sequence."""
    digits = key.split("-")[-1]
    if len(digits) != 1:
        return None
    if digits not in _CLASS_OF:
        raise InputFileError(f"{where}sample key {key!r}: last part {digits!r} is not a digit (1-9, z, o)")
    return _CLASS_OF[digits]


def _speaker(key: str, where: str) -> str:
    parts = key.split("-")
    if len(parts) < 3 or not all(parts):
        raise InputFileError(f"{where}sample key {key!r} does not read <group>-<speaker>-...-<digits> "
                             f"(e.g. 'man-im-a-7557')")
    return f"{parts[0]}-{parts[1]}"


def _read_sample(h5, split, key, where):
    for group in (f"{split}_addresses", f"{split}_timestamps"):
        if key not in h5[group]:
            raise InputFileError(f"{where}sample {key!r} is listed in {split}_labels but missing from {group}")
    units = np.asarray(h5[f"{split}_addresses"][key][()])
    times = np.asarray(h5[f"{split}_timestamps"][key][()])
    if units.ndim != 1 or times.shape != units.shape:
        raise InputFileError(f"{where}sample {key!r}: {times.size} timestamps but {units.size} addresses; "
                             "expected one address per timestamp (1-D)")
    if units.size and units.dtype.kind not in "iu":
        raise InputFileError(f"{where}sample {key!r}: addresses dtype {units.dtype}; expected integers")
    if times.size and times.dtype.kind not in "iuf":
        raise InputFileError(f"{where}sample {key!r}: timestamps dtype {times.dtype}; expected numbers (seconds)")
    units = units.astype(np.int64)
    times = times.astype(np.float64)
    if units.size and (units.min() < 0 or units.max() >= N_CHANNELS):
        bad = units[(units < 0) | (units >= N_CHANNELS)][0]
        raise InputFileError(f"{where}sample {key!r}: address {bad} outside [0, {N_CHANNELS}) "
                             f"(the {N_CHANNELS} cochlea channels)")
    if not np.isfinite(times).all() or (times.size and times.min() < 0):
        raise InputFileError(f"{where}sample {key!r}: NaN, infinite or negative timestamp; expected seconds >= 0")
    order = np.argsort(times, kind="stable")
    return times[order], units[order]


def _split_keys(h5, split, where):
    for name in (f"{split}_labels", f"{split}_addresses", f"{split}_timestamps"):
        if name not in h5:
            raise InputFileError(f"{where}missing '{name}'; expected the N-TIDIGITS layout "
                                 f"({{train,test}}_labels, _addresses, _timestamps)")
    keys = np.asarray(h5[f"{split}_labels"][()]).reshape(-1)
    return [k.decode("utf-8") if isinstance(k, bytes) else str(k) for k in keys.tolist()]


def _write_split(h5, split, path, where):
    import h5py

    keys = [k for k in _split_keys(h5, split, where) if digit_class(k, where) is not None]
    n_all = len(_split_keys(h5, split, where))
    with h5py.File(path, "w") as out:
        spikes = out.create_group("spikes")
        times = spikes.create_dataset("times", (len(keys),), dtype=h5py.vlen_dtype(np.dtype("float64")))
        units = spikes.create_dataset("units", (len(keys),), dtype=h5py.vlen_dtype(np.dtype("uint16")))
        for n, key in enumerate(keys):
            t, u = _read_sample(h5, split, key, where)
            times[n] = t
            units[n] = u.astype(np.uint16)
        out.create_dataset("labels", data=np.array([digit_class(k) for k in keys], np.uint16))
        extra = out.create_group("extra")
        extra.create_dataset("keys", data=np.array([c.encode() for c in CLASS_NAMES]))
        extra.create_dataset("speaker", data=np.array([_speaker(k, where).encode() for k in keys], dtype="S"))
        extra.create_dataset("sample_id", data=np.array([k.encode() for k in keys], dtype="S"))
    return ConvertedSplit(path, len(keys), n_all - len(keys))


def convert_ntidigits(src: str | os.PathLike, out_dir: str | os.PathLike,
                      prefix: str = "ntidigits") -> dict[str, ConvertedSplit]:
    """Convert ``src`` (n-tidigits.hdf5) into ``out_dir/{prefix}_{train,test}.h5``.

    Returns ``{split: ConvertedSplit}``.  Raises :class:`InputFileError` on a missing or
    malformed source; then nothing is written.  Read the results with
    ``SpikeFile(path, n_channels=64)``.
    """
    import h5py

    src, out_dir = os.fspath(src), os.fspath(out_dir)
    if not os.path.isfile(src):
        raise InputFileError(f"N-TIDIGITS file not found: {src}")
    if not h5py.is_hdf5(src):
        raise InputFileError(f"{src} is not an HDF5 file; expected n-tidigits.hdf5")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputFileError(f"output directory {out_dir} is a file")
    os.makedirs(out_dir, exist_ok=True)
    where = f"{src}: "
    temps: dict[str, str] = {}
    try:
        with h5py.File(src, "r") as h5:
            results = {}
            for split in SPLITS:
                fd, temps[split] = tempfile.mkstemp(prefix=".evsim-", suffix=".h5", dir=out_dir)
                os.close(fd)
                final = os.path.join(out_dir, f"{prefix}_{split}.h5")
                results[split] = _write_split(h5, split, temps[split], where)._replace(path=final)
        for split, tmp in temps.items():
            publish(tmp, results[split].path)
        return results
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
