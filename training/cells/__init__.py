"""Training parts of the registered cells (:mod:`evsim.cells`): the dispatchers on the cell
code, generated from the registry (each raises for a code it does not know), and the rows
of each cell's backward carry.  The steps themselves live in the cell modules,
``evsim/cells/<name>.py``.

Contract of a cell's training steps; both are ``@numba.njit`` and act on one sample's one
step, n neurons:

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
    (row 0: dL/dv_{t+1}; a cell with extra state adds rows: ``CellKind.carry``), updated
    in place to step t's; writes ``g_cur`` (n,) = dL/dI_t and, when ``learn``, adds the
    per-neuron parameter gradients of this step to ``g_cell`` (2 + P, n): row 0 dL/dbeta,
    row 1 dL/dgain, rows 2.. the extra parameters in the cell's order.
"""

from __future__ import annotations

from evsim._numba_config import TRAIN
from evsim.cells import CELLS, generate_dispatch

#: rows of the backward carry of each cell, by name
N_CARRY = {name: kind.carry for name, kind in CELLS.items()}

#: cell_fwd(kind, v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur,
#: alpha, smooth, v, s, a): the cell's ``fwd_step``
cell_fwd = generate_dispatch(
    "cell_fwd", "v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur, alpha, smooth, v, s, a",
    lambda c: (c.fwd_step, "v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur, alpha, "
                           "smooth, v, s, a"), TRAIN)

#: cell_bwd(kind, t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha,
#: gs, carry, learn, g_cur, g_cell): the cell's ``bwd_step``
cell_bwd = generate_dispatch(
    "cell_bwd", "t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha, gs, carry, learn, "
                "g_cur, g_cell",
    lambda c: (c.bwd_step, "t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha, gs, "
                           "carry, learn, g_cur, g_cell"), TRAIN)
