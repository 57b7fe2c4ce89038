"""Weight averaging: an exponential moving average (EMA) of a network's arrays over the
optimiser steps, which the trainer validates and exports in place of the last weights.

After the n-th update (n = 0, 1, ...), for every parameter and buffer array p of the
network (BatchNorm running statistics included, as their average is what the averaged
weights see)::

    d_n = min(decay, (1 + n) / (10 + n))        warm-up: early averages forget the
                                                random initialisation quickly
    a  <- d_n a + (1 - d_n) p                   a starts as p before the first step

``decay`` 0.999 averages over roughly the last 1000 steps (about 3 epochs of the
augmented digits).  Constant arrays (fixed neuron constants) stay what they are.  Delays
are averaged as real numbers; the averaged network rounds them, as every export does.
"""

from __future__ import annotations

import numpy as np

from evsim.errors import EvsimError

__all__ = ["WeightAverage"]


class WeightAverage:
    """The running average of the arrays of ``net.state_dict()`` (all but ``config``)."""

    def __init__(self, state: dict, decay: float):
        if not (0.0 < float(decay) < 1.0):
            raise EvsimError(f"weight average decay: {decay!r}; expected a number in (0, 1)")
        self.decay = float(decay)
        self.count = 0
        self.average = {k: np.array(v, copy=True) for k, v in state.items() if k != "config"}

    def rate(self) -> float:
        """d_n of the next update."""
        return min(self.decay, (1.0 + self.count) / (10.0 + self.count))

    def update(self, state: dict) -> None:
        """One step: fold the arrays of ``state`` (a ``state_dict()``) into the average."""
        d = self.rate()
        for k, a in self.average.items():
            a *= d
            a += (1.0 - d) * state[k]
        self.count += 1

    def network_state(self, state: dict) -> dict:
        """``state`` (a ``state_dict()``: its configuration) with the averaged arrays."""
        return {**state, **{k: a.copy() for k, a in self.average.items()}}

    def state_dict(self) -> dict:
        return {"count": np.array(self.count), **{f"avg.{k}": a for k, a in self.average.items()}}

    def load_state_dict(self, saved: dict) -> None:
        missing = sorted(k for k in self.average if f"avg.{k}" not in saved)
        if "count" not in saved or missing:
            raise EvsimError(f"the checkpoint's weight average lacks {', '.join(missing) or 'count'}")
        self.count = int(saved["count"])
        for k, a in self.average.items():
            a[...] = saved[f"avg.{k}"]
