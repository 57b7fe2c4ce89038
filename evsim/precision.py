"""The arithmetic precision both engines share: ``"float64"`` (the default) or ``"float32"``.

In a precision, the engines' membranes, synaptic currents, readout membranes and every
sum that forms them are of that type; the model's weights are float32 in both (a model
file stores float32).  Class scores -- a sum over steps of the readout's softmax (or
membrane) -- are accumulated in float64 in both precisions, and every engine returns its
readout trace as float64 (a float32 trace widened exactly).

* ``float64``: the model's float32 parameters widened once, every operation in float64.
  The two engines differ only in the order they sum a step's synaptic inputs (rounding
  ~1e-16 relative), so a spike can differ only where a membrane lies within rounding of
  its threshold.
* ``float32``: the same operations, in float32: the event engine's fan-out adds 8
  float32 weights per AVX2 instruction instead of 4 float64 ones.  The same rule holds,
  with float32's rounding (~6e-8 relative per operation): event = dense up to threshold
  ties, which are ~2^29 times wider than in float64.

Pure Python (no NumPy at import), so that ``evsim --help`` can list the choices.
"""

from __future__ import annotations

from .errors import EvsimError

#: the precisions, default first
PRECISIONS = ("float64", "float32")
DEFAULT_PRECISION = "float64"


def check_precision(precision) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; else :class:`EvsimError`."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise EvsimError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


def float_dtype(precision):
    """The NumPy dtype of ``precision`` (raises for an unknown one)."""
    import numpy as np

    return np.dtype(check_precision(precision))     # each name in PRECISIONS is a NumPy dtype's


def require_float64(precision: str) -> None:
    """Models with CS-GRU layers run in float64 only (:mod:`evsim.stack`): raise for any
    other precision."""
    if check_precision(precision) != "float64":
        raise EvsimError(f"precision {precision!r} is not available for models with CS-GRU layers; "
                         "they run in float64 (precision='float64')")
