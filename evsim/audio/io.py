"""Reading recordings: WAV (scipy), FLAC/OGG when the optional ``soundfile`` is installed.

Every recording becomes mono float64 at the cochlea's rate:

* integer PCM is scaled to [-1, 1) (int16 / 32768, int32 / 2**31, uint8 (x - 128) / 128);
* several channels are mixed down (their mean), with a note;
* another sample rate is resampled with ``scipy.signal.resample_poly`` (polyphase,
  Kaiser-windowed anti-alias filter), with a note;
* refused with :class:`AudioFileError`: a missing path, a file that is not audio, an
  empty recording, NaN/infinite samples, a silent recording (all samples equal: it cannot
  be RMS-normalised), one longer than ``max_seconds``;
* noted but encoded: clipping (more than 0.1 % of samples at full scale) and a very
  quiet recording (peak below 1e-4 of full scale: RMS normalisation amplifies its noise).

Notes go to the ``notes`` list of the returned :class:`Recording` (the CLI prints them).
"""

from __future__ import annotations

import os
from math import gcd
from typing import NamedTuple

import numpy as np

from ..errors import InputFileError

__all__ = ["AudioFileError", "Recording", "read_audio", "AUDIO_EXTENSIONS", "is_audio_path", "is_audio_input",
           "DEFAULT_MAX_SECONDS"]

#: extensions taken as audio when a folder is scanned
AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg")
#: recordings longer than this are refused unless the caller raises the limit
DEFAULT_MAX_SECONDS = 60.0


class AudioFileError(InputFileError):
    """A recording that cannot be read or encoded."""


class Recording(NamedTuple):
    samples: np.ndarray      # mono float64 at `sample_rate`
    sample_rate: int
    source_rate: int         # the file's own rate
    notes: list              # warnings worth printing (mixed down, resampled, clipping, ...)


def is_audio_path(path: str) -> bool:
    return os.path.splitext(str(path))[1].lower() in AUDIO_EXTENSIONS


def is_audio_input(path) -> bool:
    """True for an audio file, a labels.csv, or a folder (what
    :func:`evsim.audio.dataset.find_recordings` takes).  Here, not in ``dataset``, so that
    telling a spike file from recordings imports nothing of the cochlea."""
    path = os.fspath(path)
    return os.path.isdir(path) or is_audio_path(path) or path.lower().endswith(".csv")


def _read_raw(path: str) -> tuple[np.ndarray, int]:
    ext = os.path.splitext(path)[1].lower()
    if ext in (".wav", ".wave"):
        import scipy.io.wavfile
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")      # "chunk not understood" etc.
                rate, data = scipy.io.wavfile.read(path)
        except (ValueError, EOFError, OSError, TypeError, IndexError) as exc:
            raise AudioFileError(f"{path}: not a readable WAV file ({exc}); expected PCM or float WAV") from exc
        return data, int(rate)
    try:
        import soundfile
    except ImportError:
        raise AudioFileError(f"{path}: reading {ext or 'this'} files needs the optional 'soundfile' package "
                             "(pip install 'evsim[audio]'); WAV files need nothing extra") from None
    try:
        data, rate = soundfile.read(path, always_2d=False)
    except Exception as exc:                                  # soundfile raises its own types
        raise AudioFileError(f"{path}: not a readable audio file ({exc})") from exc
    return data, int(rate)


def _to_float(data: np.ndarray, path: str) -> np.ndarray:
    kind = data.dtype.kind
    if kind == "i":
        return data.astype(np.float64) / float(2 ** (8 * data.dtype.itemsize - 1))
    if kind == "u":
        half = float(2 ** (8 * data.dtype.itemsize - 1))
        return (data.astype(np.float64) - half) / half
    if kind == "f":
        return data.astype(np.float64)
    raise AudioFileError(f"{path}: sample type {data.dtype} is not audio; expected integer or float PCM")


def read_audio(path, sample_rate: int = 22050, max_seconds: float | None = DEFAULT_MAX_SECONDS) -> Recording:
    """Read one recording as mono float64 at ``sample_rate`` (see the module docstring)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioFileError(f"audio file not found: {path}")
    if os.path.isdir(path):
        raise AudioFileError(f"{path} is a directory, not an audio file")
    data, rate = _read_raw(path)
    notes = []
    if rate <= 0:
        raise AudioFileError(f"{path}: sample rate {rate} Hz; expected a positive rate")
    x = _to_float(np.asarray(data), path)
    if x.ndim == 2:
        if x.shape[1] > 1:
            notes.append(f"{x.shape[1]} channels mixed down to mono")
        x = x.mean(axis=1)
    if x.ndim != 1 or x.size == 0:
        raise AudioFileError(f"{path}: no samples (shape {np.shape(data)}); expected a non-empty recording")
    if not np.isfinite(x).all():
        raise AudioFileError(f"{path}: NaN or infinite samples")
    seconds = x.size / rate
    if max_seconds is not None and seconds > max_seconds:
        raise AudioFileError(f"{path}: {seconds:.1f} s long, more than the limit of {max_seconds:g} s "
                             "(raise it with --max-seconds; encoding time and memory grow with the length)")
    if np.ptp(x) == 0:
        raise AudioFileError(f"{path}: silent (every sample is {x[0]:g}); a silent recording cannot be "
                             "RMS-normalised and gives no spikes")
    peak = np.abs(x).max()
    if peak < 1e-4:
        notes.append(f"very quiet (peak {peak:.1e} of full scale): RMS normalisation amplifies its noise")
    clipped = np.mean(np.abs(x) >= 0.999)
    if clipped > 1e-3:
        notes.append(f"clipped: {100 * clipped:.1f} % of samples at full scale (distorts the spectrum)")
    if rate != sample_rate:
        from scipy.signal import resample_poly

        g = gcd(int(rate), int(sample_rate))
        x = resample_poly(x, sample_rate // g, rate // g)
        notes.append(f"resampled from {rate} Hz to {sample_rate} Hz")
    return Recording(x, int(sample_rate), int(rate), notes)
