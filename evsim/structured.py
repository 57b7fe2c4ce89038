"""Tonic-style structured event arrays in: ``t`` (microseconds), ``x`` (channel), ``p``.

The event datasets of the ``tonic`` package (SHD and SSC among them) hand out one sample as
a NumPy structured array with fields ``t`` (time in microseconds, integer or float), ``x``
(channel) and ``p`` (polarity).  evsim reads them without depending on tonic:

* times become seconds, ``t / 1e6`` in float64, and are binned with the one rule of the
  SHD files (``floor(t_s * 1000 / dt_ms)``, :func:`evsim.data.time_to_step`), so an event
  array made from a file's sample bins exactly as the file does (tested).  A time given in
  whole microseconds that falls exactly on a step boundary can land one step early when its
  value in seconds is not exact in binary (2.01 s is 2.00999..., as in an HDF5 file);
* steps count from **time 0 of the sample**, as in the SHD files; tonic's ``ToFrame``
  starts its first frame at the *first event* instead.  For tonic's framing, subtract the
  first time yourself (``events["t"] - events["t"][0]``) before passing the events;
* ``x`` is the raw channel (pooled by the model's ``pool``); ``p`` is ignored (counts are
  summed over polarities: an audio cochlea has one); an array with a ``y`` field (a 2-D
  sensor) is refused.
"""

from __future__ import annotations

import numpy as np

from .errors import InputFileError

__all__ = ["is_structured", "split_structured", "bin_structured"]

US_PER_S = 1e6


def is_structured(events) -> bool:
    """True for a NumPy structured array (one with named fields)."""
    return isinstance(events, np.ndarray) and events.dtype.names is not None


def split_structured(events, where: str = "events") -> tuple[np.ndarray, np.ndarray]:
    """A structured event array -> (times in seconds float64, channels), unvalidated beyond
    the fields; :func:`evsim.data.validate_events` checks the values."""
    if not is_structured(events):
        got = f"a {type(events).__name__}" if not isinstance(events, np.ndarray) else f"an array of dtype {events.dtype}"
        raise InputFileError(f"{where}: expected a structured event array with fields t (microseconds) and x "
                             f"(channel), or times and units; got {got}")
    names = events.dtype.names
    if "y" in names:
        raise InputFileError(f"{where}: events have a 'y' field (a 2-D sensor); evsim takes 1-D channels in 'x'")
    missing = [f for f in ("t", "x") if f not in names]
    if missing:
        raise InputFileError(f"{where}: structured events lack field(s) {', '.join(missing)}; "
                             f"expected t (microseconds) and x (channel), got fields {', '.join(names)}")
    if events.ndim != 1:
        raise InputFileError(f"{where}: structured events must be 1-D, got shape {events.shape}")
    t = events["t"]
    if t.size and t.dtype.kind not in "iuf":
        raise InputFileError(f"{where}: field t has dtype {t.dtype}; expected numbers (microseconds)")
    return t.astype(np.float64) / US_PER_S, events["x"]


def bin_structured(events, *, dt_ms: float, n_channels: int, pool: int = 1, n_steps: int | None = None,
                   dtype=np.float32, where: str = "events") -> np.ndarray:
    """:func:`evsim.data.bin_spikes` for a structured event array (see the module docstring):
    (steps, ceil(n_channels / pool)) counts."""
    from .data import bin_spikes

    times, units = split_structured(events, where=where)
    return bin_spikes(times, units, dt_ms=dt_ms, n_channels=n_channels, pool=pool, n_steps=n_steps,
                      dtype=dtype, where=where)
