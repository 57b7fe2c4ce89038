"""Event-driven engine: the fast path for inference, whole samples or live streams.

Same equations as :mod:`evsim.model` and the same results as the dense reference
(:func:`evsim.reference.simulate`), computed differently; both follow the contract of
:mod:`evsim.engine` (:func:`~evsim.engine.check_inputs`, :class:`~evsim.engine.SimResult`):

* **Synapses are event-driven.**  An input count ``c`` of unit ``j`` at step ``t`` adds
  ``c * W[:, j]`` to layer 0's input; a spike of hidden neuron ``j`` adds ``W[:, j]`` of
  the next layer (or of the readout) at the same step, and is queued (a ring buffer row
  for step ``t + 1 + d_j``) to add its recurrent weights (``W_rec[:, j]`` for a dense
  recurrence, the conv kernel taps ``K[m]`` onto targets ``i = j - m + k//2`` inside the
  layer) when it arrives.
  Propagation work therefore scales with events x fan-out, never with n x n per step.
* **Neurons are clock-driven.**  Leak and bias act every step, so each hidden neuron is
  updated once per step (O(n) per layer per step, cheap next to propagation).
* **Bounded memory.**  A layer's delay queue has ``max_delay + 2`` rows of up to ``n``
  neuron indices, whatever the input length (see :mod:`evsim.kernels.event`).
* **A precision shared with the reference** (:mod:`evsim.precision`, ``precision=``):
  ``"float64"`` (the default) or ``"float32"``, the type of the states and of every sum
  that forms them.  Weights stay in the model's float32 (half the memory traffic); in
  float64 they are widened exactly where used, so the values are those of the float64
  reference and the two engines agree to rounding (~1e-12); in float32 the fan-out adds
  float32 weights into float32 currents, 8 per AVX2 instruction, as the float32
  reference does.  The order in which one step's inputs are summed is the only
  difference, so a spike can differ only when a membrane lands within rounding (of that
  precision) of the threshold.  Class scores are float64 and the readout trace is
  returned as float64 in both precisions.

Two ways in, one kernel: :func:`simulate` (a padded batch, samples in parallel over
cores), and :class:`EventStream` (one sample fed step by step or chunk by chunk, for a
live input); both advance the same per-sample state with the same kernel, so a stream's
outputs equal the whole-sample run exactly.

``SimResult.stats`` of :func:`simulate` and :attr:`EventStream.stats` count the work:

* ``synaptic_events`` (B,) int64: weight additions onto a postsynaptic target (an input
  event to layer 0 counts ``n_0``, a hidden spike ``n_{l+1}`` feed-forward plus ``n_l``
  (dense) or the in-range taps (conv) recurrent, a last-layer spike ``C`` readout);
* ``spikes_per_layer`` (B, L) int64.
"""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np

from ._memory import aligned_copy
from .errors import EvsimError
from .cells import RESET_CODE, get_cell
from .model import DECISION_CODE, RECURRENCE_CODE, Model, _is_real, has_stack_layers
from .data import MAX_STEPS, time_to_step, validate_events
from .engine import SimResult, check_finite, check_inputs
from .precision import DEFAULT_PRECISION, check_precision, float_dtype, require_float64, resolve_precision
from .structured import split_structured

__all__ = ["simulate", "EventStream", "pack_model"]




def _kernels():
    from .kernels import event as k  # numba loads only when an engine is used

    return k


class _DirectCall:
    """Call a numba kernel's compiled code directly, skipping numba's per-call type
    dispatch (about 2 of the 5 microseconds a stream step or a one-sample call costs, more
    than the grouped Params/State arguments added), once an ordinary first call has
    compiled (or loaded) it.  Only for calls whose argument types never change: the
    callers below build every argument with a fixed dtype, dimension and C order (the
    packed model and stream state always have the same types), and pass Python ints and
    bools.  A call with other types would be misread, so each caller normalises first."""

    def __init__(self, dispatcher):
        self._dispatcher = dispatcher
        self._compiled = None

    def __call__(self, *args):
        if self._compiled is not None:
            return self._compiled(*args)
        out = self._dispatcher(*args)
        import numba

        cres = self._dispatcher.overloads.get(tuple(numba.typeof(a) for a in args))
        self._compiled = cres.entry_point if cres is not None else self._dispatcher
        return out

    @property
    def entry(self):
        """The compiled code to call from now on (this object until a first call found it):
        for a caller that calls it often enough that this object's own Python call costs
        (~0.3 us) show, such as a stream's step."""
        return self._compiled if self._compiled is not None else self


