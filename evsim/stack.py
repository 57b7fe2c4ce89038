"""Models with CS-GRU layers, run layer by layer in both engines, whole samples or streams.

A model's hidden layers are a stack in which each layer is a neuron-cell layer
(:class:`evsim.model.HiddenLayer`: LIF, AdLIF, ... with no, dense or conv recurrence) or a
CS-GRU layer (:class:`evsim.csgru_layer.CSGRULayer`).  A model of neuron-cell layers only
never comes here: both engines run it on their own code path, as before.  A model with a
CS-GRU layer is cut into *segments*: each run of consecutive neuron-cell layers, and each
CS-GRU layer.  Feed-forward connections between layers are causal and without delay, so
running a whole sample segment by segment, each passing its whole spike raster (B, T, n)
to the next, is exactly the step-by-step network:

* a neuron-cell segment runs through the engine's own kernels (event: :mod:`evsim.event`
  on a sub-model of those layers; dense: :mod:`evsim.reference`); its input is the model
  input or the raster of the layer below (spikes as counts of 1);
* a CS-GRU layer runs through its kernel (event: :mod:`evsim.kernels.csgru_event`; dense:
  :func:`evsim.cells.csgru_reference.run_reference`), its input read as (Cin, P);
* the readout (the leaky integrator of :mod:`evsim.model`) reads the last layer's raster.

Which stacks are allowed: any order, as long as each layer's inputs match what feeds it
(a CS-GRU layer takes Cin x P values, flattened channel-major, ``j = c * P + p``, from
the model input, a neuron-cell layer of Cin x P neurons or a CS-GRU layer of Cin
channels and the same P); :class:`evsim.model.Model` refuses the rest, naming the layer.

A stream (:class:`StackStream`, what :class:`evsim.event.EventStream` becomes for such a
model) runs each chunk of steps segment by segment, each segment keeping its state
between chunks, so its outputs equal the whole-sample run for any chunking.
"""

from __future__ import annotations

import weakref

import numpy as np

from .csgru_layer import CSGRULayer
from .engine import SimResult, check_inputs
from .event import EventStream
from .model import DECISION_CODE, HiddenLayer, Model, ModelMetadata, Readout

__all__ = ["StackStream", "segments", "simulate_event", "simulate_reference"]


def segments(model: Model) -> list:
    """The stack cut into runs: ``("cells", (first, last + 1), sub_model)`` for consecutive
    neuron-cell layers and ``("csgru", (l, l + 1), layer)`` for a CS-GRU layer.  A cell
    run's sub-model has those layers and a one-class zero readout (its own readout is not
    used; only its rasters are)."""
    cached = _SEGMENTS.get(model)
    if cached is not None:
        return cached
    out, run = [], []
    for l, layer in enumerate(model.layers):
        if isinstance(layer, HiddenLayer):
            run.append(l)
            continue
        if run:
            out.append(_cell_segment(model, run))
            run = []
        if not isinstance(layer, CSGRULayer):
            raise TypeError(f"layer{l}: unknown layer type {type(layer).__name__}")
        out.append(("csgru", (l, l + 1), layer))
    if run:
        out.append(_cell_segment(model, run))
    _SEGMENTS[model] = out
    return out


_SEGMENTS: weakref.WeakKeyDictionary[Model, list] = weakref.WeakKeyDictionary()


def _cell_segment(model: Model, run: list):
    layers = tuple(model.layers[l] for l in run)
    n_in = layers[0].n_in
    silent = Readout(weight=np.zeros((1, layers[-1].n), np.float32), bias=np.zeros(1, np.float32),
                     beta=np.zeros(1, np.float32), gain=np.zeros(1, np.float32))
    meta = ModelMetadata(dt_ms=model.metadata.dt_ms, input_channels=n_in, pool=1, n_steps=None)
    return ("cells", (run[0], run[-1] + 1), Model(layers=layers, readout=silent, metadata=meta))


def _csgru_in(layer: CSGRULayer, x: np.ndarray) -> np.ndarray:
    """(T, Cin * P) channel-major -> the event kernel's (T, P, Cin), C-ordered."""
    return np.ascontiguousarray(x.reshape(x.shape[0], layer.in_channels, layer.positions).transpose(0, 2, 1))


