"""The leaky integrate-and-fire cell (DelRec, CRSNN): one state variable, the membrane.

    v_t = beta * reset(v_{t-1}, s_{t-1}) + g * I_t
    s_t = H(v_t - theta)                    a spike when v_t >= theta
    reset(v, s) = v (1 - s)  ("zero")  |  v - theta s  ("subtract")

Per-neuron parameters: beta (decay, in [0, 1]), threshold theta (> 0), gain g; no extra
parameters and no extra state.  Training keeps beta fixed (beta = 1 - 1/tau, as DelRec and
CRSNN do) unless ``learn_beta``, then bounded to tau in [1, 25] steps.

Backward pass through time (training)::

    dL/ds_t (total) = gs_t - [not detach] dL/dv_{t+1} * beta * (v_t | theta)
    dL/dv_t = dL/ds_t * sg(v_t - theta) + dL/dv_{t+1} * (beta (1 - s_t) | beta)
    dL/dI_t = g dL/dv_t
    dL/dbeta = sum_t dL/dv_t * reset(v_{t-1}, s_{t-1});  dL/dg = sum_t dL/dv_t * I_t
"""

from __future__ import annotations

import numpy as np

from .._numba_config import EXACT_CALLEE, TRAIN_CALLEE, njit
from ..surrogates import spike_fn, step_fn, surrogate_grad_row
from . import CellKind, TrainingDefaults, reset_reference
from ._common import REST_BOUND, membrane_grad, reset_spikes, reset_value, spikes_of_word


def reference_step(state, current, p, reset, active):
    """One step of the dense NumPy reference (see :mod:`evsim.cells`)."""
    v = p["beta"] * reset_reference(state["v"], state["s"], p["threshold"], reset) + p["gain"] * current
    s = (v >= p["threshold"]).astype(v.dtype) * active   # in the precision's type
    state["v"], state["s"] = v, s
    return s


@njit(**EXACT_CALLEE)
def event_update(v, aux, cur, bias, beta, theta, gain, extra, subtract, spk):
    """v = beta * v + g * (input + b); spike where v >= theta, then reset (``aux`` and
    ``extra`` are stand-ins: LIF has no extra state or parameters)."""
    # membrane update (v already holds reset(v_{t-1}, s_{t-1})) and spikes, 64 neurons at
    # a time: their spike flags packed into a word in the (vectorised) update loop, then
    # one step per spike (as spikes_from_flags, without writing and reading back a flag
    # per neuron); the last n % 64 neurons one by one, branch-free
    n = v.shape[0]
    whole = n - n % 64
    k = 0
    for g in range(0, whole, 64):
        word = np.uint64(0)
        for j in range(64):
            i = g + j
            v_i = beta[i] * v[i] + gain[i] * (cur[i] + bias[i])
            v[i] = v_i
            word |= np.uint64(v_i >= theta[i]) << np.uint64(j)
        k = spikes_of_word(word, g, spk, k)
    for i in range(whole, n):
        v_i = beta[i] * v[i] + gain[i] * (cur[i] + bias[i])
        v[i] = v_i
        spk[k] = i
        k += v_i >= theta[i]
    # reset
    reset_spikes(v, theta, subtract, spk, k)
    return k


@njit(**EXACT_CALLEE)
def event_rests(v, aux, bias, beta, theta, gain, extra, bound):
    """True when no neuron of the layer can spike again while its input stays zero.

    With no input :func:`event_update` computes ``v' = f(v) = fl(fl(beta v) + fl(g b))``
    (the current ``0 + b`` is ``b``; for b = -0 a zero's sign, which no comparison sees).
    For beta >= 0, f is non-decreasing (a product by beta >= 0, the addition of a constant
    and each rounding are), so if the stored membrane (reset applied) is ``v <= M`` and
    ``f(M) <= M`` for some ``M < theta``, then ``f(v) <= f(M) <= M`` and by induction the
    membrane stays at or below M: no spike, ever, and so no reset.  M is ``theta * (1 -
    2^-20)`` rounded to the precision's type (``bound``, (n,) workspace: the rounding), and
    f(M) is computed with the update's own operations in that type.  A neuron whose
    membrane settles within 2^-20 theta of its threshold is not proven (conservative:
    the run goes on).  Beyond the docstring's proof, nothing is assumed: a beta < 0, a
    NaN or a threshold <= 0 fails a test below and the layer does not rest."""
    for i in range(v.shape[0]):
        bound[i] = theta[i] * REST_BOUND         # M, in the precision's type
        m = bound[i]
        if not (beta[i] >= 0.0 and m < theta[i] and v[i] <= m and beta[i] * m + gain[i] * bias[i] <= m):
            return False
    return True


@njit(**TRAIN_CALLEE)
def fwd_step(v_prev, s_prev, a_prev, cur, beta, gain, theta, extra, reset_sub, sur, alpha, smooth, v, s, a):
    if smooth:   # the surrogate's primitive (gradient checks)
        for i in range(v.shape[0]):
            vv = _membrane(v_prev[i], s_prev[i], cur[i], beta[i], gain[i], theta[i], reset_sub)
            v[i] = vv
            s[i] = spike_fn(vv - theta[i], sur, alpha, smooth)
    else:        # H: no call, no branch, the loop vectorises
        for i in range(v.shape[0]):
            vv = _membrane(v_prev[i], s_prev[i], cur[i], beta[i], gain[i], theta[i], reset_sub)
            v[i] = vv
            s[i] = step_fn(vv - theta[i])


@njit(**TRAIN_CALLEE)
def _membrane(v_prev, s_prev, cur, beta, gain, theta, reset_sub):
    """v_t = beta reset(v_{t-1}, s_{t-1}) + g I_t of one neuron."""
    if reset_sub:
        return beta * (v_prev - theta * s_prev) + gain * cur
    return beta * v_prev * (1.0 - s_prev) + gain * cur


@njit(**TRAIN_CALLEE)
def bwd_step(t, v, s, a, cur, beta, gain, theta, extra, reset_sub, detach, sur, alpha, gs, carry, learn,
             g_cur, g_cell):
    gv_next = carry[0]
    n = v.shape[1]
    # surrogate derivatives sg(v_t - theta), in g_cur until it gets dL/dI_t
    for i in range(n):
        g_cur[i] = v[t, i] - theta[i]
    surrogate_grad_row(g_cur, sur, alpha)
    # dL/dv_t, dL/dI_t (and the parameters' gradients); one loop each way, no branch inside
    if learn:
        for i in range(n):
            gv = membrane_grad(gs[i], gv_next[i], v[t, i], s[t, i], g_cur[i], beta[i], theta[i], reset_sub, detach)
            gv_next[i] = gv
            g_cur[i] = gain[i] * gv
            if t > 0:
                g_cell[0, i] += gv * reset_value(v[t - 1, i], s[t - 1, i], theta[i], reset_sub)
            g_cell[1, i] += gv * cur[t, i]
    else:
        for i in range(n):
            gv = membrane_grad(gs[i], gv_next[i], v[t, i], s[t, i], g_cur[i], beta[i], theta[i], reset_sub, detach)
            gv_next[i] = gv
            g_cur[i] = gain[i] * gv


KIND = CellKind(
    name="lif", code=0, display="LIF", params=(), state=(),
    training=TrainingDefaults(learn_beta=False, beta_range=(0.0, 0.96), beta_init=False, gain=None),
    reference_step=reference_step, event_update=event_update, fwd_step=fwd_step, bwd_step=bwd_step,
    event_rests=event_rests)
