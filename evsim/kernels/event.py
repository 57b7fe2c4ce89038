"""Numba kernels of the event-driven engine (see :mod:`evsim.event` for the public API).

The kernels take only arrays, scalars and the two NamedTuples below; no validation here.
Names follow the equations of :mod:`evsim.model`.

Clock-driven neurons, event-driven synapses
-------------------------------------------
Every step, each hidden neuron's membrane is updated (leak and bias act every step, so
this O(n) work cannot be skipped).  Synaptic *propagation* is driven by events only: an
input count, a hidden spike or a delayed recurrent spike adds one presynaptic weight row
to its targets, so the propagation work is (events) x (fan-out).

Variable depth without recompiling
----------------------------------
Layers are packed into flat arrays with offsets (``L`` hidden layers, ``N`` hidden neurons
in all, ``C`` classes); layer ``l`` owns

* neurons ``nrn_off[l] : nrn_off[l+1]`` of every per-neuron array,
* its feed-forward matrix *transposed*, ``W^T`` of shape ``(size[l], size[l+1])``, at
  ``ff_w[ff_off[l]:ff_off[l+1]]`` (row ``j`` = ``W[:, j]``, contiguous: the fan-out of
  presynaptic unit ``j``; ``size[0]`` is the number of model inputs),
* its recurrence ``rec_w[rec_off[l]:rec_off[l+1]]``: ``W_rec^T`` (row ``j`` = the targets
  of source ``j``) for dense, the kernel ``K`` for conv, nothing for
  none (``rec_kind`` 0 none, 1 dense, 2 conv),
* its delay queue ``ring[ring_off[l]:ring_off[l+1]]``.

The delay queue (ring buffer)
-----------------------------
Layer ``l`` with largest delay ``D`` has ``slots = D + 2`` rows of ``n`` floats (0 rows
when it has no recurrence).  Row ``t % slots`` holds the summed recurrent input that
arrives at step ``t``.  A spike of neuron ``j`` at step ``t`` adds its recurrent weights
into row ``(t + 1 + d_j) % slots``; since ``1 <= 1 + d_j <= D + 1 < slots`` that is never
the row being read at step ``t``, so reading, clearing and scheduling may happen in any
order within a step.  Memory is ``slots * n`` per layer, whatever the input length.

Reset
-----
The reset of ``reset(v_{t-1}, s_{t-1})`` is applied right after the spike is emitted (the
stored membrane becomes ``0`` or ``v - theta``); the next update then multiplies by
``beta``.  Those are the very floating-point operations of the equations, in the same
order, so the only differences from the dense reference come from the order in which
the synaptic inputs of one step are summed.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from .._numba_config import EXACT, PARALLEL
from ..cells import CELL_CODE, RESET_CODE
from ..cells import lif
from ..model import DECISION_CODE, RECURRENCE_CODE

REC_NONE, REC_DENSE, REC_CONV = RECURRENCE_CODE["none"], RECURRENCE_CODE["dense"], RECURRENCE_CODE["conv"]
RESET_ZERO, RESET_SUBTRACT = RESET_CODE["zero"], RESET_CODE["subtract"]
DECISION_SOFTMAX, DECISION_MEMBRANE = DECISION_CODE["sum_softmax"], DECISION_CODE["sum_membrane"]
CELL_LIF = CELL_CODE["lif"]


class Params(NamedTuple):
    """The model, packed (see the module docstring).

    Weight arrays (``ff_w``, ``rec_w``, ``ro_w``) keep the model's float32 values (half the
    memory traffic of float64) and are converted to float64, exactly, where they are
    used; every sum and product is float64.  Per-neuron arrays are float64."""

    size: np.ndarray       # (L+1,) int64: size[0] inputs, size[l+1] neurons of layer l
    nrn_off: np.ndarray    # (L+1,) int64 neuron offsets
    ff_w: np.ndarray       # float32, flat W^T of every layer
    ff_off: np.ndarray     # (L+1,) int64
    rec_kind: np.ndarray   # (L,) int64: 0 none, 1 dense, 2 conv
    rec_w: np.ndarray      # float32, flat W_rec^T (dense) or K (conv)
    rec_off: np.ndarray    # (L+1,) int64
    delay: np.ndarray      # (N,) int64 axonal delay of each presynaptic neuron, steps
    slots: np.ndarray      # (L,) int64 ring rows: max delay + 2, or 0 without recurrence
    ring_off: np.ndarray   # (L+1,) int64
    bias: np.ndarray       # (N,) b
    beta: np.ndarray       # (N,) per-step decay
    theta: np.ndarray      # (N,) threshold
    gain: np.ndarray       # (N,) input gain g
    reset: np.ndarray      # (L,) int64: 0 zero, 1 subtract
    cell: np.ndarray       # (L,) int64: the layer's cell code (evsim.cells.CELL_CODE)
    extra: np.ndarray      # (P, N) float64: the cells' extra per-neuron parameters, row by row
    ro_w: np.ndarray       # (n_L * C,) float32, W_o^T flat: row j = the C weights of hidden unit j
    ro_bias: np.ndarray    # (C,)
    ro_beta: np.ndarray    # (C,)
    ro_gain: np.ndarray    # (C,)
    decision: np.ndarray   # (1,) int64: 0 sum_softmax, 1 sum_membrane
    n_aux: np.ndarray      # (1,) int64: S, the rows of State.aux


class State(NamedTuple):
    """Everything one sample's simulation carries from step to step (plus workspace)."""

    v: np.ndarray          # (N,) float64 membranes, reset already applied
    ring: np.ndarray       # (ring_off[L],) float64 delay queues
    spk: np.ndarray        # (N,) int64: spk[nrn_off[l]:][:nspk[l]] = layer l's spikes this step
    nspk: np.ndarray       # (L,) int64
    cur: np.ndarray        # (max n,) float64 workspace: synaptic input of one layer
    ev_idx: np.ndarray     # (size[0],) int64 workspace: nonzero inputs of one step
    ev_cnt: np.ndarray     # (size[0],) float64 workspace: their counts
    u: np.ndarray          # (C,) float64 readout membrane
    acc: np.ndarray        # (C,) float64 workspace: readout synaptic input
    scores: np.ndarray     # (C,) float64 running class scores
    clock: np.ndarray      # (1,) int64 steps done so far (t of the next step)
    syn: np.ndarray        # (1,) int64 synaptic events delivered so far
    spikes: np.ndarray     # (L,) int64 spikes emitted so far per layer
    aux: np.ndarray        # (S, N) float64: the cells' extra state variables, row by row


