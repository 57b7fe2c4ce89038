"""A trainable network of CS-GRU layers and a leaky readout (hand-written BPTT), beside
:class:`evsim.training.network.Network` (the neuron-cell networks) and with its interface,
so the trainer, the optimiser and the exporter use either.

Architecture::

    input (B, T, n_inputs) read as in_channels x P positions (P = n_inputs / in_channels)
    -> CS-GRU layer 0 (channels[0] x P) -> ... -> CS-GRU layer L-1 (channels[-1] x P)
    -> readout u_t = beta_o u_{t-1} + g_o (W_o s_t + b_o) on the flattened spikes (j = c * P + p)
    loss: cross-entropy of sum_t softmax(u_t) ("sum_softmax", the method) or of sum_t u_t

Each layer's forward and backward pass is :mod:`evsim.training.csgru` (equations:
:mod:`evsim.cells.csgru`); layers are chained through the input gradient dL/dx, the
readout's gradient is the one of :class:`~evsim.training.network.Network` (same kernels).

Mixed stacks (``StackConfig.cells``): runs of neuron-cell layers (LIF, AdLIF, ... with
their recurrence and delays) below, between or above the CS-GRU layers.  A run is a
:class:`~evsim.training.network.Network` without readout over this network's arrays, run
by its own :meth:`~evsim.training.network.Network.layers_forward` on the raster below and
:meth:`~evsim.training.network.Network.layers_backward` from dL/d(its output spikes),
which returns dL/d(its input) for the layer below; no second copy of the cell code.
Layers are numbered bottom to top over the whole stack (``layer0`` the first, whatever its
kind); a CS-GRU layer reads what feeds it as C_in x P (channel-major, ``j = c * P + p``).
A layer with ``layer_delays[l]`` false has no delay parameter: its delays are 0 (the plain
CS-GRU; the thesis and DelRec keep the first layer without delays).  Delays are real and
spread over DelRec's triangle (sigma) in training, clamped >= 0 after each step, in their
own optimiser group, and rounded (``numpy.rint``) for validation and export.  No dropout,
no BatchNorm (the CS-GRU code has neither in the cell).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from evsim.cells.csgru import BIAS_NAMES, GATES, KERNEL_NAMES, make_params
from evsim.engine import SimResult
from evsim.errors import EvsimError
from evsim.model import Model, ModelMetadata, Readout

from . import _kernels as kernels
from . import _threaded, csgru
from .config import ConfigError, check_label_smoothing
from .network import (
    Network,
    ParameterFacts,
    cross_entropy,
    evaluation_result,
    readout_backward,
    readout_forward,
)
from .surrogates import get_surrogate

__all__ = ["StackConfig", "StackNetwork", "is_stack_config"]

LOSSES = ("sum_softmax", "sum_logits")


def is_stack_config(network: dict) -> bool:
    """True when a recipe's ``network`` settings describe a CS-GRU stack (``kind: csgru``)."""
    return isinstance(network, dict) and network.get("kind") == "csgru"


#: settings of a cell segment that the stack sets itself
_CELL_FIXED = ("n_inputs", "n_classes", "dtype", "smooth_forward", "loss", "label_smoothing", "readout_tau",
               "readout_gain", "rate_reg", "rate_target", "rate_cost")
#: a cell segment's defaults where they differ from NetworkConfig's (no dropout, no
#: BatchNorm, as the CS-GRU layers); surrogate, threshold and delay_init follow the stack
_CELL_DEFAULTS = dict(dropout=0.0, rec_dropout=0.0, batchnorm=False)


