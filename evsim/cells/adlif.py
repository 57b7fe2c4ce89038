"""The adaptive LIF cell (AdLIF): a second state variable, the adaptation current w.

    w_t = beta_w * w_{t-1} + a * v_{t-1} + b * s_{t-1}      (v_{t-1} before its reset)
    v_t = beta * reset(v_{t-1}, s_{t-1}) + g * (I_t - w_t)
    s_t = H(v_t - theta)
    reset(v, s) = v (1 - s)  ("zero")  |  v - theta s  ("subtract")

``a`` couples the membrane into w (subthreshold adaptation: for a > 0 a depolarised
membrane builds up a current that pulls it back, which with ``beta_w`` makes the neuron a
damped oscillator, a resonator); ``b`` is the spike-triggered adaptation (each spike adds
b to w: spike-frequency adaptation).  With a = b = 0 the cell is LIF.

This is the update order of Bittar & Garner (2022, "A surrogate gradient spiking baseline
for speech command recognition", their AdLIF/RadLIF code): w first, from the previous
step's state, then v with the new w_t -- each variable is updated with the other's newest
value, the symplectic-Euler form that Baronig et al. (2024, "Advancing spatio-temporal
processing in spiking neural networks through adaptation") show keeps adLIF networks
stable where the Euler-forward form (both from step t-1) does not.  With g = 1 - beta and
the subtractive reset at theta = 1 it is Bittar & Garner's AdLIF exactly.

Per-neuron parameters: beta, threshold, gain as for LIF, and ``beta_w`` (adaptation
decay, in [0, 1]), ``a`` and ``b`` (any finite values in a file; training keeps them in
the bounds of ``KIND``, which :class:`evsim.training.config.NetworkConfig` can change).
State: v, s and w.

Training bounds: Bittar & Garner's, except ``a >= 0``.  Below threshold the cell is the
linear map (v, w) -> (v', w') with trace beta + beta_w - g a and determinant
beta beta_w < 1; both eigenvalues lie inside the unit circle (Jury) exactly when
-(1 - beta)(1 - beta_w) < g a < (1 + beta)(1 + beta_w).  With g = 1 - beta the lower
limit is a > -(1 - beta_w), a few hundredths for Bittar & Garner's beta_w: most of their
range a in [-1, 0) is unstable (beta = 0.9, beta_w = 0.98: eigenvalue 1.05 at a = -0.1,
1.30 at a = -1).  The membrane then runs away, to -1e13 within a 100-step sample of the
spoken digits, with gradients of 1e15, and a network initialised in that range never
left chance (5 % for 20 classes).
Baronig et al. (2024) keep a in [0, 1] (in their scaling a (1 - beta_w) q) for the same
reason.  Training starts with weak adaptation, a in [0, 0.05] and b in [0, 0.2] (w pulls
the membrane down by up to a / (1 - beta_w) at rest, about 6x for the slowest beta_w at
a = 0.05), and learns it from there.

Backward pass through time (training), with Gv_t = dL/dv_t and Gw_t = dL/dw_t (totals;
carry rows 0 and 1 hold those of step t+1)::

    Gs_t = gs_t - [not detach] Gv_{t+1} beta (v_t | theta) + b Gw_{t+1}
    Gv_t = Gs_t sg(v_t - theta) + Gv_{t+1} (beta (1 - s_t) | beta) + a Gw_{t+1}
    Gw_t = -g Gv_t + beta_w Gw_{t+1}
    dL/dI_t = g Gv_t
    dL/dbeta += Gv_t reset(v_{t-1}, s_{t-1});   dL/dg += Gv_t (I_t - w_t)
    dL/dbeta_w += Gw_t w_{t-1};  dL/da += Gw_t v_{t-1};  dL/db += Gw_t s_{t-1}
"""

from __future__ import annotations

import math

import numpy as np

from .._numba_config import EXACT_CALLEE, TRAIN_CALLEE, njit
from ..surrogates import spike_fn, step_fn, surrogate_grad_row
from . import CellKind, Param, TrainingDefaults, reset_reference
from ._common import membrane_grad, reset_value, spikes_from_flags


