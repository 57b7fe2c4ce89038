"""Numba kernel of the readout alone, for models run layer by layer (:mod:`evsim.stack`):
the leaky readout of :mod:`evsim.kernels.event` (the same :func:`readout_step`, so the
same floating-point operations) driven by the last layer's spike raster."""

from __future__ import annotations


from .._numba_config import EXACT, import_numba
from .event import DECISION_MEMBRANE, DECISION_SOFTMAX, readout_step

numba = import_numba()   # before any kernel is defined: installs evsim's cache locator


@numba.njit(**EXACT)
def readout_run(w_t, bias, beta, gain, decision, spikes, n_steps, u, acc, scores, idx, readout):
    """Steps 0 .. n_steps - 1 of the readout from ``spikes`` (>= n_steps, n) 0.0 / 1.0: u,
    acc, scores (C,) carry the state; idx (n,) int64 workspace; readout[t] = u_t.
    Returns the synaptic events (C per spike)."""
    if decision != DECISION_SOFTMAX and decision != DECISION_MEMBRANE:
        raise ValueError("unknown decision code (expected 0 sum_softmax or 1 sum_membrane)")
    events = 0
    for t in range(n_steps):
        m = 0
        for j in range(spikes.shape[1]):      # the step's spikes as events
            if spikes[t, j] != 0.0:
                idx[m] = j
                m += 1
        events += readout_step(w_t, bias, beta, gain, decision, u, acc, scores, idx, m)
        readout[t, :] = u
    return events
