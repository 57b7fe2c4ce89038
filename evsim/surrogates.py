"""Surrogate derivatives of the spike function, chosen by name (used by training; here in
``evsim`` because each cell module, :mod:`evsim.cells`, holds its training step too, and
``evsim`` never imports ``training``; :mod:`evsim.training.surrogates` re-exports it).

A spike is ``s = H(x)`` with ``x = v - theta`` and ``H(0) = 1``.  H has no useful
derivative, so the backward pass uses a *surrogate* ``dH/dx ~ sg(x; alpha)``.  Each
surrogate here comes with its *primitive*, the smooth function whose derivative it is.
Running the forward pass with the primitive instead of H (``NetworkConfig.smooth_forward``)
makes the whole network smooth and the hand-written backward pass its exact gradient, so
finite differences can check every gradient (tests/training/test_train_gradients.py).

===============  ==========================================  =================================
name             surrogate sg(x; alpha)                      primitive (forward when smooth)
===============  ==========================================  =================================
``arctan``       (alpha/2) / (1 + (pi alpha x / 2)^2)         1/2 + arctan(pi alpha x / 2) / pi
``fast_sigmoid`` 1 / (1 + alpha |x|)^2                        1/2 + x / (1 + alpha |x|)
``triangle``     alpha * max(0, 1 - alpha |x|)                piecewise quadratic, 0 .. 1
``inverse_       1 / (1 + alpha x^2)                          (atan(sqrt(alpha) x) + pi/2) / sqrt(alpha)
quadratic``
===============  ==========================================  =================================

``arctan`` with alpha = 5 is the method's (DelRec, CRSNN).  ``triangle`` with alpha = 1 is
``max(0, 1 - |x|)``, the SSC variant; arctan and triangle integrate to 1, fast_sigmoid (the
SuperSpike / snntorch form, slope alpha) to 2 / alpha.  ``inverse_quadratic`` with alpha =
gamma = 10 is the CS-GRU code's unnormalised arctan-type surrogate (peak 1, integral
pi / sqrt(alpha)).

The numba kernels dispatch on the integer ``code``; adding a surrogate means adding its two
functions here, an entry in :data:`SURROGATES` and a branch in :func:`surrogate_grad` and
:func:`spike_fn` (whose last line raises for a code they do not know).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from evsim._numba_config import EXACT_TRAIN_CALLEE, njit
from evsim.errors import EvsimError

__all__ = ["Surrogate", "SURROGATES", "get_surrogate", "spike_fn", "surrogate_grad", "surrogate_grad_row"]



@njit(**EXACT_TRAIN_CALLEE)
def arctan_grad(x, alpha):
    y = 0.5 * math.pi * alpha * x
    return 0.5 * alpha / (1.0 + y * y)


@njit(**EXACT_TRAIN_CALLEE)
def arctan_primitive(x, alpha):
    return 0.5 + math.atan(0.5 * math.pi * alpha * x) / math.pi


@njit(**EXACT_TRAIN_CALLEE)
def fast_sigmoid_grad(x, alpha):
    d = 1.0 + alpha * abs(x)
    return 1.0 / (d * d)


@njit(**EXACT_TRAIN_CALLEE)
def fast_sigmoid_primitive(x, alpha):
    return 0.5 + x / (1.0 + alpha * abs(x))


@njit(**EXACT_TRAIN_CALLEE)
def triangle_grad(x, alpha):
    return alpha * max(0.0, 1.0 - alpha * abs(x))


@njit(**EXACT_TRAIN_CALLEE)
def triangle_primitive(x, alpha):
    y = alpha * x
    if y <= -1.0:
        return 0.0
    if y < 0.0:
        return 0.5 * (1.0 + y) * (1.0 + y)
    if y < 1.0:
        return 1.0 - 0.5 * (1.0 - y) * (1.0 - y)
    return 1.0


@njit(**EXACT_TRAIN_CALLEE)
def inverse_quadratic_grad(x, alpha):
    return 1.0 / (1.0 + alpha * x * x)


@njit(**EXACT_TRAIN_CALLEE)
def inverse_quadratic_primitive(x, alpha):
    root = math.sqrt(alpha)
    return (math.atan(root * x) + 0.5 * math.pi) / root


class Surrogate(NamedTuple):
    """code: integer the kernels dispatch on; grad(x, alpha): the surrogate dH/dx;
    primitive(x, alpha): the smooth function whose derivative ``grad`` is;
    default_alpha: the usual alpha."""

    code: int
    grad: Callable
    primitive: Callable
    default_alpha: float


#: surrogate derivatives keyed by name
SURROGATES: dict[str, Surrogate] = {
    "arctan": Surrogate(0, arctan_grad, arctan_primitive, 5.0),
    "fast_sigmoid": Surrogate(1, fast_sigmoid_grad, fast_sigmoid_primitive, 25.0),
    "triangle": Surrogate(2, triangle_grad, triangle_primitive, 1.0),
    "inverse_quadratic": Surrogate(3, inverse_quadratic_grad, inverse_quadratic_primitive, 10.0),
}


def get_surrogate(name: str) -> Surrogate:
    """The surrogate called ``name``; an unknown name raises an error listing the valid ones."""
    try:
        return SURROGATES[name]
    except (KeyError, TypeError):
        raise EvsimError(f"unknown surrogate {name!r}; valid surrogates: {', '.join(sorted(SURROGATES))}") from None


@njit(**EXACT_TRAIN_CALLEE)
def surrogate_grad(x, code, alpha):
    """dH/dx surrogate number ``code`` (see :data:`SURROGATES`)."""
    if code == 0:
        return arctan_grad(x, alpha)
    if code == 1:
        return fast_sigmoid_grad(x, alpha)
    if code == 3:
        return inverse_quadratic_grad(x, alpha)
    if code == 2:
        return triangle_grad(x, alpha)
    raise ValueError("unknown surrogate code (see evsim.surrogates.SURROGATES)")


@njit(**EXACT_TRAIN_CALLEE)
def step_fn(x):
    """H(x): 1 when x >= 0, else 0 (the forward nonlinearity of training)."""
    return 1.0 if x >= 0.0 else 0.0


@njit(**EXACT_TRAIN_CALLEE)
def spike_fn(x, code, alpha, smooth):
    """The forward nonlinearity: H(x) (1 when x >= 0), or the surrogate's primitive when
    ``smooth`` (gradient checks only)."""
    if not smooth:
        return step_fn(x)
    if code == 0:
        return arctan_primitive(x, alpha)
    if code == 1:
        return fast_sigmoid_primitive(x, alpha)
    if code == 3:
        return inverse_quadratic_primitive(x, alpha)
    if code == 2:
        return triangle_primitive(x, alpha)
    raise ValueError("unknown surrogate code (see evsim.surrogates.SURROGATES)")


@njit(**EXACT_TRAIN_CALLEE)
def surrogate_grad_row(x, code, alpha):
    """:func:`surrogate_grad` of every entry of the row ``x`` (n,), in place.  One dispatch
    on ``code`` for the row, then a loop without branches that LLVM vectorises (the
    per-entry dispatch of :func:`surrogate_grad` has a ``raise`` inside the loop)."""
    n = x.shape[0]
    if code == 0:
        for i in range(n):
            x[i] = arctan_grad(x[i], alpha)
    elif code == 1:
        for i in range(n):
            x[i] = fast_sigmoid_grad(x[i], alpha)
    elif code == 3:
        for i in range(n):
            x[i] = inverse_quadratic_grad(x[i], alpha)
    elif code == 2:
        for i in range(n):
            x[i] = triangle_grad(x[i], alpha)
    else:
        raise ValueError("unknown surrogate code (see evsim.surrogates.SURROGATES)")
