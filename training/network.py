"""A trainable spiking network: forward pass that records, backward pass through time.

Equations (hidden layer l, n neurons, batch of B samples x T steps; x the layer's input)::

    a_t   = W x_t + b
    c_t   = gamma (a_t - mu) / sqrt(var + eps) + beta_bn     BatchNorm (or c_t = a_t)
              training: mu, var over all B x T rows (padded steps included, biased var)
              evaluation: running statistics, folded into W and b
    z_t[j] = sum_{k >= 1} M[j, k] s_{t-k}[j]                   delayed, spread spikes
    M[j, k] = max(0, w - |k - (1 + d_j)|) / w^2,  w = 1 + sigma
    R_t   = W_rec z_t  (dense)  |  R_t[i] = sum_m K[m] z_t[i + m - k//2]  (conv)  |  0
    I_t   = c_t + zm_t * R_t    recurrent dropout on the input (rec_dropout_at "input",
                                the DelRec/CRSNN codes), or zm_t on z_t ("spikes")
    the cell (config.cell, training.cells), e.g. LIF:
    v_t   = beta * reset(v_{t-1}, s_{t-1}) + g * I_t      reset: v (1 - s)  |  v - theta s
    s_t   = H(v_t - theta)                                 surrogate gradient backwards
    (evsim/cells/<cell>.py: adlif adds w_t = beta_w w_{t-1} + a v_{t-1} + b s_{t-1}, uses I_t - w_t)
    out_t = fm_t * s_t                                     feed-forward dropout mask fm

    readout: u_t = beta_o u_{t-1} + g_o (W_o out_t + b_o)
    scores   S = sum_t softmax(u_t)   (loss "sum_softmax")  |  S = sum_t u_t  ("sum_logits")
    loss     L = mean_b [ logsumexp(S_b) - S_b[y_b] ]       cross-entropy with S as logits
             (+ P, the optional spike-rate penalty: with r_l = mean_{b,t,i} s_l,
              P = rate_reg sum_l r_l if rate_target = 0,
              P = rate_reg sum_l max(0, r_l - rate_target)^2 otherwise; or, with rate_cost
              "synops", the same forms on one fan-out-weighted rate, see NetworkConfig)

Dropout masks are Bernoulli(1 - p) / (1 - p), drawn from the ``numpy.random.Generator``
passed in: ``zm`` (rate ``rec_dropout``) on the recurrent input, ``fm`` (rate ``dropout``)
on each hidden layer's output; per step or per sequence (``dropout_mode``).

Backward pass (what each gradient is):

    dL/dS = (softmax(S) - onehot(y)) / B
    dL/du_t = q_t * (dL/dS - <dL/dS, q_t>),  q_t = softmax(u_t)   (or dL/dS for sum_logits)
    dL/da_o = g_o * sum_{t' >= t} beta_o^{t'-t} dL/du_t'
    dL/dv_t = dL/ds_t * sg(v_t - theta) + dL/dv_{t+1} * dv_{t+1}/dv_t
    dL/ds_t = [from the next layer] + dP/ds_t + sum_k M[j,k] dL/dz_{t+k}[j] + dL/dv_{t+1} dv_{t+1}/ds_t
              dP/ds_l = rate_reg / (B T n_l)  |  2 rate_reg max(0, r_l - rate_target) / (B T n_l)
              dv_{t+1}/dv_t = beta (1 - s_t) | beta;  dv_{t+1}/ds_t = -beta v_t | -beta theta
              (0 when ``detach_reset``)
    dL/dI_t = g * dL/dv_t;  dL/dR_t = zm_t dL/dI_t ("input") or dL/dI_t
    dL/dW_rec = sum dL/dR_t z_t^T;  dL/dK[m] = sum dL/dR_t[i] z_t[i+m-h]
    learned cell parameters (learn_beta, the cell's own): see evsim/cells/<cell>.py
    dL/dd_j = sum_t dL/dz_t[j] zm_t[j] sum_k s_{t-k}[j] dM[j,k]/dd_j,
              dM[j,k]/dd_j = sign(k - 1 - d_j) / w^2 inside the triangle
    BatchNorm: the usual batch-statistics backward over the B x T rows.

The feed-forward products ``W x`` for all steps of all samples are one BLAS product per layer
(and two in the backward pass), split in fixed row blocks over numba's threads
(:mod:`evsim.training._threaded`); BatchNorm and the time loops run in
:mod:`evsim.training._kernels`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from evsim.cells import get_cell
from evsim.errors import EvsimError
from evsim.model import RECURRENCE_CODE, HiddenLayer, Model, ModelMetadata, Readout
from evsim.engine import SimResult, softmax

from . import _kernels as kernels
from . import _threaded
from .config import ConfigError, NetworkConfig
from .surrogates import get_surrogate

__all__ = ["Network", "delay_tables", "cross_entropy"]


def delay_tables(d: np.ndarray, sigma: float, dtype=np.float64):
    """Window tables of the delay spread for delays ``d`` (n,) and spread ``sigma``.

    Returns ``klo`` (n,) int64 and ``mtab``, ``dmtab`` (n, nq): ``mtab[j, q] = M[j, klo[j]+q]``
    and ``dmtab[j, q] = dM[j, klo[j]+q]/dd_j`` over the (at most nq-long) window of k >= 1
    where ``M[j, k] = max(0, w - |k - 1 - d_j|) / w^2`` can be nonzero, w = 1 + sigma.
    With sigma = 0 and integer d the window is the one step k = 1 + d_j, with M = 1.
    """
    d = np.asarray(d, np.float64)
    w = 1.0 + float(sigma)
    centre = 1.0 + d
    klo = np.maximum(np.floor(centre - w).astype(np.int64) + 1, 1)
    khi = np.ceil(centre + w).astype(np.int64) - 1
    nq = int(max(1, (khi - klo + 1).max(initial=1)))
    k = klo[:, None] + np.arange(nq)[None, :]
    diff = k - centre[:, None]
    inside = (np.abs(diff) < w) & (k <= khi[:, None])
    mtab = np.where(inside, (w - np.abs(diff)) / (w * w), 0.0).astype(dtype)
    dmtab = np.where(inside, np.sign(diff) / (w * w), 0.0).astype(dtype)
    return klo, mtab, dmtab


def rate_penalty(cfg: NetworkConfig, counts, rows: int, scale: float = 1.0) -> tuple[float, list]:
    """The spike-rate penalty P and the constant dP/ds it adds to every spike of each layer.

    counts: spikes per hidden layer over the batch; rows: B x T (padded steps included);
    scale: factor on ``cfg.rate_reg``.  Forms (``rate_cost``, ``rate_target``) as in
    :class:`evsim.training.config.NetworkConfig`.  Returns ``(P, [dP/ds_l per layer])``;
    P = 0 and every entry 0.0 when the penalty is off or below its target.
    """
    reg = cfg.rate_reg * scale
    n_l = cfg.hidden
    grads = [0.0] * len(n_l)
    if reg <= 0:
        return 0.0, grads
    if cfg.rate_cost == "uniform":
        groups = [([l], [1.0], rows * n) for l, n in enumerate(n_l)]   # one rate per layer
    else:
        f = cfg.fan_out()
        groups = [(list(range(len(n_l))), [float(v) for v in f], rows * sum(n * v for n, v in zip(n_l, f)))]
    penalty = 0.0
    for layers, weights, denom in groups:
        rate = sum(w * counts[l] for l, w in zip(layers, weights)) / denom
        if cfg.rate_target == 0:
            penalty += reg * rate
            slope = reg
        elif rate > cfg.rate_target:
            excess = rate - cfg.rate_target
            penalty += reg * excess * excess
            slope = 2.0 * reg * excess
        else:
            continue
        for l, w in zip(layers, weights):
            grads[l] = slope * w / denom
    return penalty, grads


def cross_entropy(scores: np.ndarray, y: np.ndarray, smoothing: float = 0.0) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``scores`` (B, C) taken as logits; returns (loss, dL/dscores).

    smoothing: label smoothing e in [0, 1): the target is q = (1 - e) onehot(y) + e / C, so
    L = -mean_b sum_c q_bc log p_bc and dL/dscores = (p - q) / B (e = 0: the plain loss).
    """
    p = softmax(scores.astype(np.float64), axis=1)
    b, n_c = scores.shape
    rows = np.arange(b)
    q = np.full((b, n_c), smoothing / n_c)
    q[rows, y] += 1.0 - smoothing
    logp = np.log(np.maximum(p, 1e-300))
    loss = float(-np.mean(logp[rows, y])) if smoothing == 0.0 else float(-np.sum(q * logp) / b)
    return loss, ((p - q) / b).astype(scores.dtype)


