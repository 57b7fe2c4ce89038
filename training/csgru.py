"""Training side of the CS-GRU layer: initialisation, forward and backward through time
(hand-written BPTT, no autograd), for one layer given as arrays.

Equations: :mod:`evsim.cells.csgru`.  During training the delays are real and each
unit's delayed spike is spread over a triangle of half-width ``w = 1 + sigma`` (DelRec,
``method.md``); with sigma = 0 and integer delays this is the inference cell.  The
surrogate of H is the CS-GRU code's ``1 / (1 + gamma (v - theta)^2)``, gamma = 10
(``inverse_quadratic``), or any other of :data:`evsim.training.surrogates.SURROGATES` by name.
The reset path's gradient may be detached (``detach_reset``); the CS-GRU code does not.

>>> cache = forward(params, x, sigma=1.0)                       # doctest: +SKIP
>>> grads, gx = backward(params, cache, dL_ds)                  # doctest: +SKIP

``grads`` maps ``k_rx k_ix k_zin k_rh k_ih k_zh b_r b_i b_z delays`` to dL/d(that array);
``gx`` is dL/dx (B, T, Cin, P), to chain into the layer below.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from evsim.cells.csgru import (
    BIAS_NAMES,
    GATE_CURRENT,
    GATE_NAMES,
    KERNEL_NAMES,
    CSGRUParams,
    gate_code,
    make_params,
)
from evsim.errors import EvsimError

from . import csgru_kernels as ck
from ._kernels import build
from .network import delay_tables
from .surrogates import get_surrogate

__all__ = ["PARAM_NAMES", "CSGRUCache", "backward", "export_params", "forward", "init_params"]

PARAM_NAMES = KERNEL_NAMES + BIAS_NAMES + ("delays",)


class CSGRUCache(NamedTuple):
    """What the backward pass needs from the forward pass (states (B, T, C, P))."""

    x: np.ndarray
    r: np.ndarray
    i: np.ndarray
    z: np.ndarray
    v: np.ndarray
    s: np.ndarray
    s_hat: np.ndarray
    tables: tuple         # (klo, mtab, dmtab) per unit, see training.csgru_kernels
    surrogate: int
    alpha: float


def init_params(n_channels: int, n_in_channels: int, n_positions: int, kernel_size: int = 3, *,
                gate: str = "current", delay_range=(0.0, 0.0), theta: float = 1.0,
                rng: np.random.Generator | None = None) -> CSGRUParams:
    """Kernels and biases drawn from U(-sqrt(1/C), sqrt(1/C)) (C = n_channels, the CS-GRU
    code's rule); delays uniform in ``delay_range`` steps (DelRec: (10, 30))."""
    rng = rng if rng is not None else np.random.default_rng(0)
    c, c_in, k = n_channels, n_in_channels, kernel_size
    bound = np.sqrt(1.0 / c)
    uni = lambda *shape: rng.uniform(-bound, bound, shape)
    z_src = c if gate_code(gate) == GATE_CURRENT else c_in
    lo, hi = delay_range
    return make_params(uni(c, c_in, k), uni(c, c_in, k), uni(c, z_src, k), uni(c, c, k), uni(c, c, k),
                       uni(c, c, k), uni(c), uni(c), uni(c), rng.uniform(lo, hi, (c, n_positions)),
                       gate=gate, theta=theta)


def export_params(params: CSGRUParams) -> CSGRUParams:
    """The layer as inference runs it: delays clamped to >= 0 and rounded to the nearest
    whole step (``numpy.rint``, as the LIF export), int64, checked for the event engine."""
    delays = np.rint(np.maximum(np.asarray(params.delays, np.float64), 0.0))
    return make_params(*(getattr(params, n) for n in KERNEL_NAMES + BIAS_NAMES), delays,
                       gate=GATE_NAMES[params.gate], theta=params.theta,
                       integer_delays=True)


def _unit_tables(params: CSGRUParams, sigma: float):
    c, n_p = params.delays.shape
    klo, mtab, dmtab = delay_tables(params.delays.reshape(-1), sigma)
    nq = mtab.shape[1]
    return klo.reshape(c, n_p), mtab.reshape(c, n_p, nq), dmtab.reshape(c, n_p, nq)


def forward(params: CSGRUParams, x, *, sigma: float = 0.0, surrogate: str = "inverse_quadratic",
            alpha: float | None = None, smooth: bool = False, reset_spikes=None) -> CSGRUCache:
    """Run a batch x (B, T, Cin, P) through the layer; spikes are ``cache.s``.

    sigma: delay spread (>= 0); smooth: the surrogate's primitive in place of H
    (gradient checks only); reset_spikes: (B, T, C, P) fixed train for the soft reset in
    place of the layer's own spikes, the function whose exact gradient is the detached
    one (gradient checks only)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    want = (params.n_in_channels, params.n_positions)
    if x.ndim != 4 or x.shape[2:] != want:
        raise EvsimError(f"CS-GRU training input: shape {x.shape}; expected (B, T, {want[0]}, {want[1]})")
    if not sigma >= 0:
        raise EvsimError(f"CS-GRU delay spread sigma = {sigma}; expected >= 0")
    sur = get_surrogate(surrogate)
    alpha = float(sur.default_alpha if alpha is None else alpha)
    params = params._replace(delays=np.asarray(params.delays, np.float64))
    n_b, n_t = x.shape[:2]
    states = [np.zeros((n_b, n_t, params.n_channels, params.n_positions)) for _ in range(6)]
    tables = _unit_tables(params, sigma)
    fwd = build(ck, "csgru_fwd", n_b * n_t * params.n_channels * params.n_positions)
    use_reset = reset_spikes is not None
    s_reset = np.ascontiguousarray(reset_spikes, np.float64) if use_reset else np.zeros((1, 1, 1, 1))
    if use_reset and s_reset.shape != states[0].shape:
        raise EvsimError(f"CS-GRU reset_spikes: shape {s_reset.shape}; expected {states[0].shape}")
    fwd(x, params, tables[0], tables[1], sur.code, alpha, bool(smooth), s_reset, use_reset, *states)
    return CSGRUCache(x, *states, tables, sur.code, alpha)


def backward(params: CSGRUParams, cache: CSGRUCache, gs, *, detach_reset: bool = False):
    """Gradients of a loss L from ``gs`` = dL/ds (B, T, C, P) of :func:`forward`'s spikes.

    Returns ``(grads, gx)``: ``grads`` {name: dL/d array} for :data:`PARAM_NAMES` (biases
    (C,), delays (C, P)), ``gx`` = dL/dx (B, T, Cin, P)."""
    gs = np.ascontiguousarray(gs, dtype=np.float64)
    if gs.shape != cache.s.shape:
        raise EvsimError(f"CS-GRU backward: dL/ds has shape {gs.shape}; expected {cache.s.shape}")
    params = params._replace(delays=np.asarray(params.delays, np.float64))
    n_b = gs.shape[0]
    kernels = [np.zeros((n_b,) + getattr(params, name).shape) for name in KERNEL_NAMES]
    g_bias = np.zeros((n_b, 3, params.n_channels))
    g_delay = np.zeros((n_b,) + params.delays.shape)
    gx = np.zeros_like(cache.x)
    klo, mtab, dmtab = cache.tables
    bwd = build(ck, "csgru_bwd", gs.size)
    bwd(gs, cache.x, params, klo, mtab, dmtab, bool(detach_reset), cache.surrogate, cache.alpha, cache.r,
        cache.i, cache.z, cache.v, cache.s, cache.s_hat, gx, *kernels, g_bias, g_delay)
    grads = {name: g.sum(axis=0) for name, g in zip(KERNEL_NAMES, kernels)}
    grads.update({name: g_bias[:, j].sum(axis=0) for j, name in enumerate(BIAS_NAMES)})
    grads["delays"] = g_delay.sum(axis=0)
    return grads, gx
