"""The CS-GRU layer (Convolutional Spiking GRU) with axonal delays: parameters and checks.

One layer holds C channels x P positions.  ``*`` is a 'same'-padded 1-D cross-correlation
over the position axis, ``(K * x)[c, p] = sum_{c', m} K[c, c', m] x[c', p + m - k//2]``
(zeros beyond the edges, the convention of evsim's conv recurrence), ``sigma`` the
logistic function.  Per step, with ``x_t`` the layer's input (Cin, P)::

    shat_t = sum_{tau >= 1} m_j(tau) s_{t-tau}            delayed recurrent spikes, per unit j = (c, p)
    r_t = sigma(K_rx * x_t + K_rh * shat_t + b_r)           (1) reset-like gate: the current's leak
    i_t = r_t . i_{t-1} + K_ix * x_t + K_ih * shat_t + b_i  (2) current
    z_t = sigma(K_zi * i_t + K_zh * shat_t + b_z)           (3) update gate, gate "current" (CS-GRU)
    z_t = sigma(K_zx * x_t + K_zh * shat_t + b_z)           (3') gate "input" (SpikGRU-style)
    v_t = z_t . v_{t-1} + (1 - z_t) . i_t - theta s_{t-1}   (4) membrane, soft reset, undelayed
    s_t = H(v_t - theta)                                    (5) H(0) = 1

    m_j(tau) = max(0, w - |tau - 1 - d_j|) / w^2,  w = 1 + sigma

Biases only on the input side (one per output channel); the three recurrent kernels share
the one delayed train ``shat`` (an axonal delay belongs to the presynaptic unit); the
reset uses ``s_{t-1}`` undelayed.  For inference sigma = 0 and the delays are integers,
so ``shat_t[j] = s_{t-1-d_j}[j]``; with d = 0 the cell is the plain CS-GRU.  All states
start at zero.

Arrays (float64 unless stated; ``k`` odd, may differ between kernels):

==========  ================  ===================================================
``k_rx``    (C, Cin, k)       input -> reset gate r
``k_ix``    (C, Cin, k)       input -> current i
``k_zin``   (C, C, k)         gate "current": K_zi (from i_t); gate "input": K_zx,
            or (C, Cin, k)    (from x_t)
``k_rh``    (C, C, k)         delayed spikes -> r
``k_ih``    (C, C, k)         delayed spikes -> i
``k_zh``    (C, C, k)         delayed spikes -> z
``b_r``...  (C,)              biases of r, i, z
``delays``  (C, P)            delay of each unit in steps (>= 0; integers for the event engine)
==========  ================  ===================================================
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from evsim.errors import EvsimError

__all__ = ["GATES", "CSGRUParams", "CSGRUStream", "EventRun", "check_input", "event_run", "gate_code", "make_params",
           "new_state", "pack_event"]

#: update-gate variants: "current" z from i_t (CS-GRU), "input" z from x_t (SpikGRU)
GATES = {"current": 0, "input": 1}
GATE_CURRENT, GATE_INPUT = GATES["current"], GATES["input"]
GATE_NAMES = {code: name for name, code in GATES.items()}

KERNEL_NAMES = ("k_rx", "k_ix", "k_zin", "k_rh", "k_ih", "k_zh")
BIAS_NAMES = ("b_r", "b_i", "b_z")


class CSGRUParams(NamedTuple):
    """One CS-GRU layer (shapes in the module docstring); ``theta`` float threshold,
    ``gate`` the :data:`GATES` code."""

    k_rx: np.ndarray
    k_ix: np.ndarray
    k_zin: np.ndarray
    k_rh: np.ndarray
    k_ih: np.ndarray
    k_zh: np.ndarray
    b_r: np.ndarray
    b_i: np.ndarray
    b_z: np.ndarray
    delays: np.ndarray
    theta: float
    gate: int           # GATES code of the update gate

    @property
    def n_channels(self) -> int:
        return self.k_rx.shape[0]

    @property
    def n_in_channels(self) -> int:
        return self.k_rx.shape[1]

    @property
    def n_positions(self) -> int:
        return self.delays.shape[1]


def gate_code(gate: str) -> int:
    """Integer code of the update-gate variant; an unknown name raises."""
    try:
        return GATES[gate]
    except (KeyError, TypeError):
        raise EvsimError(f"unknown CS-GRU gate {gate!r}; valid gates: {', '.join(GATES)}") from None


def _kernel(name, a, c_out, c_in):
    a = np.asarray(a, np.float64)
    if a.ndim != 3 or a.shape[2] % 2 == 0:
        raise EvsimError(f"CS-GRU {name}: shape {a.shape}; expected (C_out, C_in, k) with k odd")
    if (c_out is not None and a.shape[0] != c_out) or (c_in is not None and a.shape[1] != c_in):
        raise EvsimError(f"CS-GRU {name}: shape {a.shape}; expected ({c_out}, {c_in}, k)")
    if not np.isfinite(a).all():
        raise EvsimError(f"CS-GRU {name}: NaN or infinite weight")
    return a


def make_params(k_rx, k_ix, k_zin, k_rh, k_ih, k_zh, b_r, b_i, b_z, delays, *, gate: str = "current",
                theta: float = 1.0, integer_delays: bool = False) -> CSGRUParams:
    """Checked, float64 :class:`CSGRUParams`.  ``delays`` (C, P) fixes P; with
    ``integer_delays`` (the event engine) they must be whole numbers; they are returned
    as int64 then, float64 otherwise."""
    k_rx = _kernel("k_rx", k_rx, None, None)
    c, c_in = k_rx.shape[:2]
    k_ix = _kernel("k_ix", k_ix, c, c_in)
    k_zin = _kernel("k_zin", k_zin, c, c if gate_code(gate) == GATE_CURRENT else c_in)
    k_rh, k_ih, k_zh = (_kernel(n, a, c, c) for n, a in (("k_rh", k_rh), ("k_ih", k_ih), ("k_zh", k_zh)))
    biases = []
    for name, b in zip(BIAS_NAMES, (b_r, b_i, b_z)):
        b = np.asarray(b, np.float64)
        if b.shape != (c,) or not np.isfinite(b).all():
            raise EvsimError(f"CS-GRU {name}: shape {b.shape}; expected ({c},) finite values")
        biases.append(b)
    d = np.asarray(delays, np.float64)
    if d.ndim != 2 or d.shape[0] != c or d.shape[1] < 1:
        raise EvsimError(f"CS-GRU delays: shape {d.shape}; expected ({c}, P) with P >= 1 positions")
    if not np.isfinite(d).all() or d.min() < 0:
        raise EvsimError("CS-GRU delays: negative, NaN or infinite delay; expected finite values >= 0")
    if integer_delays:
        if np.any(d != np.round(d)):
            raise EvsimError("CS-GRU delays: non-integer delay; the event engine takes whole steps (round them)")
        d = d.astype(np.int64)
    theta = float(theta)
    if not np.isfinite(theta):
        raise EvsimError(f"CS-GRU theta: {theta}; expected a finite threshold")
    return CSGRUParams(k_rx, k_ix, k_zin, k_rh, k_ih, k_zh, *biases, d, theta, gate_code(gate))


def check_input(params: CSGRUParams, x) -> np.ndarray:
    """One sample's input as float64 (T, Cin, P); raises on a wrong shape or NaN."""
    x = np.asarray(x, np.float64)
    want = (params.n_in_channels, params.n_positions)
    if x.ndim != 3 or x.shape[1:] != want:
        raise EvsimError(f"CS-GRU input: shape {x.shape}; expected (T, {want[0]}, {want[1]})")
    if not np.isfinite(x).all():
        raise EvsimError("CS-GRU input: NaN or infinite value")
    return x


