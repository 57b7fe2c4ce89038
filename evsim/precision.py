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

The command line adds ``"auto"`` (its default, :func:`resolve_precision`): float32 for a
model whose layers all run in float32 (every neuron-cell model), float64 for a model with
CS-GRU layers (float64 only).  The library's default stays float64, the oracle whose
outputs the golden tests pin bit for bit.  Why the command line runs float32: on the
1000 spoken-digit test samples both built-in models give the same 1000 predictions in
float32 as in float64, 1.14-1.20x faster on the event engine (``benchmarks/README.md``,
"Precision"); ``--precision float64`` gives the oracle's outputs.

Pure Python (no NumPy at import), so that ``evsim --help`` can list the choices.
"""

from __future__ import annotations

from .errors import EvsimError

#: the precisions, default first
PRECISIONS = ("float64", "float32")
DEFAULT_PRECISION = "float64"
#: the command line's choices (a precision, or "auto") and its default
CLI_PRECISIONS = ("auto",) + PRECISIONS
CLI_DEFAULT_PRECISION = "auto"


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


def resolve_precision(precision, model) -> str:
    """The precision ``model`` runs in for the command line's ``precision``: ``"auto"`` is
    float32 unless a layer of ``model`` is a CS-GRU layer (float64 only), then float64;
    any other value is checked (:func:`check_precision`) and returned."""
    if precision == "auto":
        from .model import HiddenLayer

        cells_only = all(isinstance(layer, HiddenLayer) for layer in getattr(model, "layers", ()))
        return "float32" if cells_only else "float64"
    return check_precision(precision)
