"""A CS-GRU layer as a layer of a model (:class:`CSGRULayer`), beside the neuron-cell
layers (:class:`evsim.model.HiddenLayer`): its validated arrays and its model-file entry.

The cell's equations are in :mod:`evsim.cells.csgru`.  Inside a model the layer's
C x P units are flattened channel-major, unit ``j = c * P + p``; its input, of
``Cin * P`` values per step, is read the same way as (Cin, P).  So a CS-GRU layer can
follow the model input (``Cin * P`` inputs: audio is 1 channel x the pooled frequency
channels), a neuron-cell layer of ``Cin * P`` neurons or another CS-GRU layer with Cin
channels and the same P; a neuron-cell layer or the readout can follow it (they see
``C * P`` inputs).  The engines run such a stack layer by layer (:mod:`evsim.stack`).

Model file (schema 2): the metadata's ``layers[l]`` entry is
``{"kind": "csgru", "gate", "detach_reset", "theta", "channels", "in_channels",
"positions"}`` (an entry without ``kind`` is a neuron-cell layer), and the arrays are
``layer{l}.k_rx ... layer{l}.k_zh`` (C, C_src, k) float32, ``layer{l}.b_r, .b_i, .b_z``
(C,) float32 and ``layer{l}.delays`` (C, P) int32 >= 0 (whole steps, as inference runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells.csgru import (
    BIAS_NAMES,
    GATE_CURRENT,
    GATES,
    KERNEL_NAMES,
    CSGRUParams,
    make_params,
)
from .errors import ModelFileError
from .model import _as_float_array, _is_int, _is_real

__all__ = [
    "CSGRU_ARRAYS",
    "RECURRENT_KERNELS",
    "CSGRULayer",
    "check_csgru_input",
    "csgru_from_file",
    "csgru_metadata",
    "is_csgru",
]

#: the layer's arrays in the model file (``layer{l}.<name>``)
CSGRU_ARRAYS = KERNEL_NAMES + BIAS_NAMES + ("delays",)
#: the kernels that act on the (delayed) recurrent spikes
RECURRENT_KERNELS = ("k_rh", "k_ih", "k_zh")
#: largest delay a file may hold, as for neuron-cell layers
MAX_DELAY = 1_000_000


@dataclass(frozen=True, eq=False)
class CSGRULayer:
    """One CS-GRU layer of C channels x P positions (equations: :mod:`evsim.cells.csgru`).

    k_rx, k_ix: (C, Cin, k) float32, input -> r, i
    k_zin: (C, C, k) for gate ``"current"`` (K_zi, from i_t) or (C, Cin, k) for ``"input"`` (K_zx)
    k_rh, k_ih, k_zh: (C, C, k) float32, delayed spikes -> r, i, z
    b_r, b_i, b_z: (C,) float32
    delays: (C, P) int32 >= 0, axonal delay of each unit, in steps
    gate: ``"current"`` (CS-GRU) or ``"input"`` (SpikGRU-style)
    detach_reset: how it was trained (the reset's gradient dropped); inference ignores it
    theta: threshold (> 0)
    Each kernel has its own odd length k.
    """

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
    gate: str = "current"
    detach_reset: bool = False
    theta: float = 1.0
    name: str = "layer"

    #: what the code that lists layers shows and dispatches on (not a registered neuron cell)
    cell = "csgru"
    recurrence = "csgru"

    def __post_init__(self):
        set_ = object.__setattr__
        if self.gate not in GATES:
            raise ModelFileError(f"{self.name}: unknown CS-GRU gate {self.gate!r}; expected one of {', '.join(GATES)}")
        if not isinstance(self.detach_reset, (bool, np.bool_)):
            raise ModelFileError(f"{self.name}.detach_reset: {self.detach_reset!r}; expected true or false")
        if not (_is_real(self.theta) and np.isfinite(self.theta) and self.theta > 0):
            raise ModelFileError(f"{self.name}.theta: {self.theta!r}; expected a finite threshold > 0")
        set_(self, "theta", float(self.theta))
        set_(self, "detach_reset", bool(self.detach_reset))
        rx = np.asarray(self.k_rx)
        if rx.ndim != 3 or min(rx.shape) < 1:
            raise ModelFileError(f"{self.name}.k_rx: shape {rx.shape}; expected (C, Cin, k) with k odd")
        c, c_in = rx.shape[:2]
        z_src = c if GATES[self.gate] == GATE_CURRENT else c_in
        sources = {"k_rx": c_in, "k_ix": c_in, "k_zin": z_src, "k_rh": c, "k_ih": c, "k_zh": c}
        for name, c_src in sources.items():
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 3 or arr.shape[:2] != (c, c_src) or arr.shape[2] % 2 == 0:
                raise ModelFileError(f"{self.name}.{name}: shape {arr.shape}; expected ({c}, {c_src}, k) with k odd "
                                     f"(gate {self.gate!r})")
            set_(self, name, _as_float_array(f"{self.name}.{name}", arr, arr.shape))
        for name in BIAS_NAMES:
            set_(self, name, _as_float_array(f"{self.name}.{name}", getattr(self, name), (c,)))
        set_(self, "delays", _as_unit_delays(f"{self.name}.delays", self.delays, c))

    # -- shape -------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        return self.k_rx.shape[0]

    @property
    def in_channels(self) -> int:
        return self.k_rx.shape[1]

    @property
    def positions(self) -> int:
        return self.delays.shape[1]

    @property
    def n(self) -> int:
        """Units (outputs per step), C x P."""
        return self.channels * self.positions

    @property
    def n_in(self) -> int:
        """Inputs per step, Cin x P."""
        return self.in_channels * self.positions

    @property
    def kernel_size(self) -> int:
        """The longest kernel's length."""
        return max(int(getattr(self, name).shape[2]) for name in KERNEL_NAMES)

    @property
    def max_delay(self) -> int:
        return int(self.delays.max())

    # -- parameters --------------------------------------------------------------------
    def n_recurrent_params(self) -> int:
        return sum(int(getattr(self, name).size) for name in RECURRENT_KERNELS)

    def n_params(self) -> int:
        """Kernels, biases and one delay per unit."""
        return sum(int(getattr(self, name).size) for name in CSGRU_ARRAYS)

    def params(self) -> CSGRUParams:
        """The float64 :class:`~evsim.cells.csgru.CSGRUParams` the kernels run (integer delays)."""
        return make_params(*(getattr(self, n) for n in KERNEL_NAMES + BIAS_NAMES), self.delays,
                           gate=self.gate, theta=self.theta, integer_delays=True)

    @classmethod
    def from_params(cls, params: CSGRUParams, *, detach_reset: bool = False, name: str = "layer") -> CSGRULayer:
        """The layer of ``params`` (delays must be whole steps; round trained ones first)."""
        from .cells.csgru import GATE_NAMES

        return cls(*(getattr(params, n) for n in KERNEL_NAMES + BIAS_NAMES), delays=params.delays,
                   gate=GATE_NAMES[params.gate], detach_reset=detach_reset, theta=params.theta, name=name)


def _as_unit_delays(name: str, value, c: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise ModelFileError(f"{name}: dtype {arr.dtype}; expected non-negative integers")
    if arr.ndim != 2 or arr.shape[0] != c or arr.shape[1] < 1:
        raise ModelFileError(f"{name}: shape {arr.shape}; expected ({c}, P), one delay per unit (channel, position)")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ModelFileError(f"{name}: NaN or infinite delay; delays must be non-negative integers")
        if np.any(arr != np.round(arr)):
            raise ModelFileError(f"{name}: non-integer delay; delays in a model file are whole steps (numpy.rint)")
    if np.any(arr < 0):
        raise ModelFileError(f"{name}: negative delay {arr.min()}; delays must be >= 0")
    if float(arr.max()) > MAX_DELAY:
        raise ModelFileError(f"{name}: delay {arr.max()} steps is implausibly large (limit {MAX_DELAY})")
    out = arr.astype(np.int32)
    out.setflags(write=False)
    return out


def csgru_metadata(layer: CSGRULayer) -> dict:
    """The layer's entry in the file's ``metadata.layers``."""
    return {"kind": "csgru", "gate": layer.gate, "detach_reset": layer.detach_reset, "theta": layer.theta,
            "channels": layer.channels, "in_channels": layer.in_channels, "positions": layer.positions}


def csgru_from_file(entry: dict, arrays: dict, index: int, source: str) -> CSGRULayer:
    """Build layer ``index`` from its metadata ``entry`` and the file's ``arrays``; the
    shapes the entry states must match the arrays'."""
    where = f"{source}: metadata.layers[{index}]"
    for key in ("channels", "in_channels", "positions"):
        if not (_is_int(entry.get(key)) and entry[key] >= 1):
            raise ModelFileError(f"{where}.{key}: {entry.get(key)!r}; expected a positive integer")
    for key in ("gate",):
        if not isinstance(entry.get(key), str):
            raise ModelFileError(f"{where}.{key}: {entry.get(key)!r}; expected one of {', '.join(GATES)}")
    unknown = set(entry) - {"kind", "gate", "detach_reset", "theta", "channels", "in_channels", "positions"}
    if unknown:
        raise ModelFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} for a csgru layer")
    missing = [n for n in CSGRU_ARRAYS if f"layer{index}.{n}" not in arrays]
    if missing:
        raise ModelFileError(f"{source}: missing array {f'layer{index}.{missing[0]}'!r} of csgru layer{index}")
    layer = CSGRULayer(**{n: arrays[f"layer{index}.{n}"] for n in CSGRU_ARRAYS}, gate=entry["gate"],
                       detach_reset=entry.get("detach_reset", False), theta=entry.get("theta", 1.0),
                       name=f"layer{index}")
    got = {"channels": layer.channels, "in_channels": layer.in_channels, "positions": layer.positions}
    for key, value in got.items():
        if entry[key] != value:
            raise ModelFileError(f"{where}.{key} = {entry[key]}, but the arrays hold {value} ({key.replace('_', ' ')})")
    return layer


def check_csgru_input(layer: CSGRULayer, n_prev: int, what: str) -> None:
    """Raise unless ``n_prev`` values per step (``what`` feeds them) fit Cin x P."""
    if n_prev != layer.n_in:
        raise ModelFileError(f"{layer.name}: a csgru layer of {layer.in_channels} input channel(s) x {layer.positions} "
                             f"positions takes {layer.n_in} inputs per step, but it is fed by {what}; "
                             "a layer or input before it must give Cin x P values")


def is_csgru(layer) -> bool:
    return isinstance(layer, CSGRULayer)

