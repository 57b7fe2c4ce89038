"""LIF in training: one step forward and backward (the contract in :mod:`evsim.training.cells`).

    v_t = beta * reset(v_{t-1}, s_{t-1}) + g * I_t      reset: v (1 - s)  |  v - theta s
    s_t = H(v_t - theta)

    dL/ds_t (total) = gs_t - [not detach] dL/dv_{t+1} * beta * (v_t | theta)
    dL/dv_t = dL/ds_t * sg(v_t - theta) + dL/dv_{t+1} * (beta (1 - s_t) | beta)
    dL/dI_t = g dL/dv_t
    dL/dbeta = sum_t dL/dv_t * reset(v_{t-1}, s_{t-1});  dL/dg = sum_t dL/dv_t * I_t
"""

from __future__ import annotations

import numba

from evsim._numba_config import FAST

from ..surrogates import spike_fn, surrogate_grad

N_CARRY = 1


@numba.njit(**FAST)
def reset_value(v, s, theta, reset_sub):
    """reset(v, s): ``v - theta s`` (subtract) or ``v (1 - s)`` (zero)."""
    return v - theta * s if reset_sub else v * (1.0 - s)


@numba.njit(**FAST)
def membrane_grad(g, gvn, v_t, s_t, beta, theta, reset_sub, detach, sur, alpha):
    """dL/dv_t of one neuron from ``g`` (dL/ds_t from above and the cell's other paths)
    and ``gvn`` (dL/dv_{t+1}): the reset's path (unless detached), the surrogate, the leak.
    Shared by every cell whose membrane follows ``v_t = beta reset(v_{t-1}, s_{t-1}) + ...``."""
    if not detach:
        g -= gvn * beta * (theta if reset_sub else v_t)
    hold = beta if reset_sub else beta * (1.0 - s_t)
    return g * surrogate_grad(v_t - theta, sur, alpha) + gvn * hold


@numba.njit(**FAST)
def fwd_step(v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur, alpha, smooth, v, s, a):
    for i in range(v.shape[0]):
        if reset_sub:
            vv = beta[i] * (v_prev[i] - theta[i] * s_prev[i]) + gain[i] * cur[i]
        else:
            vv = beta[i] * v_prev[i] * (1.0 - s_prev[i]) + gain[i] * cur[i]
        v[i] = vv
        s[i] = spike_fn(vv - theta[i], sur, alpha, smooth)


@numba.njit(**FAST)
def bwd_step(t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha, gs, carry, learn,
             g_cur, g_cell):
    gv_next = carry[0]
    for i in range(v.shape[1]):
        gv = membrane_grad(gs[i], gv_next[i], v[t, i], s[t, i], beta[i], theta[i], reset_sub, detach, sur, alpha)
        gv_next[i] = gv
        g_cur[i] = gain[i] * gv
        if learn:
            if t > 0:
                g_cell[0, i] += gv * reset_value(v[t - 1, i], s[t - 1, i], theta[i], reset_sub)
            g_cell[1, i] += gv * cur[t, i]
