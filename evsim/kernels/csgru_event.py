"""Numba step kernel of one CS-GRU layer, event-driven (API: :mod:`evsim.cells.csgru`).

Equations (1)-(5) of :mod:`evsim.cells.csgru` with integer delays (inference, sigma = 0).

What is driven by events and what is dense
------------------------------------------
* Spike-driven (scatter per event): the three recurrent convolutions ``K_rh``, ``K_ih``,
  ``K_zh`` on the delayed spikes, fused into one scatter with 3C outputs per target
  position, and the input convolutions ``K_rx``, ``K_ix`` (and ``K_zx`` for the "input"
  gate) for each nonzero input value (counts or spikes), fused likewise.
* Dense every step: ``K_zi * i_t`` for the "current" gate (``i`` is a real trace,
  nonzero everywhere), both sigmoids, the elementwise updates.

Layout: position-major.  Every state and per-unit array is (P, C), the input (P, Cin);
the packed kernels put the fused outputs last, so that one scatter adds one contiguous
row: ``w_in[c', m]`` (G_in, C) and ``w_rec[c', m]`` (3, C).  Fused kernels of different
lengths are zero-padded at both ends to the longest (which keeps them centred).
``counters[2]`` counts the weights scattered (G x C per in-range tap of a fused kernel,
padding included): the synaptic work the events cause.

The delay queue (ring buffer)
-----------------------------
``ring`` has ``slots = D + 1`` rows (D the largest delay) of (P, 3, C): row ``t % slots``
holds the summed recurrent pre-activations of the three gates arriving at step t.  A
spike of unit (p, c) at step t adds its fused column into row ``(t + 1 + d) % slots``.
Row ``t % slots`` is read and cleared before the step's spikes are scheduled, so a
delay of D (which lands on that very row) is delivered D + 1 steps later, as it must.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._numba_config import EXACT, import_numba

numba = import_numba()   # before any kernel is defined: installs evsim's cache locator

GATE_CURRENT, GATE_INPUT = 0, 1     # evsim.cells.csgru.GATES


class EventWeights(NamedTuple):
    """Packed layer (see the module docstring); Cin/C input/output channels."""

    w_in: np.ndarray      # (Cin, k_in, G_in, C) input taps, gates r, i (and z for "input")
    w_rec: np.ndarray     # (C, k_rec, 3, C) recurrent taps, gates r, i, z
    k_zi: np.ndarray      # (k_z, C, C) K_zi as [m, c', c] ("current" gate), else (0, C, C)
    bias: np.ndarray      # (3, C) b_r, b_i, b_z
    delays: np.ndarray    # (P, C) int64
    theta: float
    gate: int


class EventState(NamedTuple):
    """State of one layer for one sample; reset by zeroing every array."""

    i: np.ndarray         # (P, C) current
    v: np.ndarray         # (P, C) membrane
    s: np.ndarray         # (P, C) last step's spikes, 0.0 / 1.0
    ring: np.ndarray      # (slots, P, 3, C)
    pin: np.ndarray       # (P, 3, C) scratch: this step's input side of r, i, z
    counters: np.ndarray  # (3,) int64: steps run, spikes, synaptic events (scattered weights)


@numba.njit(**EXACT)
def _sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


@numba.njit(**EXACT)
def _scatter(w, src, p_src, value, out):
    """out[q] += value * w[src, m] for the targets q = p_src - m + k//2 of (src, p_src)."""
    k = w.shape[1]
    half = k // 2
    n_p = out.shape[0]
    taps = 0
    for m in range(k):
        q = p_src - m + half
        if 0 <= q < n_p:
            for g in range(w.shape[2]):
                for c in range(w.shape[3]):
                    out[q, g, c] += value * w[src, m, g, c]
            taps += 1
    return taps


@numba.njit(**EXACT)
def _dense_conv(k_zi, cur, pin):
    """pin[p, 2, c] = sum_{m, c'} K_zi[c, c', m] cur[p + m - k//2, c'] (k_zi as [m, c', c])."""
    n_p, n_c = cur.shape
    half = k_zi.shape[0] // 2
    pin[:, 2, :] = 0.0
    for p in range(n_p):
        for m in range(k_zi.shape[0]):
            q = p + m - half
            if 0 <= q < n_p:
                for cs in range(n_c):
                    value = cur[q, cs]
                    for c in range(n_c):
                        pin[p, 2, c] += k_zi[m, cs, c] * value


@numba.njit(**EXACT)
def csgru_step(w, st, x, s_out):
    """One step t = counters[0]: input x (P, Cin) -> spikes s_out (P, C); updates st."""
    if w.gate != GATE_CURRENT and w.gate != GATE_INPUT:
        raise ValueError("unknown CS-GRU gate code")
    n_p, n_c = st.v.shape
    slots = st.ring.shape[0]
    t = st.counters[0]
    row = st.ring[t % slots]
    g_in = w.w_in.shape[2]
    # inputs arriving now: scatter every nonzero input value over its targets
    st.pin[:, :g_in, :] = 0.0
    events = 0
    for p in range(n_p):
        for ci in range(x.shape[1]):
            if x[p, ci] != 0.0:
                events += _scatter(w.w_in, ci, p, x[p, ci], st.pin) * g_in * n_c
    # reset-like gate and current
    for p in range(n_p):
        for c in range(n_c):
            r = _sigmoid(st.pin[p, 0, c] + row[p, 0, c] + w.bias[0, c])
            st.i[p, c] = r * st.i[p, c] + st.pin[p, 1, c] + row[p, 1, c] + w.bias[1, c]
    # the update gate's own input: dense K_zi * i_t ("current" gate; "input": scattered above)
    if w.gate == GATE_CURRENT:
        _dense_conv(w.k_zi, st.i, st.pin)
    # update gate, membrane with the soft reset of s_{t-1}, spikes
    for p in range(n_p):
        for c in range(n_c):
            z = _sigmoid(st.pin[p, 2, c] + row[p, 2, c] + w.bias[2, c])
            vv = z * st.v[p, c] + (1.0 - z) * st.i[p, c] - w.theta * st.s[p, c]
            st.v[p, c] = vv
            s_out[p, c] = 1.0 if vv >= w.theta else 0.0
    row[:] = 0.0
    # schedule deliveries: each spike's fused recurrent column, d + 1 steps ahead
    spikes = 0
    for p in range(n_p):
        for c in range(n_c):
            st.s[p, c] = s_out[p, c]
            if s_out[p, c] != 0.0:
                spikes += 1
                ahead = st.ring[(t + 1 + w.delays[p, c]) % slots]
                events += _scatter(w.w_rec, c, p, 1.0, ahead) * 3 * n_c
    st.counters[0] = t + 1
    st.counters[1] += spikes
    st.counters[2] += events


@numba.njit(**EXACT)
def csgru_run(w, st, x, s_out, v_out, i_out):
    """Steps over x (T, P, Cin); spikes, membrane and current into (T, P, C) arrays."""
    for t in range(x.shape[0]):
        csgru_step(w, st, x[t], s_out[t])
        v_out[t] = st.v
        i_out[t] = st.i