def evaluation_result(us: list, scores: list, spikes: list | None, y) -> SimResult:
    """The :class:`SimResult` of an evaluation run in chunks of samples: readouts ``us``
    and ``scores`` per chunk, ``spikes`` (when recorded) one list of per-layer rasters per
    chunk; ``stats`` holds loss, correct, accuracy and batch when labels ``y`` are given."""
    u, score = np.concatenate(us), np.concatenate(scores)
    pred = np.argmax(score, axis=1)
    stats = None
    if y is not None:
        loss, _ = cross_entropy(score, y)
        correct = int(np.sum(pred == y))
        stats = {"loss": loss, "correct": correct, "accuracy": correct / len(pred), "batch": len(pred)}
    rasters = None
    if spikes is not None:
        rasters = [np.concatenate([chunk[l] for chunk in spikes]) for l in range(len(spikes[0]))]
    return SimResult(readout=u, scores=score, predictions=pred, spikes=rasters, stats=stats)


class _LayerCache(NamedTuple):
    """What the backward pass needs from one hidden layer's forward pass."""

    x: np.ndarray          # layer input, (B*T, n_in)
    xhat: np.ndarray       # normalised pre-activation (BatchNorm) or None
    inv_std: np.ndarray    # 1 / sqrt(var + eps) (BatchNorm) or None
    v: np.ndarray          # membrane, (B, T, n)
    s: np.ndarray          # spikes, (B, T, n)
    z: np.ndarray          # recurrent input before the recurrent weights, (B, T, n) or empty
    zmask: np.ndarray      # recurrent dropout mask (B, T, n) or (1, 1, 1) unused
    mask_at: int           # where zmask acts: kernels.MASK_NONE, kernels.MASK_SPIKES or kernels.MASK_INPUT
    cur: np.ndarray        # the cell's input current I_t, (B, T, n)
    a: np.ndarray          # the cell's extra state, (B, T, S, n)
    fmask: np.ndarray      # feed-forward dropout mask on the output, broadcastable, or None
    tables: tuple          # (klo, mtab, dmtab) of the delay spread
    n_spikes: float = 0.0  # spikes of the layer over the batch
    x_sparse: bool = False # x went through the sparse products (_threaded.is_sparse)