@numba.njit(**EXACT)
def new_state(p):
    """A zero state for the model packed in ``p``."""
    n_layers = p.rec_kind.shape[0]
    n_total = p.nrn_off[n_layers]
    n_max = 1
    for l in range(n_layers):
        n_max = max(n_max, p.size[l + 1])
    c = p.ro_bias.shape[0]
    return State(np.zeros(n_total), np.zeros(p.ring_off[n_layers]),
                 np.zeros(n_total, np.int64), np.zeros(n_layers, np.int64),
                 np.zeros(n_max), np.zeros(p.size[0], np.int64), np.zeros(p.size[0]),
                 np.zeros(c), np.zeros(c), np.zeros(c),
                 np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(n_layers, np.int64),
                 np.zeros((p.n_aux[0], n_total)))


@numba.njit(**EXACT)
def gather_inputs(x_t, idx, cnt):
    """The nonzero input counts of one step as events (unit, count); returns how many."""
    m = 0
    for j in range(x_t.shape[0]):  # compacted without a branch, as in membrane
        idx[m] = j
        cnt[m] = x_t[j]
        m += x_t[j] != 0.0
    return m


@numba.njit(**EXACT)
def arrive(cur, ring, slots, n, now):
    """Load the delayed recurrent input arriving now (ring row ``now`` = t % slots) into
    cur, and zero that row."""
    if slots == 0:
        cur[:n] = 0.0
        return
    r = now * n
    row = ring[r:r + n]  # a slice: non-negative indices, so the loop vectorises
    for i in range(n):
        cur[i] = row[i]
        row[i] = 0.0


