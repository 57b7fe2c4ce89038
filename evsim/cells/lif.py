"""The leaky integrate-and-fire cell (DelRec, CRSNN): one state variable, the membrane.

    v_t = beta * reset(v_{t-1}, s_{t-1}) + g * I_t
    s_t = H(v_t - theta)                    a spike when v_t >= theta
    reset(v, s) = v (1 - s)  ("zero")  |  v - theta s  ("subtract")

Per-neuron parameters: beta (decay, in [0, 1]), threshold theta (> 0), gain g; no extra
parameters and no extra state.
"""

from __future__ import annotations

import numba
import numpy as np

from .._numba_config import EXACT
from . import CellKind, reset_reference


def reference_step(state, current, p, reset, active):
    """One step of the dense NumPy reference (see :mod:`evsim.cells`)."""
    v = p["beta"] * reset_reference(state["v"], state["s"], p["threshold"], reset) + p["gain"] * current
    s = (v >= p["threshold"]).astype(np.float64) * active
    state["v"], state["s"] = v, s
    return s


KIND = CellKind(name="lif", code=0, params=(), bounds={}, state=(), reference_step=reference_step)


@numba.njit(**EXACT)
def event_update(v, aux, cur, bias, beta, theta, gain, extra, subtract, spk):
    """The registry's event step (LIF has no extra state or parameters)."""
    return membrane(v, cur, bias, beta, theta, gain, subtract, spk)


@numba.njit(**EXACT)
def membrane(v, cur, bias, beta, theta, gain, subtract, spk):
    """v = beta * v + g * (input + b); spike where v >= theta, then reset.  Writes the
    spiking neurons' indices to spk and returns their number.  (The event kernel calls
    this directly: passing the unused 2-D aux and extra arrays every layer and step cost
    measurable time.)"""
    n = v.shape[0]
    # membrane update (v already holds reset(v_{t-1}, s_{t-1})); branch-free, vectorised
    for i in range(n):
        v[i] = beta[i] * v[i] + gain[i] * (cur[i] + bias[i])
    # spikes, compacted without a branch (a spike pattern is not predictable)
    k = 0
    for i in range(n):
        spk[k] = i
        k += v[i] >= theta[i]
    # reset
    for e in range(k):
        i = spk[e]
        v[i] = v[i] - theta[i] if subtract else v[i] * 0.0
    return k
