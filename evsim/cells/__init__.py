"""The cell registry: every kind of spiking neuron evsim knows, each declared once, in one module.

A *cell* is the neuron model of a hidden layer: the membrane update that turns the layer's
input current ``I_t = W x_t + b + R_t`` into spikes.  Everything around it (feed-forward
weights, the delayed recurrence, the readout, the delay queues) is shared by all cells.

Every cell has the per-neuron parameters ``beta`` (membrane decay), ``threshold`` and
``gain`` and the state ``v`` (membrane) and ``s`` (last spikes); a cell may add its own
per-neuron parameters (``CellKind.params``) and state variables (``CellKind.state``).

The registry finds the cells itself: every module of this package whose name does not
start with ``_`` and that defines ``KIND`` (a :class:`CellKind`) is a cell; the others
(the CS-GRU kernels :mod:`evsim.cells.csgru`, :mod:`evsim.cells.csgru_reference`, and
:mod:`evsim.cells._common`, the steps cells share) are skipped.  The engines' dispatchers
on the cell code (:func:`evsim.kernels.event.cell_update` and its code check,
:func:`evsim.training.cells.cell_fwd` and :func:`evsim.training.cells.cell_bwd`) are
generated from the registry by :func:`generate_dispatch`; each raises for a code it does
not know.  Numba's cache of every evsim kernel is invalidated when a cell is added or any
evsim source changes (:mod:`evsim._numba_cache`).

What a cell module ``evsim/cells/<name>.py`` holds (the contract; ``lif.py`` is the example)
-------------------------------------------------------------------------------------
* a docstring with its equations, forward and backward;
* ``reference_step(state, current, p, reset, active) -> s_t``, the dense NumPy reference:
  ``state`` a dict of (B, n) float64 arrays (``v``, ``s`` and the cell's extra state,
  replaced in the dict), ``current`` I_t (B, n), ``p`` a dict of the per-neuron float64
  parameters (n,) (``beta``, ``threshold``, ``gain`` and the extras), ``reset`` ``"zero"``
  or ``"subtract"``, ``active`` (B, 1) 1.0 while a sample's steps last, else 0.0.  It
  returns the spikes ``s_t`` (B, n) and leaves ``state["v"]`` = v_t *before* the reset of s_t;
* ``event_update(v, aux, cur, bias, beta, theta, gain, extra, subtract, spk) -> k``
  (``@njit(**EXACT_CALLEE)``, :func:`evsim._numba_config.njit`: a cell module does not
  import numba itself, so that importing the registry stays free of it): the event
  engine's step of one layer: ``v`` (n,) holds ``reset(v_{t-1}, s_{t-1})`` on entry and the reset ``v_t`` on exit; ``aux`` (S, n) the
  extra state rows, ``extra`` (P, n) the extra parameter rows (a cell with neither gets
  stand-ins it must not read); ``cur`` the input without the bias ``b``; it writes the
  indices of the spiking neurons to ``spk`` and returns their number (end it with
  :func:`evsim.cells._common.spikes_and_reset`, or, when its update loop has written the
  flags ``spk[i] = v[i] >= theta[i]`` and counted them, with :func:`~evsim.cells._common.spikes_from_flags`;
  or, as LIF does, pack the flags of 64 neurons into a word in the update loop and append
  its spikes with :func:`~evsim.cells._common.spikes_of_word`, then
  :func:`~evsim.cells._common.reset_spikes`).  It must do the floating-point operations
  of ``reference_step`` in the same order (the event = dense tests compare rasters exactly);
* ``fwd_step`` / ``bwd_step`` (``@njit(**TRAIN_CALLEE)``): one step of the training forward,
  recording what the backward needs, and of its backward pass through time; signatures
  in :mod:`evsim.training.cells`;
* optionally ``event_rests(v, aux, bias, beta, theta, gain, extra, bound) -> bool``
  (``@njit(**EXACT_CALLEE)``): True only when the cell *proves* that none of the layer's
  neurons can spike again while its input stays zero, from the stored state (reset
  applied) and the parameters, with ``event_update``'s own floating-point operations
  (``bound`` (n,) is a workspace of the precision's type); the event engine then runs
  only the readout for the remaining steps of a sample once every layer rests and
  nothing is queued (:mod:`evsim.kernels.event`, "Coming to rest").  Without it
  (``KIND.event_rests`` None, as ``adlif``) every step runs.  ``lif.py`` has the proof;
* ``KIND = CellKind(...)``, at the end: the name (as written in model files and
  configurations), a unique integer ``code``, the display name, the extra per-neuron
  parameters (:class:`Param`: name, the range a file may hold, the bounds training keeps
  and the range it starts from) in the row order of the packed arrays, the extra state
  variables, the training defaults (:class:`TrainingDefaults`) and the four functions above.

The tests pick a new cell up by themselves (``tests/evsim/test_cells.py``, every hypothesis
test of the event engine, ``tests/training/test_train_cells.py``); README "Adding a cell".
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, NamedTuple

import numpy as np

from ..errors import EvsimError, ModelFileError

__all__ = ["CellKind", "Param", "TrainingDefaults", "CELLS", "CELL_CODE", "get_cell", "discover",
           "generate_dispatch", "generate_known", "reset_reference", "RESETS", "RESET_CODE"]

RESETS = ("zero", "subtract")
#: the integer codes the numba kernels use for the resets: a reset's position above
RESET_CODE = {k: i for i, k in enumerate(RESETS)}


class Param(NamedTuple):
    """One extra per-neuron parameter of a cell.

    name: as in the model file (``layer{l}.<name>``) and in training (``layer{l}.<name>``)
    valid: (low, high), inclusive: the values a model file may hold (``+-inf``: any finite)
    train: (low, high): the bounds training keeps a learned value in (clamped after every
        optimiser step); ``NetworkConfig.cell_bounds`` can change them
    init: (low, high): the uniform range training draws initial values from; None: ``train``
        (``NetworkConfig.cell_init`` can change it)
    draw: (low, high) inside ``valid``: where the tests' random models draw values from;
        None: ``train``
    """

    name: str
    valid: tuple
    train: tuple
    init: tuple | None = None
    draw: tuple | None = None


class TrainingDefaults(NamedTuple):
    """A cell's training defaults (each a :class:`evsim.training.config.NetworkConfig` field).

    learn_beta: learn each neuron's decay beta (``NetworkConfig.learn_beta`` = None)
    beta_range: (low, high) bounds of a learned beta (``beta_range`` = None)
    beta_init: True: draw the initial beta uniformly in ``beta_range``; False: beta = 1 - 1/tau
    gain: ``"one"`` or ``"1-beta"`` for every layer (``gain`` = None); None: the network's
        rule (``"one"`` without recurrence, ``"1-beta"`` with)
    """

    learn_beta: bool = False
    beta_range: tuple = (0.0, 0.96)
    beta_init: bool = False
    gain: str | None = None


class CellKind(NamedTuple):
    """One registered cell (see the module docstring for the contract).

    name, code, display: as in files and configurations; the integer the numba kernels
        dispatch on (unique); as ``evsim info`` prints it
    params: the extra per-neuron parameters (beyond beta, threshold, gain), in the row
        order of the packed ``extra`` arrays
    state: names of the extra per-neuron state variables (beyond v and s), in row order
    training: the training defaults
    reference_step, event_update, fwd_step, bwd_step: the cell's steps
    n_carry: rows of the training backward's carry; None: 1 + len(state) (one gradient
        per state variable)
    event_rests: the event engine's rest test (see the module docstring), or None: the
        cell proves nothing and the engine runs every step of its layers
    """

    name: str
    code: int
    display: str
    params: tuple
    state: tuple
    training: TrainingDefaults
    reference_step: Callable
    event_update: Callable
    fwd_step: Callable
    bwd_step: Callable
    n_carry: int | None = None
    event_rests: Callable | None = None

    @property
    def param_names(self) -> tuple:
        return tuple(p.name for p in self.params)

    @property
    def bounds(self) -> dict:
        """name -> (low, high) a model file may hold."""
        return {p.name: p.valid for p in self.params}

    @property
    def carry(self) -> int:
        return 1 + len(self.state) if self.n_carry is None else self.n_carry

    def validate(self, extra: dict, where: str) -> None:
        """Check the extra per-neuron parameters' ranges; ``extra`` maps name -> (n,) array."""
        for p in self.params:
            lo, hi = p.valid
            arr = extra[p.name]
            if arr.size and (arr.min() < lo or arr.max() > hi):
                raise ModelFileError(f"{where}.{p.name}: values outside [{lo:g}, {hi:g}] "
                                     f"(got min {arr.min():g}, max {arr.max():g}) for a {self.name!r} cell")