# -- the event engine ---------------------------------------------------------------------

def _csgru_weights(layer: CSGRULayer):
    """The layer packed for the event kernel (cached per layer object)."""
    packed = _PACKED.get(layer)
    if packed is None:
        from .cells.csgru import pack_event

        packed = _PACKED[layer] = pack_event(layer.params())
    return packed


_PACKED: weakref.WeakKeyDictionary[CSGRULayer, object] = weakref.WeakKeyDictionary()


def _readout_arrays(ro: Readout):
    return (np.ascontiguousarray(ro.weight.T, np.float32).ravel(), np.asarray(ro.bias, np.float64),
            np.asarray(ro.beta, np.float64), np.asarray(ro.gain, np.float64), DECISION_CODE[ro.decision])


def simulate_event(model: Model, x, lengths=None, record_spikes: bool = False) -> SimResult:
    """:func:`evsim.event.simulate` for a model with CS-GRU layers (same contract and
    ``stats``: ``synaptic_events`` (B,) counts the weights each segment's events add, as
    each kernel counts them; ``spikes_per_layer`` (B, L))."""
    from . import event
    from .cells.csgru import new_state
    from .kernels.csgru_event import csgru_run
    from .kernels.stack import readout_run

    x, lengths = check_inputs(model, x, lengths)
    b, n_t, _ = x.shape
    n_layers = len(model.layers)
    syn = np.zeros(b, np.int64)
    spikes = np.zeros((b, n_layers), np.int64)
    rasters = []
    layer_in = x
    for kind, (lo, hi), part in segments(model):
        if kind == "cells":
            res = event.simulate(part, layer_in, lengths, record_spikes=True)
            per_layer = res.stats["spikes_per_layer"]
            syn += res.stats["synaptic_events"] - per_layer[:, -1]   # less the silent readout's events
            spikes[:, lo:hi] = per_layer
            rasters.extend(res.spikes)
            layer_in = np.asarray(res.spikes[-1], np.float64)
            continue
        weights = _csgru_weights(part)
        out = np.zeros((b, n_t, part.n))
        for k in range(b):
            n = int(lengths[k])
            state = new_state(weights)
            s, v, i = (np.zeros((n, part.positions, part.channels)) for _ in range(3))
            csgru_run(weights, state, _csgru_in(part, layer_in[k, :n]), s, v, i)
            out[k, :n] = s.transpose(0, 2, 1).reshape(n, part.n)
            spikes[k, lo] = state.counters[1]
            syn[k] += state.counters[2]
        rasters.append(out.astype(np.uint8))
        layer_in = out
    readout = np.zeros((b, n_t, model.n_classes))
    scores = np.zeros((b, model.n_classes))
    ro = _readout_arrays(model.readout)
    for k in range(b):
        c = model.n_classes
        syn[k] += readout_run(*ro, np.ascontiguousarray(layer_in[k]), int(lengths[k]), np.zeros(c), np.zeros(c),
                              scores[k], np.zeros(layer_in.shape[2], np.int64), readout[k])
    return SimResult(readout=readout, scores=scores, predictions=np.argmax(scores, axis=1),
                     spikes=rasters if record_spikes else None,
                     stats={"synaptic_events": syn, "spikes_per_layer": spikes})


# -- the dense reference ------------------------------------------------------------------

def simulate_reference(model: Model, x, lengths=None, record_spikes: bool = False) -> SimResult:
    """:func:`evsim.reference.simulate` for a model with CS-GRU layers: neuron-cell
    segments through the reference, CS-GRU layers through
    :func:`evsim.cells.csgru_reference.run_reference` (equations (1)-(5) literally), each
    sample over its own steps; the readout as the reference computes it."""
    from . import reference
    from .cells.csgru_reference import run_reference

    x, lengths = check_inputs(model, x, lengths)
    b, n_t, _ = x.shape
    active = (np.arange(n_t)[None, :] < lengths[:, None]).astype(np.float64)
    rasters = []
    layer_in = x
    for kind, _, part in segments(model):
        if kind == "cells":
            res = reference.simulate(part, layer_in, lengths, record_spikes=True)
            rasters.extend(res.spikes)
            layer_in = np.asarray(res.spikes[-1], np.float64)
            continue
        params = part.params()
        out = np.zeros((b, n_t, part.n))
        for k in range(b):
            n = int(lengths[k])
            sample = layer_in[k, :n].reshape(n, part.in_channels, part.positions)
            out[k, :n] = run_reference(params, sample).s.reshape(n, part.n)
        rasters.append(out.astype(np.uint8))
        layer_in = out
    trace, scores = reference.run_readout(model.readout, layer_in, active)
    return SimResult(readout=trace, scores=scores, predictions=np.argmax(scores, axis=1),
                     spikes=rasters if record_spikes else None)


