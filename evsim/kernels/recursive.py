"""Numba kernels of the recursive (IIR) basal membrane channels (see evsim.audio.recursive).

One call filters a whole recording by every channel of the group and writes the
membrane rows (every second sample, time-major, channels contiguous) that the hair
cells read.  Per channel ``c`` (coefficients from :func:`evsim.audio.recursive.state_space`)::

    y_c[t] = d_c x[t]  +  sum_u (c1_uc s1_uc[t+1] + c2_uc s2_uc[t+1])  +  sum_r mix_rc f_r[t]

    s_uc[t] = A_uc s_uc[t+1] + (x[t], 0)        (2 states per unit, run from the end backwards)
    f_r[t]  = sum_{lag=1}^{L} basis_r[lag] x[t - lag]        (R shared causal FIRs)

Each unit is one pole pair of the fit in real coordinates: a complex pair ``p`` as the
rotation-scaling ``[[Re p, -Im p], [Im p, Re p]]`` (coupled form: the state is
``(Re V, Im V)`` of the complex one-pole ``V[t] = p V[t+1] + x[t]``), two real poles as
``[[p1, 0], [p2 - p1, p2]]``.  Why not the sections' direct form (``1 + a1 z^-1 + a2
z^-2``): in float32 it lost 1.4-2.4e-5 (relative rms) on channels 0 and 60, whose poles
reach ``|p| = 0.999``, against 1.2-4e-6 for the coupled form, all state in float32 in
both (the float64 kernel is the reference; the fit's own error is ~1e-3).

Loop order: the time loop outside (backwards, two input samples per step: the odd one,
then the even one whose output row is written), the units inside it, one pass over the
channels per unit, contiguous, so that LLVM runs it 8 lanes wide in float32 (one pass per
unit with its own small arrays: with all units in one loop body, or channel blocks
sliced out of larger arrays, the loop stayed scalar, 3-5x slower).
"""

from __future__ import annotations

import numpy as np

from .._numba_config import FAST, import_numba

numba = import_numba()   # before any kernel is defined: installs evsim's cache locator

_VEC = dict(FAST, error_model="numpy")

#: rows of a unit's coefficients: A (4 entries), output weights (2)
A11, A12, A21, A22, C1, C2 = range(6)


@numba.njit(**_VEC)
def tail_filters(padded, basis, out):
    """``out[r, n] = sum_{lag=1}^{L} basis[r, lag - 1] x[2 n - lag]`` for the columns n of
    ``out`` (R, M): the shared causal FIRs at the output rate.  padded: x with L zeros
    before it and at least 2 M - len(x) after it (float32).  One pass per (r, lag) over
    the outputs (vectorised; 3x faster than a dot product per output)."""
    rank, n_rows = out.shape
    taps = basis.shape[1]
    out[:] = 0.0
    for r in range(rank):
        row = out[r]
        for lag in range(1, taps + 1):
            b = basis[r, lag - 1]
            src = padded[taps - lag:taps - lag + 2 * n_rows]
            for n in range(n_rows):
                row[n] += b * src[2 * n]


@numba.njit(**_VEC)
def _tail_row(direct, mix, tails, n, x_even, acc):
    """acc = direct x[t] + sum_r mix[r] tails[r, n] (the direct term and the tail mix of
    row n), four tail filters per pass over the channels (R a multiple of 4)."""
    for c in range(acc.size):
        acc[c] = direct[c] * x_even
    for r in range(0, mix.shape[0], 4):
        f0, f1, f2, f3 = tails[r, n], tails[r + 1, n], tails[r + 2, n], tails[r + 3, n]
        for c in range(acc.size):
            acc[c] += mix[r, c] * f0 + mix[r + 1, c] * f1 + mix[r + 2, c] * f2 + mix[r + 3, c] * f3


@numba.njit(**_VEC)
def _unit_step(k, s, acc, x_odd, x_even):
    """One unit of every channel over x[t + 1] (state update), the output at t (into
    acc), then x[t]."""
    for c in range(acc.size):
        a11, a12, a21, a22 = k[A11, c], k[A12, c], k[A21, c], k[A22, c]
        p, q = s[0, c], s[1, c]
        s1 = a11 * p + a12 * q + x_odd
        s2 = a21 * p + a22 * q
        acc[c] += k[C1, c] * s1 + k[C2, c] * s2
        s[0, c] = a11 * s1 + a12 * s2 + x_even
        s[1, c] = a21 * s1 + a22 * s2


@numba.njit(**_VEC)
def recursive_rows(x, units, direct, mix, tails, state, acc, out):
    """Rows ``out[n, c] = y_c[2 n]`` for n = 0 .. M - 1 (module docstring).

    x: (N,) float32, the recording (zeros after its end are implied); units: (U, 6, C)
    float32 (rows :data:`A11` .. :data:`C2`); direct: (C,); mix: (R, C), R a multiple of
    4 (zero rows pad it); tails: (R, M), :func:`tail_filters` of x; state: (U, 2, C) float32 work array (zeroed here); acc:
    (C,) float32 work array; out: (M, C) float32."""
    n_rows = out.shape[0]
    state[:] = 0.0
    for n in range(n_rows - 1, -1, -1):
        t = 2 * n
        x_odd = x[t + 1] if t + 1 < x.size else np.float32(0.0)
        x_even = x[t] if t < x.size else np.float32(0.0)
        _tail_row(direct, mix, tails, n, x_even, acc)
        for u in range(units.shape[0]):
            _unit_step(units[u], state[u], acc, x_odd, x_even)
        out[n, :] = acc
