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
the bounds of :class:`evsim.training.config.NetworkConfig`).  State: v, s and w.
"""

from __future__ import annotations

import numba
import numpy as np

from .._numba_config import EXACT
from . import CellKind, reset_reference


def reference_step(state, current, p, reset, active):
    """One step of the dense NumPy reference (see :mod:`evsim.cells`)."""
    v_prev, s_prev = state["v"], state["s"]
    w = p["beta_w"] * state["w"] + p["a"] * v_prev + p["b"] * s_prev
    v = p["beta"] * reset_reference(v_prev, s_prev, p["threshold"], reset) + p["gain"] * (current - w)
    s = (v >= p["threshold"]).astype(np.float64) * active
    state["v"], state["s"], state["w"] = v, s, w
    return s


KIND = CellKind(name="adlif", code=1, params=("beta_w", "a", "b"),
                bounds={"beta_w": (0.0, 1.0), "a": (-np.inf, np.inf), "b": (-np.inf, np.inf)},
                state=("w",), reference_step=reference_step)


@numba.njit(**EXACT)
def event_update(v, aux, cur, bias, beta, theta, gain, extra, subtract, spk):
    """One AdLIF step of the event engine.  ``aux[0]`` holds w_t (computed at the end of
    the previous step), ``extra`` the rows beta_w, a, b.  The next step's w is computed
    here, from v_t before its reset, so the stored v can be reset as for LIF."""
    n = v.shape[0]
    w = aux[0]
    beta_w, a, b = extra[0], extra[1], extra[2]
    # membrane update (v holds reset(v_{t-1}, s_{t-1}), w holds w_t)
    for i in range(n):
        v[i] = beta[i] * v[i] + gain[i] * ((cur[i] + bias[i]) - w[i])
    # spikes
    k = 0
    for i in range(n):
        spk[k] = i
        k += v[i] >= theta[i]
    # adaptation of the next step: w_{t+1} = beta_w w_t + a v_t + b s_t (the reference's
    # operations, in its order)
    for i in range(n):
        s_i = 1.0 if v[i] >= theta[i] else 0.0
        w[i] = beta_w[i] * w[i] + a[i] * v[i] + b[i] * s_i
    # reset
    for e in range(k):
        i = spk[e]
        v[i] = v[i] - theta[i] if subtract else v[i] * 0.0
    return k