@numba.njit(**EXACT)
def fan_out_counts(cur, w, n, idx, cnt, m):
    """cur += count * W[:, j] for each input event (j, count); returns synaptic events.

    Four events per pass over cur (``cur + a + b + c + d`` is evaluated left to right,
    so the rounding is that of adding the events one by one; cur is loaded and stored a
    quarter as often)."""
    e = 0
    while e + 4 <= m:
        c0, c1, c2, c3 = cnt[e], cnt[e + 1], cnt[e + 2], cnt[e + 3]
        r0, r1, r2, r3 = idx[e] * n, idx[e + 1] * n, idx[e + 2] * n, idx[e + 3] * n
        w0, w1, w2, w3 = w[r0:r0 + n], w[r1:r1 + n], w[r2:r2 + n], w[r3:r3 + n]
        for i in range(n):
            cur[i] = (cur[i] + c0 * np.float64(w0[i]) + c1 * np.float64(w1[i])
                      + c2 * np.float64(w2[i]) + c3 * np.float64(w3[i]))
        e += 4
    while e < m:
        c = cnt[e]
        r = idx[e] * n
        wr = w[r:r + n]
        for i in range(n):
            cur[i] += c * np.float64(wr[i])
        e += 1
    return m * n


@numba.njit(**EXACT)
def fan_out_spikes(cur, w, n, spk, m):
    """cur += W[:, j] for each presynaptic spike j in spk[:m]; returns synaptic events.
    Four spikes per pass, as in :func:`fan_out_counts`."""
    e = 0
    while e + 4 <= m:
        r0, r1, r2, r3 = spk[e] * n, spk[e + 1] * n, spk[e + 2] * n, spk[e + 3] * n
        w0, w1, w2, w3 = w[r0:r0 + n], w[r1:r1 + n], w[r2:r2 + n], w[r3:r3 + n]
        for i in range(n):
            cur[i] = (cur[i] + np.float64(w0[i]) + np.float64(w1[i])
                      + np.float64(w2[i]) + np.float64(w3[i]))
        e += 4
    while e < m:
        r = spk[e] * n
        wr = w[r:r + n]
        for i in range(n):
            cur[i] += np.float64(wr[i])
        e += 1
    return m * n


@numba.njit(**EXACT)
def cell_update(kind, v, aux, cur, bias, beta, theta, gain, extra, reset, spk):
    """The membrane update, spikes and reset of one layer's cell (see :mod:`evsim.cells`);
    returns the number of spikes written to spk.  An unknown cell or reset code raises."""
    if reset != RESET_ZERO and reset != RESET_SUBTRACT:
        raise ValueError("unknown reset code (expected 0 zero or 1 subtract)")
    subtract = reset == RESET_SUBTRACT
    if kind == CELL_LIF:
        return lif.event_update(v, aux, cur, bias, beta, theta, gain, extra, subtract, spk)
    raise ValueError("unknown cell code (see evsim.cells.CELL_CODE)")


@numba.njit(**EXACT)
def schedule_dense(ring, slots, n, now, delay, w_t, spk, m):
    """Each spike j adds W_rec[:, j] into the ring row of step t + 1 + d_j
    (row (now + 1 + d_j) mod slots, with now = t % slots)."""
    for e in range(m):
        j = spk[e]
        row = now + 1 + delay[j]  # < 2 * slots, so one subtraction replaces the modulo
        r = (row - slots if row >= slots else row) * n
        dst = ring[r:r + n]
        src = w_t[j * n:(j + 1) * n]
        for i in range(n):
            dst[i] += np.float64(src[i])
    return m * n