_DIRECT: dict = {}


def _direct(name: str, precision: str) -> _DirectCall:
    """The kernel ``name`` of :mod:`evsim.kernels.event` behind a :class:`_DirectCall`, one
    per precision (its arguments' types differ: each precision has its compiled code)."""
    call = _DIRECT.get((name, precision))
    if call is None:
        call = _DIRECT[(name, precision)] = _DirectCall(getattr(_kernels(), name))
    return call


def _threads() -> int:
    """numba's thread count for this thread (``numba.set_num_threads``), without starting
    numba's threading layer, which the engine does not use (:mod:`evsim._shares`; starting
    it cost ~15 ms): until something has started it, the count is ``NUMBA_NUM_THREADS``."""
    import numba
    from numba.np.ufunc import parallel

    if not getattr(parallel, "_is_initialized", True):
        return int(numba.config.NUMBA_NUM_THREADS)
    return numba.get_num_threads()


def _offsets(sizes) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(sizes, np.int64))]).astype(np.int64)


# A Model is frozen and its arrays are read-only, so its packed form can be reused: this
# keeps per-call overhead of small batches (batch 1, streaming) down to microseconds.
# One packed form per precision used: {precision: (Params, plain tuple)}.
_PACKED: "weakref.WeakKeyDictionary[Model, dict]" = weakref.WeakKeyDictionary()


def pack_model(model: Model, precision: str = DEFAULT_PRECISION):
    """Pack ``model`` into the flat arrays of :class:`evsim.kernels.event.Params`, its
    per-neuron arrays in ``precision`` (cached per model object and precision)."""
    return _packed(model, precision)[0]


def _packed(model: Model, precision: str = DEFAULT_PRECISION):
    """``(Params, tuple(Params))``: the kernels' entry points take the plain tuple."""
    if not isinstance(model, Model):
        raise EvsimError(f"expected an evsim.model.Model, got {type(model).__name__}; "
                         "load one with evsim.load_model(path)")
    check_precision(precision)
    by_precision = _PACKED.get(model)
    if by_precision is None:
        by_precision = _PACKED[model] = {}
    packed = by_precision.get(precision)
    if packed is None:
        params = _pack(model, float_dtype(precision))    # raises for an unknown precision
        params = type(params)(*(_aligned(group) for group in params))
        packed = by_precision[precision] = (params, _kernels().as_plain(params))
    return packed


#: per thread, {Model: {precision: state}}: the state run_batch_serial runs every sample
#: in (it clears it first), allocated once per model, precision and thread
_SERIAL_STATES = threading.local()


def _serial_state(model: Model, params, precision: str) -> tuple:
    """This thread's state for ``model`` in ``precision``, as run_batch_serial takes it
    (:func:`evsim.kernels.event.zero_state`: allocated in NumPy, not in the kernel)."""
    by_model = getattr(_SERIAL_STATES, "by_model", None)
    if by_model is None:
        by_model = _SERIAL_STATES.by_model = weakref.WeakKeyDictionary()
    states = by_model.setdefault(model, {})
    state = states.get(precision)
    if state is None:
        k = _kernels()
        state = states[precision] = k.as_plain_state(k.zero_state(params))
    return state


def _flat_params(model: Model, precision: str):
    """The packed model as the stream kernels' flat buffers
    (:func:`evsim.kernels.event.flatten`), cached with the packed form."""
    params, _ = _packed(model, precision)
    by_precision = _PACKED[model]
    flat = by_precision.get((precision, "flat"))
    if flat is None:
        k = _kernels()
        flat = by_precision[(precision, "flat")] = k.flatten(params, k.PARAMS_SPEC, k.PARAMS_ROLES,
                                                             params.cells.beta.dtype)[0]
    return flat