def reference_step(state, current, p, reset, active):
    """One step of the dense NumPy reference (see :mod:`evsim.cells`)."""
    v_prev, s_prev = state["v"], state["s"]
    w = p["beta_w"] * state["w"] + p["a"] * v_prev + p["b"] * s_prev
    v = p["beta"] * reset_reference(v_prev, s_prev, p["threshold"], reset) + p["gain"] * (current - w)
    s = (v >= p["threshold"]).astype(v.dtype) * active   # in the precision's type
    state["v"], state["s"], state["w"] = v, s, w
    return s


@njit(**EXACT_CALLEE)
def event_update(v, aux, cur, bias, beta, theta, gain, extra, subtract, spk):
    """One AdLIF step of the event engine.  ``aux[0]`` holds w_t (computed at the end of
    the previous step), ``extra`` the rows beta_w, a, b.  The next step's w is computed
    here, from v_t before its reset, so the stored v can be reset as for LIF."""
    w = aux[0]
    beta_w, a, b = extra[0], extra[1], extra[2]
    fired = 0
    for i in range(v.shape[0]):
        # membrane update (v holds reset(v_{t-1}, s_{t-1}), w holds w_t)
        v[i] = beta[i] * v[i] + gain[i] * ((cur[i] + bias[i]) - w[i])
        # adaptation of the next step: w_{t+1} = beta_w w_t + a v_t + b s_t (the
        # reference's operations, in its order)
        spk[i] = v[i] >= theta[i]     # the spike flag, for spikes_from_flags
        # (in float32, b * s_i is float64 and its one addition is rounded twice, to float64
        # then to float32: the float32 sum exactly, as 53 >= 2 * 24 + 2 bits)
        s_i = 1.0 if v[i] >= theta[i] else 0.0
        fired += spk[i]
        w[i] = beta_w[i] * w[i] + a[i] * v[i] + b[i] * s_i
    # spikes, reset
    return spikes_from_flags(v, theta, subtract, spk, fired)


@njit(**TRAIN_CALLEE)
def fwd_step(v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur, alpha, smooth, v, s, a):
    w_prev, w = a_prev[0], a[0]
    beta_w, ca, cb = extra[0], extra[1], extra[2]
    for i in range(v.shape[0]):
        ww = beta_w[i] * w_prev[i] + ca[i] * v_prev[i] + cb[i] * s_prev[i]
        vv = beta[i] * reset_value(v_prev[i], s_prev[i], theta[i], reset_sub) + gain[i] * (cur[i] - ww)
        w[i] = ww
        v[i] = vv
        s[i] = spike_fn(vv - theta[i], sur, alpha, smooth) if smooth else step_fn(vv - theta[i])


@njit(**TRAIN_CALLEE)
def bwd_step(t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha, gs, carry, learn,
             g_cur, g_cell):
    gv_next, gw_next = carry[0], carry[1]
    beta_w, ca, cb = extra[0], extra[1], extra[2]
    n = v.shape[1]
    # surrogate derivatives sg(v_t - theta), in g_cur until it gets dL/dI_t
    for i in range(n):
        g_cur[i] = v[t, i] - theta[i]
    surrogate_grad_row(g_cur, sur, alpha)
    for i in range(n):
        gvn, gwn = gv_next[i], gw_next[i]
        gv = membrane_grad(gs[i] + cb[i] * gwn, gvn, v[t, i], s[t, i], g_cur[i], beta[i], theta[i], reset_sub,
                           detach) + ca[i] * gwn
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


#: time constants in steps, as Bittar & Garner give their bounds
_TAU_5_25 = (float(np.exp(-1 / 5)), float(np.exp(-1 / 25)))
_TAU_30_120 = (float(np.exp(-1 / 30)), float(np.exp(-1 / 120)))

KIND = CellKind(
    name="adlif", code=1, display="AdLIF",
    params=(Param("beta_w", valid=(0.0, 1.0), train=_TAU_30_120, draw=(0.0, 1.0)),
            Param("a", valid=(-math.inf, math.inf), train=(0.0, 1.0), init=(0.0, 0.05), draw=(-1.0, 1.0)),
            Param("b", valid=(-math.inf, math.inf), train=(0.0, 2.0), init=(0.0, 0.2), draw=(0.0, 2.0))),
    state=("w",),
    training=TrainingDefaults(learn_beta=True, beta_range=_TAU_5_25, beta_init=True, gain="1-beta"),
    reference_step=reference_step, event_update=event_update, fwd_step=fwd_step, bwd_step=bwd_step)