@numba.njit(**EXACT)
def schedule_conv(ring, slots, n, now, delay, kern, spk, m):
    """Each spike j adds K[m] to target i = j - m + k//2 (0 <= i < n) at step t + 1 + d_j
    (ring row as in :func:`schedule_dense`)."""
    k = kern.shape[0]
    half = k // 2
    events = 0
    for e in range(m):
        j = spk[e]
        row = now + 1 + delay[j]
        r = (row - slots if row >= slots else row) * n
        lo = max(0, j + half - (k - 1))
        hi = min(n - 1, j + half)
        dst = ring[r + lo:r + hi + 1]
        for i in range(hi - lo + 1):  # target lo + i gets K[j + half - lo - i]
            dst[i] += np.float64(kern[j + half - lo - i])
        events += hi - lo + 1
    return events


@numba.njit(**EXACT)
def readout_step(w_t, bias, beta, gain, decision, u, acc, scores, spk, m):
    """u = beta_o * u + g_o * (W_o s_t + b_o) from the last layer's spikes spk[:m]; adds
    this step's score (softmax(u) or u).  Returns synaptic events."""
    c = u.shape[0]
    acc[:] = 0.0
    for e in range(m):
        row = w_t[spk[e] * c:(spk[e] + 1) * c]
        for i in range(c):
            acc[i] += np.float64(row[i])
    for i in range(c):
        u[i] = beta[i] * u[i] + gain[i] * (acc[i] + bias[i])
    if decision == DECISION_MEMBRANE:
        for i in range(c):
            scores[i] += u[i]
    elif decision != DECISION_SOFTMAX:
        raise ValueError("unknown decision code (expected 0 sum_softmax or 1 sum_membrane)")
    else:
        top = u.max()
        total = 0.0
        for i in range(c):
            acc[i] = np.exp(u[i] - top)
            total += acc[i]
        for i in range(c):
            scores[i] += acc[i] / total
    return m * c


@numba.njit(**EXACT)
def advance(x, n_steps, readout, raster, record,
            size, nrn_off, ff_w, ff_off, rec_kind, rec_w, rec_off, delay, slots, ring_off,
            bias, beta, theta, gain, reset, cell, extra, ro_w, ro_bias, ro_beta, ro_gain, decision,
            v, ring, spk, nspk, cur, ev_idx, ev_cnt, u, acc, scores, clock, syn, spikes, aux):
    """The body of :func:`run_sample`, with the fields of Params and State as arguments.

    (Numba optimises loops over arrays received as arguments much better than over
    arrays taken from a NamedTuple inside the loop: ~3x on the per-step overhead.)"""
    n_layers = rec_kind.shape[0]
    for s in range(n_steps):
        t = clock[0]
        m_in = gather_inputs(x[s], ev_idx, ev_cnt)
        events = 0
        for l in range(n_layers):
            n, o = size[l + 1], nrn_off[l]
            c, q, s_l = cur[:n], ring[ring_off[l]:ring_off[l + 1]], spk[o:o + n]
            w = ff_w[ff_off[l]:ff_off[l + 1]]
            now = t % slots[l] if slots[l] else 0  # ring row of step t
            # inputs arriving now: delayed recurrent spikes, then feed-forward events
            arrive(c, q, slots[l], n, now)
            if l == 0:
                events += fan_out_counts(c, w, n, ev_idx, ev_cnt, m_in)
            else:
                events += fan_out_spikes(c, w, n, spk[nrn_off[l - 1]:], nspk[l - 1])
            # membrane update, spikes, reset
            k = cell_update(cell[l], v[o:o + n], aux[:, o:o + n], c, bias[o:o + n], beta[o:o + n],
                            theta[o:o + n], gain[o:o + n], extra[:, o:o + n], reset[l], s_l)
            nspk[l] = k
            spikes[l] += k
            # schedule deliveries of the new spikes through the recurrence
            kern = rec_w[rec_off[l]:rec_off[l + 1]]
            if rec_kind[l] == REC_DENSE:
                events += schedule_dense(q, slots[l], n, now, delay[o:o + n], kern, s_l, k)
            elif rec_kind[l] == REC_CONV:
                events += schedule_conv(q, slots[l], n, now, delay[o:o + n], kern, s_l, k)
            elif rec_kind[l] != REC_NONE:
                raise ValueError("unknown recurrence code (expected 0 none, 1 dense or 2 conv)")
        # readout, from the last layer's spikes
        last = nrn_off[n_layers - 1]
        events += readout_step(ro_w, ro_bias, ro_beta, ro_gain, decision[0], u, acc, scores,
                               spk[last:], nspk[n_layers - 1])
        readout[s, :] = u
        if record:
            for l in range(n_layers):
                o = nrn_off[l]
                for e in range(nspk[l]):
                    raster[s, o + spk[o + e]] = 1
        syn[0] += events
        clock[0] = t + 1


