"""Dense, time-stepped NumPy reference simulator: the oracle for every faster engine.

It follows the equations of :mod:`evsim.model` literally, one step at a time, for a whole
batch at once, in the precision asked for (:mod:`evsim.precision`): float64 (the default)
or float32, every state, current and sum in that type (the model's float32 parameters
widened once for float64), the class scores summed in float64.  Clarity beats speed here; the event engine
(:mod:`evsim.event`) is the fast path and is tested against this module.

Delays are realised with a full spike history: the recurrent input at step ``t`` reads
``s_{t-1-d_j}[j]`` straight from the recorded raster, so there is no queue to get wrong.
"""

from __future__ import annotations

import numpy as np

from .cells import get_cell
from .engine import SimResult, check_inputs, softmax
from .errors import EvsimError
from .model import DECISIONS, RECURRENCES, Model, has_stack_layers
from .precision import DEFAULT_PRECISION, float_dtype, require_float64, resolve_precision

__all__ = ["SimResult", "simulate", "softmax", "check_inputs"]



def add_recurrent_input(current: np.ndarray, layer, rec: np.ndarray, s: np.ndarray, delays: np.ndarray,
                        t: int) -> None:
    """current += R_t of ``layer`` at step t, from its raster so far ``s`` (B, T, n): a spike
    of neuron j at step t' arrives at t' + 1 + d_j, so z_t[j] = s[t - 1 - d_j, j]."""
    if layer.recurrence == "none":
        return
    if layer.recurrence not in ("dense", "conv"):
        raise EvsimError(f"{layer.name}: unknown recurrence {layer.recurrence!r}; expected one of {', '.join(RECURRENCES)}")
    b, _, n = s.shape
    src = t - 1 - delays                                  # (n,) source step per presynaptic neuron
    z = np.zeros((b, n), s.dtype)
    ok = src >= 0
    z[:, ok] = s[:, src[ok], np.nonzero(ok)[0]]
    if layer.recurrence == "dense":
        current += z @ rec.T
        return
    # conv: R[i] = sum_m K[m] z[i + m - k//2], zero outside [0, n), tap by tap
    half = rec.shape[0] // 2
    for m, k_m in enumerate(rec):
        off = m - half
        lo, hi = max(0, -off), min(n, n - off)
        if lo < hi:
            current[:, lo:hi] += k_m * z[:, lo + off:hi + off]


def run_readout(ro, layer_in: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The readout over the last layer's spikes ``layer_in`` (B, T, n): its trace u_t
    (B, T, C), zero past each sample's steps (``active`` (B, T), 1.0 / 0.0), and the scores
    (float64).  Computed in ``active``'s dtype (the precision)."""
    b, n_t = active.shape
    real = active.dtype
    w = ro.weight.astype(real)
    bias, beta, g = (ro.bias.astype(real), ro.beta.astype(real), ro.gain.astype(real))
    u = np.zeros((b, ro.n_classes), real)
    trace = np.zeros((b, n_t, ro.n_classes), real)
    for t in range(n_t):
        u = beta * u + g * (layer_in[:, t] @ w.T + bias)
        trace[:, t] = u * active[:, t:t + 1]
    if ro.decision == "sum_softmax":
        per_step = softmax(trace)
    elif ro.decision == "sum_membrane":
        per_step = trace
    else:
        raise EvsimError(f"unknown decision {ro.decision!r}; expected one of {', '.join(DECISIONS)}")
    scores = (per_step.astype(np.float64) * active[:, :, None]).sum(axis=1)   # float64 in both precisions
    return trace, scores


def simulate(model: Model, x, lengths=None, record_spikes: bool = False,
             record_membrane: bool = False, precision: str = DEFAULT_PRECISION) -> SimResult:
    """Run ``model`` on binned inputs ``x`` (B, T, n_inputs) step by step.

    ``precision``: ``"float64"`` (default), ``"float32"`` or ``"auto"`` (float32 unless the
    model has CS-GRU layers), the type of every state, current and sum
    (:mod:`evsim.precision`); the readout trace is returned as float64 (exactly widened)
    and the scores are summed in float64 in both.

    ``lengths`` (B,) lets samples of different lengths share a padded batch: a sample's
    readout and scores only count its own steps; its readout trace is zero beyond them.
    ``record_membrane`` puts each hidden layer's membrane v_t (before the reset of its
    spikes), (B, T, n_l) in the precision's type, in ``stats["membrane"]``.
    """
    precision = resolve_precision(precision, model)      # raises for an unknown precision
    real = float_dtype(precision)
    if has_stack_layers(model):              # CS-GRU layers: layer by layer (evsim.stack)
        require_float64(precision)
        from .stack import simulate_reference

        return simulate_reference(model, x, lengths, record_spikes=record_spikes)
    x, lengths = check_inputs(model, x, lengths)
    x = x.astype(real, copy=False)            # counts: exact in float32 below 2^24
    b, n_t, _ = x.shape
    active = (np.arange(n_t)[None, :] < lengths[:, None]).astype(real)  # (B, T)

    layer_in = x
    rasters = []
    membranes = []
    for layer in model.layers:
        cell = get_cell(layer.cell)
        n = layer.n
        w = layer.weight.astype(real)
        bias = layer.bias.astype(real)
        p = {"beta": layer.beta.astype(real), "threshold": layer.threshold.astype(real),
             "gain": layer.gain.astype(real)}
        p.update({k: np.asarray(layer.extra[k], real) for k in cell.param_names})
        delays = layer.delays.astype(np.int64)
        rec = layer.recurrent.astype(real)

        s = np.zeros((b, n_t, n), real)
        state = {"v": np.zeros((b, n), real), "s": np.zeros((b, n), real)}
        state.update({k: np.zeros((b, n), real) for k in cell.state})
        v_rec = np.zeros((b, n_t, n), real) if record_membrane else None
        for t in range(n_t):
            # inputs arriving now: feed-forward and delayed recurrent spikes
            current = layer_in[:, t] @ w.T + bias
            add_recurrent_input(current, layer, rec, s, delays, t)
            # membrane update with the reset of the previous step's spikes, spikes
            s[:, t] = cell.reference_step(state, current, p, layer.reset, active[:, t:t + 1])
            if record_membrane:
                v_rec[:, t] = state["v"]
        rasters.append(s)
        membranes.append(v_rec)
        layer_in = s

    trace, scores = run_readout(model.readout, layer_in, active)
    trace = trace.astype(np.float64, copy=False)
    preds = np.argmax(scores, axis=1)
    spikes = [r.astype(np.uint8) for r in rasters] if record_spikes else None
    stats = {"membrane": membranes} if record_membrane else None
    return SimResult(readout=trace, scores=scores, predictions=preds, spikes=spikes, stats=stats)