def _check_cells(cells, n_csgru: int) -> dict:
    """``cells`` as {"i": settings}: a run of neuron-cell layers below CS-GRU layer i (i =
    n_csgru: above the last), settings those of NetworkConfig less :data:`_CELL_FIXED`;
    JSON-normalised so that a config round-trips through its JSON unchanged."""
    if cells is None:
        return {}
    expected = (f"a table {{position: network settings}}, position 0..{n_csgru} (the number of CS-GRU "
                'layers below the cell layers), e.g. {"0": {"hidden": [140], "recurrence": "none"}}')
    if not isinstance(cells, dict):
        raise ConfigError(f"network.cells: {cells!r}; expected {expected}")
    out = {}
    for key, settings in cells.items():
        if str(key) not in {str(i) for i in range(n_csgru + 1)} or not isinstance(settings, dict):
            raise ConfigError(f"network.cells: entry {key!r}: {settings!r}; expected {expected}")
        if "hidden" not in settings:
            raise ConfigError(f"network.cells.{key}: no hidden (the sizes of its layers, e.g. [140])")
        fixed = sorted(set(settings) & set(_CELL_FIXED))
        if fixed:
            raise ConfigError(f"network.cells.{key}: {', '.join(fixed)} cannot be set for cell layers in a stack "
                              "(the stack sets them)")
        try:
            out[str(key)] = json.loads(json.dumps(settings))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"network.cells.{key}: {exc}") from None
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class StackConfig:
    """Architecture of a :class:`StackNetwork` (``--set network.<field>=...``).

    kind: ``"csgru"`` (what selects this network)
    n_inputs, in_channels: inputs per step, read as in_channels x (n_inputs / in_channels)
        positions (SHD pooled: 1 x 140)
    channels: C of each CS-GRU layer
    layer_delays: per layer, whether it has (learned) axonal delays
    kernel_size: odd k of every kernel
    gate: ``"current"`` (CS-GRU) or ``"input"`` (SpikGRU-style)
    detach_reset: drop the soft reset's gradient (the CS-GRU code keeps it)
    surrogate, surrogate_alpha: by name; default the CS-GRU code's 1 / (1 + 10 (v - theta)^2)
    delay_init: (low, high) of the uniform initial delays in steps
    readout_tau, readout_gain: the leaky readout (beta_o = 1 - 1 / tau; gain "one" or "1-beta")
    loss: ``"sum_softmax"`` or ``"sum_logits"``
    label_smoothing: e in [0, 1), the training target (1 - e) onehot + e / C (0: off)
    smooth_forward: the surrogate's primitive in place of H (gradient checks only)
    cells: neuron-cell layers (LIF, AdLIF, ...) in the stack, ``{"i": settings}``: a run of
        cell layers below CS-GRU layer i (``"0"``: on the input; ``"<n_layers>"``: between the
        last CS-GRU layer and the readout), settings those of
        :class:`~evsim.training.config.NetworkConfig` (``hidden`` required; recurrence,
        delays, cell, tau, gain, reset, dropout, BatchNorm... as Network trains them; no
        dropout and no BatchNorm unless set; surrogate, threshold and delay_init default to
        the stack's).  The layer feeding a CS-GRU layer must have C_in x P neurons
        (flattened ``j = c * P + p``; P = n_inputs / in_channels).  E.g.
        ``--set network.cells.0.hidden=[140]``: a LIF layer 140 -> 140 then the CS-GRU layers.
        Layers are numbered bottom to top over the whole stack (``layer0`` the first).
    """

    kind: str = "csgru"
    n_inputs: int = 140
    in_channels: int = 1
    channels: tuple = (8, 8)
    layer_delays: tuple = (False, True)
    kernel_size: int = 3
    gate: str = "current"
    detach_reset: bool = False
    surrogate: str = "inverse_quadratic"
    surrogate_alpha: float | None = None
    delay_init: tuple = (10.0, 30.0)
    readout_tau: float = 1.05
    readout_gain: str = "one"
    loss: str = "sum_softmax"
    label_smoothing: float = 0.0
    n_classes: int = 20
    threshold: float = 1.0
    smooth_forward: bool = False
    cells: Any = None

    def __post_init__(self):
        set_ = object.__setattr__

        def bad(name, expected):
            raise ConfigError(f"network.{name}: {getattr(self, name)!r}; expected {expected}")

        def pos_int(v):
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        if self.kind != "csgru":
            bad("kind", '"csgru"')
        for name in ("n_inputs", "in_channels", "n_classes", "kernel_size"):
            if not pos_int(getattr(self, name)):
                bad(name, "a positive integer")
        if self.kernel_size % 2 == 0:
            bad("kernel_size", "an odd kernel length (1, 3, 5, ...)")
        if self.n_inputs % self.in_channels:
            bad("in_channels", f"a divisor of n_inputs = {self.n_inputs} (the input is in_channels x positions)")
        channels = (self.channels,) if isinstance(self.channels, int) else tuple(self.channels)
        if not channels or not all(pos_int(c) for c in channels):
            bad("channels", "one positive integer per CS-GRU layer, e.g. [16, 16]")
        set_(self, "channels", channels)
        delays = self.layer_delays
        delays = (delays,) * len(channels) if isinstance(delays, bool) else tuple(delays)
        if len(delays) != len(channels) or not all(isinstance(d, bool) for d in delays):
            bad("layer_delays", f"one true/false per layer ({len(channels)}), or one for all")
        set_(self, "layer_delays", delays)
        if self.gate not in GATES:
            bad("gate", f"one of {', '.join(GATES)}")
        for name in ("detach_reset", "smooth_forward"):
            if not isinstance(getattr(self, name), bool):
                bad(name, "true or false")
        get_surrogate(self.surrogate)
        if self.surrogate_alpha is not None and not (isinstance(self.surrogate_alpha, (int, float))
                                                      and self.surrogate_alpha > 0):
            bad("surrogate_alpha", "a positive number (or null for the surrogate's default)")
        init = tuple(self.delay_init)
        if len(init) != 2 or not all(isinstance(v, (int, float)) for v in init) or not 0 <= init[0] <= init[1]:
            bad("delay_init", "[low, high] with 0 <= low <= high steps")
        set_(self, "delay_init", tuple(float(v) for v in init))
        if not (isinstance(self.readout_tau, (int, float)) and self.readout_tau >= 1.0):
            bad("readout_tau", ">= 1 step")
        if self.readout_gain not in ("one", "1-beta"):
            bad("readout_gain", "one or 1-beta")
        if self.loss not in LOSSES:
            bad("loss", f"one of {', '.join(LOSSES)}")
        check_label_smoothing(self.label_smoothing)
        if not (isinstance(self.threshold, (int, float)) and self.threshold > 0):
            bad("threshold", "a number > 0")
        set_(self, "cells", _check_cells(self.cells, len(channels)))
        set_(self, "_plan", self._make_plan())

    def _make_plan(self) -> tuple:
        """The stack bottom to top: ``("cells", first, NetworkConfig)`` for a run of cell
        layers (global layers first..), ``("csgru", g, i, c_in)`` for CS-GRU layer i (global
        layer g, c_in input channels); checks that each layer's input width fits."""
        from .config import NetworkConfig

        plan, width, g = [], self.n_inputs, 0
        p_ = self.positions
        for i in range(len(self.channels) + 1):
            key = str(i)
            if key in self.cells:
                settings = {**_CELL_DEFAULTS, "surrogate": self.surrogate, "surrogate_alpha": self.surrogate_alpha,
                            "threshold": self.threshold, "delay_init": list(self.delay_init), **self.cells[key],
                            "n_inputs": width, "n_classes": self.n_classes, "dtype": "float64",
                            "smooth_forward": self.smooth_forward}
                try:
                    net_cfg = NetworkConfig(**settings)
                except ConfigError as exc:
                    raise ConfigError(f"network.cells.{key}.{exc}") from None
                except TypeError as exc:
                    raise ConfigError(f"network.cells.{key}: {exc}") from None
                plan.append(("cells", g, net_cfg))
                g += net_cfg.n_layers
                width = net_cfg.hidden[-1]
            if i == len(self.channels):
                break
            if width % p_:
                raise ConfigError(f"network.cells.{key}: its last layer has {width} neurons; CS-GRU layer {i} above "
                                  f"reads C_in x {p_} positions, so expected a multiple of {p_}")
            plan.append(("csgru", g, i, width // p_))
            g += 1
            width = self.channels[i] * p_
        return tuple(plan)

    @property
    def positions(self) -> int:
        return self.n_inputs // self.in_channels

    @property
    def n_layers(self) -> int:
        return len(self.channels)

    @property
    def n_last(self) -> int:
        last = self._plan[-1]
        return last[2].hidden[-1] if last[0] == "cells" else self.channels[-1] * self.positions

    @property
    def plan(self) -> tuple:
        """See :meth:`_make_plan`."""
        return self._plan

    @property
    def n_hidden_layers(self) -> int:
        """Every layer of the stack, cell layers included (``n_layers``: the CS-GRU ones)."""
        last = self._plan[-1]
        return last[1] + (last[2].n_layers if last[0] == "cells" else 1)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StackConfig:
        return cls(**json.loads(text))

    @classmethod
    def from_settings(cls, settings: dict) -> StackConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"network: unknown setting(s) {', '.join(unknown)} for a csgru network; "
                              f"known: {', '.join(sorted(known))}")
        return cls(**settings)


class StackNetwork(ParameterFacts):
    """A trainable CS-GRU network (see the module docstring).  ``params``: for each layer
    ``layer{l}.k_rx ... k_zh`` (C, C_src, k), ``layer{l}.b_r, b_i, b_z`` (C,) and, for a
    layer with delays, ``layer{l}.delays`` (C, P); ``readout.weight`` (classes, C P),
    ``readout.bias``.  ``buffers``: ``readout.beta``, ``readout.gain``.  float64."""

    def __init__(self, config: StackConfig, params: dict, buffers: dict):
        self.config = config
        self.params = params
        self.buffers = buffers

    @classmethod
    def init(cls, config: StackConfig, seed: int | np.random.Generator = 0) -> StackNetwork:
        """Kernels and biases U(-sqrt(1/C), sqrt(1/C)) (the CS-GRU code), delays uniform in
        ``delay_init`` (layers with delays), cell layers as :meth:`Network.init` draws them,
        readout U(+-1/sqrt(fan_in)) (as Network)."""
        if not isinstance(config, StackConfig):
            raise ConfigError(f"expected a StackConfig, got {type(config).__name__}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        params, buffers = {}, {}
        for part in config.plan:
            if part[0] == "cells":
                _, first, net_cfg = part
                sub = Network.init(net_cfg, rng)
                for src, dst in ((sub.params, params), (sub.buffers, buffers)):
                    for key, arr in src.items():
                        if not key.startswith("readout."):
                            l, name = key.split(".", 1)
                            dst[f"layer{first + int(l[5:])}.{name}"] = arr
                continue
            _, g, i, c_in = part
            lay = csgru.init_params(config.channels[i], c_in, config.positions, config.kernel_size, gate=config.gate,
                                    delay_range=config.delay_init if config.layer_delays[i] else (0.0, 0.0),
                                    theta=config.threshold, rng=rng)
            for name in KERNEL_NAMES + BIAS_NAMES:
                params[f"layer{g}.{name}"] = np.array(getattr(lay, name), np.float64)
            if config.layer_delays[i]:
                params[f"layer{g}.delays"] = np.array(lay.delays, np.float64)
        n, k = config.n_last, config.n_classes
        bound = 1 / np.sqrt(n)
        params["readout.weight"] = rng.uniform(-bound, bound, (k, n))
        params["readout.bias"] = rng.uniform(-bound, bound, k)
        beta_o = 1.0 - 1.0 / config.readout_tau
        buffers["readout.beta"] = np.full(k, beta_o)
        buffers["readout.gain"] = np.full(k, 1.0 if config.readout_gain == "one" else 1.0 - beta_o)
        return cls(config, params, buffers)

    def _cells(self, first: int, net_cfg) -> Network:
        """A run of cell layers as a :class:`Network` whose arrays are this network's (its
        ``layer{j}`` is this one's ``layer{first + j}``; it has no readout), so its forward
        and backward passes and its clamping act on them."""
        def local(src):
            out = {}
            for j in range(net_cfg.n_layers):
                pre = f"layer{first + j}."
                out.update({f"layer{j}." + k[len(pre):]: v for k, v in src.items() if k.startswith(pre)})
            return out

        return Network(net_cfg, local(self.params), local(self.buffers))

    # -- parameter facts (delay_names, weight_names, n_params, clamp_delays: ParameterFacts)
    def clamp_parameters(self) -> None:
        """After each optimiser step: delays >= 0, and the learned parameters of cell layers
        into their bounds (:meth:`Network.clamp_parameters`)."""
        self.clamp_delays()
        for part in self.config.plan:
            if part[0] == "cells":
                self._cells(part[1], part[2]).clamp_parameters()

    def _layer(self, g: int, i: int, rounded: bool):
        """CS-GRU layer i (global layer g) as :class:`~evsim.cells.csgru.CSGRUParams` (float
        delays; ``rounded``: clamped and rounded as inference runs them)."""
        cfg = self.config
        p = f"layer{g}."
        if cfg.layer_delays[i]:
            d = self.params[p + "delays"]
            d = np.rint(np.maximum(d, 0.0)) if rounded else d
        else:
            d = np.zeros((cfg.channels[i], cfg.positions))
        return make_params(*(self.params[p + n] for n in KERNEL_NAMES + BIAS_NAMES), d, gate=cfg.gate,
                           theta=cfg.threshold)

    # -- forward / backward --------------------------------------------------------------
    def _check_x(self, x) -> np.ndarray:
        x = np.asarray(x)
        n_in = self.config.n_inputs
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != n_in or x.shape[0] < 1 or x.shape[1] < 1:
            raise EvsimError(f"input has shape {x.shape}; expected (batch, steps, {n_in}) with at least one of each")
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise EvsimError(f"input dtype {x.dtype} is not numeric")
        x = np.ascontiguousarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise EvsimError("input contains NaN or infinite values")
        return x

    def _check_y(self, y, b) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (b,) or y.dtype.kind not in "iu" or (b and (y.min() < 0 or y.max() >= self.config.n_classes)):
            raise EvsimError(f"labels: shape {y.shape}, dtype {y.dtype}; expected ({b},) integers in "
                             f"[0, {self.config.n_classes})")
        return y.astype(np.int64)

    def _forward(self, x, sigma: float, rounded: bool, rng=None, update_stats: bool = False):
        """The stack bottom to top; ``caches`` has one entry per part of the plan (a list of
        layer caches for a cell run, a CSGRUCache for a CS-GRU layer); ``rasters`` the
        spikes of every layer, (B, T, n)."""
        cfg = self.config
        n_b, n_t, _ = x.shape
        h = x
        caches, rasters = [], []
        for part in cfg.plan:
            if part[0] == "cells":
                sub = self._cells(part[1], part[2])
                layer_caches, out = sub.layers_forward(h, train=not rounded, rng=rng, sigma=sigma,
                                                       update_stats=update_stats and not rounded)
                caches.append(layer_caches)
                rasters.extend(c.s for c in layer_caches)
                h = out.reshape(n_b, n_t, -1)
                continue
            _, g, i, c_in = part
            spread = sigma if cfg.layer_delays[i] else 0.0      # a layer without delays: s_{t-1}, no spread
            cache = csgru.forward(self._layer(g, i, rounded), h.reshape(n_b, n_t, c_in, cfg.positions), sigma=spread,
                                  surrogate=cfg.surrogate, alpha=cfg.surrogate_alpha, smooth=cfg.smooth_forward)
            caches.append(cache)
            h = cache.s.reshape(n_b, n_t, -1)
            rasters.append(h)
        spikes = np.ascontiguousarray(h)
        u, q, scores = readout_forward(self.params, self.buffers, spikes, spikes.shape[:2] + (-1,), cfg.loss)
        return caches, rasters, spikes, u, q, scores

    @_threaded.one_blas_thread()
    def loss_and_grad(self, x, y, rng=None, sigma: float = 0.0, *, update_stats: bool = True,
                      rate_scale: float = 1.0):
        """One training forward pass (delays spread by ``sigma``) and BPTT; the interface of
        :meth:`evsim.training.network.Network.loss_and_grad` (``rng``: dropout masks of cell
        layers, if they have dropout; ``update_stats``: their BatchNorm statistics, if any;
        ``rate_scale`` has nothing to act on here).  Returns ``(loss, grads, stats)``."""
        x = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        if not (np.isfinite(sigma) and sigma >= 0):
            raise EvsimError(f"sigma: {sigma!r}; expected a finite number >= 0")
        cfg = self.config
        n_b, n_t, _ = x.shape
        caches, rasters, spikes, u, q, scores = self._forward(x, sigma, rounded=False, rng=rng,
                                                              update_stats=update_stats)
        loss, g_scores = cross_entropy(scores, y, cfg.label_smoothing)
        grads, g_h = readout_backward(self.params, self.buffers, spikes, u, q, g_scores)
        g_h = g_h.reshape(n_b, n_t, -1)                          # dL/d(top layer's output), (B, T, n)
        for k in range(len(cfg.plan) - 1, -1, -1):
            part, below = cfg.plan[k], k > 0
            if part[0] == "cells":
                _, first, net_cfg = part
                sub_grads, g_x = self._cells(first, net_cfg).layers_backward(
                    caches[k], g_h.reshape(n_b * n_t, -1), [0.0] * net_cfg.n_layers, input_grad=below)
                for key, arr in sub_grads.items():
                    l, name = key.split(".", 1)
                    grads[f"layer{first + int(l[5:])}.{name}"] = arr
                g_h = g_x.reshape(n_b, n_t, -1) if below else None
                continue
            _, g, i, c_in = part
            layer_grads, gx = csgru.backward(self._layer(g, i, False), caches[k], g_h.reshape(caches[k].s.shape),
                                             detach_reset=cfg.detach_reset)
            for name in KERNEL_NAMES + BIAS_NAMES:
                grads[f"layer{g}.{name}"] = layer_grads[name]
            if cfg.layer_delays[i]:
                grads[f"layer{g}.delays"] = layer_grads["delays"]
            g_h = gx.reshape(n_b, n_t, -1)
        grads = {k: np.ascontiguousarray(grads[k]) for k in self.params}
        pred = np.argmax(scores, axis=1)
        correct = int(np.sum(pred == y))
        stats = {"loss": loss, "rate_penalty": 0.0, "correct": correct, "accuracy": correct / n_b, "batch": n_b,
                 "spike_rate": [float(r.mean()) for r in rasters]}
        return loss, grads, stats

    # -- evaluation and export -------------------------------------------------------------
    @_threaded.one_blas_thread()
    def evaluate(self, x, y=None, *, record_spikes: bool = False, batch_size: int = 128) -> SimResult:
        """Inference as the exported model runs it (delays clamped and rounded, sigma 0)."""
        x = self._check_x(x)
        if y is not None:
            y = self._check_y(y, x.shape[0])
        us, scores, spikes = [], [], []
        for lo in range(0, x.shape[0], max(1, int(batch_size))):
            _, rasters, _, u, _, sc = self._forward(x[lo:lo + batch_size], 0.0, rounded=True)
            us.append(u)
            scores.append(sc)
            if record_spikes:
                spikes.append([r.astype(np.uint8) for r in rasters])
        return evaluation_result(us, scores, spikes if record_spikes else None, y)

    def export(self, metadata: ModelMetadata | None = None) -> Model:
        """The :class:`evsim.model.Model`: one :class:`evsim.csgru_layer.CSGRULayer` per
        layer (delays ``numpy.rint`` of the clamped delays), the readout."""
        from evsim.training.csgru import export_params

        from evsim.csgru_layer import CSGRULayer

        cfg = self.config
        if metadata is None:
            metadata = ModelMetadata(input_channels=cfg.n_inputs, pool=1)
        if metadata.n_inputs != cfg.n_inputs:
            raise EvsimError(f"metadata gives {metadata.n_inputs} model inputs; the network has {cfg.n_inputs}")
        layers = []
        for part in cfg.plan:
            if part[0] == "cells":
                layers.extend(self._cells(part[1], part[2]).hidden_layers(first=part[1]))
            else:
                _, g, i, _ = part
                layers.append(CSGRULayer.from_params(export_params(self._layer(g, i, False)),
                                                     detach_reset=cfg.detach_reset, name=f"layer{g}"))
        layers = tuple(layers)
        readout = Readout(weight=self.params["readout.weight"], bias=self.params["readout.bias"],
                          beta=self.buffers["readout.beta"], gain=self.buffers["readout.gain"],
                          decision="sum_softmax" if cfg.loss == "sum_softmax" else "sum_membrane")
        return Model(layers=layers, readout=readout, metadata=metadata)

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        out = {"config": np.array(self.config.to_json())}
        out.update({f"param.{k}": v.copy() for k, v in self.params.items()})
        out.update({f"buffer.{k}": v.copy() for k, v in self.buffers.items()})
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if "config" in state:
            try:
                other = StackConfig.from_json(str(np.asarray(state["config"])))
            except (TypeError, ValueError, EvsimError):
                other = None
            if other != self.config:
                raise EvsimError("state_dict was saved from a network with a different configuration")
        self.copy_arrays(state)

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> StackNetwork:
        if "config" not in state:
            raise EvsimError("state_dict has no 'config' entry")
        net = cls.init(StackConfig.from_json(str(np.asarray(state["config"]))), 0)
        net.load_state_dict(state)
        return net
