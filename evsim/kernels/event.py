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
* its delay queue ``ring[ring_off[l]:ring_off[l+1]]``, whose rows' lengths are
  ``ring_len[slot_off[l]:slot_off[l+1]]``.

The delay queue (ring buffer)
-----------------------------
Layer ``l`` with largest delay ``D`` has ``slots = D + 2`` rows of ``n`` presynaptic
indices (int32), each with a length (0 rows when it has no recurrence).  Row ``t % slots``
lists, in the order they were queued, the neurons whose spikes arrive at step ``t``: a
spike of neuron ``j`` at step ``t`` appends ``j`` to row ``(t + 1 + d_j) % slots``.  At
step ``t`` the row is emptied into the layer's input (:func:`arrive`): the recurrent
weights of each queued neuron, ``W_rec[:, j]`` or the conv taps around ``j``, are added
to ``cur`` starting from zero, in queue order -- the very additions, in the very order,
of a queue that summed the weights into a row of floats when the spike happened (what
this engine did before), so the results are bit for bit those; only the memory touched
differs: one int per spike is written to the queue and the weights are added into ``cur``
(a few KB, in L1 cache), instead of each spike adding its weights into a row of a
``slots x n`` float64 buffer far from the cache.  Since ``1 <= 1 + d_j <= D + 1 < slots``
the row scheduled into is never the row being read at step ``t``, and a neuron spikes at
most once per step, so a row holds at most ``n`` entries.  Memory is ``slots * n`` int32
per layer, whatever the input length.

Kernels without numba.np.arraymath
----------------------------------
Loading a cached kernel makes numba import the module of every numba library function
compiled into it (to rebuild its environment).  ``u.max()`` would bring
``numba.np.arraymath``, which imports SciPy's linear algebra (0.2-0.3 s of every ``evsim
run``), and an array-to-array slice assignment numba's shape-checking copy; so the kernels
here write those few loops out (the same values: a maximum and copies are exact).

Reset
-----
The reset of ``reset(v_{t-1}, s_{t-1})`` is applied right after the spike is emitted (the
stored membrane becomes ``0`` or ``v - theta``); the next update then multiplies by
``beta``.  Those are the very floating-point operations of the equations, in the same
order, so the only differences from the dense reference come from the order in which
the synaptic inputs of one step are summed.

Coming to rest
--------------
A model with a fixed ``n_steps`` runs every sample to that length, long after its input
ends.  When, after a step, (1) no hidden neuron spiked in it, (2) every delay queue is
empty, (3) the sample has no input count in its remaining steps and (4) each layer's cell
proves that none of its neurons can reach threshold on its bias alone (``event_rests``
of :mod:`evsim.cells`; LIF: the membrane and ``f(M) <= M`` below a bound ``M < theta``,
see :func:`evsim.cells.lif.event_rests`; a cell without that proof, adlif, never rests),
then by induction over the steps no layer receives any input again, so no neuron spikes
and nothing is queued: the remaining steps change only the hidden membranes, which
nothing reads any more, and the readout, which evolves from its own state and bias.
:func:`run_one` (whole samples, ``simulate``) then runs :func:`readout_step` alone for
those steps, with no spike -- the very operations a full step does there -- so the
readout trace, scores, predictions, spike rasters and counters are bit for bit those of
the full run.  Streams (:func:`run_sample`, :func:`run_flat`) run every step: their state
must stay exact for whatever call comes next.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._memory import ALIGN, aligned_zeros
from .._numba_config import EXACT, EXACT_CALLEE, import_numba
from ..cells import RESET_CODE, generate_dispatch, generate_known
from ..cells._common import never_rests
from ..model import DECISION_CODE, RECURRENCE_CODE
from ._unmanaged import unmanaged

numba = import_numba()   # before any kernel is defined: installs evsim's cache locator

REC_NONE, REC_DENSE, REC_CONV = RECURRENCE_CODE["none"], RECURRENCE_CODE["dense"], RECURRENCE_CODE["conv"]
RESET_ZERO, RESET_SUBTRACT = RESET_CODE["zero"], RESET_CODE["subtract"]
DECISION_SOFTMAX, DECISION_MEMBRANE = DECISION_CODE["sum_softmax"], DECISION_CODE["sum_membrane"]


# The packed model, one NamedTuple per concern.  Weight arrays (``ff_w``, ``rec_w``, ``w``
# of the readout) keep the model's float32 values.  Per-neuron arrays and the state's
# floating-point arrays have the precision's type (:mod:`evsim.precision`): float64 or
# float32.  Every kernel is generic in it (numba compiles one version per precision):
# in float64 a float32 weight is widened, exactly, where it is added (NumPy's and numba's
# promotion of float32 with float64), in float32 it is added as it is (8 per AVX2
# instruction instead of 4).  Class scores are float64 in both.

class FeedForward(NamedTuple):
    """Feed-forward weights of every layer (the module docstring's layout)."""

    size: np.ndarray       # (L+1,) int64: size[0] inputs, size[l+1] neurons of layer l
    nrn_off: np.ndarray    # (L+1,) int64 neuron offsets
    w: np.ndarray          # float32, flat W^T of every layer
    w_off: np.ndarray      # (L+1,) int64


class Delivery(NamedTuple):
    """Recurrence and axonal delays: where a spike goes, when, and the delay queues' layout."""

    kind: np.ndarray       # (L,) int64: 0 none, 1 dense, 2 conv
    w: np.ndarray          # float32, flat W_rec^T (dense) or K (conv)
    w_off: np.ndarray      # (L+1,) int64
    delay: np.ndarray      # (N,) int64 axonal delay of each presynaptic neuron, steps
    slots: np.ndarray      # (L,) int64 ring rows: max delay + 2, or 0 without recurrence
    ring_off: np.ndarray   # (L+1,) int64 offsets of the layers' queues (slots * n entries each)
    slot_off: np.ndarray   # (L+1,) int64 offsets of the layers' row lengths (slots each)


