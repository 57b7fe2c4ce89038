"""The cell registry: every kind of spiking neuron evsim knows, declared once.

A *cell* is the neuron model of a hidden layer: the membrane update that turns the layer's
input current ``I_t = W x_t + b + R_t`` into spikes.  Everything around it (feed-forward
weights, the delayed recurrence, the readout, the delay queues) is shared by all cells.

The CS-GRU layer (:mod:`evsim.cells.csgru`, :mod:`evsim.cells.csgru_reference`) lives in
this package too, as standalone kernels not yet registered here (its wiring is pending).

Every cell has the per-neuron parameters ``beta`` (membrane decay), ``threshold`` and
``gain`` and the state ``v`` (membrane) and ``s`` (last spikes); a cell may add its own
per-neuron parameters (``CellKind.params``) and state variables (``CellKind.state``).

What a cell module must provide (the contract; ``evsim/cells/lif.py`` is the example)
-----------------------------------------------------------------------------------
In ``evsim/cells/<name>.py``:

* ``KIND = CellKind(...)``: its name (as written in model files and configurations), a
  unique integer ``code`` for the numba kernels, the names and valid ranges of its extra
  per-neuron parameters (in the row order of the packed arrays), its extra state
  variables, its NumPy ``reference_step`` (signature below) and a docstring with its
  equations;
* ``event_update(v, aux, cur, bias, beta, theta, gain, extra, subtract, spk)``: the event
  engine's membrane update of one layer for one step (``@numba.njit``): ``v`` (n,) holds
  ``reset(v_{t-1}, s_{t-1})`` on entry and the reset ``v_t`` on exit; ``aux`` (S, n) the
  extra state rows; ``extra`` (P, n) the extra parameter rows; it writes the indices of the
  spiking neurons to ``spk`` and returns their number.  It must do the floating-point
  operations of ``reference_step`` in the same order (the event = dense tests compare
  rasters exactly).

In ``training/cells/<name>.py`` (training imports evsim, never the reverse):

* ``fwd_step`` / ``bwd_step``: one step of the training forward (recording what the
  backward needs) and of its backward pass through time, see :mod:`evsim.training.cells`.

Then one branch per engine dispatcher, each of which ends in an error for a code it does
not know: :func:`evsim.kernels.event.cell_update`, :func:`evsim.training.cells.cell_fwd` and
:func:`evsim.training.cells.cell_bwd`, and the entry in :data:`CELLS` below.  The tests in
``tests/evsim/test_cells.py`` run every registered cell through every engine.

``reference_step(state, current, p, reset, active) -> s_t``: ``state`` a dict of (B, n)
float64 arrays (``v``, ``s`` and the cell's extra state, updated in place of the dict
entries), ``current`` I_t (B, n), ``p`` a dict of the per-neuron float64 parameters (n,)
(``beta``, ``threshold``, ``gain`` and the extras), ``reset`` ``"zero"`` or
``"subtract"``, ``active`` (B, 1) 1.0 while a sample's steps last, else 0.0.  It returns
the spikes ``s_t`` (B, n) and leaves ``state["v"]`` = v_t *before* the reset of s_t.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..errors import EvsimError, ModelFileError

__all__ = ["CellKind", "CELLS", "CELL_CODE", "get_cell", "reset_reference", "RESETS", "RESET_CODE"]

RESETS = ("zero", "subtract")
#: the integer codes the numba kernels use for the resets: a reset's position above
RESET_CODE = {k: i for i, k in enumerate(RESETS)}


class CellKind(NamedTuple):
    """One registered cell (see the module docstring for the contract).

    name: as written in model files and configurations
    code: the integer the numba kernels dispatch on (unique)
    params: names of the extra per-neuron parameters (beyond beta, threshold, gain), in
        the row order of the packed ``extra`` arrays
    bounds: (low, high) valid range of each extra parameter, inclusive
    state: names of the extra per-neuron state variables (beyond v and s), in row order
    reference_step: the NumPy step of :mod:`evsim.reference` (signature above)
    """

    name: str
    code: int
    params: tuple
    bounds: dict
    state: tuple
    reference_step: Callable

    def validate(self, extra: dict, where: str) -> None:
        """Check the extra per-neuron parameters' ranges; ``extra`` maps name -> (n,) array."""
        for name in self.params:
            lo, hi = self.bounds[name]
            arr = extra[name]
            if arr.size and (arr.min() < lo or arr.max() > hi):
                raise ModelFileError(f"{where}.{name}: values outside [{lo:g}, {hi:g}] "
                                     f"(got min {arr.min():g}, max {arr.max():g}) for a {self.name!r} cell")


def reset_reference(v: np.ndarray, s: np.ndarray, theta: np.ndarray, reset: str) -> np.ndarray:
    """reset(v, s): ``v (1 - s)`` ("zero") or ``v - theta s`` ("subtract")."""
    if reset == "zero":
        return v * (1.0 - s)
    if reset == "subtract":
        return v - theta * s
    raise EvsimError(f"unknown reset {reset!r}; expected one of {', '.join(RESETS)}")


def _registry() -> dict[str, CellKind]:
    from . import adlif, lif

    kinds = (lif.KIND, adlif.KIND)
    codes = [k.code for k in kinds]
    assert len(set(codes)) == len(codes), "cell codes must be unique"
    return {k.name: k for k in kinds}


#: every registered cell, by name
CELLS: dict[str, CellKind] = _registry()
#: name -> integer code of the numba kernels
CELL_CODE = {name: kind.code for name, kind in CELLS.items()}


def get_cell(name: str, error=EvsimError) -> CellKind:
    """The cell called ``name``; an unknown name raises ``error`` listing the known ones."""
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise error(f"unknown cell {name!r}; expected one of {', '.join(CELLS)}") from None