#: the kernels' stand-in for "no feed-forward dropout mask", per dtype
_NO_MASK = {np.dtype(t): np.ones((1, 1, 1), t) for t in (np.float32, np.float64)}


class ParameterFacts:
    """What the optimiser and the trainer ask of a network's ``params`` (a dict of arrays
    whose delay parameters end in ``.delays``): shared by :class:`Network` and
    :class:`evsim.training.stack.StackNetwork`."""

    params: dict
    buffers: dict

    @property
    def delay_names(self) -> list[str]:
        """Names of the delay parameters (their own optimiser group, no weight decay)."""
        return [k for k in self.params if k.endswith(".delays")]

    @property
    def weight_names(self) -> list[str]:
        """Names of every other parameter."""
        return [k for k in self.params if not k.endswith(".delays")]

    def n_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def clamp_delays(self) -> None:
        """Clamp every delay to >= 0 in place (after each optimiser step)."""
        for k in self.delay_names:
            np.maximum(self.params[k], 0.0, out=self.params[k])

    def copy_arrays(self, state: dict) -> None:
        """Copy the ``param.<name>`` and ``buffer.<name>`` arrays of a state_dict into
        ``params`` and ``buffers`` in place; a missing array or another shape raises."""
        for prefix, target in (("param.", self.params), ("buffer.", self.buffers)):
            for k, arr in target.items():
                key = prefix + k
                if key not in state:
                    raise EvsimError(f"state_dict has no array {key!r}")
                src = np.asarray(state[key])
                if src.shape != arr.shape:
                    raise EvsimError(f"state_dict array {key!r} has shape {src.shape}, expected {arr.shape}")
                np.copyto(arr, src, casting="same_kind")


def readout_forward(params: dict, buffers: dict, h: np.ndarray, shape: tuple, loss: str):
    """The leaky readout on the last hidden layer's spikes ``h`` (rows B T, or (B, T, n)):
    ``(u, q, scores)`` with u (B, T, C) its membrane (``shape`` = (B, T, C)), q the softmax
    of u for the ``sum_softmax`` loss (None for ``sum_logits``) and the class scores."""
    rows = h.reshape(-1, h.shape[-1])
    a_o = _threaded.matmul(rows, params["readout.weight"].T, False)   # row blocks over the threads
    a_o += params["readout.bias"]
    u = kernels.leaky_fwd(np.ascontiguousarray(a_o.reshape(shape)), buffers["readout.beta"], buffers["readout.gain"])
    if loss == "sum_softmax":
        q = softmax(u, axis=2)
        return u, q, q.sum(axis=1)
    if loss == "sum_logits":
        return u, None, u.sum(axis=1)
    raise EvsimError(f"unknown loss {loss!r}; expected sum_softmax or sum_logits")


def readout_backward(params: dict, buffers: dict, h: np.ndarray, u: np.ndarray, q, g_scores: np.ndarray):
    """The backward pass of :func:`readout_forward`: from dL/dscores (B, C) to the readout's
    gradients ``{"readout.weight", "readout.bias"}`` and dL/dh, rows (B T, n), for the
    last hidden layer's spikes ``h`` (rows B T, or (B, T, n))."""
    if q is not None:                                           # scores = sum_t softmax(u_t)
        gs_ = g_scores[:, None, :]
        gu = q * (gs_ - (q * gs_).sum(axis=2, keepdims=True))
    else:                                                       # scores = sum_t u_t
        gu = np.broadcast_to(g_scores[:, None, :], u.shape)
    ga = kernels.leaky_bwd(np.ascontiguousarray(gu, dtype=u.dtype), buffers["readout.beta"], buffers["readout.gain"])
    ga = ga.reshape(u.shape[0] * u.shape[1], -1)
    grads = {"readout.weight": _threaded.matmul_tn(ga, h.reshape(ga.shape[0], -1), False),
             "readout.bias": ga.sum(axis=0)}
    return grads, _threaded.matmul(ga, params["readout.weight"], False)


