"""AdLIF in training: one step forward and backward (the contract in :mod:`evsim.training.cells`).

    w_t = beta_w w_{t-1} + a v_{t-1} + b s_{t-1}
    v_t = beta * reset(v_{t-1}, s_{t-1}) + g * (I_t - w_t)
    s_t = H(v_t - theta)

Backward, with Gv_t = dL/dv_t and Gw_t = dL/dw_t (totals; carry rows 0 and 1 hold those
of step t+1)::

    Gs_t = gs_t - [not detach] Gv_{t+1} beta (v_t | theta) + b Gw_{t+1}
    Gv_t = Gs_t sg(v_t - theta) + Gv_{t+1} (beta (1 - s_t) | beta) + a Gw_{t+1}
    Gw_t = -g Gv_t + beta_w Gw_{t+1}
    dL/dI_t = g Gv_t
    dL/dbeta += Gv_t reset(v_{t-1}, s_{t-1});   dL/dg += Gv_t (I_t - w_t)
    dL/dbeta_w += Gw_t w_{t-1};  dL/da += Gw_t v_{t-1};  dL/db += Gw_t s_{t-1}
"""

from __future__ import annotations

import numba

from evsim._numba_config import FAST

from ..surrogates import spike_fn
from .lif import membrane_grad, reset_value

N_CARRY = 2


@numba.njit(**FAST)
def fwd_step(v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur, alpha, smooth, v, s, a):
    w_prev, w = a_prev[0], a[0]
    beta_w, ca, cb = extra[0], extra[1], extra[2]
    for i in range(v.shape[0]):
        ww = beta_w[i] * w_prev[i] + ca[i] * v_prev[i] + cb[i] * s_prev[i]
        vv = beta[i] * reset_value(v_prev[i], s_prev[i], theta[i], reset_sub) + gain[i] * (cur[i] - ww)
        w[i] = ww
        v[i] = vv
        s[i] = spike_fn(vv - theta[i], sur, alpha, smooth)


@numba.njit(**FAST)
def bwd_step(t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha, gs, carry, learn,
             g_cur, g_cell):
    gv_next, gw_next = carry[0], carry[1]
    beta_w, ca, cb = extra[0], extra[1], extra[2]
    for i in range(v.shape[1]):
        gvn, gwn = gv_next[i], gw_next[i]
        gv = membrane_grad(gs[i] + cb[i] * gwn, gvn, v[t, i], s[t, i], beta[i], theta[i], reset_sub, detach,
                           sur, alpha) + ca[i] * gwn
        gw = -gain[i] * gv + beta_w[i] * gwn
        gv_next[i] = gv
        gw_next[i] = gw
        g_cur[i] = gain[i] * gv
        if learn:
            w_t = a[t, 0, i]
            if t > 0:
                g_cell[0, i] += gv * reset_value(v[t - 1, i], s[t - 1, i], theta[i], reset_sub)
                g_cell[2, i] += gw * a[t - 1, 0, i]
                g_cell[3, i] += gw * v[t - 1, i]
                g_cell[4, i] += gw * s[t - 1, i]
            g_cell[1, i] += gv * (cur[t, i] - w_t)