def _aligned(group):
    """A Params group whose arrays are all fresh C-ordered, writable copies starting on 64
    bytes (:mod:`evsim._memory`: the kernels' vector loads then stay within cache lines):
    the same numba types for every model (see _DirectCall), whatever views packing
    produced."""
    return type(group)(*(aligned_copy(a) for a in group))


#: Largest delay-queue memory evsim allocates at once, in TOTAL over the samples that run
#: in parallel (a batch holds one state per thread running it, reused from sample to
#: sample).  A batch whose states would exceed it runs on fewer threads; a model whose
#: single state exceeds it is refused.  Only absurd delays reach it (3 layers of 256
#: neurons with delays of 170 000 steps); real models need well under a MiB.
MAX_QUEUE_BYTES = 1 << 29


def _queue_bytes(layers) -> int:
    """Delay-queue memory of one sample's state: ``max_delay + 2`` rows of n int32 and
    their lengths (int64) per recurrent layer."""
    return sum((l.max_delay + 2) * (l.n * 4 + 8) for l in layers if l.recurrence != "none")


def _check_queue_memory(layers) -> None:
    need = _queue_bytes(layers)
    if need > MAX_QUEUE_BYTES:
        worst = max((l for l in layers if l.recurrence != "none"), key=lambda l: (l.max_delay + 2) * l.n)
        raise EvsimError(f"refused: the delay queues of one sample would need {need / 2**20:.0f} MiB, more than the "
                         f"{MAX_QUEUE_BYTES / 2**20:.0f} MiB limit on queue memory (MAX_QUEUE_BYTES, the total over "
                         f"the samples run at once; a layer of {worst.n} neurons has a delay of {worst.max_delay} "
                         "steps); delays are in steps of dt, so delays this long are probably a units mistake. "
                         "The dense engine (--engine dense) keeps no queue")


def _c_writable(a: np.ndarray, dtype) -> np.ndarray:
    """``a`` as a C-ordered, writable array of ``dtype``: ``a`` itself when it is one
    (what ``np.require(a, dtype, "CW")`` does, without its microseconds of overhead)."""
    if a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.require(a, dtype, "CW")