class Network(ParameterFacts):
    """A trainable network described by a :class:`NetworkConfig`.

    ``params`` (trainable) and ``buffers`` (BatchNorm running statistics; the fixed beta,
    gain and threshold of each layer and of the readout) are dicts of numpy arrays in the
    configuration's dtype, keyed ``"layer{l}.weight"``, ``"layer{l}.bias"``,
    ``"layer{l}.bn_weight"``, ``"layer{l}.bn_bias"``, ``"layer{l}.recurrent"``,
    ``"layer{l}.delays"``, ``"readout.weight"``, ``"readout.bias"`` (params) and
    ``"layer{l}.bn_mean"``, ``"layer{l}.bn_var"``, ``"layer{l}.beta"``, ``"layer{l}.gain"``,
    ``"layer{l}.threshold"``, ``"readout.beta"``, ``"readout.gain"`` (buffers).  The
    optimiser updates ``params`` in place; replacing a per-neuron ``beta`` buffer gives
    per-neuron time constants.
    """

    def __init__(self, config: NetworkConfig, params: dict, buffers: dict):
        self.config = config
        self.params = params
        self.buffers = buffers
        self._surrogate = get_surrogate(config.surrogate)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def init(cls, config: NetworkConfig, seed: int | np.random.Generator = 0) -> "Network":
        """A freshly initialised network: PyTorch-style uniform(+-1/sqrt(fan_in)) weights and
        biases, BatchNorm gamma = 1 and beta = 0, delays uniform in ``config.delay_init``."""
        if not isinstance(config, NetworkConfig):
            raise ConfigError(f"expected a NetworkConfig, got {type(config).__name__}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        dtype = config.np_dtype
        cell = get_cell(config.cell)
        params, buffers = {}, {}

        def uni(bound, shape):
            return rng.uniform(-bound, bound, shape).astype(dtype)

        n_prev = config.n_inputs
        for l, n in enumerate(config.hidden):
            p = f"layer{l}."
            params[p + "weight"] = uni(1 / np.sqrt(n_prev), (n, n_prev))
            params[p + "bias"] = uni(1 / np.sqrt(n_prev), (n,))
            if config.batchnorm:
                params[p + "bn_weight"] = np.ones(n, dtype)
                params[p + "bn_bias"] = np.zeros(n, dtype)
                buffers[p + "bn_mean"] = np.zeros(n, dtype)
                buffers[p + "bn_var"] = np.ones(n, dtype)
            rec = config.recurrence[l]
            if rec == "dense":
                params[p + "recurrent"] = uni(1 / np.sqrt(n), (n, n))
            elif rec == "conv":
                params[p + "recurrent"] = uni(1 / np.sqrt(config.kernel_size), (config.kernel_size,))
            if rec != "none":
                lo, hi = config.delay_init
                params[p + "delays"] = rng.uniform(lo, hi, n).astype(dtype)
            beta = 1.0 - 1.0 / np.broadcast_to(np.asarray(config.tau[l], np.float64), (n,))
            if config.beta_init:
                beta = rng.uniform(*config.beta_range, n)
            (params if config.learn_beta else buffers)[p + "beta"] = beta.astype(dtype)
            buffers[p + "gain"] = (np.ones(n) if config.gain[l] == "one" else 1.0 - beta).astype(dtype)
            buffers[p + "threshold"] = np.full(n, config.threshold, dtype)
            for name in cell.param_names:   # the cell's extra parameters, learned
                params[p + name] = rng.uniform(*config.cell_init[name], n).astype(dtype)
            n_prev = n
        c = config.n_classes
        params["readout.weight"] = uni(1 / np.sqrt(n_prev), (c, n_prev))
        params["readout.bias"] = uni(1 / np.sqrt(n_prev), (c,))
        beta_o = 1.0 - 1.0 / config.readout_tau
        buffers["readout.beta"] = np.full(c, beta_o, dtype)
        buffers["readout.gain"] = np.full(c, 1.0 if config.readout_gain == "one" else 1.0 - beta_o, dtype)
        return cls(config, params, buffers)

    # -- checks ------------------------------------------------------------------------
    def _check_x(self, x) -> np.ndarray:
        x = np.asarray(x)
        n_in = self.config.n_inputs
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != n_in:
            raise EvsimError(f"input has shape {x.shape}; expected (batch, steps, {n_in})")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise EvsimError(f"input has shape {x.shape}; need at least one sample and one step")
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise EvsimError(f"input dtype {x.dtype} is not numeric")
        x = np.ascontiguousarray(x, dtype=self.config.np_dtype)
        if not np.all(np.isfinite(x)):
            raise EvsimError("input contains NaN or infinite values")
        return x

    def _check_y(self, y, b) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (b,) or not np.issubdtype(y.dtype, np.integer):
            raise EvsimError(f"labels have shape {y.shape} and dtype {y.dtype}; expected ({b},) integers")
        if b and (y.min() < 0 or y.max() >= self.config.n_classes):
            raise EvsimError(f"labels must lie in [0, {self.config.n_classes}); got {y.min()}..{y.max()}")
        return y.astype(np.int64)

    # -- forward -----------------------------------------------------------------------
    def _folded(self, l: int) -> tuple[np.ndarray, np.ndarray]:
        """W and b of layer l with the running-statistics BatchNorm folded in (BN acts on
        W x + b, before the gain): W' = s W, b' = s (b - mean) + beta_bn, s = gamma/sqrt(var+eps)."""
        p = f"layer{l}."
        w, b = self.params[p + "weight"], self.params[p + "bias"]
        if not self.config.batchnorm:
            return w, b
        scale = self.params[p + "bn_weight"] / np.sqrt(self.buffers[p + "bn_var"] + self.config.bn_eps)
        return (w * scale[:, None]).astype(w.dtype), ((b - self.buffers[p + "bn_mean"]) * scale + self.params[p + "bn_bias"]).astype(w.dtype)

    def _recurrent_operands(self, l: int) -> tuple[np.ndarray, np.ndarray]:
        """The kernels' recurrent arguments of layer ``l``: (W_rec transposed, contiguous)
        for a dense recurrence, the kernel K for a conv one, empty stand-ins otherwise."""
        dtype = self.config.np_dtype
        rec = self.config.recurrence[l]
        w_rec = self.params[f"layer{l}.recurrent"] if rec != "none" else None
        w_rec_t = np.ascontiguousarray(w_rec.T) if rec == "dense" else np.zeros((0, 0), dtype)
        kern = w_rec if rec == "conv" else np.zeros(1, dtype)
        return w_rec_t, kern

    def _neuron(self, l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(beta, gain, theta) of layer l's neurons; a "1-beta" gain follows a learned beta."""
        p = f"layer{l}."
        if self.config.learn_beta:
            beta = self.params[p + "beta"]
            gain = (1.0 - beta).astype(beta.dtype) if self.config.gain[l] == "1-beta" else self.buffers[p + "gain"]
            return beta, gain, self.buffers[p + "threshold"]
        return self.buffers[p + "beta"], self.buffers[p + "gain"], self.buffers[p + "threshold"]

    def clamp_parameters(self) -> None:
        """After each optimiser step: delays to >= 0, and every learned cell parameter
        (beta when learned, the cell's extra parameters) into its bounds
        (:meth:`NetworkConfig.learned_bounds`)."""
        self.clamp_delays()
        for name, (lo, hi) in self.config.learned_bounds().items():
            for l in range(self.config.n_layers):
                np.clip(self.params[f"layer{l}.{name}"], lo, hi, out=self.params[f"layer{l}.{name}"])

    def _cell_extra(self, l: int) -> np.ndarray:
        """The extra per-neuron parameters of layer l's cell as rows, (P, n) (none for LIF)."""
        names = get_cell(self.config.cell).param_names
        n = self.config.hidden[l]
        if not names:
            return np.zeros((0, n), self.config.np_dtype)
        return np.ascontiguousarray(np.stack([self._cell_param(l, k) for k in names]))

    def _cell_param(self, l: int, name: str) -> np.ndarray:
        key = f"layer{l}.{name}"
        return self.params[key] if key in self.params else self.buffers[key]

    def _mask(self, rng, p, shape_bt, n):
        b, t = shape_bt
        shape = (b, t, n) if self.config.dropout_mode == "step" else (b, 1, n)
        return _threaded.dropout_mask(rng, p, shape, self.config.np_dtype)

    def _forward(self, x, *, train: bool, rng, sigma: float, update_stats: bool):
        cfg = self.config
        n_b, n_t, _ = x.shape
        caches, h = self.layers_forward(x, train=train, rng=rng, sigma=sigma, update_stats=update_stats)
        u, q, scores = readout_forward(self.params, self.buffers, h, (n_b, n_t, -1), cfg.loss)
        return caches, h, u, q, scores

    def layers_forward(self, x, *, train: bool, rng, sigma: float, update_stats: bool):
        """The hidden layers (not the readout) on the input raster ``x`` (B, T, n_inputs)
        of the config's dtype: training (``train``: batch-statistics BatchNorm, dropout,
        delays spread by ``sigma``) or inference (rounded delays, folded BatchNorm).
        Returns ``(caches, h)``: one cache per layer for :meth:`layers_backward` and the
        last layer's output (B*T, n_last).  Also what a mixed stack
        (:class:`evsim.training.stack.StackNetwork`) runs a segment of cell layers with."""
        cfg = self.config
        dtype = cfg.np_dtype
        n_b, n_t, _ = x.shape
        sur = self._surrogate
        if train and (cfg.dropout > 0 or cfg.rec_dropout > 0):
            if rng is None:
                raise EvsimError("training with dropout needs randomness: pass rng (a numpy Generator or an int seed)")
            rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        h = x.reshape(n_b * n_t, -1)
        h_nonzero = None           # non-zeros of h when known (a layer's kernel counts its output's)
        caches = []
        for l, n in enumerate(cfg.hidden):
            p = f"layer{l}."
            xhat = inv_std = None
            h_sparse = _threaded.is_sparse(h, h_nonzero)
            if train:
                a = _threaded.matmul(h, self.params[p + "weight"].T, h_sparse)
                if cfg.batchnorm:   # one kernel: bias, statistics, normalise, scale and shift
                    xhat, c = np.empty_like(a), np.empty_like(a)
                    bn = kernels.build(kernels, "batchnorm_fwd", a.size)
                    mu, var, inv_std = bn(a, self.params[p + "bias"], self.params[p + "bn_weight"],
                                          self.params[p + "bn_bias"], cfg.bn_eps, xhat, c)
                    a = c
                    if update_stats:
                        m = cfg.bn_momentum
                        rows = a.shape[0]
                        mu, var = mu.astype(dtype), var.astype(dtype)
                        unbiased = var * (rows / max(rows - 1, 1))
                        self.buffers[p + "bn_mean"][...] = (1 - m) * self.buffers[p + "bn_mean"] + m * mu
                        self.buffers[p + "bn_var"][...] = (1 - m) * self.buffers[p + "bn_var"] + m * unbiased
                else:
                    a += self.params[p + "bias"]
            else:
                w, b = self._folded(l)
                a = _threaded.matmul(h, w.T, h_sparse)
                a += b
            c = np.ascontiguousarray(a.reshape(n_b, n_t, n), dtype=dtype)
            rec = cfg.recurrence[l]
            if rec != "none":
                d = self.params[p + "delays"]
                tables = delay_tables(d, sigma, dtype) if train else delay_tables(np.rint(np.maximum(d, 0)), 0.0, dtype)
                z = np.empty((n_b, n_t, n), dtype)
            else:
                tables = (np.zeros(n, np.int64), np.zeros((n, 0), dtype), np.zeros((n, 0), dtype))
                z = np.empty((0, 0, 0), dtype)
            w_rec_t, kern = self._recurrent_operands(l)
            mask_at = kernels.MASK_NONE
            if train and rec != "none" and cfg.rec_dropout > 0:
                mask_at = kernels.MASK_INPUT if cfg.rec_dropout_at == "input" else kernels.MASK_SPIKES
                zmask = np.ascontiguousarray(np.broadcast_to(self._mask(rng, cfg.rec_dropout, (n_b, n_t), n), (n_b, n_t, n)))
            else:
                zmask = np.ones((1, 1, 1), dtype)
            cell = get_cell(cfg.cell)
            cur = np.empty((n_b, n_t, n), dtype)
            v = np.empty((n_b, n_t, n), dtype)
            s = np.empty((n_b, n_t, n), dtype)
            a = np.empty((n_b, n_t, len(cell.state), n), dtype)
            fmask = self._mask(rng, cfg.dropout, (n_b, n_t), n) if train and cfg.dropout > 0 else None
            out = s if fmask is None else np.empty((n_b, n_t, n), dtype)
            counts = np.empty((n_b, 2))
            fwd = kernels.build(kernels, "layer_fwd", c.size)
            beta, gain, theta = self._neuron(l)
            fwd(c, cell.code, beta, gain, theta,
                self._cell_extra(l), cfg.reset == "subtract", RECURRENCE_CODE[rec], w_rec_t, kern, tables[0],
                tables[1], zmask, mask_at, sur.code, cfg.surrogate_alpha, cfg.smooth_forward,
                _NO_MASK[dtype] if fmask is None else fmask, fmask is not None, cur, v, s, a, z, out, counts)
            caches.append(_LayerCache(h, xhat, inv_std, v, s, z, zmask, mask_at, cur, a, fmask, tables,
                                      float(counts[:, 0].sum()), h_sparse))
            h = out.reshape(n_b * n_t, n)
            h_nonzero = int(counts[:, 1].sum())
        return caches, h

    # -- training ----------------------------------------------------------------------
    @_threaded.one_blas_thread()
    def loss_and_grad(self, x, y, rng=None, sigma: float = 0.0, *, update_stats: bool = True,
                      rate_scale: float = 1.0):
        """One training forward pass (batch-statistics BatchNorm, dropout, delays spread by
        ``sigma``) and the backward pass through time.

        x: (B, T, n_inputs) input counts (any real dtype; cast to the config's dtype)
        y: (B,) integer labels in [0, n_classes)
        rng: numpy Generator or int seed for the dropout masks (needed when dropout > 0)
        sigma: delay spread, w = 1 + sigma (>= 0)
        update_stats: update the BatchNorm running statistics (momentum ``bn_momentum``)
        rate_scale: factor on ``config.rate_reg`` for this step (the trainer's warm-up ramp)

        Returns ``(loss, grads, stats)``: the mean cross-entropy plus the spike-rate penalty
        P (float; P = 0 unless ``config.rate_reg > 0``, see :class:`NetworkConfig`), a dict of
        gradients with the keys and shapes of ``params``, and ``{"loss" (the same total),
        "rate_penalty" (P), "correct", "accuracy", "spike_rate" (per-layer mean spikes per
        neuron per step), "batch"}``.
        """
        cfg = self.config
        x = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        if not (np.isfinite(sigma) and sigma >= 0):
            raise EvsimError(f"sigma: {sigma!r}; expected a finite number >= 0")
        if not (np.isfinite(rate_scale) and rate_scale >= 0):
            raise EvsimError(f"rate_scale: {rate_scale!r}; expected a finite number >= 0")
        n_b, n_t, _ = x.shape
        dtype = cfg.np_dtype
        caches, h, u, q, scores = self._forward(x, train=True, rng=rng, sigma=sigma, update_stats=update_stats)
        loss, g_scores = cross_entropy(scores, y, cfg.label_smoothing)
        counts = [c.n_spikes for c in caches]   # spikes per layer (penalty, stats)
        penalty, g_pen = rate_penalty(cfg, counts, n_b * n_t, rate_scale)
        loss += penalty
        # readout: scores -> u -> a_o -> W_o, b_o and the last layer's output
        grads, g_h = readout_backward(self.params, self.buffers, h, u, q, g_scores)
        grads.update(self.layers_backward(caches, g_h, g_pen)[0])
        grads = {k: np.ascontiguousarray(grads[k], dtype=dtype) for k in self.params}
        pred = np.argmax(scores, axis=1)
        correct = int(np.sum(pred == y))
        stats = {"loss": loss, "rate_penalty": penalty, "correct": correct, "accuracy": correct / n_b, "batch": n_b,
                 "spike_rate": [n_s / c.s.size for n_s, c in zip(counts, caches)]}
        return loss, grads, stats

    def layers_backward(self, caches, g_h, g_pen, *, input_grad: bool = False):
        """BPTT through the hidden layers from ``g_h`` = dL/d(last layer's output) (B*T,
        n_last) and ``g_pen`` (the constant dP/ds per layer, see :func:`rate_penalty`).
        Returns ``(grads, g_x)``: the gradients of every layer parameter and, with
        ``input_grad``, dL/dx (B*T, n_inputs) (else None)."""
        cfg = self.config
        dtype = cfg.np_dtype
        n_b, n_t = caches[0].s.shape[:2]
        grads = {}
        sur = self._surrogate
        for l in range(cfg.n_layers - 1, -1, -1):
            p = f"layer{l}."
            cache = caches[l]
            n = cfg.hidden[l]
            rec = cfg.recurrence[l]
            g_out = np.ascontiguousarray(g_h.reshape(n_b, n_t, n), dtype=dtype)
            g_cur = np.empty((n_b, n_t, n), dtype)
            g_delay = np.zeros((n_b, n), dtype)
            g_kernel = np.zeros((n_b, cfg.kernel_size if rec == "conv" else 0), dtype)
            cell = get_cell(cfg.cell)
            g_cell = np.zeros((n_b, 2 + len(cell.params), n), dtype)
            learn_cell = bool(cfg.learned_bounds())
            w_rec_t, kern = self._recurrent_operands(l)
            klo, mtab, dmtab = cache.tables
            bwd = kernels.build(kernels, "layer_bwd", g_out.size)
            bwd(g_out, _NO_MASK[dtype] if cache.fmask is None else cache.fmask, cache.fmask is not None,
                dtype.type(g_pen[l]), cache.v, cache.s, cache.a, cache.z, cache.cur, cell.code, cell.carry,
                *self._neuron(l), self._cell_extra(l),
                cfg.reset == "subtract", cfg.detach_reset, RECURRENCE_CODE[rec], w_rec_t, kern, klo, mtab, dmtab,
                cache.zmask, cache.mask_at, sur.code, cfg.surrogate_alpha, learn_cell, g_cur, g_delay, g_kernel, g_cell)
            if learn_cell:
                g_sum = g_cell.sum(axis=0)
                if cfg.learn_beta:   # a "1-beta" gain moves with beta
                    grads[p + "beta"] = g_sum[0] - g_sum[1] if cfg.gain[l] == "1-beta" else g_sum[0]
                for k, name in enumerate(cell.param_names):
                    grads[p + name] = g_sum[2 + k]
            gc = g_cur.reshape(n_b * n_t, n)
            if rec == "dense":
                g_rec = g_cur * cache.zmask if cache.mask_at == kernels.MASK_INPUT else g_cur   # dL/dR_t
                grads[p + "recurrent"] = _threaded.matmul_tn(g_rec.reshape(n_b * n_t, n), cache.z.reshape(n_b * n_t, n))
            elif rec == "conv":
                grads[p + "recurrent"] = g_kernel.sum(axis=0)
            if rec != "none":
                grads[p + "delays"] = g_delay.sum(axis=0)
            if cfg.batchnorm:
                ga = np.empty_like(gc)
                bn = kernels.build(kernels, "batchnorm_bwd", gc.size)
                sum_g, sum_gx, sum_ga = bn(gc, cache.xhat, self.params[p + "bn_weight"], cache.inv_std, ga)
                grads[p + "bn_weight"] = sum_gx.astype(dtype)
                grads[p + "bn_bias"] = sum_g.astype(dtype)
                grads[p + "bias"] = sum_ga.astype(dtype)
            else:
                ga = gc
                grads[p + "bias"] = ga.sum(axis=0)
            grads[p + "weight"] = _threaded.matmul_tn(ga, cache.x, cache.x_sparse)
            if l > 0 or input_grad:     # BatchNorm's dL/da is dense: not counted
                g_h = _threaded.matmul(ga, self.params[p + "weight"], False if cfg.batchnorm else None)
        return grads, (g_h if input_grad else None)

    # -- evaluation --------------------------------------------------------------------
    @_threaded.one_blas_thread()
    def evaluate(self, x, y=None, *, record_spikes: bool = False, batch_size: int = 128) -> SimResult:
        """Inference as the exported model runs it: delays rounded to the nearest integer
        (``numpy.rint`` of the clamped delays), sigma = 0, no dropout, BatchNorm with the
        running statistics folded into W and b.  Does not change the network.  Runs
        ``batch_size`` samples at a time (memory), so any number of samples can be passed.

        Returns an :class:`evsim.engine.SimResult` (readout (B, T, C), scores (B, C),
        predictions (B,), spikes per layer if ``record_spikes``); with labels ``y`` its
        ``stats`` hold ``{"loss", "correct", "accuracy", "batch"}``.
        """
        x = self._check_x(x)
        if y is not None:
            y = self._check_y(y, x.shape[0])
        batch_size = max(1, int(batch_size))
        us, scores, spikes = [], [], []
        for lo in range(0, x.shape[0], batch_size):
            caches, _, u, _, sc = self._forward(x[lo:lo + batch_size], train=False, rng=None, sigma=0.0, update_stats=False)
            us.append(u)
            scores.append(sc)
            if record_spikes:
                spikes.append([c.s.astype(np.uint8) for c in caches])
        return evaluation_result(us, scores, spikes if record_spikes else None, y)

    # -- export ------------------------------------------------------------------------
    def export(self, metadata: ModelMetadata | None = None) -> Model:
        """The :class:`evsim.model.Model` of this network: BatchNorm (running statistics)
        folded into W and b, delays ``numpy.rint`` of the clamped delays, sigma 0, the
        readout decision matching the loss (``sum_softmax`` or ``sum_membrane``).
        ``metadata`` defaults to ``ModelMetadata(input_channels=n_inputs, pool=1)``."""
        cfg = self.config
        if metadata is None:
            metadata = ModelMetadata(input_channels=cfg.n_inputs, pool=1)
        if not isinstance(metadata, ModelMetadata):
            raise EvsimError(f"metadata: expected an evsim.model.ModelMetadata, got {type(metadata).__name__}")
        if metadata.n_inputs != cfg.n_inputs:
            raise EvsimError(f"metadata gives {metadata.n_inputs} model inputs ({metadata.input_channels} channels pooled by {metadata.pool}); the network has {cfg.n_inputs}")
        readout = Readout(weight=self.params["readout.weight"], bias=self.params["readout.bias"],
                          beta=self.buffers["readout.beta"], gain=self.buffers["readout.gain"],
                          decision="sum_softmax" if cfg.loss == "sum_softmax" else "sum_membrane")
        return Model(layers=self.hidden_layers(), readout=readout, metadata=metadata)

    def hidden_layers(self, first: int = 0) -> tuple:
        """The hidden layers as exported :class:`evsim.model.HiddenLayer` (BatchNorm folded,
        delays ``numpy.rint`` of the clamped delays), named ``layer{first + l}``."""
        cfg = self.config
        layers = []
        for l in range(cfg.n_layers):
            p = f"layer{l}."
            w, b = self._folded(l)
            rec = cfg.recurrence[l]
            beta, gain, theta = self._neuron(l)
            layers.append(HiddenLayer(
                weight=w, bias=b, beta=beta, threshold=theta, gain=gain, reset=cfg.reset, recurrence=rec, cell=cfg.cell,
                extra={k: self._cell_param(l, k) for k in get_cell(cfg.cell).param_names},
                recurrent=self.params[p + "recurrent"] if rec != "none" else np.zeros(0, np.float32),
                delays=np.rint(np.maximum(self.params[p + "delays"], 0)).astype(np.int64) if rec != "none" else None,
                name=f"layer{first + l}"))
        return tuple(layers)

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to rebuild the network, as plain arrays (``numpy.savez``-able,
        no pickle): ``"config"`` (JSON string scalar), ``"param.<name>"``, ``"buffer.<name>"``."""
        out = {"config": np.array(self.config.to_json())}
        out.update({f"param.{k}": v.copy() for k, v in self.params.items()})
        out.update({f"buffer.{k}": v.copy() for k, v in self.buffers.items()})
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy a :meth:`state_dict` into this network *in place* (so an optimiser holding
        ``params`` stays attached).  The configuration must match."""
        if "config" in state:
            other = NetworkConfig.from_json(str(np.asarray(state["config"])))
            if other != self.config:
                raise EvsimError("state_dict was saved from a network with a different configuration; build the network with Network.from_state_dict instead")
        self.copy_arrays(state)

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> "Network":
        """A network rebuilt from a :meth:`state_dict` (configuration included)."""
        if "config" not in state:
            raise EvsimError("state_dict has no 'config' entry")
        net = cls.init(NetworkConfig.from_json(str(np.asarray(state["config"]))), 0)
        net.load_state_dict(state)
        return net
