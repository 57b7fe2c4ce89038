"""Audio test helpers: WAV files written here, the membrane kernels cached in a temporary
folder (never the user's ~/.cache), a small-channel cochlea for the fast tests."""

import numpy as np
import pytest
import scipy.io.wavfile

from evsim.audio.params import CochleaParams

FS = 22050
SMALL = CochleaParams(channels=100)      # the same membrane, sampled at 100 places


@pytest.fixture(scope="session", autouse=True)
def _kernel_cache(tmp_path_factory):
    import os

    old = os.environ.get("EVSIM_CACHE_DIR")
    os.environ["EVSIM_CACHE_DIR"] = str(tmp_path_factory.mktemp("evsim-cache"))
    yield
    if old is None:
        os.environ.pop("EVSIM_CACHE_DIR", None)
    else:
        os.environ["EVSIM_CACHE_DIR"] = old


def tone(freq, seconds=0.3, fs=FS, amp=0.5):
    t = np.arange(int(seconds * fs)) / fs
    return amp * np.sin(2 * np.pi * freq * t)


def word_like(seconds=0.4, fs=FS, seed=0):
    """A vowel-ish test sound: a 150 Hz harmonic series with formant-like weights under a
    smooth envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    x = sum(np.sin(2 * np.pi * 150 * h * t) / h * (1 + 3 * np.exp(-((150 * h - 700) / 300) ** 2)) for h in range(1, 30))
    x = x * np.sin(np.pi * t / seconds) ** 2
    return 0.5 * x / np.abs(x).max() + 0.003 * rng.normal(size=t.size)


def write_wav(path, x, fs=FS, dtype=np.int16):
    x = np.asarray(x)
    if np.dtype(dtype).kind == "i":
        data = np.clip(np.round(x * 32767), -32768, 32767).astype(dtype)
    else:
        data = x.astype(dtype)
    scipy.io.wavfile.write(str(path), fs, data)
    return path