# -- the event engine ----------------------------------------------------------------------

def _padded(kernels, k):
    """Kernels (C, Cin, k_g) zero-padded at both ends to length k, stacked (Cin, k, G, C)."""
    out = np.zeros((kernels[0].shape[1], k, len(kernels), kernels[0].shape[0]))
    for g, kern in enumerate(kernels):
        lo = (k - kern.shape[2]) // 2
        out[:, lo:lo + kern.shape[2], g, :] = kern.transpose(1, 2, 0)
    return out


def pack_event(params: CSGRUParams):
    """The layer in the event kernel's layout (:class:`evsim.kernels.csgru_event.EventWeights`).
    Delays must be whole steps (:func:`make_params` with ``integer_delays=True``)."""
    from evsim.kernels.csgru_event import EventWeights

    if params.delays.dtype.kind not in "iu":
        raise EvsimError("CS-GRU event engine: delays must be integers (make_params(..., integer_delays=True))")
    inputs = [params.k_rx, params.k_ix] + ([params.k_zin] if params.gate == GATE_INPUT else [])
    recurrent = [params.k_rh, params.k_ih, params.k_zh]
    c = params.n_channels
    k_zi = (params.k_zin.transpose(2, 1, 0) if params.gate == GATE_CURRENT else np.zeros((0, c, c)))
    return EventWeights(
        w_in=_padded(inputs, max(k.shape[2] for k in inputs)),
        w_rec=_padded(recurrent, max(k.shape[2] for k in recurrent)),
        k_zi=np.ascontiguousarray(k_zi),
        bias=np.stack([params.b_r, params.b_i, params.b_z]),
        delays=np.ascontiguousarray(params.delays.T.astype(np.int64)),
        theta=float(params.theta), gate=int(params.gate))