class CellParams(NamedTuple):
    """The neurons: per layer a cell kind and a reset, per neuron its parameters."""

    kind: np.ndarray       # (L,) int64: the layer's cell code (evsim.cells.CELL_CODE)
    reset: np.ndarray      # (L,) int64: 0 zero, 1 subtract
    bias: np.ndarray       # (N,) b, the precision's type (as every float array below)
    beta: np.ndarray       # (N,) per-step decay
    theta: np.ndarray      # (N,) threshold
    gain: np.ndarray       # (N,) input gain g
    extra: np.ndarray      # (P, N): the cells' extra per-neuron parameters, row by row
    n_aux: np.ndarray      # (1,) int64: S, the rows of CellState.aux


class ReadoutParams(NamedTuple):
    w: np.ndarray          # (n_L * C,) float32, W_o^T flat: row j = the C weights of hidden unit j
    bias: np.ndarray       # (C,)
    beta: np.ndarray       # (C,)
    gain: np.ndarray       # (C,)
    decision: np.ndarray   # (1,) int64: 0 sum_softmax, 1 sum_membrane


class Params(NamedTuple):
    """The model, packed (see the module docstring)."""

    ff: FeedForward
    rec: Delivery
    cells: CellParams
    ro: ReadoutParams


class CellState(NamedTuple):
    v: np.ndarray          # (N,) membranes, reset already applied (the precision's type)
    aux: np.ndarray        # (S, N): the cells' extra state variables, row by row
    spk: np.ndarray        # (N,) int64: spk[nrn_off[l]:][:nspk[l]] = layer l's spikes this step
    nspk: np.ndarray       # (L,) int64


class ReadoutState(NamedTuple):
    u: np.ndarray          # (C,) readout membrane (the precision's type)
    acc: np.ndarray        # (C,) workspace: readout synaptic input, then softmax terms
    scores: np.ndarray     # (C,) float64 running class scores (float64 in both precisions)


class Workspace(NamedTuple):
    cur: np.ndarray        # (max n,): synaptic input of one layer (the precision's type)
    ev_idx: np.ndarray     # (size[0],) int64: nonzero inputs of one step
    ev_cnt: np.ndarray     # (size[0],): their counts (the precision's type)


class Counters(NamedTuple):
    clock: np.ndarray      # (1,) int64 steps done so far (t of the next step)
    syn: np.ndarray        # (1,) int64 synaptic events delivered so far
    spikes: np.ndarray     # (L,) int64 spikes emitted so far per layer


class State(NamedTuple):
    """Everything one sample's simulation carries from step to step (plus workspace)."""

    cells: CellState
    ring: np.ndarray       # (ring_off[L],) int32 delay queues: presynaptic neurons, by arrival step
    ring_len: np.ndarray   # (slot_off[L],) int64 entries in each queue row
    ro: ReadoutState
    work: Workspace
    count: Counters


@numba.njit(**EXACT_CALLEE)
def aligned_vector(n, dtype):
    """np.zeros(n, dtype) starting on :data:`~evsim._memory.ALIGN` bytes, inside a kernel
    (numba allocates on 32): a view into a slightly longer array."""
    buffer = np.zeros(n + ALIGN, dtype)
    start = ((ALIGN - buffer.ctypes.data % ALIGN) % ALIGN) // buffer.itemsize
    return buffer[start:start + n]


@numba.njit(**EXACT_CALLEE)
def state_sizes(p):
    """The sizes of a State of the model packed in ``p``: (layers L, neurons N, the
    largest layer, classes C, the cells' extra rows S, inputs)."""
    size = p.ff.size
    n_layers = p.rec.kind.shape[0]
    n_max = 1
    for l in range(n_layers):
        n_max = max(n_max, size[l + 1])
    return n_layers, p.ff.nrn_off[n_layers], n_max, p.ro.bias.shape[0], p.cells.n_aux[0], size[0]


@numba.njit(**EXACT)
def new_state(p):
    """A zero state for the model packed in ``p``, in the precision of its per-neuron
    arrays, every array on 64 bytes (:func:`aligned_vector`)."""
    real = p.cells.beta.dtype
    n_layers, n_total, n_max, c, n_aux, n_in = state_sizes(p)
    return State(
        CellState(aligned_vector(n_total, real), aligned_vector(n_aux * n_total, real).reshape((n_aux, n_total)),
                  aligned_vector(n_total, np.int64), aligned_vector(n_layers, np.int64)),
        aligned_vector(p.rec.ring_off[n_layers], np.int32), aligned_vector(p.rec.slot_off[n_layers], np.int64),
        ReadoutState(aligned_vector(c, real), aligned_vector(c, real), aligned_vector(c, np.float64)),
        Workspace(aligned_vector(n_max, real), aligned_vector(n_in, np.int64), aligned_vector(n_in, real)),
        Counters(aligned_vector(1, np.int64), aligned_vector(1, np.int64), aligned_vector(n_layers, np.int64)))


def zero_state(p) -> State:
    """:func:`new_state` in NumPy, outside any kernel: a kernel that allocates makes numba
    import ``numba.np.arrayobj`` (with its string and character modules, 40-80 ms) when
    it loads the cached kernel, which :func:`run_batch_serial` (``evsim run`` on one
    thread) thus avoids by taking its state from here.  The same arrays (dtypes, shapes,
    zeros, and 64-byte alignment: :mod:`evsim._memory`) as new_state;
    ``tests/evsim/test_event.py`` checks it."""
    size, nrn_off = p.ff.size, p.ff.nrn_off
    real = p.cells.beta.dtype
    n_layers = p.rec.kind.shape[0]
    n_total = int(nrn_off[n_layers])
    n_max = max([1] + [int(size[l + 1]) for l in range(n_layers)])
    c = p.ro.bias.shape[0]
    return State(
        CellState(aligned_zeros(n_total, real), aligned_zeros((int(p.cells.n_aux[0]), n_total), real),
                  aligned_zeros(n_total, np.int64), aligned_zeros(n_layers, np.int64)),
        aligned_zeros(int(p.rec.ring_off[n_layers]), np.int32), aligned_zeros(int(p.rec.slot_off[n_layers]), np.int64),
        ReadoutState(aligned_zeros(c, real), aligned_zeros(c, real), aligned_zeros(c)),
        Workspace(aligned_zeros(n_max, real), aligned_zeros(int(size[0]), np.int64), aligned_zeros(int(size[0]), real)),
        Counters(aligned_zeros(1, np.int64), aligned_zeros(1, np.int64), aligned_zeros(n_layers, np.int64)))