# -- streaming ----------------------------------------------------------------------------

class StackStream(EventStream):
    """:class:`evsim.event.EventStream` for a model with CS-GRU layers (``EventStream(model)``
    returns one): each chunk of steps runs segment by segment, every segment keeping its
    state (membranes, delay queues) between chunks; the readout last.  Same methods and
    properties; the outputs equal :func:`simulate_event` on the whole sample."""

    def __init__(self, model: Model, precision: str = "float64"):
        self.model = model
        self.precision = "float64"        # the only one: EventStream.__new__ refused any other
        self._segments = segments(model)
        self.reset()

    def reset(self) -> None:
        from . import event
        from .cells.csgru import new_state

        k = event._kernels()
        self._states = []
        for kind, _, part in self._segments:
            if kind == "cells":
                params, _ = event._packed(part)
                self._states.append((params, k.new_state(params)))
            else:
                weights = _csgru_weights(part)
                self._states.append((weights, new_state(weights)))
        c = self.model.n_classes
        self._ro = (np.zeros(c), np.zeros(c), np.zeros(c))          # u, acc, scores
        self._syn = 0
        self._spikes = np.zeros(len(self.model.layers), np.int64)
        self._steps = 0
        self._pending = np.zeros((0, self.model.n_inputs))
        self._last_step = -1

    def _advance(self, x: np.ndarray, count: int, out: np.ndarray) -> bool:
        """Run ``count`` steps of x (checked counts), readout rows into out; True (ran)."""
        from . import event
        from .kernels.csgru_event import csgru_run
        from .kernels.stack import readout_run

        k = event._kernels()
        layer_in = x[:count]
        for (kind, (lo, hi), part), (params, state) in zip(self._segments, self._states):
            if kind == "cells":
                raster = np.zeros((count, int(params.ff.nrn_off[-1])), np.uint8)
                syn0, spk0 = int(state.count.syn[0]), state.count.spikes.copy()
                k.run_sample(params, state, np.ascontiguousarray(layer_in), count, np.zeros((count, 1)), raster, True)
                added = state.count.spikes - spk0
                self._syn += int(state.count.syn[0]) - syn0 - int(added[-1])   # less the silent readout
                self._spikes[lo:hi] += added
                last = part.layers[-1].n
                layer_in = raster[:, raster.shape[1] - last:].astype(np.float64)
                continue
            spk0, syn0 = int(state.counters[1]), int(state.counters[2])
            s, v, i = (np.zeros((count, part.positions, part.channels)) for _ in range(3))
            csgru_run(params, state, _csgru_in(part, layer_in), s, v, i)
            self._spikes[lo] += int(state.counters[1]) - spk0
            self._syn += int(state.counters[2]) - syn0
            layer_in = s.transpose(0, 2, 1).reshape(count, part.n)
        u, acc, scores = self._ro
        self._syn += readout_run(*_readout_arrays(self.model.readout), np.ascontiguousarray(layer_in), count, u, acc,
                                 scores, np.zeros(layer_in.shape[1], np.int64), out)
        self._steps += count
        return True

    @property
    def n_steps(self) -> int:
        return self._steps

    @property
    def scores(self) -> np.ndarray:
        return self._ro[2].copy()

    @property
    def prediction(self) -> int:
        return int(np.argmax(self._ro[2]))

    @property
    def stats(self) -> dict:
        return {"synaptic_events": int(self._syn), "spikes_per_layer": self._spikes.copy()}