def new_state(weights):
    """Zero state for :func:`pack_event`'s layer (:class:`~evsim.kernels.csgru_event.EventState`)."""
    from evsim.kernels.csgru_event import EventState

    n_p, c = weights.delays.shape
    slots = int(weights.delays.max(initial=0)) + 1
    return EventState(i=np.zeros((n_p, c)), v=np.zeros((n_p, c)), s=np.zeros((n_p, c)),
                      ring=np.zeros((slots, n_p, 3, c)), pin=np.zeros((n_p, 3, c)),
                      counters=np.zeros(3, np.int64))


class EventRun(NamedTuple):
    """One sample through the event engine, in the (T, C, P) layout of the reference."""

    s: np.ndarray
    v: np.ndarray
    i: np.ndarray
    spikes: int
    synaptic_events: int


def event_run(params: CSGRUParams, x) -> EventRun:
    """Run one sample ``x`` (T, Cin, P) through the layer with the event kernel."""
    from evsim.kernels.csgru_event import csgru_run

    x = check_input(params, x)
    weights = pack_event(params)
    state = new_state(weights)
    n_t, n_p, c = x.shape[0], params.n_positions, params.n_channels
    s, v, i = (np.zeros((n_t, n_p, c)) for _ in range(3))
    csgru_run(weights, state, np.ascontiguousarray(x.transpose(0, 2, 1)), s, v, i)
    back = (a.transpose(0, 2, 1) for a in (s, v, i))
    return EventRun(*back, int(state.counters[1]), int(state.counters[2]))


class CSGRUStream:
    """One layer fed step by step (a live input): ``step(x_t)`` with x_t (Cin, P) returns
    the step's spikes (C, P); the result equals :func:`event_run` on the whole sample."""

    def __init__(self, params: CSGRUParams):
        self.params = params
        self._weights = pack_event(params)
        self._state = new_state(self._weights)

    def reset(self) -> None:
        for a in self._state:
            a[...] = 0

    @property
    def n_steps(self) -> int:
        return int(self._state.counters[0])

    @property
    def membrane(self) -> np.ndarray:
        return self._state.v.T.copy()

    @property
    def current(self) -> np.ndarray:
        return self._state.i.T.copy()

    @property
    def counters(self) -> dict:
        return {"spikes": int(self._state.counters[1]), "synaptic_events": int(self._state.counters[2])}

    def step(self, x_t) -> np.ndarray:
        from evsim.kernels.csgru_event import csgru_step

        x = check_input(self.params, np.asarray(x_t, np.float64)[None])[0]
        s = np.zeros((self.params.n_positions, self.params.n_channels))
        csgru_step(self._weights, self._state, np.ascontiguousarray(x.T), s)
        return s.T.copy()