def as_plain_state(st: State) -> tuple:
    """A State as the nested plain tuples :func:`run_batch_serial` takes (see
    :func:`as_plain`)."""
    return (tuple(st.cells), st.ring, st.ring_len, tuple(st.ro), tuple(st.work), tuple(st.count))


@numba.njit(**EXACT)
def gather_inputs(x_t, idx, cnt):
    """The nonzero input counts of one step as events (unit, count); returns how many.
    The counts (float64) are stored in ``cnt``'s type: exact for counts below 2^24."""
    m = 0
    for j in range(x_t.shape[0]):  # compacted without a branch, as in membrane
        idx[m] = j
        cnt[m] = x_t[j]
        m += x_t[j] != 0.0
    return m


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
            cur[i] = cur[i] + c0 * w0[i] + c1 * w1[i] + c2 * w2[i] + c3 * w3[i]
        e += 4
    while e < m:
        c = cnt[e]
        r = idx[e] * n
        wr = w[r:r + n]
        for i in range(n):
            cur[i] += c * wr[i]
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
            cur[i] = cur[i] + w0[i] + w1[i] + w2[i] + w3[i]
        e += 4
    while e < m:
        r = spk[e] * n
        wr = w[r:r + n]
        for i in range(n):
            cur[i] += wr[i]
        e += 1
    return m * n


@numba.njit(**EXACT)
def check_codes(rec_kind, cell, reset, decision):
    """Raise for a recurrence, cell, reset or decision code no kernel here knows.  Called
    once per kernel call, so the recurrence and decision dispatches in the time loop need
    no error branch: each of them picks among known codes only.  (The cell dispatch,
    generated from the registry, ends in a raise of its own; its cost did not show in a
    batch-1 timing of the built-in model.)"""
    for l in range(rec_kind.shape[0]):
        if rec_kind[l] != REC_NONE and rec_kind[l] != REC_DENSE and rec_kind[l] != REC_CONV:
            raise ValueError("unknown recurrence code (expected 0 none, 1 dense or 2 conv)")
        if not known_cell(cell[l]):
            raise ValueError("unknown cell code (see evsim.cells.CELL_CODE)")
        if reset[l] != RESET_ZERO and reset[l] != RESET_SUBTRACT:
            raise ValueError("unknown reset code (expected 0 zero or 1 subtract)")
    if decision != DECISION_SOFTMAX and decision != DECISION_MEMBRANE:
        raise ValueError("unknown decision code (expected 0 sum_softmax or 1 sum_membrane)")


def _event_call(cell):
    """The event step's call of ``cell`` in :func:`cell_update`: its rows of ``aux`` and
    ``extra``, sliced only for a cell that has extra state or parameters (a 2-D view per
    layer and step costs a few percent of a LIF network's time)."""
    if cell.params or cell.state:
        return cell.event_update, "v, aux[:, o:o + n], cur, bias, beta, theta, gain, extra[:, o:o + n], subtract, spk"
    return cell.event_update, "v, aux, cur, bias, beta, theta, gain, extra, subtract, spk"


#: known_cell(code) -> bool: a registered cell's code (generated from evsim.cells)
known_cell = generate_known(EXACT)

#: cell_update(kind, o, v, aux, cur, bias, beta, theta, gain, extra, subtract, spk) -> k:
#: the membrane update, spikes and reset of one layer's cell (``event_update`` of
#: :mod:`evsim.cells`), neurons o .. o + n of the flat arrays (``v`` and the per-neuron
#: parameters already sliced, ``aux`` and ``extra`` whole); returns the number of spikes
#: written to spk.  Generated from the registry; raises for an unknown code.
cell_update = generate_dispatch(
    "cell_update", "o, v, aux, cur, bias, beta, theta, gain, extra, subtract, spk", _event_call, EXACT,
    prologue=("n = v.shape[0]",))


def _rest_call(cell):
    """The call of ``cell``'s rest test in :func:`cell_rests`: its ``event_rests``, or
    :func:`~evsim.cells._common.never_rests` for a cell that proves nothing (it then
    keeps every step running)."""
    function = cell.event_rests if cell.event_rests is not None else never_rests
    if cell.params or cell.state:
        return function, "v, aux[:, o:o + n], bias, beta, theta, gain, extra[:, o:o + n], bound"
    return function, "v, aux, bias, beta, theta, gain, extra, bound"


#: cell_rests(kind, o, v, aux, bias, beta, theta, gain, extra, bound) -> bool: True when
#: the cell proves that none of the layer's neurons can spike again while its input stays
#: zero (``event_rests`` of :mod:`evsim.cells`; False for a cell without one).  Generated
#: from the registry; raises for an unknown code.
cell_rests = generate_dispatch(
    "cell_rests", "o, v, aux, bias, beta, theta, gain, extra, bound", _rest_call, EXACT,
    prologue=("n = v.shape[0]",))


@numba.njit(**EXACT)
def arrive(cur, n, kind, w_t, queue, length, now):
    """cur[:n] = R_t, the recurrent input arriving at step t: zero, plus the recurrent
    weights of each neuron queued in ring row ``now`` (= t % slots), in queue order
    (``W_rec[:, j]`` for dense, the conv taps for conv); the row is emptied.  Without a
    recurrence (``kind`` 0) cur is zero."""
    for i in range(n):
        cur[i] = 0.0
    if kind == REC_NONE:
        return
    m = length[now]
    length[now] = 0
    src = queue[now * n:now * n + m]
    if kind == REC_DENSE:
        fan_out_spikes(cur, w_t, n, src, m)
    else:
        add_taps(cur, w_t, n, src, m)


