"""The arithmetic precision both engines share: ``"float64"`` (the library's default),
``"float32"``, or ``"auto"`` (the command line's default: float32 where the model allows it).

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

``"auto"`` (:func:`resolve_precision`; every function that takes a precision takes it,
and it is the default of ``evsim run``, ``batch`` and ``listen``): float32 for a model
whose layers all run in float32 (every neuron-cell model), float64 for a model with
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
#: what a function or command taking a precision accepts: a precision, or "auto"
PRECISION_OPTIONS = ("auto",) + PRECISIONS
#: the command line's choices and its default
CLI_PRECISIONS = PRECISION_OPTIONS
CLI_DEFAULT_PRECISION = "auto"


def check_precision(precision) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; else :class:`EvsimError`."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise EvsimError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


def check_precision_option(precision) -> str:
    """``precision`` if it is one of :data:`PRECISION_OPTIONS` (a precision or ``"auto"``,
    resolved once the model is known); else :class:`EvsimError`."""
    if not isinstance(precision, str) or precision not in PRECISION_OPTIONS:
        raise EvsimError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISION_OPTIONS)}")
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
    """The precision ``model`` runs in for ``precision`` (one of :data:`PRECISION_OPTIONS`):
    ``"auto"`` is float32 if every layer of ``model`` is a neuron-cell layer (they all run
    in float32), float64 if one is a CS-GRU layer (float64 only); float64 and float32 are
    returned as they are; anything else raises :class:`EvsimError`."""
    if check_precision_option(precision) != "auto":
        return precision
    from .model import has_stack_layers

    return "float64" if has_stack_layers(model) else "float32"
