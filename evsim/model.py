"""The evsim model: a frozen, validated specification and its ``.npz`` file format.

Equations (one step = ``dt`` milliseconds; hidden layer ``l`` with ``n`` neurons)::

    I_t = W x_t + b + R_t                                  (x_t: input counts or spikes below)
    v_t = beta * reset(v_{t-1}, s_{t-1}) + g * I_t
    s_t = H(v_t - theta)            H(0) = 1, i.e. a spike when v_t >= theta
    reset(v, s) = v * (1 - s)       reset "zero"
    reset(v, s) = v - theta * s     reset "subtract"

    recurrent input, a spike of neuron j at step t arrives at step t + 1 + d_j:
    z_t[j] = s_{t - 1 - d_j}[j]
    R_t    = W_rec z_t                                      recurrence "dense"
    R_t[i] = sum_m K[m] z_t[i + m - k//2]   (zero edges)    recurrence "conv"
    R_t    = 0                                              recurrence "none"

    readout (C classes, no threshold, no reset):
    u_t    = beta_o * u_{t-1} + g_o * (W_o s_t + b_o)
    score  = sum_t softmax(u_t)     decision "sum_softmax" (the method)
    score  = sum_t u_t              decision "sum_membrane"
    prediction = argmax(score)

Choices where the published codes differ (see the README):

* The subtractive reset is applied before the decay (``beta * (v - theta s)``), the same
  place the zero reset acts, so both modes share one form.
* ``g`` is stored per neuron, so DelRec (g = 1) and CRSNN (g = 1 - beta) are both exact.
* BatchNorm is folded into ``W`` and ``b`` before a model is written; the file holds
  no BatchNorm.

The ``.npz`` file format (array names, validation, save and load) is in
:mod:`evsim.model_file`; ``load_model`` and ``save_model`` are importable from here too.

"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from .cells import CELLS, RESETS, get_cell
from .errors import ModelFileError

RECURRENCES = ("none", "dense", "conv")
DECISIONS = ("sum_softmax", "sum_membrane")

#: Largest ``metadata.n_steps`` a file may ask for (the cap on a sample's length,
#: ``evsim.data.MAX_STEPS``) and largest ``input_channels``.
MAX_N_STEPS = 1_000_000
MAX_INPUT_CHANNELS = 1_000_000


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def pooled_inputs(input_channels: int, pool: int) -> int:
    """Model inputs when groups of ``pool`` adjacent channels are summed (the last group
    may be partial): ceil(input_channels / pool)."""
    return -(-int(input_channels) // int(pool))


#: the integer codes the numba kernels use for these kinds: a kind's position above
RECURRENCE_CODE = {k: i for i, k in enumerate(RECURRENCES)}
DECISION_CODE = {k: i for i, k in enumerate(DECISIONS)}

__all__ = [
    "pooled_inputs",
    "RESETS",
    "CELLS",
    "RECURRENCES",
    "DECISIONS",
    "HiddenLayer",
    "Readout",
    "ModelMetadata",
    "Model",
    "has_stack_layers",
]


def _as_float_array(name: str, value: Any, shape: tuple[int, ...], error=ModelFileError) -> np.ndarray:
    """Return ``value`` as a read-only float32 array of ``shape``, or raise a clear error."""
    arr = np.asarray(value)
    if arr.dtype == object:
        raise error(f"{name}: object array (pickled data) is not allowed; expected numbers")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
            or arr.dtype == np.bool_):
        raise error(f"{name}: dtype {arr.dtype} is not numeric; expected float32")
    if arr.shape != shape:
        raise error(f"{name}: shape {arr.shape}, expected {shape}")
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise error(f"{name}: {bad} NaN or infinite value(s); all values must be finite")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class HiddenLayer:
    """One spiking hidden layer of ``n`` neurons of one registered cell kind.

    weight: feed-forward weights W, (n, n_in) float32 (BatchNorm already folded in)
    bias: b, (n,) float32
    beta: per-step membrane decay, (n,) float32 in [0, 1]
    threshold: theta, (n,) float32 > 0
    gain: input gain g, (n,) float32
    reset: ``"zero"`` or ``"subtract"``
    cell: the neuron model, a name in :data:`evsim.cells.CELLS` (``"lif"``)
    extra: the cell's extra per-neuron parameters, name -> (n,) float32 (none for LIF;
        see the cell's ``params`` and ``bounds``)
    recurrence: ``"none"``, ``"dense"`` (recurrent is (n, n), row = target, column =
        source) or ``"conv"`` (recurrent is one kernel of odd length k; target i receives
        ``K[m]`` from source ``i + m - k//2``)
    recurrent: see ``recurrence``; ``(0,)`` for ``"none"``
    delays: axonal delay of each presynaptic neuron in steps, (n,) int32 >= 0; a spike of
        neuron j at step t reaches its recurrent targets at step ``t + 1 + delays[j]``.
        Ignored (and must be zero) when ``recurrence == "none"``.
    """

    weight: np.ndarray
    bias: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray
    gain: np.ndarray
    reset: str = "zero"
    recurrence: str = "none"
    recurrent: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    delays: np.ndarray | None = None
    name: str = "layer"
    cell: str = "lif"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.dtype.kind not in "fiub":
            raise ModelFileError(f"{self.name}.weight: dtype {w.dtype} is not numeric; expected float32")
        if w.ndim != 2:
            raise ModelFileError(f"{self.name}.weight: shape {w.shape}, expected (n, n_in)")
        n, n_in = w.shape
        if n < 1 or n_in < 1:
            raise ModelFileError(f"{self.name}.weight: shape {w.shape}; a layer needs at least one neuron and one input")
        set_ = object.__setattr__
        set_(self, "weight", _as_float_array(f"{self.name}.weight", w, (n, n_in)))
        for attr in ("bias", "beta", "threshold", "gain"):
            set_(self, attr, _as_float_array(f"{self.name}.{attr}", getattr(self, attr), (n,)))
        if np.any(self.beta < 0) or np.any(self.beta > 1):
            raise ModelFileError(f"{self.name}.beta: values outside [0, 1] (got min {self.beta.min():g}, max {self.beta.max():g})")
        if np.any(self.threshold <= 0):
            raise ModelFileError(f"{self.name}.threshold: must be > 0 (got min {self.threshold.min():g})")
        if self.reset not in RESETS:
            raise ModelFileError(f"{self.name}: unknown reset {self.reset!r}; expected one of {', '.join(RESETS)}")
        cell = get_cell(self.cell, error=lambda msg: ModelFileError(f"{self.name}: {msg}"))
        extra = dict(self.extra)
        unknown = set(extra) - set(cell.param_names)
        if unknown:
            raise ModelFileError(f"{self.name}: parameter(s) {', '.join(sorted(unknown))} do not belong to a {self.cell!r} cell "
                                 f"(its extra parameters: {', '.join(cell.param_names) or 'none'})")
        for k in cell.param_names:
            if k not in extra:
                raise ModelFileError(f"{self.name}: a {self.cell!r} cell needs the per-neuron parameter {k!r}")
            extra[k] = _as_float_array(f"{self.name}.{k}", extra[k], (n,))
        cell.validate(extra, self.name)
        set_(self, "extra", extra)
        if self.recurrence not in RECURRENCES:
            raise ModelFileError(f"{self.name}: unknown recurrence {self.recurrence!r}; expected one of {', '.join(RECURRENCES)}")
        rec = np.asarray(self.recurrent)
        if self.recurrence == "dense":
            set_(self, "recurrent", _as_float_array(f"{self.name}.recurrent", rec, (n, n)))
        elif self.recurrence == "conv":
            if rec.ndim != 1:
                raise ModelFileError(f"{self.name}.recurrent: conv kernel has shape {rec.shape}, expected (k,) with k odd")
            if rec.shape[0] % 2 == 0:
                raise ModelFileError(f"{self.name}.recurrent: conv kernel of even length {rec.shape[0]}; the length must be odd (1, 3, 5, ...) so it is centred on the neuron")
            set_(self, "recurrent", _as_float_array(f"{self.name}.recurrent", rec, rec.shape))
        else:
            set_(self, "recurrent", _as_float_array(f"{self.name}.recurrent", rec.reshape(-1) if rec.size == 0 else rec, (0,)))
        set_(self, "delays", _as_delays(f"{self.name}.delays", self.delays, n, self.recurrence))

    @property
    def n(self) -> int:
        return self.weight.shape[0]

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def kernel_size(self) -> int:
        return int(self.recurrent.shape[0]) if self.recurrence == "conv" else 0

    @property
    def max_delay(self) -> int:
        return int(self.delays.max()) if self.delays.size else 0

    def n_recurrent_params(self) -> int:
        return int(self.recurrent.size)

    def n_params(self) -> int:
        """Trainable parameters as stored (weights, bias, recurrent, delays if recurrent, the
        cell's extra per-neuron parameters)."""
        n_delays = self.n if self.recurrence != "none" else 0
        n_extra = sum(int(a.size) for a in self.extra.values())
        return int(self.weight.size + self.bias.size + self.recurrent.size + n_delays + n_extra)


def _as_delays(name: str, value: Any, n: int, recurrence: str) -> np.ndarray:
    if value is None:
        value = np.zeros(n, np.int32)
    arr = np.asarray(value)
    if arr.dtype == object:
        raise ModelFileError(f"{name}: object array (pickled data) is not allowed; expected integers")
    if arr.shape != (n,):
        raise ModelFileError(f"{name}: shape {arr.shape}, expected ({n},), one delay per presynaptic neuron")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ModelFileError(f"{name}: dtype {arr.dtype}; expected non-negative integers")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ModelFileError(f"{name}: NaN or infinite delay; delays must be non-negative integers")
        if np.any(arr != np.round(arr)):
            bad = arr[arr != np.round(arr)][0]
            raise ModelFileError(f"{name}: non-integer delay {bad:g}; delays in a model file are whole steps (round trained delays with numpy.rint before export)")
    if np.any(arr < 0):
        raise ModelFileError(f"{name}: negative delay {arr.min()}; delays must be >= 0")
    if arr.size and float(arr.max()) > 1_000_000:   # in float64: 1e6 overflows a float16
        raise ModelFileError(f"{name}: delay {arr.max()} steps is implausibly large (limit 1000000)")
    if recurrence == "none" and np.any(arr != 0):
        raise ModelFileError(f"{name}: delays given for a layer without recurrence; delays act only on recurrent connections")
    out = arr.astype(np.int32)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Readout:
    """Leaky, non-spiking readout of C classes.

    weight: (C, n_last) float32; bias, beta, gain: (C,) float32
    decision: ``"sum_softmax"`` (score = sum_t softmax(u_t), the method) or
        ``"sum_membrane"`` (score = sum_t u_t)
    """

    weight: np.ndarray
    bias: np.ndarray
    beta: np.ndarray
    gain: np.ndarray
    decision: str = "sum_softmax"

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.ndim != 2 or w.shape[0] < 1:
            raise ModelFileError(f"readout.weight: shape {w.shape}, expected (n_classes, n_last_hidden)")
        c, n = w.shape
        set_ = object.__setattr__
        set_(self, "weight", _as_float_array("readout.weight", w, (c, n)))
        for attr in ("bias", "beta", "gain"):
            set_(self, attr, _as_float_array(f"readout.{attr}", getattr(self, attr), (c,)))
        if np.any(self.beta < 0) or np.any(self.beta > 1):
            raise ModelFileError("readout.beta: values outside [0, 1]")
        if self.decision not in DECISIONS:
            raise ModelFileError(f"readout: unknown decision {self.decision!r}; expected one of {', '.join(DECISIONS)}")

    @property
    def n_classes(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True)
class ModelMetadata:
    """What a model needs to know about its input, and where it came from.

    dt_ms: time step in milliseconds (> 0)
    input_channels: channels in the raw input files (SHD: 700)
    pool: adjacent raw channels summed into one model input (SHD recipe: 5);
        the model sees ``ceil(input_channels / pool)`` inputs
    n_steps: if set, every sample is binned to exactly this many steps (later spikes are
        dropped, shorter samples padded with silence); if None, a sample runs for
        ``floor(last_spike_time / dt) + 1`` steps
    class_names: one name per class
    provenance: free-form JSON object (training recipe, data, accuracy, date)
    """

    dt_ms: float = 10.0
    input_channels: int = 700
    pool: int = 5
    n_steps: int | None = None
    class_names: tuple[str, ...] = ()
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        # a bool is not a number here, although Python makes it an int
        if not (_is_real(self.dt_ms) and np.isfinite(self.dt_ms) and self.dt_ms > 0):
            raise ModelFileError(f"metadata.dt_ms: {self.dt_ms!r}; expected a positive number of milliseconds")
        if not (_is_int(self.input_channels) and 1 <= self.input_channels <= MAX_INPUT_CHANNELS):
            raise ModelFileError(f"metadata.input_channels: {self.input_channels!r}; expected an integer in [1, {MAX_INPUT_CHANNELS}]")
        if not (_is_int(self.pool) and 1 <= self.pool <= MAX_INPUT_CHANNELS):
            raise ModelFileError(f"metadata.pool: {self.pool!r}; expected an integer in [1, {MAX_INPUT_CHANNELS}]")
        if self.n_steps is not None and not (_is_int(self.n_steps) and 1 <= self.n_steps <= MAX_N_STEPS):
            raise ModelFileError(f"metadata.n_steps: {self.n_steps!r}; expected null or an integer in [1, {MAX_N_STEPS}] "
                                 "(steps of dt per sample)")
        for name in ("input_channels", "pool", "n_steps"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))
        if isinstance(self.class_names, (str, bytes)) or not all(isinstance(c, str) for c in self.class_names):
            raise ModelFileError(f"metadata.class_names: {self.class_names!r}; expected a list of strings")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if not isinstance(self.provenance, dict):
            raise ModelFileError("metadata.provenance: expected a JSON object")

    @property
    def n_inputs(self) -> int:
        return pooled_inputs(self.input_channels, self.pool)


def has_stack_layers(model) -> bool:
    """True when a layer of ``model`` is not a neuron-cell layer (a CS-GRU layer, run
    segment by segment by :mod:`evsim.stack`, float64 only)."""
    return any(not isinstance(layer, HiddenLayer) for layer in getattr(model, "layers", ()))


def _check_stack_layer(layer, i: int, n_prev: int, metadata) -> None:
    """A model layer that is not a :class:`HiddenLayer` must be a CS-GRU layer whose
    Cin x P inputs match what feeds it."""
    from .csgru_layer import check_csgru_input, is_csgru

    if not is_csgru(layer):
        raise ModelFileError(f"layer{i}: {type(layer).__name__} is not a model layer; expected a HiddenLayer or a CSGRULayer")
    what = (f"{metadata.n_inputs} model inputs ({metadata.input_channels} channels pooled by {metadata.pool})"
            if i == 0 else f"{n_prev} units of layer{i - 1}")
    check_csgru_input(layer, n_prev, what)


@dataclass(frozen=True, eq=False)
class Model:
    """A complete evsim network: hidden layers, readout and metadata.

    Construction validates everything (shapes chain from input to readout, values are
    finite, delays are whole steps); an invalid model raises :class:`ModelFileError`.
    Use :func:`load_model` / :meth:`save` for files.
    """

    layers: tuple[HiddenLayer, ...]
    readout: Readout
    metadata: ModelMetadata = field(default_factory=ModelMetadata)

    def __post_init__(self):
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise ModelFileError("model has no hidden layers; expected at least one")
        n_prev = self.metadata.n_inputs
        for i, layer in enumerate(layers):
            if not isinstance(layer, HiddenLayer):   # a CS-GRU layer (evsim.csgru_layer), or a mistake
                _check_stack_layer(layer, i, n_prev, self.metadata)
            elif layer.n_in != n_prev:
                what = (f"{self.metadata.n_inputs} model inputs ({self.metadata.input_channels} channels pooled by {self.metadata.pool})"
                        if i == 0 else f"{n_prev} neurons of layer{i - 1}")
                raise ModelFileError(f"layer{i}.weight: {layer.n_in} inputs, but it is fed by {what}")
            n_prev = layer.n
        if self.readout.weight.shape[1] != n_prev:
            raise ModelFileError(f"readout.weight: {self.readout.weight.shape[1]} inputs, but the last hidden layer has {n_prev} neurons")
        names = self.metadata.class_names
        if names and len(names) != self.readout.n_classes:
            raise ModelFileError(f"metadata.class_names: {len(names)} names for {self.readout.n_classes} readout classes")
        if not names:
            object.__setattr__(self, "metadata", replace(self.metadata, class_names=tuple(str(c) for c in range(self.readout.n_classes))))

    # -- derived facts -----------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return self.metadata.n_inputs

    @property
    def n_classes(self) -> int:
        return self.readout.n_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.metadata.class_names

    @property
    def max_delay(self) -> int:
        return max(layer.max_delay for layer in self.layers)

    def n_params(self) -> int:
        return sum(layer.n_params() for layer in self.layers) + int(self.readout.weight.size + self.readout.bias.size)

    def n_recurrent_params(self) -> int:
        return sum(layer.n_recurrent_params() for layer in self.layers)

    # -- files (the format: evsim.model_file) -------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the ``.npz`` file (see :mod:`evsim.model_file`)."""
        from .model_file import model_to_arrays

        return model_to_arrays(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to ``path`` atomically (a temporary file, then a rename), so an
        interrupted save never leaves a half-written model behind."""
        from .model_file import save_model

        save_model(self, path)


#: the file-format API, defined in evsim.model_file (which imports this module) and
#: importable from here as before: ``from evsim.model import load_model``
_FILE_API = ("load_model", "save_model", "SCHEMA_VERSION", "READABLE_SCHEMAS", "MAX_MODEL_BYTES")


def __getattr__(name):
    if name in _FILE_API:
        from . import model_file

        return getattr(model_file, name)
    raise AttributeError(f"module 'evsim.model' has no attribute {name!r}")


def build_model(
    weights: Sequence[np.ndarray],
    readout_weight: np.ndarray,
    *,
    recurrence: str | Sequence[str] = "none",
    recurrent: Sequence[np.ndarray] | None = None,
    delays: Sequence[np.ndarray] | None = None,
    beta: float | Sequence[Any] = 0.9,
    threshold: float = 1.0,
    gain: float | str = 1.0,
    reset: str = "zero",
    biases: Sequence[np.ndarray] | None = None,
    readout_beta: float = 0.9,
    readout_gain: float = 1.0,
    metadata: ModelMetadata | None = None,
) -> Model:
    """Convenience constructor: broadcast scalars to per-neuron arrays.

    ``gain="1-beta"`` sets g = 1 - beta per neuron (the CRSNN convention).
    """
    n_layers = len(weights)
    recs = [recurrence] * n_layers if isinstance(recurrence, str) else list(recurrence)
    layers = []
    for i, w in enumerate(weights):
        n = np.asarray(w).shape[0]
        b_i = np.broadcast_to(np.asarray(beta[i] if not np.isscalar(beta) else beta, np.float32), (n,))
        g_i = (1.0 - b_i) if gain == "1-beta" else np.full(n, gain, np.float32)
        layers.append(HiddenLayer(
            weight=w,
            bias=np.zeros(n, np.float32) if biases is None else biases[i],
            beta=b_i, threshold=np.full(n, threshold, np.float32), gain=g_i,
            reset=reset, recurrence=recs[i],
            recurrent=np.zeros(0, np.float32) if recurrent is None or recs[i] == "none" else recurrent[i],
            delays=None if delays is None or recs[i] == "none" else delays[i],
            name=f"layer{i}",
        ))
    c = np.asarray(readout_weight).shape[0]
    meta = metadata or ModelMetadata(input_channels=np.asarray(weights[0]).shape[1], pool=1)
    readout = Readout(weight=readout_weight, bias=np.zeros(c, np.float32),
                      beta=np.full(c, readout_beta, np.float32), gain=np.full(c, readout_gain, np.float32))
    return Model(layers=tuple(layers), readout=readout, metadata=meta)