@numba.njit(**EXACT)
def add_taps(cur, kern, n, src, m):
    """The conv recurrence of the neurons j in src[:m], one after the other: target
    ``i = j - m + k//2`` (0 <= i < n) gets ``K[m]``."""
    k = kern.shape[0]
    half = k // 2
    if k == 5 or k == 3:  # the common sizes, taps read once (about 2x faster per spike)
        k0, k1, k2 = kern[0], kern[1], kern[2]
        k3, k4 = (kern[3], kern[4]) if k == 5 else (kern[0], kern[0])   # (unused for k = 3)
    for e in range(m):
        top = src[e] + half            # the target of K[0]
        if top >= k - 1 and top < n:   # every tap inside the layer
            if k == 5:
                cur[top] += k0
                cur[top - 1] += k1
                cur[top - 2] += k2
                cur[top - 3] += k3
                cur[top - 4] += k4
            elif k == 3:
                cur[top] += k0
                cur[top - 1] += k1
                cur[top - 2] += k2
            else:
                for mm in range(k):
                    cur[top - mm] += kern[mm]
        else:
            for mm in range(max(0, top - n + 1), min(k, top + 1)):
                cur[top - mm] += kern[mm]


@numba.njit(**EXACT)
def schedule(queue, length, slots, n, now, delay, spk, m):
    """Queue each spike j of spk[:m] for step t + 1 + d_j: append j to ring row
    (now + 1 + d_j) mod slots (now = t % slots)."""
    for e in range(m):
        j = spk[e]
        row = now + 1 + delay[j]  # < 2 * slots, so one subtraction replaces the modulo
        if row >= slots:
            row -= slots
        queue[row * n + length[row]] = j
        length[row] += 1


@numba.njit(**EXACT)
def conv_taps(n, k, spk, m):
    """Synaptic events of the spikes spk[:m] through a conv recurrence: the taps of each
    that land inside the layer."""
    half = k // 2
    events = 0
    for e in range(m):
        j = spk[e]
        events += min(n - 1, j + half) - max(0, j + half - (k - 1)) + 1
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
            acc[i] += row[i]
    for i in range(c):
        u[i] = beta[i] * u[i] + gain[i] * (acc[i] + bias[i])
    if decision == DECISION_MEMBRANE:
        for i in range(c):
            scores[i] += u[i]
    else:
        top = u[0]
        for i in range(1, c):  # u.max(), written out (see "Kernels without numba.np.arraymath")
            if u[i] > top or u[i] != u[i]:
                top = u[i]
        for i in range(c):
            acc[i] = np.exp(u[i] - top)
        total = acc[0]    # the sum in u's type (0.0 + acc[0] would make it float64)
        for i in range(1, c):
            total += acc[i]
        for i in range(c):
            scores[i] += acc[i] / total   # the term in u's type, the score float64
    return m * c


@numba.njit(**EXACT)
def at_rest(x, step, n_steps, nspk, rec_kind, ring_len, slot_off, size, nrn_off, cell, v, aux, bias, beta, theta,
            gain, extra, scratch):
    """True when, after step ``step``, no hidden neuron can spike in steps step + 1 ..
    n_steps - 1 (module docstring, "Coming to rest"): no spike at this step, no delayed
    spike queued, no input count in those steps, and every layer's cell proves its
    neurons stay below threshold without input (:func:`cell_rests`).  The cheap tests
    come first: a network that is firing fails at the first.  ``scratch``: (>= max n,)
    workspace of the precision's type (the step's ``cur``, rewritten next step)."""
    n_layers = nspk.shape[0]
    for l in range(n_layers):
        if nspk[l] != 0:
            return False
    for l in range(n_layers):
        if rec_kind[l] != REC_NONE:
            for r in range(slot_off[l], slot_off[l + 1]):
                if ring_len[r] != 0:
                    return False
    for s in range(step + 1, n_steps):
        for j in range(x.shape[1]):
            if x[s, j] != 0.0:
                return False
    for l in range(n_layers):
        n, o = size[l + 1], nrn_off[l]
        if not cell_rests(cell[l], o, v[o:o + n], aux, bias[o:o + n], beta[o:o + n], theta[o:o + n],
                          gain[o:o + n], extra, scratch[:n]):
            return False
    return True


@numba.njit(**EXACT)
def readout_alone(w_t, bias, beta, gain, decision, u, acc, scores, spk, first, n_steps, readout):
    """Steps first .. n_steps - 1 of the readout without input spikes (the hidden layers
    at rest): :func:`readout_step` with no spike, the same operations a full step does
    on it, and readout[step] = u."""
    for step in range(first, n_steps):
        readout_step(w_t, bias, beta, gain, decision, u, acc, scores, spk, 0)
        for i in range(u.shape[0]):
            readout[step, i] = u[i]


@numba.njit(**EXACT)
def advance(x, n_steps, readout, raster, record, rest, ff, rec, cells, ro, cst, ring, ring_len, rst, work, count):
    """Advance one sample over steps x[:n_steps]: the body of :func:`run_sample` and
    :func:`run_one`.  Checks the kind codes once, then hands the groups' fields to
    :func:`step_loop` by keyword (so no two can be swapped): numba optimises loops over
    arrays received as arguments better than over the same arrays taken out of
    NamedTuples.  Every array goes in :func:`~evsim.kernels._unmanaged.unmanaged`, so the
    views the loop makes are not reference-counted.  Returns step_loop's steps run by the
    hidden layers."""
    check_codes(rec.kind, cells.kind, cells.reset, ro.decision[0])
    u_ = unmanaged
    return step_loop(u_(x), n_steps, u_(readout), u_(raster), record, rest,
              size=u_(ff.size), nrn_off=u_(ff.nrn_off), ff_w=u_(ff.w), ff_off=u_(ff.w_off),
              rec_kind=u_(rec.kind), rec_w=u_(rec.w), rec_off=u_(rec.w_off), delay=u_(rec.delay),
              slots=u_(rec.slots), ring_off=u_(rec.ring_off), slot_off=u_(rec.slot_off),
              cell=u_(cells.kind), reset=u_(cells.reset), bias=u_(cells.bias), beta=u_(cells.beta),
              theta=u_(cells.theta), gain=u_(cells.gain), extra=u_(cells.extra),
              ro_w=u_(ro.w), ro_bias=u_(ro.bias), ro_beta=u_(ro.beta), ro_gain=u_(ro.gain), decision=ro.decision[0],
              v=u_(cst.v), aux=u_(cst.aux), spk=u_(cst.spk), nspk=u_(cst.nspk), ring=u_(ring), ring_len=u_(ring_len),
              u=u_(rst.u), acc=u_(rst.acc), scores=u_(rst.scores),
              cur=u_(work.cur), ev_idx=u_(work.ev_idx), ev_cnt=u_(work.ev_cnt),
              clock=u_(count.clock), syn=u_(count.syn), spikes=u_(count.spikes))


