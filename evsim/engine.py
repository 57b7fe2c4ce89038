"""The engine contract: what every simulator takes and returns.

Both engines -- the dense NumPy oracle (:mod:`evsim.reference`) and the event engine
(:mod:`evsim.event`) -- and the training network's ``evaluate`` validate their inputs with
:func:`check_inputs` and return a :class:`SimResult`, so neither engine imports the other.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .errors import EvsimError

if TYPE_CHECKING:
    from .model import Model

__all__ = ["SimResult", "softmax", "check_finite", "check_inputs"]


class SimResult(NamedTuple):
    """What a simulator returns for a batch of B samples of T steps and C classes.

    readout: readout membrane u_t, (B, T, C) float64
    scores: class scores (time sum of softmax(u_t) or of u_t), (B, C) float64
    predictions: argmax of scores, (B,) int64
    spikes: per hidden layer, the raster (B, T, n_l) uint8 — only when requested, else None
    stats: engine counters (the event engine reports ``synaptic_events`` and
        ``spikes_per_layer``), else None
    """

    readout: np.ndarray
    scores: np.ndarray
    predictions: np.ndarray
    spikes: list | None = None
    stats: dict | None = None


def softmax(u: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(u - u.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def check_finite(x: np.ndarray) -> None:
    """Raise an EvsimError unless every value of the float64 array ``x`` is finite."""
    # one sum is finite iff every value is (or the sum overflowed: then check them all)
    with np.errstate(over="ignore", invalid="ignore"):
        total = x.sum()
    if not math.isfinite(total) and not np.isfinite(x).all():
        raise EvsimError("input contains NaN or infinite values")


def check_inputs(model: Model, x, lengths=None, *, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch of binned inputs: (B, T, n_inputs) or one sample (T, n_inputs).

    Returns a float64 (B, T, n_inputs) array and int64 lengths (B,).  Steps at and after
    a sample's length are ignored (treated as absent, not as silence).  ``finite=False``
    leaves out :func:`check_finite`, for a caller that checks each part of the batch
    itself before using it (the event engine, on the threads that run the parts).
    """
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise EvsimError(f"input has shape {x.shape}; expected (batch, steps, {model.n_inputs}) or (steps, {model.n_inputs})")
    if x.shape[2] != model.n_inputs:
        raise EvsimError(f"input has {x.shape[2]} channels per step; the model expects {model.n_inputs}")
    if x.dtype.kind not in "biuf":
        raise EvsimError(f"input dtype {x.dtype} is not numeric")
    x = np.asarray(x, dtype=np.float64)  # no copy when it is float64 already
    if finite:
        check_finite(x)
    b, t, _ = x.shape
    if lengths is None:
        lengths = np.full(b, t, np.int64)
    else:
        lengths = np.asarray(lengths, np.int64).reshape(-1)
        if lengths.shape != (b,) or np.any(lengths < 0) or np.any(lengths > t):
            raise EvsimError(f"lengths must be {b} integers in [0, {t}]")
    return x, lengths
