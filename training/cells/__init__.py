"""Training parts of the registered cells (:mod:`evsim.cells`): one step of the forward
pass and of its backward pass through time, per cell, and the dispatchers.

Contract of a cell's training module ``training/cells/<name>.py`` (``lif.py`` is the
example); all functions are ``@numba.njit`` and act on one sample's one step, n neurons:

``fwd_step(v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur, alpha,
smooth, v, s, a)``
    From the previous step's membrane ``v_prev``, spikes ``s_prev``, extra state
    ``a_prev`` (S, n) and the input current ``cur`` = I_t (n,), write v_t, s_t and the new
    extra state into ``v``, ``s``, ``a``.  ``s_t = spike_fn(v_t - theta, sur, alpha, smooth)``.

``bwd_step(t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha, gs,
carry, learn, g_cur, g_cell)``
    ``v, s`` (T, n), ``a`` (T, S, n), ``cur`` (T, n): the sample's recorded forward;
    ``gs`` (n,) dL/ds_t from outside the cell (next layer, readout, recurrence, penalty);
    ``carry`` (C, n) the gradients flowing back from step t+1 into the state of step t
    (row 0: dL/dv_{t+1}; a cell with extra state adds rows), updated in place to step t's;
    writes ``g_cur`` (n,) = dL/dI_t and, when ``learn``, adds the per-neuron parameter
    gradients of this step to ``g_cell`` (2 + P, n): row 0 dL/dbeta, row 1 dL/dgain,
    rows 2.. the extra parameters in the cell's order.

``N_CARRY``: the rows of ``carry``.

A new cell adds one branch to :func:`cell_fwd` and :func:`cell_bwd` below (whose last
line raises for a code they do not know) and its ``N_CARRY`` to :data:`N_CARRY`.
"""

from __future__ import annotations

import numba

from evsim._numba_config import FAST
from evsim.cells import CELL_CODE

from . import adlif, lif

CELL_LIF, CELL_ADLIF = CELL_CODE["lif"], CELL_CODE["adlif"]

#: rows of the backward carry of each cell, by name
N_CARRY = {"lif": lif.N_CARRY, "adlif": adlif.N_CARRY}


@numba.njit(**FAST)
def cell_fwd(kind, v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur, alpha, smooth,
             v, s, a):
    if kind == CELL_LIF:
        lif.fwd_step(v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur, alpha, smooth, v, s, a)
    elif kind == CELL_ADLIF:
        adlif.fwd_step(v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur, alpha, smooth, v, s, a)
    else:
        raise ValueError("unknown cell code (see evsim.cells.CELL_CODE)")


@numba.njit(**FAST)
def cell_bwd(kind, t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha, gs, carry, learn,
             g_cur, g_cell):
    if kind == CELL_LIF:
        lif.bwd_step(t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha, gs, carry, learn,
                     g_cur, g_cell)
    elif kind == CELL_ADLIF:
        adlif.bwd_step(t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha, gs, carry, learn,
                       g_cur, g_cell)
    else:
        raise ValueError("unknown cell code (see evsim.cells.CELL_CODE)")