@numba.njit(**EXACT)
def step_loop(x, n_steps, readout, raster, record, rest,
              size, nrn_off, ff_w, ff_off,
              rec_kind, rec_w, rec_off, delay, slots, ring_off, slot_off,
              cell, reset, bias, beta, theta, gain, extra,
              ro_w, ro_bias, ro_beta, ro_gain, decision,
              v, aux, spk, nspk, ring, ring_len, u, acc, scores, cur, ev_idx, ev_cnt, clock, syn, spikes):
    """The time loop of :func:`advance`, called only from there, by keyword: the fields of
    the Params and State groups, in the groups' order.  With ``rest``, once the hidden
    layers are provably quiet for every remaining step (:func:`at_rest`, "Coming to
    rest" in the module docstring) only the readout runs the remaining steps.  Returns
    the steps the hidden layers ran (n_steps unless they came to rest)."""
    n_layers = rec_kind.shape[0]
    for step in range(n_steps):
        t = clock[0]
        m_in = gather_inputs(x[step], ev_idx, ev_cnt)
        events = 0
        fired = 0
        for l in range(n_layers):
            n, o = size[l + 1], nrn_off[l]
            c, s_l = cur[:n], spk[o:o + n]
            q, q_len = ring[ring_off[l]:ring_off[l + 1]], ring_len[slot_off[l]:slot_off[l + 1]]
            w = ff_w[ff_off[l]:ff_off[l + 1]]
            kern = rec_w[rec_off[l]:rec_off[l + 1]]
            now = t % slots[l] if slots[l] else 0  # ring row of step t
            # inputs arriving now: delayed recurrent spikes, then feed-forward events
            arrive(c, n, rec_kind[l], kern, q, q_len, now)
            if l == 0:
                events += fan_out_counts(c, w, n, ev_idx, ev_cnt, m_in)
            else:
                events += fan_out_spikes(c, w, n, spk[nrn_off[l - 1]:], nspk[l - 1])
            # membrane update, spikes, reset
            k = cell_update(cell[l], o, v[o:o + n], aux, c, bias[o:o + n], beta[o:o + n],
                            theta[o:o + n], gain[o:o + n], extra, reset[l] == RESET_SUBTRACT, s_l)
            nspk[l] = k
            spikes[l] += k
            fired += k
            # schedule deliveries of the new spikes through the recurrence
            if rec_kind[l] != REC_NONE:
                schedule(q, q_len, slots[l], n, now, delay[o:o + n], s_l, k)
                events += k * n if rec_kind[l] == REC_DENSE else conv_taps(n, kern.shape[0], s_l, k)
        # readout, from the last layer's spikes
        last = nrn_off[n_layers - 1]
        events += readout_step(ro_w, ro_bias, ro_beta, ro_gain, decision, u, acc, scores,
                               spk[last:], nspk[n_layers - 1])
        for i in range(u.shape[0]):
            readout[step, i] = u[i]
        if record:
            for l in range(n_layers):
                o = nrn_off[l]
                for e in range(nspk[l]):
                    raster[step, o + spk[o + e]] = 1
        syn[0] += events
        clock[0] = t + 1
        # coming to rest: the quiet steps left change only the readout
        if rest and fired == 0 and step + 1 < n_steps and at_rest(
                x, step, n_steps, nspk, rec_kind, ring_len, slot_off, size, nrn_off, cell, v, aux, bias, beta, theta,
                gain, extra, cur):
            readout_alone(ro_w, ro_bias, ro_beta, ro_gain, decision, u, acc, scores, spk, step + 1, n_steps, readout)
            clock[0] = t + n_steps - step
            return step + 1
    return n_steps


@numba.njit(**EXACT)
def run_sample(p, st, x, n_steps, readout, raster, record):
    """Advance one sample's state ``st`` in place over steps x[:n_steps] (input counts,
    (>= n_steps, n_inputs) float64).  Writes readout[step] = u of each step, (>= n_steps,
    C), and, when ``record``, raster[step, nrn_off[l] + j] = 1 for every spike.  Streams
    go through here; whole samples through :func:`run_one`, the same step loop, which may
    also stop the hidden layers once they are at rest (exact: see "Coming to rest").
    Every step runs here, so the state stays exact for the calls that follow."""
    advance(x, n_steps, readout, raster, record, False, p.ff, p.rec, p.cells, p.ro,
            st.cells, st.ring, st.ring_len, st.ro, st.work, st.count)


@numba.njit(**EXACT)
def clear_state(st):
    """Zero ``st`` for a new sample: the state :func:`new_state` returns, without
    allocating (the spike lists and the workspace are only read after being written)."""
    cst, ro, count = st.cells, st.ro, st.count
    for i in range(cst.v.shape[0]):
        cst.v[i] = 0.0
        for r in range(cst.aux.shape[0]):
            cst.aux[r, i] = 0.0
    for l in range(cst.nspk.shape[0]):
        cst.nspk[l] = 0
        count.spikes[l] = 0
    for r in range(st.ring_len.shape[0]):  # the queue's entries are read only below a row's length
        st.ring_len[r] = 0
    for i in range(ro.u.shape[0]):
        ro.u[i] = 0.0
        ro.scores[i] = 0.0
    count.clock[0] = 0
    count.syn[0] = 0


