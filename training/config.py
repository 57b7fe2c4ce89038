"""The architecture of a trainable network, as one frozen, self-validating dataclass.

Defaults are the CRSNN SHD network of the method::

    input(140) -> [Linear -> BN -> LIF] -> 3 x [Linear -> BN -> conv-recurrent LIF with delays]
               -> Linear(256, 20) -> leaky readout

Where the two published codes disagree the default follows CRSNN (the method evsim
implements), each being an option:

* ``gain``: g = 1 for the first (non-recurrent) layer and the readout (DelRec), g = 1 - beta
  for the conv-recurrent layers (CRSNN);
* ``detach_reset=False``: the gradient flows through the reset (CRSNN; DelRec detaches it);
* ``dropout_mode="step"``: a new dropout mask every step (CRSNN; DelRec keeps one mask per
  sequence, ``"sequence"``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from evsim.errors import EvsimError
from evsim.cells import CELLS, get_cell
from evsim.model import RECURRENCES, RESETS

from .surrogates import get_surrogate

__all__ = ["NetworkConfig", "ConfigError", "GAINS", "LOSSES", "DROPOUT_MODES", "check_label_smoothing"]

GAINS = ("one", "1-beta")
LOSSES = ("sum_softmax", "sum_logits")
DROPOUT_MODES = ("sequence", "step")
REC_DROPOUT_AT = ("spikes", "input")
DTYPES = ("float32", "float64")
RATE_COSTS = ("uniform", "synops")


class ConfigError(EvsimError):
    """An invalid :class:`NetworkConfig`."""


def check_label_smoothing(value) -> None:
    """Raise unless ``value`` is a label smoothing e in [0, 1) (a real number, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"label_smoothing: {value!r}; expected a number in [0, 1) (0: off)")


def _per_layer(name, value, n_layers, cast):
    """Broadcast a scalar to one entry per hidden layer, or check a sequence's length."""
    if isinstance(value, (str, int, float)) or value is None:
        return tuple(cast(value) for _ in range(n_layers))
    value = tuple(value)
    if len(value) != n_layers:
        raise ConfigError(f"{name}: {len(value)} entries for {n_layers} hidden layers; give one per layer or a single value")
    return tuple(cast(v) for v in value)


def _range(name, bounds, lo_ok, hi_ok) -> tuple:
    """``bounds`` as (low, high) floats, checked: finite, lo_ok <= low <= high <= hi_ok."""
    if (not isinstance(bounds, (tuple, list)) or len(bounds) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in bounds)
            or not (lo_ok <= bounds[0] <= bounds[1] <= hi_ok)):
        raise ConfigError(f"{name}: {bounds!r}; expected [low, high] with {lo_ok:g} <= low <= high <= {hi_ok:g}")
    return float(bounds[0]), float(bounds[1])