def reset_reference(v: np.ndarray, s: np.ndarray, theta: np.ndarray, reset: str) -> np.ndarray:
    """reset(v, s): ``v (1 - s)`` ("zero") or ``v - theta s`` ("subtract")."""
    if reset == "zero":
        return v * (1.0 - s)
    if reset == "subtract":
        return v - theta * s
    raise EvsimError(f"unknown reset {reset!r}; expected one of {', '.join(RESETS)}")


def discover(package: str = __name__, path=None) -> dict[str, CellKind]:
    """Every cell of ``package`` (default: this one): the ``KIND`` of each of its modules
    whose name does not start with ``_``, by name, in code order.  Modules without ``KIND``
    are skipped; a ``KIND`` that is not a :class:`CellKind`, or two cells with one name or
    one code, raise :class:`TypeError` / :class:`ValueError` (a programming error)."""
    kinds = []
    for info in sorted(pkgutil.iter_modules(__path__ if path is None else path), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        kind = getattr(importlib.import_module(f"{package}.{info.name}"), "KIND", None)
        if kind is None:
            continue
        if not isinstance(kind, CellKind):
            raise TypeError(f"{package}.{info.name}.KIND is a {type(kind).__name__}, not a CellKind")
        kinds.append(kind)
    for attr in ("name", "code"):
        values = [getattr(k, attr) for k in kinds]
        if len(set(values)) != len(values):
            raise ValueError(f"cells of {package}: two cells share a {attr}: {sorted(values)}")
    return {k.name: k for k in sorted(kinds, key=lambda k: k.code)}


def generate_dispatch(name: str, args: str, call: Callable, options: dict, *, prologue: tuple = (),
                      cells: dict | None = None):
    """A numba function ``name(kind, <args>)`` generated from the registry: for each
    registered cell an ``if kind == <code>: return <call>`` branch, then a ``raise`` for any
    other code.  ``call(cell)`` returns ``(function, argument text)``; ``prologue``: lines
    run first (e.g. ``n = v.shape[0]``); ``options``: numba's (``cache`` is dropped: a
    generated function has no source file; the cached kernels that call it hold its code,
    and :mod:`evsim._numba_cache` invalidates them when the registry changes)."""
    from .._numba_config import dispatcher, import_numba

    numba = import_numba()
    namespace, lines = {}, [f"def {name}(kind, {args}):", *(f"    {line}" for line in prologue)]
    for cell in (CELLS if cells is None else cells).values():
        function, arg_text = call(cell)
        namespace[f"_cell{cell.code}"] = dispatcher(function)
        lines += [f"    if kind == {int(cell.code)}:", f"        return _cell{cell.code}({arg_text})"]
    lines.append('    raise ValueError("unknown cell code (see evsim.cells.CELL_CODE)")')
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<evsim.cells.generate_dispatch: {name}>", "exec"), namespace)  # noqa: S102
    function = namespace[name]
    function.__doc__ = f"Generated by evsim.cells.generate_dispatch:\n\n{source}"
    return numba.njit(**{k: v for k, v in options.items() if k != "cache"})(function)


def generate_known(options: dict, cells: dict | None = None):
    """A numba function ``known_cell(kind) -> bool``: is ``kind`` a registered cell's code."""
    from .._numba_config import import_numba

    numba = import_numba()
    codes = [int(c.code) for c in (CELLS if cells is None else cells).values()]
    source = "def known_cell(kind):\n    return " + " or ".join(f"kind == {c}" for c in codes) + "\n"
    namespace = {}
    exec(compile(source, "<evsim.cells.generate_known>", "exec"), namespace)  # noqa: S102
    return numba.njit(**{k: v for k, v in options.items() if k != "cache"})(namespace["known_cell"])


#: every registered cell, by name, in code order
CELLS: dict[str, CellKind] = discover()
#: name -> integer code of the numba kernels
CELL_CODE = {name: kind.code for name, kind in CELLS.items()}


def get_cell(name: str, error=EvsimError) -> CellKind:
    """The cell called ``name``; an unknown name raises ``error`` listing the known ones."""
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise error(f"unknown cell {name!r}; expected one of {', '.join(CELLS)}") from None
