"""Dense NumPy reference of one CS-GRU layer over time: equations (1)-(5) of
:mod:`evsim.cells.csgru`, written literally, step by step.  It is the oracle the event
kernel (:mod:`evsim.kernels.csgru_event`) and the training forward
(:mod:`evsim.training.csgru_kernels`) are tested against.  Slow on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .csgru import GATE_CURRENT, GATE_INPUT, CSGRUParams, check_input

__all__ = ["CSGRUTrace", "conv_same", "delay_weight", "heaviside", "run_reference"]


class CSGRUTrace(NamedTuple):
    """Every quantity of the layer per step, each (T, C, P) float64."""

    r: np.ndarray        # reset-like gate
    i: np.ndarray        # current
    z: np.ndarray        # update gate
    v: np.ndarray        # membrane
    s: np.ndarray        # spikes (or the smooth spike function's values)
    s_hat: np.ndarray    # delayed (spread) recurrent spikes


def conv_same(kernel: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(K * x)[c, p] = sum_{c', m} K[c, c', m] x[c', p + m - k//2]``, zeros past the
    edges; kernel (C, C', k), x (C', P) -> (C, P)."""
    c_out, _, k = kernel.shape
    n_p = x.shape[1]
    half = k // 2
    out = np.zeros((c_out, n_p))
    for m in range(k):
        for p in range(n_p):
            q = p + m - half
            if 0 <= q < n_p:
                out[:, p] += kernel[:, :, m] @ x[:, q]
    return out


def delay_weight(tau: int, d: np.ndarray, sigma: float) -> np.ndarray:
    """``m(tau) = max(0, w - |tau - 1 - d|) / w^2`` with w = 1 + sigma, for every unit."""
    w = 1.0 + sigma
    return np.maximum(0.0, w - np.abs(tau - 1.0 - d)) / (w * w)


def heaviside(x: np.ndarray) -> np.ndarray:
    """H(x): 1 where x >= 0."""
    return (x >= 0).astype(np.float64)


def _sigmoid(a):
    with np.errstate(over="ignore"):                # exp(-a) = inf for a < -709: sigma = 0
        return 1.0 / (1.0 + np.exp(-a))


def run_reference(params: CSGRUParams, x, *, sigma: float = 0.0,
                  spike: Callable[[np.ndarray], np.ndarray] = heaviside, reset_spikes=None) -> CSGRUTrace:
    """Run one sample ``x`` (T, Cin, P) through the layer; every state starts at 0.

    sigma: delay spread (0 for inference; then integer delays give exact delivery);
    spike: the spike function of ``v - theta`` (H, or a surrogate's primitive for the
    gradient checks);
    reset_spikes: (T, C, P) train the soft reset subtracts at step t + 1 in place of the
    layer's own s_t (None).  Held fixed, it makes the reset a constant: the function whose
    exact gradient is the "detached reset" one (used only by the gradient checks).
    """
    x = check_input(params, x)
    n_t = x.shape[0]
    c, n_p = params.n_channels, params.n_positions
    d = np.asarray(params.delays, np.float64)
    theta = params.theta
    out = CSGRUTrace(*(np.zeros((n_t, c, n_p)) for _ in CSGRUTrace._fields))
    i_prev, v_prev, s_prev = np.zeros((c, n_p)), np.zeros((c, n_p)), np.zeros((c, n_p))
    for t in range(n_t):
        s_hat = np.zeros((c, n_p))
        for tau in range(1, t + 1):
            s_hat += delay_weight(tau, d, sigma) * out.s[t - tau]
        r = _sigmoid(conv_same(params.k_rx, x[t]) + conv_same(params.k_rh, s_hat) + params.b_r[:, None])
        i = r * i_prev + conv_same(params.k_ix, x[t]) + conv_same(params.k_ih, s_hat) + params.b_i[:, None]
        if params.gate == GATE_CURRENT:
            z_in = conv_same(params.k_zin, i)
        elif params.gate == GATE_INPUT:
            z_in = conv_same(params.k_zin, x[t])
        else:
            raise ValueError(f"unknown CS-GRU gate code {params.gate}")
        z = _sigmoid(z_in + conv_same(params.k_zh, s_hat) + params.b_z[:, None])
        v = z * v_prev + (1.0 - z) * i - theta * s_prev
        s = spike(v - theta)
        for name, value in zip(CSGRUTrace._fields, (r, i, z, v, s, s_hat)):
            getattr(out, name)[t] = value
        i_prev, v_prev, s_prev = i, v, (s if reset_spikes is None else reset_spikes[t])
    return out