@numba.njit(**EXACT)
def run_one(p, st, x, n_steps, readout, scores, raster, record, syn, spikes, hidden_steps, rest):
    """Simulate one sample from a zero state (``st`` is cleared first, so one state serves
    every sample of a batch); write its scores (C,), synaptic events syn[0], spikes per
    layer (L,) and hidden_steps[0], the steps its hidden layers ran (n_steps, or fewer
    when ``rest`` let them stop once at rest: "Coming to rest")."""
    clear_state(st)
    hidden_steps[0] = advance(x, n_steps, readout, raster, record, rest, p.ff, p.rec, p.cells, p.ro,
                              st.cells, st.ring, st.ring_len, st.ro, st.work, st.count)
    for i in range(scores.shape[0]):
        scores[i] = st.ro.scores[i]
    syn[0] = st.count.syn[0]
    for l in range(spikes.shape[0]):
        spikes[l] = st.count.spikes[l]


# The batch entry points below take Params as *plain tuples* of plain tuples
# (:func:`as_plain`) and rebuild the NamedTuples inside: numba's dispatcher types a plain
# tuple of arrays several microseconds faster than a NamedTuple, which matters per call at
# batch 1.  The stream's entry points take the model and the state as a few flat buffers
# instead (see "Flat buffers" below): once per 10 ms step, unboxing 39 arrays was about
# half of a step's cost.

@numba.njit(**EXACT)
def _params(pt):
    return Params(FeedForward(*pt[0]), Delivery(*pt[1]), CellParams(*pt[2]), ReadoutParams(*pt[3]))


@numba.njit(**EXACT)
def _state(st_t):
    return State(CellState(*st_t[0]), st_t[1], st_t[2], ReadoutState(*st_t[3]), Workspace(*st_t[4]),
                 Counters(*st_t[5]))


def as_plain(packed):
    """Params as the nested plain tuples the batch entry points take."""
    return tuple(tuple(g) if isinstance(g, tuple) else g for g in packed)


# -- Flat buffers -------------------------------------------------------------------------
# A stream calls the kernel once per step, and numba unboxes every array argument on every
# call (an NRT allocation each: ~0.1 us per array).  So a stream keeps its Params and State
# in a few flat buffers, one per *role* (below), and the NamedTuples it reads in Python are
# views into them; the kernel receives the buffers and hands the step loop the same views
# (slices, no copies) through :func:`run_flat`, generated from the spec below, so both
# sides cannot disagree on where a field lives.  Roles, not dtypes, pick the buffer: in float64
# the per-neuron arrays ("r") and the class scores ("d") have the same dtype but different
# buffers, so a kernel compiled for one precision reads every field from the same place.
#
# The int64 buffer begins with the layout: for leaf k (the spec's order) at [3k, 3k + 3):
# its start and stop in its buffer, and its number of columns for a 2-D leaf (0: 1-D).

#: roles of the flat buffers: int64, int32 (the delay queues), float32 (weights), the
#: precision's type (per-neuron parameters, membranes, currents), float64 (class scores)
ROLE_DTYPE = {"i": np.int64, "q": np.int32, "w": np.float32, "d": np.float64}   # "r": the precision's

#: the leaves of Params and of State, in field order: a group is ``(NamedTuple class, spec)``;
#: a leaf is its buffer's role, ``2`` appended for a 2-D array
PARAMS_SPEC = (Params, ((FeedForward, ("i", "i", "w", "i")),
                        (Delivery, ("i", "w", "i", "i", "i", "i", "i")),
                        (CellParams, ("i", "i", "r", "r", "r", "r", "r2", "i")),
                        (ReadoutParams, ("w", "r", "r", "r", "i"))))
STATE_SPEC = (State, ((CellState, ("r", "r2", "i", "i")), "q", "i", (ReadoutState, ("r", "r", "d")),
                      (Workspace, ("r", "i", "r")), (Counters, ("i", "i", "i"))))
#: the buffers of each, in the order the kernels take them
PARAMS_ROLES = ("i", "w", "r")
STATE_ROLES = ("i", "q", "r", "d")


def _leaves(tree, part):
    """(role, array) of each leaf of ``tree`` (a Params or State), walking ``part`` of its spec."""
    if isinstance(part, str):
        yield part, tree
        return
    cls, fields = part
    if not isinstance(tree, cls) or len(tree) != len(fields):
        raise TypeError(f"expected a {cls.__name__} of {len(fields)} fields, got {type(tree).__name__}")
    for value, sub in zip(tree, fields):
        yield from _leaves(value, sub)


def layout_size(spec) -> int:
    """Entries of the layout at the start of the int64 buffer of ``spec``'s flat form."""
    if isinstance(spec, str):
        return 3
    return sum(layout_size(sub) for sub in spec[1])


def _rebuild(part, arrays):
    """The tree of ``part`` with its leaves taken in order from the iterator ``arrays``."""
    if isinstance(part, str):
        return next(arrays)
    cls, fields = part
    return cls(*(_rebuild(sub, arrays) for sub in fields))