@numba.njit(**EXACT)
def run_sample(p, st, x, n_steps, readout, raster, record):
    """Advance one sample's state ``st`` in place over steps x[:n_steps] (input counts,
    (>= n_steps, n_inputs) float64).  Writes readout[s] = u of each step s, (>= n_steps,
    C), and, when ``record``, raster[s, nrn_off[l] + j] = 1 for every spike.  Whole
    samples, batches and streams all go through here, so they agree by construction."""
    advance(x, n_steps, readout, raster, record,
            p.size, p.nrn_off, p.ff_w, p.ff_off, p.rec_kind, p.rec_w, p.rec_off, p.delay,
            p.slots, p.ring_off, p.bias, p.beta, p.theta, p.gain, p.reset, p.cell, p.extra, p.ro_w,
            p.ro_bias, p.ro_beta, p.ro_gain, p.decision,
            st.v, st.ring, st.spk, st.nspk, st.cur, st.ev_idx, st.ev_cnt, st.u, st.acc,
            st.scores, st.clock, st.syn, st.spikes, st.aux)


@numba.njit(**EXACT)
def run_one(p, x, n_steps, readout, scores, raster, record, syn, spikes):
    """Simulate one sample from a zero state; write its scores (C,), synaptic events
    syn[0] and spikes per layer (L,)."""
    st = new_state(p)
    run_sample(p, st, x, n_steps, readout, raster, record)
    scores[:] = st.scores
    syn[0] = st.syn[0]
    spikes[:] = st.spikes


# The entry points below take the Params / State fields as *plain tuples* (``tuple(p)``)
# and rebuild the NamedTuples inside: numba's dispatcher types a plain tuple of arrays
# several microseconds faster than a NamedTuple, which matters per call at batch 1 and
# per step when streaming.

@numba.njit(**EXACT)
def stream_chunk(pt, stt, x, n_steps, readout):
    """:func:`run_sample` for a stream (no raster), from plain tuples."""
    run_sample(Params(*pt), State(*stt), x, n_steps, readout, np.zeros((1, 0), np.uint8), False)


@numba.njit(**PARALLEL)
def run_batch(pt, x, lengths, readout, scores, raster, record, syn, spikes):
    """Simulate every sample of a batch, in parallel over samples (each writes only its
    own rows of readout (B, T, C), scores (B, C), raster (B, T or 0, N), syn (B,) and
    spikes (B, L)).  ``pt``: ``tuple(Params)``."""
    p = Params(*pt)
    for b in numba.prange(x.shape[0]):
        run_one(p, x[b], lengths[b], readout[b], scores[b], raster[b], record,
                syn[b:b + 1], spikes[b])


@numba.njit(**EXACT)
def run_batch_serial(pt, x, lengths, readout, scores, raster, record, syn, spikes):
    """:func:`run_batch` on the calling thread only (no thread-pool start-up: the right
    choice for one sample, or when other processes already occupy the cores)."""
    p = Params(*pt)
    for b in range(x.shape[0]):
        run_one(p, x[b], lengths[b], readout[b], scores[b], raster[b], record,
                syn[b:b + 1], spikes[b])