def _parallel_samples(model: Model, batch: int) -> int:
    """How many samples of a batch may run at once: at most one per thread, and no more
    than fit in :data:`MAX_QUEUE_BYTES` together (one always fits: checked at packing)."""
    if batch <= 1:
        return 1
    need = max(_queue_bytes(model.layers), 1)
    return max(1, min(batch, _threads(), MAX_QUEUE_BYTES // need))


def _pack(model: Model, real):
    """The packed model, per-neuron arrays of dtype ``real`` (float64 or float32)."""
    k = _kernels()
    layers = model.layers
    _check_queue_memory(layers)
    size = np.array([model.n_inputs] + [l.n for l in layers], np.int64)
    rec_parts = []
    for l in layers:
        if l.recurrence == "dense":
            rec_parts.append(np.ascontiguousarray(l.recurrent.T, np.float32).ravel())
        else:  # conv kernel K, or nothing
            rec_parts.append(np.asarray(l.recurrent, np.float32).ravel())
    slots = np.array([l.max_delay + 2 if l.recurrence != "none" else 0 for l in layers], np.int64)
    ro = model.readout

    def cat(attr):
        return np.concatenate([np.asarray(getattr(l, attr), real) for l in layers])

    cells = [get_cell(l.cell) for l in layers]
    n_off = _offsets(size[1:])
    extra = np.zeros((max(len(c.params) for c in cells), int(n_off[-1])), real)
    for l, (layer, c) in enumerate(zip(layers, cells)):
        for row, name in enumerate(c.param_names):
            extra[row, n_off[l]:n_off[l + 1]] = layer.extra[name]

    return k.Params(
        ff=k.FeedForward(
            size=size, nrn_off=n_off,
            w=np.concatenate([np.ascontiguousarray(l.weight.T, np.float32).ravel() for l in layers]),
            w_off=_offsets([l.weight.size for l in layers])),
        rec=k.Delivery(
            kind=np.array([RECURRENCE_CODE[l.recurrence] for l in layers], np.int64),
            w=np.concatenate(rec_parts), w_off=_offsets([r.size for r in rec_parts]),
            delay=np.concatenate([np.asarray(l.delays, np.int64) for l in layers]),
            slots=slots, ring_off=_offsets(slots * size[1:]), slot_off=_offsets(slots)),
        cells=k.CellParams(
            kind=np.array([c.code for c in cells], np.int64),
            reset=np.array([RESET_CODE[l.reset] for l in layers], np.int64),
            bias=cat("bias"), beta=cat("beta"), theta=cat("threshold"), gain=cat("gain"), extra=extra,
            n_aux=np.array([max(len(c.state) for c in cells)], np.int64)),
        ro=k.ReadoutParams(
            w=np.ascontiguousarray(ro.weight.T, np.float32).ravel(),
            bias=np.asarray(ro.bias, real), beta=np.asarray(ro.beta, real),
            gain=np.asarray(ro.gain, real),
            decision=np.array([DECISION_CODE[ro.decision]], np.int64)),
    )


def simulate(model: Model, x, lengths=None, record_spikes: bool = False,
             precision: str = DEFAULT_PRECISION, *, rest: bool = True) -> SimResult:
    """Run ``model`` on binned inputs ``x``, (B, T, n_inputs) or one sample (T, n_inputs),
    event by event.  The samples of a batch run in parallel over the threads numba may
    use (``numba.set_num_threads``); a single sample runs on the calling thread.

    ``precision``: ``"float64"`` (default), ``"float32"`` or ``"auto"`` (float32 unless the
    model has CS-GRU layers), the type of the membranes, currents and their sums
    (:mod:`evsim.precision`); the reference takes the same.

    Same contract as :func:`evsim.reference.simulate`: ``lengths`` (B,) marks how many
    steps of each padded sample count (readout zero beyond), ``record_spikes`` returns one
    (B, T, n_l) uint8 raster per hidden layer.  ``stats`` holds ``synaptic_events`` (B,)
    and ``spikes_per_layer`` (B, L), both int64, and ``hidden_steps`` (B,) int64: the
    steps each sample's hidden layers ran.

    ``rest``: once a sample's hidden layers are provably quiet for all its remaining
    steps, run only the readout there (exact: the same outputs bit for bit;
    :mod:`evsim.kernels.event`, "Coming to rest"); False runs every step (``hidden_steps``
    is then each sample's length).  For a model with CS-GRU layers (:mod:`evsim.stack`)
    only its runs of cell layers may rest, and ``hidden_steps`` is not reported.
    """
    precision = resolve_precision(precision, model)
    if has_stack_layers(model):              # CS-GRU layers: layer by layer (evsim.stack)
        require_float64(precision)
        from .stack import simulate_event

        return simulate_event(model, x, lengths, record_spikes=record_spikes)
    params, params_t = _packed(model, precision)
    x, lengths = check_inputs(model, x, lengths, finite=False)   # run_chunk checks its part
    x = _c_writable(x, np.float64)               # fixed argument types (see _DirectCall)
    lengths = _c_writable(lengths, np.int64)
    b, n_t, _ = x.shape
    n_layers = len(model.layers)
    n_total = int(params.ff.nrn_off[-1])
    readout = np.zeros((b, n_t, model.n_classes))
    scores = np.zeros((b, model.n_classes))
    raster = np.zeros((b, n_t if record_spikes else 0, n_total), np.uint8)
    syn = np.zeros(b, np.int64)
    spikes = np.zeros((b, n_layers), np.int64)
    hidden_steps = np.zeros(b, np.int64)
    at_once = _parallel_samples(model, b)
    call = _direct("run_batch_serial", precision)

    def run_chunk(first: int, stop: int) -> None:
        check_finite(x[first:stop])          # on the chunk's thread (NumPy releases the GIL)
        call(*params_t, _serial_state(model, params, precision), x[first:stop], lengths[first:stop],
             readout[first:stop], scores[first:stop], raster[first:stop], bool(record_spikes), syn[first:stop],
             spikes[first:stop], hidden_steps[first:stop], bool(rest))

    if at_once > 1:
        from ._shares import run_chunks

        run_chunks(run_chunk, b, at_once)
    else:
        run_chunk(0, b)
    rasters = None
    if record_spikes:
        off = params.ff.nrn_off
        rasters = [np.ascontiguousarray(raster[:, :, off[l]:off[l + 1]]) for l in range(n_layers)]
    return SimResult(readout=readout, scores=scores, predictions=np.argmax(scores, axis=1),
                     spikes=rasters, stats={"synaptic_events": syn, "spikes_per_layer": spikes,
                                            "hidden_steps": hidden_steps})


#: NumPy's float64 dtype in native byte order (a singleton: ``dtype is _FLOAT64`` tests it)
_FLOAT64 = np.dtype(np.float64)

#: rows :meth:`EventStream.push` gives its buffer of pending input counts when it grows it:
#: steps not yet run (zero counts are silence, as for steps past the buffer), so that the
#: next pushes bin into it without growing it again
_SPARE_STEPS = 16


class EventStream:
    """Classify one live input as it arrives, a step or a chunk of steps at a time.

    >>> stream = EventStream(model)                       # doctest: +SKIP
    >>> for counts in microphone_bins():                  # (n_inputs,) per step
    ...     u_t = stream.step(counts)                     # readout membrane of this step
    ...     print(stream.prediction)                      # best class so far

    Raw events (times in seconds, channel numbers, as in an SHD file) go in with
    :meth:`push`, which bins them and runs each step once it is complete, and
    :meth:`finish` at the end of the sample.

    After feeding the steps of a sample, ``scores``, ``prediction`` and the returned
    readout rows equal those of ``simulate(model, sample)``, however the steps were split
    into chunks.  Memory is bounded (no history is kept).  ``reset()`` starts a new sample.
    """

    #: the fast paths of step and push (set in __init__; a subclass without them takes the
    #: checked paths)
    _row_shape = None
    _bin = None
    _n_out = 0

    def __new__(cls, model: Model, precision: str = DEFAULT_PRECISION):
        if cls is EventStream and has_stack_layers(model):   # CS-GRU layers: evsim.stack.StackStream
            require_float64(resolve_precision(precision, model))
            from .stack import StackStream

            cls = StackStream
        return super().__new__(cls)

    def __init__(self, model: Model, precision: str = DEFAULT_PRECISION):
        self.model = model
        self.precision = precision = resolve_precision(precision, model)
        self._params, _ = _packed(model, precision)
        self._k = _kernels()
        # the model and the state as flat buffers (see "Flat buffers" in evsim.kernels.event);
        # self._state's arrays are views into self._state_flat
        self._state_flat, self._state = self._k.flatten(self._k.new_state(self._params), self._k.STATE_SPEC,
                                                        self._k.STATE_ROLES, self._params.cells.beta.dtype)
        self._buffers = _flat_params(model, precision) + self._state_flat
        self._clock = self._state.count.clock
        self._chunk = _direct("stream_chunk", precision)
        self._one_step = _direct("stream_step", precision)
        self._step_call = self._first_step     # then the compiled stream_step itself
        self._push_run = _direct("stream_push", precision)
        self._bin = _direct("push_events", "any")        # no floating-point state: one version
        meta = model.metadata
        # the per-call constants, with the types the kernels were compiled for (see _DirectCall)
        self._row_shape = (model.n_inputs,)
        self._n_out = model.n_classes
        self._bin_args = (int(meta.input_channels), float(meta.dt_ms), int(meta.pool))
        self._cap = -1 if meta.n_steps is None else int(meta.n_steps)
        self.reset()

    def reset(self) -> None:
        """Forget the current sample: membranes, delay queues, scores, counters and any
        raw events buffered by :meth:`push`."""
        ints, *floats = self._state_flat
        ints[self._k.layout_size(self._k.STATE_SPEC):] = 0     # the same zeros new_state gives; the layout kept
        for buffer in floats:
            buffer[:] = 0
        self._pending = np.zeros((0, self.model.n_inputs))   # counts of steps n_steps, n_steps+1, ...
        self._last_step = -1                                  # step of the latest pushed event

    def push(self, times, units=None, until: float | None = None) -> np.ndarray:
        """Feed raw events and run every step that is complete; return those steps'
        readout membranes, (steps, C) float64 (possibly 0 rows).

        times: seconds from the start of the sample; units: raw channel numbers in
        ``[0, input_channels)`` (pooled by the model's ``pool``), as in an SHD file.  Events
        are binned with the same rule as the files (``floor(t * 1000 / dt_ms)``).
        until: the input is known to be complete up to this time (seconds), e.g. the end
            of the audio chunk just encoded: every step ending at or before it runs, with
            silence where no event came.  None: run the steps before the latest event's
            step (a later push may still add events to that step).
        Events in a step that has already run raise :class:`EvsimError` (times must not go
        back past what ``until`` declared complete).  With a model whose metadata fixes
        ``n_steps``, events at or after that step are dropped and no step past it runs,
        as in a file; without it, an event or ``until`` more than ``MAX_STEPS`` steps past
        the stream raises (a bogus time, as in a file).  Call :meth:`finish` at the end of the sample: the outputs then equal
        ``simulate`` on the binned sample, however the events were split into pushes.
        ``push(events)`` with no units takes a tonic-style structured array (``t`` in
        microseconds, ``x`` channel; see :mod:`evsim.structured`).
        """
        if units is None:
            times, units = split_structured(times, where="push")
        if (self._bin is not None and type(times) is np.ndarray and type(units) is np.ndarray and times.ndim == 1 and times.shape == units.shape
                and times.dtype.kind in "fiu" and units.dtype.kind in "iu"
                and (until is None or (_is_real(until) and 0 <= until < math.inf))):
            if until is not None:                                # the fast path of live use
                out = self._push_and_run(times, units, until)
                if out is not None:
                    return out
            else:
                ready = self._push_binned(times, units)
                if ready is not None:
                    return self._run_pending(ready)
        return self._push_checked(times, units, until)

    def _push_binned(self, times, units) -> int | None:
        """:meth:`push` without ``until``: the events binned in one kernel call
        (:func:`evsim.kernels.event.push_events`) for well-formed arrays; the step to run
        up to (the latest event's), or None (nothing changed) when an event is invalid, for
        :meth:`_push_checked` to report."""
        t, u = _c_writable(times, np.float64), _c_writable(units, np.int64)
        first = int(self._clock[0])
        status, last = self._bin(t, u, *self._bin_args, first, self._cap, MAX_STEPS, self._pending)
        if status == 2:
            self._grow_pending(last - first + 1)
            status, last = self._bin(t, u, *self._bin_args, first, self._cap, MAX_STEPS, self._pending)
        if status != 0:
            return None
        self._last_step = max(self._last_step, last)
        return self._last_step

    def _push_and_run(self, times, units, until) -> np.ndarray | None:
        """:meth:`push` with ``until`` in one kernel call (:func:`evsim.kernels.event.stream_push`:
        the binning of :meth:`_push_binned`, then the steps complete by ``until``) for
        well-formed arrays: their readout rows, or None (nothing changed) when an event is
        invalid, for :meth:`_push_checked` to report."""
        t, u = _c_writable(times, np.float64), _c_writable(units, np.int64)
        first = int(self._clock[0])
        v = float(until) * 1000.0 / self._bin_args[1]         # time_to_step(until), in Python floats
        ready = math.floor(v) if v < 2.0**62 else 2**62
        if self._cap < 0 and ready - first > MAX_STEPS:
            raise EvsimError(self._too_far("until", float(until), ready))
        count = max((ready if self._cap < 0 else min(ready, self._cap)) - first, 0)
        out = np.zeros((count, self._n_out))
        args = (*self._bin_args, first, self._cap, MAX_STEPS)
        status, last = self._push_run(*self._buffers, t, u, *args, self._pending, count, out)
        if status == 2:
            self._grow_pending(last - first + 1)
            status, last = self._push_run(*self._buffers, t, u, *args, self._pending, count, out)
        if status != 0:
            return None
        self._last_step = max(self._last_step, last)
        self._pending = self._pending[count:]
        return out

    def _grow_pending(self, rows: int) -> None:
        """Room for ``rows`` pending steps and a few more (zeros: silence), the buffered
        counts kept."""
        grown = np.zeros((max(rows, _SPARE_STEPS), self.model.n_inputs))
        grown[:self._pending.shape[0]] = self._pending
        self._pending = grown

    def _push_checked(self, times, units, until) -> np.ndarray:
        """:meth:`push` for any input, checking everything in NumPy (raises the errors)."""
        meta = self.model.metadata
        if until is not None and not _is_real(until):
            raise EvsimError(f"push: until = {until!r} ({type(until).__name__}); expected a real time in seconds >= 0 (or None)")
        t, u = validate_events(times, units, meta.input_channels, where="push")
        steps = time_to_step(t, meta.dt_ms)
        if t.size:
            first = int(steps.min())
            if first < self.n_steps:
                raise EvsimError(f"push: an event at {float(t[np.argmin(steps)]):g} s belongs to step {first}, "
                                 f"which has already run ({self.n_steps} steps so far); push events in time order "
                                 "and pass `until` no later than the next events")
            if meta.n_steps is not None:
                keep = steps < meta.n_steps
                steps, u = steps[keep], u[keep]
            elif int(steps.max()) - self.n_steps >= MAX_STEPS:
                raise EvsimError(self._too_far("spike time", float(t.max()), int(steps.max())))
        if steps.size:
            self._last_step = max(self._last_step, int(steps.max()))
            rel = steps - self.n_steps
            need = int(rel.max()) + 1
            if need > self._pending.shape[0]:
                grown = np.zeros((need, self.model.n_inputs))
                grown[:self._pending.shape[0]] = self._pending
                self._pending = grown
            n_in = self.model.n_inputs
            flat = np.bincount(rel * n_in + u // meta.pool, minlength=need * n_in)
            self._pending[:need] += flat.reshape(need, n_in)
        if until is None:
            ready = self._last_step
        else:
            if not (np.isfinite(until) and until >= 0):
                raise EvsimError(f"push: until = {until!r}; expected a real time in seconds >= 0 (or None)")
            ready = int(time_to_step(until, meta.dt_ms))
            if meta.n_steps is None and ready - self.n_steps > MAX_STEPS:
                raise EvsimError(self._too_far("until", float(until), ready))
        return self._run_pending(ready)

    def _too_far(self, what: str, when: float, step: int) -> str:
        return (f"push: {what} {when:g} s is step {step}, {step - self.n_steps} steps past the stream's "
                f"{self.n_steps}, more than the limit of {MAX_STEPS} steps in one push (MAX_STEPS); the time "
                "is probably bogus (times are in seconds from the start of the sample)")

    def finish(self) -> np.ndarray:
        """Run the remaining steps of the sample -- up to the latest event's step, or up to
        the model's fixed ``n_steps`` -- and return their readout membranes.  ``scores`` and
        ``prediction`` are then the whole sample's; :meth:`reset` starts the next one."""
        n = self.model.metadata.n_steps
        return self._run_pending(n if n is not None else max(self._last_step + 1, 1))

    def _run_pending(self, end: int) -> np.ndarray:
        """Run steps n_steps .. end - 1 from the pending counts (silence past them)."""
        cap = self.model.metadata.n_steps
        if cap is not None:
            end = min(end, cap)
        count = end - self.n_steps
        if count <= 0:
            return np.zeros((0, self.model.n_classes))
        have = min(count, self._pending.shape[0])
        if have == count:
            x, self._pending = self._pending[:count], self._pending[count:]
        else:
            x = np.zeros((count, self.model.n_inputs))
            x[:have] = self._pending[:have]
            self._pending = self._pending[have:]
        x = _c_writable(x, np.float64)
        out = np.zeros((count, self.model.n_classes))
        self._advance(x, int(count), out)
        return out

    def _advance(self, x: np.ndarray, count: int, out: np.ndarray) -> bool:
        """Run ``count`` steps of counts x (C-ordered, writable float64), readout rows into
        out; False, running nothing, when x holds a NaN or an infinity."""
        return self._chunk(*self._buffers, x, count, out) == 0

    def _check(self, counts, ndim: int, what: str) -> np.ndarray:
        arr = np.asarray(counts)
        n_in = self.model.n_inputs
        if arr.ndim != ndim:
            want = f"({n_in},)" if ndim == 1 else f"(steps, {n_in})"
            raise EvsimError(f"{what}: input has shape {arr.shape}; expected {want}"
                             + (" (use run_chunk for several steps)" if ndim == 1 and arr.ndim == 2 else "")
                             + (" (use step for a single step)" if ndim == 2 and arr.ndim == 1 else ""))
        if arr.shape[-1] == n_in and arr.dtype.kind in "biuf":  # fast path for live use
            x = np.ascontiguousarray(arr, dtype=np.float64).reshape(-1, n_in)
            if np.isfinite(x).all():
                return x if x.flags.writeable else x.copy()   # C-ordered float64, writable
        x, _ = check_inputs(self.model, arr[None] if ndim == 1 else arr)  # raises the error
        return _c_writable(x[0], np.float64)

    def _with_pending(self, x: np.ndarray) -> np.ndarray:
        """Add the counts :meth:`push` buffered for the steps ``x`` is about to run, and
        drop them from the buffer (see "Mixing push and step" in :meth:`step`)."""
        have = min(x.shape[0], self._pending.shape[0])
        if have:
            x = x.copy()
            x[:have] += self._pending[:have]
            self._pending = self._pending[have:]
        return x

    def step(self, counts) -> np.ndarray:
        """Advance one step with input counts (n_inputs,); return this step's readout
        membrane u_t, (C,) float64.

        Mixing push and step: events that :meth:`push` has buffered for this step (pushed
        without an ``until`` that ran it) are consumed by this step, added to ``counts``:
        the step's input is everything that arrived for it, whichever call brought it.
        Buffered events of later steps stay buffered for later calls.
        """
        if (type(counts) is np.ndarray and counts.shape == self._row_shape and counts.dtype is _FLOAT64
                and counts.flags.carray and not self._pending.shape[0]):
            # the fast path of live use (float64 in native byte order, which NumPy gives as
            # one dtype object, so ``is`` tests it; carray: C-ordered, aligned, writable:
            # the types the kernel was compiled for); the kernel checks that the counts are
            # finite
            out = np.empty(self._n_out)
            if self._step_call(*self._buffers, counts, out) == 0:
                return out
        out = np.zeros((1, self.model.n_classes))
        x = self._with_pending(self._check(counts, 1, "step"))    # raises for bad input
        if not self._advance(x, 1, out):
            raise EvsimError("step: the input holds NaN or infinity")
        return out[0]

    def _first_step(self, *args) -> int:
        """The first fast-path step: through :class:`_DirectCall`, which loads the kernel;
        later steps call its compiled code directly (:attr:`_DirectCall.entry`)."""
        status = self._one_step(*args)
        self._step_call = self._one_step.entry
        return status

    def run_chunk(self, counts) -> np.ndarray:
        """Advance over a chunk of steps (steps, n_inputs); return their readout
        membranes, (steps, C) float64.  Events buffered by :meth:`push` for these steps are
        added to their counts, as in :meth:`step`."""
        x = self._with_pending(self._check(counts, 2, "run_chunk"))
        out = np.zeros((x.shape[0], self.model.n_classes))
        self._advance(x, int(x.shape[0]), out)
        return out

    @property
    def n_steps(self) -> int:
        """Steps consumed since the last reset."""
        return int(self._state.count.clock[0])

    @property
    def scores(self) -> np.ndarray:
        """Class scores so far, (C,) float64 (a copy)."""
        return self._state.ro.scores.copy()

    @property
    def prediction(self) -> int:
        """argmax of the scores so far (0 before any step, as for an empty sample)."""
        return int(np.argmax(self._state.ro.scores))

    @property
    def stats(self) -> dict:
        """Work done since the last reset: ``synaptic_events`` (int) and
        ``spikes_per_layer`` ((L,) int64)."""
        return {"synaptic_events": int(self._state.count.syn[0]),
                "spikes_per_layer": self._state.count.spikes.copy()}