def flatten(tree, spec, roles, real):
    """``(buffers, views)``: the arrays of ``tree`` (Params with :data:`PARAMS_SPEC` and
    :data:`PARAMS_ROLES`, or State with :data:`STATE_SPEC` and :data:`STATE_ROLES`) copied
    into one new buffer per role (``real``: the dtype of role "r"), the layout first in the
    int64 one (see "Flat buffers"), every leaf starting on 64 bytes (:mod:`evsim._memory`);
    ``views``: the same tree of NamedTuples whose arrays are views into the buffers (what
    the kernel's reader rebuilds).  Raises TypeError when a leaf's dtype or dimension is
    not its role's."""
    dtypes = {**ROLE_DTYPE, "r": np.dtype(real)}
    leaves = list(_leaves(tree, spec))
    used = {r: 0 for r in roles}
    used["i"] = 3 * len(leaves)
    layout = []
    for role, a in leaves:
        ndim = 2 if role.endswith("2") else 1
        if a.dtype != dtypes[role[0]] or a.ndim != ndim:
            raise TypeError(f"a leaf of role {role!r} is {a.ndim}-D {a.dtype}, expected {ndim}-D "
                            f"{np.dtype(dtypes[role[0]])}")
        step = ALIGN // np.dtype(dtypes[role[0]]).itemsize    # each leaf starts on 64 bytes
        start = -(-used[role[0]] // step) * step
        layout.append((start, start + a.size, a.shape[1] if role.endswith("2") else 0))
        used[role[0]] = start + a.size
    buffers = {r: aligned_zeros(used[r], dtypes[r]) for r in roles}
    buffers["i"][:3 * len(leaves)] = np.array(layout, np.int64).ravel()
    views = []
    for (role, a), (start, stop, cols) in zip(leaves, layout):
        view = buffers[role[0]][start:stop]
        view = view.reshape(-1, cols) if cols else view
        view[...] = a
        views.append(view)
    return tuple(buffers[r] for r in roles), _rebuild(spec, iter(views))


@numba.njit(**EXACT_CALLEE)
def _leaf(head, k, buf):
    """Leaf k of the flat layout ``head``: a 1-D view of ``buf``."""
    return buf[head[3 * k]:head[3 * k + 1]]


@numba.njit(**EXACT_CALLEE)
def _leaf2(head, k, buf):
    """Leaf k of the flat layout ``head``: a 2-D view of ``buf`` (head[3k + 2] columns)."""
    a, b, cols = head[3 * k], head[3 * k + 1], head[3 * k + 2]
    return buf[a:b].reshape(((b - a) // cols, cols))


def leaf_paths(spec, prefix: str = "") -> list:
    """``(path, role)`` of each leaf of ``spec`` in order, path as ``"cells.beta"``."""
    if isinstance(spec, str):
        return [(prefix, spec)]
    cls, fields = spec
    out = []
    for name, sub in zip(cls._fields, fields):
        out += leaf_paths(sub, f"{prefix}.{name}" if prefix else name)
    return out


#: step_loop's arguments after ``x, n_steps, readout, raster, record``: (keyword, leaf path
#: of Params "p." or State "s.", with "[0]" for a scalar read from a (1,) array)
STEP_LOOP_ARGS = (
    ("size", "p.ff.size"), ("nrn_off", "p.ff.nrn_off"), ("ff_w", "p.ff.w"), ("ff_off", "p.ff.w_off"),
    ("rec_kind", "p.rec.kind"), ("rec_w", "p.rec.w"), ("rec_off", "p.rec.w_off"), ("delay", "p.rec.delay"),
    ("slots", "p.rec.slots"), ("ring_off", "p.rec.ring_off"), ("slot_off", "p.rec.slot_off"),
    ("cell", "p.cells.kind"), ("reset", "p.cells.reset"), ("bias", "p.cells.bias"), ("beta", "p.cells.beta"),
    ("theta", "p.cells.theta"), ("gain", "p.cells.gain"), ("extra", "p.cells.extra"),
    ("ro_w", "p.ro.w"), ("ro_bias", "p.ro.bias"), ("ro_beta", "p.ro.beta"), ("ro_gain", "p.ro.gain"),
    ("decision", "p.ro.decision[0]"),
    ("v", "s.cells.v"), ("aux", "s.cells.aux"), ("spk", "s.cells.spk"), ("nspk", "s.cells.nspk"),
    ("ring", "s.ring"), ("ring_len", "s.ring_len"), ("u", "s.ro.u"), ("acc", "s.ro.acc"),
    ("scores", "s.ro.scores"), ("cur", "s.work.cur"), ("ev_idx", "s.work.ev_idx"), ("ev_cnt", "s.work.ev_cnt"),
    ("clock", "s.count.clock"), ("syn", "s.count.syn"), ("spikes", "s.count.spikes"))


def _generate_run_flat():
    """``run_flat(p_i, p_w, p_r, s_i, s_q, s_r, s_d, x, n_steps, readout)``: :func:`advance`
    (kind codes checked, then :func:`step_loop`, no raster) on a model and a state given
    as flat buffers, each of step_loop's arrays a view of its buffer.  Generated from the
    specs, so the layout it reads is the one :func:`flatten` writes; it hands step_loop
    the views directly (no NamedTuples in between: each level of them cost about a
    microsecond per call).  No source file, so not cached itself: the cached entry points
    that call it hold its code (as for :func:`evsim.cells.generate_dispatch`'s)."""
    expr = {}
    for side, spec, roles in (("p", PARAMS_SPEC, PARAMS_ROLES), ("s", STATE_SPEC, STATE_ROLES)):
        for k, (path, role) in enumerate(leaf_paths(spec)):
            fn = "_leaf2" if role.endswith("2") else "_leaf"
            expr[f"{side}.{path}"] = f"{fn}({side}_i, {k}, {side}_{role[0]})"
    args = []
    for keyword, path in STEP_LOOP_ARGS:
        base, scalar = (path[:-3], "[0]") if path.endswith("[0]") else (path, "")
        args.append(f"{keyword}={expr[base]}{scalar}")
    source = "\n".join([
        "def run_flat(p_i, p_w, p_r, s_i, s_q, s_r, s_d, x, n_steps, readout):",
        (f"    check_codes({expr['p.rec.kind']}, {expr['p.cells.kind']}, {expr['p.cells.reset']}, "
         f"{expr['p.ro.decision']}[0])"),
        "    step_loop(x, n_steps, readout, np.zeros((1, 0), np.uint8), False, False,",
        *(f"              {a}," for a in args),
        "              )", ""])
    namespace = {"_leaf": _leaf, "_leaf2": _leaf2, "check_codes": check_codes, "step_loop": step_loop, "np": np}
    exec(compile(source, "<evsim.kernels.event._generate_run_flat>", "exec"), namespace)  # noqa: S102
    function = namespace["run_flat"]
    function.__doc__ = f"Generated by evsim.kernels.event._generate_run_flat:\n\n{source}"
    return numba.njit(**EXACT_CALLEE)(function)


run_flat = _generate_run_flat()


@numba.njit(**EXACT)
def stream_chunk(pi, pw, pr, si, sq, sr, sd, x, n_steps, readout):
    """:func:`run_sample` for a stream (no raster), the model ``(pi, pw, pr)`` and the
    state ``(si, sq, sr, sd)`` as flat buffers.  Returns 0, or -1 without running anything
    when ``x[:n_steps]`` holds a NaN or an infinity (the caller then raises its error for
    the input): the check a live ``step`` needs, done here because a NumPy check costs more
    than the loop."""
    for t in range(n_steps):
        for j in range(x.shape[1]):
            if not math.isfinite(x[t, j]):
                return -1
    run_flat(pi, pw, pr, si, sq, sr, sd, x, n_steps, readout)
    return 0


@numba.njit(**EXACT)
def stream_step(pi, pw, pr, si, sq, sr, sd, x, readout):
    """One step of a stream: :func:`stream_chunk` with the step's counts x (n_inputs,) and
    its readout row (C,) as 1-D arrays (what a live ``step`` has at hand)."""
    return stream_chunk(pi, pw, pr, si, sq, sr, sd, x.reshape((1, x.shape[0])), 1,
                        readout.reshape((1, readout.shape[0])))


@numba.njit(**EXACT)
def stream_push(pi, pw, pr, si, sq, sr, sd, t, u, n_channels, dt_ms, pool, first, cap, max_ahead, pending,
                count, readout):
    """A stream's ``push`` with ``until`` in one call: bin the raw events into ``pending``
    (:func:`push_events`, same checks and statuses), then, when they are binned, run
    ``count`` steps (``first`` .. ``first + count - 1``) from the pending counts, silence
    past its rows, readout rows into readout (count, C).  Returns ``(status, last)`` of
    :func:`push_events`; nothing runs unless status is 0.  The caller drops the rows
    run from ``pending``."""
    status, last = push_events(t, u, n_channels, dt_ms, pool, first, cap, max_ahead, pending)
    if status != 0 or count <= 0:
        return status, last
    have = min(count, pending.shape[0])
    run_flat(pi, pw, pr, si, sq, sr, sd, pending, have, readout)
    if count > have:
        run_flat(pi, pw, pr, si, sq, sr, sd, np.zeros((count - have, pending.shape[1])), count - have,
                 readout[have:])
    return 0, last


@numba.njit(**EXACT)
def bin_events(t, u, offsets, lengths, dt_ms, pool, x):
    """Add the validated events of several samples to their zeroed, padded counts ``x``
    (B, T, n_inputs): sample b's events ``offsets[b]:offsets[b + 1]`` of ``t`` (seconds,
    float64) and ``u`` (channels, int64) at step ``floor(t * 1000 / dt_ms)``
    (:func:`evsim.data.time_to_step`'s operations) and input ``u // pool``, those at or
    past ``lengths[b]`` dropped: :func:`evsim.data.bin_batch` in one pass."""
    for b in range(offsets.shape[0] - 1):
        for e in range(offsets[b], offsets[b + 1]):
            s = min(np.floor(t[e] * 1000.0 / dt_ms), _STEP_CLIP)
            if s < lengths[b]:
                x[b, int(s), u[e] // pool] += 1.0


#: largest step :func:`push_events` computes (as :func:`evsim.data.time_to_step` clips)
_STEP_CLIP = 2.0**62


@numba.njit(**EXACT)
def push_events(t, u, n_channels, dt_ms, pool, first, cap, max_ahead, pending):
    """Bin one push's raw events into a stream's pending input counts, after checking them:
    ``pending[s - first, u // pool] += 1`` for an event of channel u at time t (seconds),
    step ``s = floor(t * 1000 / dt_ms)`` (:func:`evsim.data.time_to_step`'s operations),
    ``first`` the stream's next step; events at or past ``cap`` (>= 0: the model's fixed
    n_steps) are dropped.  Returns ``(status, last)``: status 0 done, ``last`` the
    latest step binned (-1: none); 1: an event is invalid (a time that is not finite or
    negative, a channel outside [0, n_channels), a step before ``first`` or, without a cap,
    ``max_ahead`` or more steps past it), nothing binned (the caller finds and reports it);
    2: ``pending`` needs ``last - first + 1`` rows, nothing binned."""
    last = -1
    for e in range(t.shape[0]):
        te, ue = t[e], u[e]
        if not (te >= 0.0 and te < math.inf) or ue < 0 or ue >= n_channels:
            return 1, last
        s = min(np.floor(te * 1000.0 / dt_ms), _STEP_CLIP)   # float64, as time_to_step computes it
        if s < first or (cap < 0 and s - first >= max_ahead):
            return 1, last
        if (cap < 0 or s < cap) and s > last:
            last = int(s)
    if last - first >= pending.shape[0]:
        return 2, last
    for e in range(t.shape[0]):
        s = int(min(np.floor(t[e] * 1000.0 / dt_ms), _STEP_CLIP))
        if cap < 0 or s < cap:
            pending[s - first, u[e] // pool] += 1.0
    return 0, last


@numba.njit(**EXACT)
def run_batch_serial(ff_t, rec_t, cells_t, ro_t, st_t, x, lengths, readout, scores, raster, record, syn, spikes,
                     hidden_steps, rest):
    """Simulate every sample of a batch on the calling thread, one after another in the
    one state ``st_t`` (:func:`as_plain_state` of :func:`zero_state`: no allocation here,
    see zero_state; any state of the model will do, each sample clears it first), each
    writing only its own rows of readout (B, T, C), scores (B, C), raster (B, T or 0, N),
    syn (B,), spikes (B, L) and hidden_steps (B,): :func:`run_one`, with ``rest``.
    :func:`evsim.event.simulate` runs a batch on several threads by calling this kernel
    from each on chunks of the batch (:mod:`evsim._shares`)."""
    p = _params((ff_t, rec_t, cells_t, ro_t))
    st = _state(st_t)
    for b in range(x.shape[0]):
        run_one(p, st, x[b], lengths[b], readout[b], scores[b], raster[b], record, syn[b:b + 1], spikes[b],
                hidden_steps[b:b + 1], rest)