def _tau_entry(v):
    """A layer's tau: one float (per layer) or a tuple of floats (per neuron)."""
    if isinstance(v, (int, float, np.floating, np.integer)):
        return float(v)
    return tuple(float(x) for x in v)


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture and training-time behaviour of a :class:`evsim.training.Network`.

    n_inputs: inputs per step (SHD pooled: 140)
    hidden: neurons of each hidden layer
    recurrence: per layer ``"none"``, ``"dense"`` (N x N) or ``"conv"`` (one kernel of odd
        length ``kernel_size`` slid along the neuron axis, zero edges); a single string
        applies to every layer; None (default): the first layer ``"none"``, the others
        ``"conv"`` (CRSNN)
    kernel_size: odd conv kernel length k (3 or 5)
    n_classes: readout classes C
    reset: ``"zero"`` (v * (1 - s)) or ``"subtract"`` (v - theta s), all layers
    detach_reset: if True the reset carries no gradient (DelRec); default False (CRSNN)
    tau: membrane time constant in steps, beta = 1 - 1/tau; per layer a float (one beta
        for the layer) or a tuple of n floats (one per neuron); None (default): 1.05 (DelRec
        SHD) for layers without recurrence, 1.169 (CRSNN) for recurrent ones.  Not trained.
    gain: per layer ``"one"`` (g = 1) or ``"1-beta"`` (g = 1 - beta); None (default): the
        cell's default (``TrainingDefaults.gain``: ``"1-beta"`` for adlif), else ``"one"``
        for layers without recurrence, ``"1-beta"`` for recurrent ones
    threshold: theta, all hidden neurons
    surrogate, surrogate_alpha: surrogate derivative by name (see
        :data:`evsim.training.surrogates.SURROGATES`) and its alpha (None: its default)
    smooth_forward: replace H by the surrogate's primitive in the forward pass.  For the
        gradient checks only; such a network does not spike.
    dropout: feed-forward dropout after each hidden layer (rate of zeros)
    rec_dropout: dropout of the recurrent input, placed by ``rec_dropout_at``
    rec_dropout_at: ``"input"`` (default): on the summed recurrent input after the
        recurrent weights, ``I_t = c_t + mask_t * R_t``, as the DelRec and CRSNN codes do
        (the layer's input is ``x_t + dropout(R_t)``); ``"spikes"``: on the delayed spikes
        before the recurrent weights, ``z_t = mask_t * (spread spikes)`` (evsim before
        this option)
    dropout_mode: ``"step"`` (new mask each step, CRSNN) or ``"sequence"`` (one mask per
        sample, DelRec)
    batchnorm: BatchNorm after each feed-forward Linear (batch statistics over all B x T
        steps, padding included, in training; running statistics in evaluation; folded into
        W and b at export)
    bn_momentum, bn_eps: running-statistics momentum (PyTorch convention) and epsilon
    delay_init: (low, high) of the uniform delay initialisation in steps
    readout_tau, readout_gain: the leaky readout's time constant and gain mode
    loss: ``"sum_softmax"`` (cross-entropy of the logits sum_t softmax(u_t), the method) or
        ``"sum_logits"`` (cross-entropy of sum_t u_t)
    label_smoothing: e in [0, 1): the training loss's target is (1 - e) onehot(y) + e / C
        (0, the default: the plain cross-entropy); evaluation always reports the plain one
    rate_reg, rate_target: spike-rate regulariser added to the loss (default off).  With
        r_l = mean_{b,t,i} s_l[b,t,i] the firing rate of hidden layer l (spikes per neuron
        per step over the whole padded B x T batch, before dropout):
        ``rate_target == 0``: P = rate_reg * sum_l r_l (L1 on the rates);
        ``rate_target > 0``: P = rate_reg * sum_l max(0, r_l - rate_target)^2 (squared
        hinge: layers at or below the target are not penalised).  Its gradient,
        rate_reg / (B T n_l) (L1) or 2 rate_reg max(0, r_l - rate_target) / (B T n_l), is
        added to dL/ds_l of every spike.  ``rate_reg >= 0`` (0: no penalty, the loss and
        gradients are exactly those without it), ``rate_target`` in [0, 1).
    rate_cost: what the penalty counts.  ``"uniform"`` (default): each layer's rate, as
        above.  ``"synops"``: one number, the synaptic work the hidden spikes cause as a
        fraction of the dense work, C = sum_l f_l S_l / (B T sum_l n_l f_l), with S_l the
        layer's spike count and f_l its fan-out per spike (the next layer's size, or the
        number of classes after the last layer, plus k for a conv recurrence or n_l for a
        dense one) -- what the event engine's time follows.  P = rate_reg * C (target 0)
        or rate_reg * max(0, C - rate_target)^2, and dP/ds_l = rate_reg f_l / (B T sum n f)
        or 2 rate_reg max(0, C - rate_target) f_l / (B T sum n f).  A layer that feeds
        only the readout is nearly free under "synops".
    dtype: ``"float32"`` (training) or ``"float64"`` (gradient checks)
    cell: the neuron model of every hidden layer, a name in :data:`evsim.cells.CELLS`
        (``"lif"``, ``"adlif"``, ...); its module's ``KIND`` gives the defaults below
    learn_beta: learn each hidden neuron's decay beta (kept in ``beta_range`` after every
        optimiser step; a ``"1-beta"`` gain follows it).  None (default): the cell's
        (``TrainingDefaults.learn_beta``: True for adlif, False for lif, as DelRec and
        CRSNN keep beta fixed)
    beta_range: (low, high) bounds of a learned beta.  None (default): the cell's (lif: tau
        in [1, 25] steps, beta = 1 - 1/tau in [0, 0.96]; adlif: Bittar & Garner's
        [exp(-1/5), exp(-1/25)])
    beta_init: true: draw each hidden neuron's initial beta uniformly from ``beta_range``;
        false: beta = 1 - 1/tau.  None (default): the cell's (``TrainingDefaults.beta_init``)
    cell_bounds: {parameter: [low, high]}: the bounds training keeps each extra per-neuron
        parameter of the cell in (clamped after every optimiser step).  None or missing
        entries (default): the cell's (``Param.train``, see the cell module)
    cell_init: {parameter: [low, high]}: the uniform range each extra parameter starts
        from, inside its bounds.  None or missing entries (default): the cell's
        (``Param.init``) within the bounds (the bounds, if the two do not overlap)
    """

    n_inputs: int = 140
    hidden: tuple = (256, 256, 256, 256)
    recurrence: Any = None
    kernel_size: int = 5
    n_classes: int = 20
    reset: str = "zero"
    detach_reset: bool = False
    tau: Any = None
    gain: Any = None
    threshold: float = 1.0
    surrogate: str = "arctan"
    surrogate_alpha: float | None = None
    smooth_forward: bool = False
    dropout: float = 0.44
    rec_dropout: float = 0.24
    dropout_mode: str = "step"
    rec_dropout_at: str = "input"
    batchnorm: bool = True
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    delay_init: tuple = (10.0, 30.0)
    readout_tau: float = 1.05
    readout_gain: str = "one"
    loss: str = "sum_softmax"
    label_smoothing: float = 0.0
    rate_reg: float = 0.0
    rate_target: float = 0.0
    rate_cost: str = "uniform"
    dtype: str = "float32"
    cell: str = "lif"
    learn_beta: Any = None
    beta_range: Any = None
    beta_init: Any = None
    cell_bounds: Any = None
    cell_init: Any = None

    def __post_init__(self):
        set_ = object.__setattr__
        if not (isinstance(self.n_inputs, (int, np.integer)) and self.n_inputs >= 1):
            raise ConfigError(f"n_inputs: {self.n_inputs!r}; expected a positive integer")
        hidden = (self.hidden,) if isinstance(self.hidden, (int, np.integer)) else tuple(self.hidden)
        if not hidden or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in hidden):
            raise ConfigError(f"hidden: {self.hidden!r}; expected one or more positive layer sizes")
        set_(self, "hidden", tuple(int(n) for n in hidden))
        n_layers = len(hidden)
        if self.recurrence is None:
            set_(self, "recurrence", ("none",) + ("conv",) * (n_layers - 1))
        set_(self, "recurrence", _per_layer("recurrence", self.recurrence, n_layers, str))
        for r in self.recurrence:
            if r not in RECURRENCES:
                raise ConfigError(f"recurrence: unknown kind {r!r}; expected one of {', '.join(RECURRENCES)}")
        if not (isinstance(self.kernel_size, (int, np.integer)) and self.kernel_size >= 1 and self.kernel_size % 2 == 1):
            raise ConfigError(f"kernel_size: {self.kernel_size!r}; expected an odd positive integer (3 or 5)")
        if not (isinstance(self.n_classes, (int, np.integer)) and self.n_classes >= 2):
            raise ConfigError(f"n_classes: {self.n_classes!r}; expected an integer >= 2")
        if self.reset not in RESETS:
            raise ConfigError(f"reset: {self.reset!r}; expected one of {', '.join(RESETS)}")
        if self.tau is None:
            set_(self, "tau", tuple(1.05 if r == "none" else 1.169 for r in self.recurrence))
        set_(self, "tau", _per_layer("tau", self.tau, n_layers, _tau_entry))
        for l, (t, n) in enumerate(zip(self.tau, hidden)):
            arr = np.atleast_1d(np.asarray(t, float))
            if arr.size not in (1, n):
                raise ConfigError(f"tau[{l}]: {arr.size} values for a layer of {n} neurons; give one float or one per neuron")
            if not np.all(arr >= 1.0):
                raise ConfigError(f"tau[{l}]: must be >= 1 step (beta = 1 - 1/tau in [0, 1)); got min {arr.min():g}")
        if self.cell not in CELLS:
            raise ConfigError(f"cell: unknown cell {self.cell!r}; expected one of {', '.join(CELLS)}")
        defaults = get_cell(self.cell).training
        if self.gain is None:
            set_(self, "gain", (defaults.gain,) * n_layers if defaults.gain is not None
                 else tuple("one" if r == "none" else "1-beta" for r in self.recurrence))
        set_(self, "gain", _per_layer("gain", self.gain, n_layers, str))
        for g in (*self.gain, self.readout_gain):
            if g not in GAINS:
                raise ConfigError(f"gain: unknown mode {g!r}; expected one of {', '.join(GAINS)}")
        if not (self.threshold > 0):
            raise ConfigError(f"threshold: {self.threshold!r}; expected > 0")
        sur = get_surrogate(self.surrogate)
        if self.surrogate_alpha is None:
            set_(self, "surrogate_alpha", float(sur.default_alpha))
        elif not (self.surrogate_alpha > 0):
            raise ConfigError(f"surrogate_alpha: {self.surrogate_alpha!r}; expected > 0")
        for name in ("dropout", "rec_dropout"):
            p = getattr(self, name)
            if not (0.0 <= p < 1.0):
                raise ConfigError(f"{name}: {p!r}; expected a rate in [0, 1)")
        if self.rec_dropout_at not in REC_DROPOUT_AT:
            raise ConfigError(f"rec_dropout_at: {self.rec_dropout_at!r}; expected one of {', '.join(REC_DROPOUT_AT)}")
        if self.learn_beta is None:
            set_(self, "learn_beta", defaults.learn_beta)
        if not isinstance(self.learn_beta, bool):
            raise ConfigError(f"learn_beta: {self.learn_beta!r}; expected true, false or null")
        if self.beta_range is None:
            set_(self, "beta_range", tuple(defaults.beta_range))
        set_(self, "beta_range", _range("beta_range", self.beta_range, 0.0, 1.0))
        if self.beta_init is None:
            set_(self, "beta_init", defaults.beta_init)
        if not isinstance(self.beta_init, bool):
            raise ConfigError(f"beta_init: {self.beta_init!r}; expected true (uniform in beta_range), false (1 - 1/tau) or null")
        self._check_cell_ranges()
        if self.dropout_mode not in DROPOUT_MODES:
            raise ConfigError(f"dropout_mode: {self.dropout_mode!r}; expected one of {', '.join(DROPOUT_MODES)}")
        if not (0.0 <= self.bn_momentum <= 1.0) or not (self.bn_eps >= 0):
            raise ConfigError("bn_momentum must be in [0, 1] and bn_eps >= 0")
        lo, hi = (float(v) for v in self.delay_init)
        if not (0.0 <= lo <= hi):
            raise ConfigError(f"delay_init: {self.delay_init!r}; expected 0 <= low <= high (steps)")
        set_(self, "delay_init", (lo, hi))
        if not (self.readout_tau >= 1.0):
            raise ConfigError(f"readout_tau: {self.readout_tau!r}; expected >= 1 step")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss: {self.loss!r}; expected one of {', '.join(LOSSES)}")
        check_label_smoothing(self.label_smoothing)
        for name in ("rate_reg", "rate_target"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
                raise ConfigError(f"{name}: {v!r}; expected a finite number")
            set_(self, name, float(v))
        if not self.rate_reg >= 0.0:
            raise ConfigError(f"rate_reg: {self.rate_reg!r}; expected a penalty weight >= 0 (0 disables the spike-rate penalty)")
        if not (0.0 <= self.rate_target < 1.0):
            raise ConfigError(f"rate_target: {self.rate_target!r}; expected a firing rate (spikes per neuron per step) in [0, 1)")
        if self.rate_cost not in RATE_COSTS:
            raise ConfigError(f"rate_cost: {self.rate_cost!r}; expected one of {', '.join(RATE_COSTS)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype: {self.dtype!r}; expected one of {', '.join(DTYPES)}")

    def _check_cell_ranges(self) -> None:
        """Fill and check ``cell_bounds`` and ``cell_init`` from the cell's parameters."""
        set_ = object.__setattr__
        params = {p.name: p for p in get_cell(self.cell).params}
        for field in ("cell_bounds", "cell_init"):
            given = {} if getattr(self, field) is None else getattr(self, field)
            if not isinstance(given, dict):
                raise ConfigError(f"{field}: {given!r}; expected a table {{parameter: [low, high]}}")
            unknown = sorted(set(given) - set(params))
            if unknown:
                raise ConfigError(f"{field}: {', '.join(unknown)} is not a parameter of a {self.cell!r} cell "
                                  f"(its parameters: {', '.join(params) or 'none'})")
        bounds, init = dict(self.cell_bounds or {}), dict(self.cell_init or {})
        for name, p in params.items():
            lo, hi = _range(f"cell_bounds.{name}", bounds.get(name, p.train), *p.valid)
            bounds[name] = (lo, hi)
            if name in init:
                init[name] = _range(f"cell_init.{name}", init[name], lo, hi)
            else:
                start = p.train if p.init is None else p.init
                inside = (max(start[0], lo), min(start[1], hi))
                init[name] = inside if inside[0] <= inside[1] else (lo, hi)
        set_(self, "cell_bounds", bounds)
        set_(self, "cell_init", init)

    def learned_bounds(self) -> dict:
        """(low, high) of every learned per-neuron cell parameter, by name: beta when
        ``learn_beta``, and the cell's extra parameters (``cell_bounds``)."""
        out = {"beta": self.beta_range} if self.learn_beta else {}
        out.update(self.cell_bounds)
        return out

    def fan_out(self) -> tuple:
        """Synaptic targets of one spike of each hidden layer: the next layer's neurons (the
        classes after the last layer) plus k (conv) or n_l (dense) recurrent targets."""
        nxt = self.hidden[1:] + (self.n_classes,)
        rec = {"none": lambda n: 0, "conv": lambda n: self.kernel_size, "dense": lambda n: n}
        return tuple(int(m + rec[r](n)) for n, m, r in zip(self.hidden, nxt, self.recurrence))

    @property
    def n_layers(self) -> int:
        return len(self.hidden)

    @property
    def np_dtype(self):
        return np.dtype(self.dtype)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "NetworkConfig":
        data = json.loads(text)
        _upgrade(data)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown configuration field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


def _upgrade(data: dict) -> None:
    """Read a configuration written before ``cell_bounds``: its ``<cell>_<parameter>`` bounds
    (e.g. ``adlif_a``) become ``cell_bounds`` and, as those runs started inside their
    bounds, ``cell_init`` (in place)."""
    cell = CELLS.get(data.get("cell", "lif"))
    for p in cell.params if cell is not None else ():
        old = data.pop(f"{cell.name}_{p.name}", None)
        if old is not None:
            data.setdefault("cell_bounds", {}).setdefault(p.name, old)
            data.setdefault("cell_init", {}).setdefault(p.name, old)
