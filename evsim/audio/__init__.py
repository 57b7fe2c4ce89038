"""Sound in: a Heidelberg cochlea encoder (recordings -> SHD-layout spikes), offline and live.

* :class:`CochleaParams` and :data:`PRESETS` — every parameter, with its source;
* :func:`encode_waveform` — one recording (array) -> (times, units);
* :class:`CochleaStream` — the same, fed block by block (live);
* :func:`read_audio` — WAV (and FLAC/OGG with the optional ``soundfile``) -> mono at 22.05 kHz;
* :func:`find_recordings`, :func:`write_encoded`, :func:`classify_recordings` — folders,
  labels, ``evsim encode`` and ``evsim run --input recordings``;
* :func:`listen` — classify a recording while streaming it (``evsim listen``).

Heavy modules (numba, scipy, h5py) load when first used.
"""

_LAZY = {
    "CochleaParams": "params", "PRESETS": "params", "preset": "params",
    "encode_waveform": "cochlea", "CochleaStream": "cochlea",
    "read_audio": "io", "AudioFileError": "io", "is_audio_path": "io",
    "find_recordings": "dataset", "is_audio_input": "io", "write_encoded": "dataset",
    "classify_recordings": "dataset", "resolve_labels": "dataset",
    "listen": "live", "LiveClassifier": "live",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'evsim.audio' has no attribute {name!r}")
