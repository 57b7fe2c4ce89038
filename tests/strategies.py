"""Hypothesis strategies shared by the tests: random models and random binned inputs.

Arrays are drawn from a NumPy generator seeded by Hypothesis (fast to draw, and a failing
example is reproduced from its seed); the structural choices (depth, sizes, recurrence,
kernel size, delays, reset, sign of the biases, ...) are drawn directly so Hypothesis can
shrink them.

``models()`` makes networks that are actually active: weights are scaled against the
threshold so that inputs drive spikes.  With ``weights="dyadic"`` every weight, bias and
threshold is a multiple of 1/4 (and beta, gain are 0, 1/2 or 1), so sums are exact in
floating point and membranes land *exactly* on the threshold: that exercises
``H(0) = 1`` (a spike when v == theta) in every engine.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from evsim.cells import CELLS, get_cell
from evsim.model import HiddenLayer, Model, ModelMetadata, Readout

__all__ = ["models", "inputs", "model_and_inputs", "random_model", "random_inputs", "random_case",
           "recurrent_cases", "dt_and_spike_times", "spike_times"]

KERNEL_SIZES = (1, 3, 5, 7)


class _Draw:
    """Structural choices drawn by Hypothesis (so it can shrink them)."""

    def __init__(self, draw):
        self._draw = draw

    def integers(self, lo, hi, label):
        return self._draw(st.integers(lo, hi), label=label)

    def floats(self, lo, hi, label):
        return self._draw(st.floats(lo, hi), label=label)

    def sampled_from(self, options, label):
        return self._draw(st.sampled_from(options), label=label)

    def booleans(self, label):
        return self._draw(st.booleans(), label=label)


class _Seeded:
    """The same choices from a seeded NumPy generator, for plain loops over many cases
    (counting how often something happens needs a fixed population, not a search)."""

    def __init__(self, rng: np.random.Generator):
        self._rng = rng

    def integers(self, lo, hi, label):
        return int(self._rng.integers(lo, hi + 1))

    def floats(self, lo, hi, label):
        return float(self._rng.uniform(lo, hi))

    def sampled_from(self, options, label):
        return options[int(self._rng.integers(len(options)))]

    def booleans(self, label):
        return bool(self._rng.integers(2))


@st.composite
def models(draw, max_layers: int = 3, max_neurons: int = 64, max_delay: int = 40,
           max_inputs: int = 16, max_classes: int = 5, recurrences=("none", "dense", "conv"),
           weights=None, cells=None, stable=False) -> Model:
    """A random valid :class:`Model`: 1..max_layers hidden layers of 1..max_neurons
    neurons, each of a cell drawn from ``cells`` (default: every registered cell), with
    recurrence none/dense/conv (k in 1, 3, 5, 7), delays in
    0..max_delay, varied beta, thresholds, gains, both reset modes and positive, zero or
    negative biases."""
    return _build_model(_Draw(draw), max_layers, max_neurons, max_delay, max_inputs, max_classes,
                        recurrences, weights, cells, stable)


def random_model(seed: int, max_layers: int = 3, max_neurons: int = 64, max_delay: int = 40,
                 max_inputs: int = 16, max_classes: int = 5, recurrences=("none", "dense", "conv"),
                 weights=None, cells=None, stable=False) -> Model:
    """What :func:`models` draws, from ``numpy.random.default_rng(seed)`` instead."""
    return _build_model(_Seeded(np.random.default_rng(seed)), max_layers, max_neurons, max_delay,
                        max_inputs, max_classes, recurrences, weights, cells, stable)


#: every registered cell: random models draw each layer's cell from these by default
ALL_CELLS = tuple(sorted(CELLS))

#: ranges the tests draw each cell's extra parameters from: each parameter's ``draw`` range
#: (else its training bounds), as the cell module declares it
CELL_DRAW_RANGES = {name: {p.name: p.draw or p.train for p in kind.params} for name, kind in CELLS.items()}
#: the ranges of ``stable=True`` models: each parameter's training bounds (what a trained
#: model holds).  adlif's draw range reaches a < -(1 - beta_w), where the cell's linear
#: part is unstable: it amplifies any rounding difference geometrically while its resets
#: keep the membrane bounded (a float32 run of 117 steps turned 1e-7 into 3e-2 at the
#: threshold), so float32 event = dense holds only for stable cells
CELL_STABLE_RANGES = {name: {p.name: p.train for p in kind.params} for name, kind in CELLS.items()}


def cell_extra(cell: str, n: int, rng: np.random.Generator, dyadic: bool, stable: bool = False) -> dict:
    """Random extra per-neuron parameters of a registered cell (none for LIF); with
    ``dyadic`` multiples of 1/4 (exact sums), and 0, 1/2 or 1 for a decay (a parameter a
    file must keep in [0, 1], e.g. adlif's beta_w); with ``stable`` from the training
    bounds (:data:`CELL_STABLE_RANGES`)."""
    out = {}
    valid = get_cell(cell).bounds
    for name, (lo, hi) in (CELL_STABLE_RANGES if stable else CELL_DRAW_RANGES)[cell].items():
        if dyadic:
            step = 2 if tuple(valid[name]) == (0.0, 1.0) else 1
            out[name] = rng.integers(int(lo * 4) // step, int(hi * 4) // step + 1, n) * step / 4.0
        else:
            out[name] = rng.uniform(lo, hi, n)
    return out


def _build_model(pick, max_layers, max_neurons, max_delay, max_inputs, max_classes, recurrences,
                 weights, cells=None, stable=False) -> Model:
    n_layers = pick.integers(1, max_layers, "n_layers")
    n_in = pick.integers(1, max_inputs, "n_inputs")
    kind = weights or pick.sampled_from(("gauss", "dyadic"), "weights")
    rng = np.random.default_rng(pick.integers(0, 2**32 - 1, "seed"))
    layers, prev = [], n_in
    for i in range(n_layers):
        n = pick.integers(1, max_neurons, f"n{i}")
        rec = pick.sampled_from(recurrences, f"recurrence{i}")
        cell = pick.sampled_from(cells or ALL_CELLS, f"cell{i}")
        reset = pick.sampled_from(("zero", "subtract"), f"reset{i}")
        bias_sign = pick.sampled_from(("zero", "positive", "negative", "mixed"), f"bias{i}")
        beta_kind = pick.sampled_from(("random", "zero", "one", "constant"), f"beta{i}")
        gain_kind = pick.sampled_from(("one", "1-beta", "random"), f"gain{i}")
        if kind == "dyadic":
            theta = rng.integers(1, 9, n) / 4.0
            w = rng.integers(-4, 9, (n, prev)) / 4.0
            beta = {"random": rng.integers(0, 3, n) / 2.0, "zero": np.zeros(n), "one": np.ones(n),
                    "constant": np.full(n, 0.5)}[beta_kind]
            gain = np.ones(n) if gain_kind != "random" else rng.integers(1, 3, n) / 2.0
            bias_mag = rng.integers(0, 3, n) / 4.0
            kern = rng.integers(-4, 5, pick.sampled_from(KERNEL_SIZES, f"k{i}")) / 4.0
            w_rec = rng.integers(-4, 5, (n, n)) / 4.0
        else:
            theta = rng.uniform(0.2, 3.0, n)
            scale = pick.floats(0.3, 3.0, f"scale{i}")
            w = rng.normal(0.3, 1.0, (n, prev)) * scale * theta.mean() / np.sqrt(max(1, prev) / 4)
            beta = {"random": rng.uniform(0, 1, n), "zero": np.zeros(n), "one": np.ones(n),
                    "constant": np.full(n, rng.uniform(0.5, 0.99))}[beta_kind]
            gain = np.ones(n) if gain_kind == "one" else rng.uniform(0.1, 2.0, n)
            bias_mag = rng.uniform(0, 0.5, n) * theta
            kern = rng.normal(0, 1.0, pick.sampled_from(KERNEL_SIZES, f"k{i}")) * theta.mean()
            w_rec = rng.normal(0, 1.0, (n, n)) * theta.mean() / np.sqrt(n / 2)
        if gain_kind == "1-beta":
            gain = 1.0 - beta
        bias = {"zero": np.zeros(n), "positive": bias_mag, "negative": -bias_mag,
                "mixed": bias_mag * rng.choice([-1.0, 1.0], n)}[bias_sign]
        if rec == "none":
            recurrent, delays = np.zeros(0), None
        else:
            d_max = pick.integers(0, max_delay, f"max_delay{i}")
            delays = rng.integers(0, d_max + 1, n)
            recurrent = w_rec if rec == "dense" else kern
        layers.append(HiddenLayer(weight=w, bias=bias, beta=beta, threshold=theta, gain=gain,
                                  reset=reset, recurrence=rec, recurrent=recurrent,
                                  delays=delays, name=f"layer{i}", cell=cell,
                                  extra=cell_extra(cell, n, rng, kind == "dyadic", stable)))
        prev = n
    c = pick.integers(1, max_classes, "n_classes")
    decision = pick.sampled_from(("sum_softmax", "sum_membrane"), "decision")
    ro_beta = rng.uniform(0, 1, c) if pick.booleans("readout_leaky") else np.ones(c)
    readout = Readout(weight=rng.normal(0, 1.0, (c, prev)), bias=rng.normal(0, 0.2, c),
                      beta=ro_beta, gain=rng.uniform(0.2, 1.5, c), decision=decision)
    return Model(layers=tuple(layers), readout=readout,
                 metadata=ModelMetadata(input_channels=n_in, pool=1))


INPUT_KINDS = ("empty", "single", "sparse", "burst", "last_step", "long")


@st.composite
def inputs(draw, n_inputs: int, max_batch: int = 3, max_steps: int = 80,
           long_steps: int = 300, kinds=INPUT_KINDS, min_steps: int = 0):
    """A padded batch of binned counts ``x`` (B, T, n_inputs) float32 and ``lengths`` (B,).

    kinds: ``empty`` (no spikes at all), ``single`` (one spike), ``sparse`` (Poisson),
    ``burst`` (dense bursts of multi-counts), ``last_step`` (spikes only on each sample's
    last counted step), ``long`` (up to ``long_steps`` steps).  Lengths are either all T
    or random in [0, T]; steps beyond a length may hold spikes (they must be ignored).
    T is at least ``min_steps``.
    """
    return _build_inputs(_Draw(draw), n_inputs, max_batch, max_steps, long_steps, kinds, min_steps)


def random_inputs(seed: int, n_inputs: int, max_batch: int = 3, max_steps: int = 80,
                  long_steps: int = 300, kinds=INPUT_KINDS, min_steps: int = 0):
    """What :func:`inputs` draws, from ``numpy.random.default_rng(seed)`` instead."""
    return _build_inputs(_Seeded(np.random.default_rng(seed)), n_inputs, max_batch, max_steps,
                         long_steps, kinds, min_steps)


def _build_inputs(pick, n_inputs, max_batch, max_steps, long_steps, kinds, min_steps):
    kind = pick.sampled_from(tuple(kinds), "input_kind")
    b = pick.integers(1, max_batch, "batch")
    t_max = long_steps if kind == "long" else max_steps
    n_t = pick.integers(min(t_max, max(min_steps, 0 if kind == "empty" else 1)), t_max, "steps")
    rng = np.random.default_rng(pick.integers(0, 2**32 - 1, "input_seed"))
    if pick.booleans("ragged") and n_t > 0:
        lengths = rng.integers(0, n_t + 1, b)
    else:
        lengths = np.full(b, n_t)
    x = np.zeros((b, n_t, n_inputs), np.float32)
    if n_t == 0 or kind == "empty":
        pass
    elif kind == "single":
        x[rng.integers(b), rng.integers(n_t), rng.integers(n_inputs)] = 1
    elif kind in ("sparse", "long"):
        rate = pick.floats(0.01, 1.0, "rate")
        x[:] = rng.poisson(rate, x.shape)
    elif kind == "burst":
        for _ in range(int(rng.integers(1, 4))):
            t0 = int(rng.integers(n_t))
            t1 = min(n_t, t0 + int(rng.integers(1, 10)))
            x[:, t0:t1] = rng.poisson(3.0, (b, t1 - t0, n_inputs))
    elif kind == "last_step":
        for i in range(b):
            if lengths[i] > 0:
                x[i, lengths[i] - 1] = rng.integers(0, 4, n_inputs)
    return x, lengths.astype(np.int64)


@st.composite
def model_and_inputs(draw, **model_kw):
    """A model and a batch of inputs that fits it: (model, x, lengths)."""
    model = draw(models(**model_kw))
    x, lengths = draw(inputs(model.n_inputs))
    return model, x, lengths


def random_case(seed: int, model_kw=None, input_kw=None):
    """(model, x, lengths) like :func:`model_and_inputs`, from a seed (for seeded loops)."""
    model = random_model(seed, **(model_kw or {}))
    x, lengths = random_inputs(seed + 1_000_003, model.n_inputs, **(input_kw or {}))
    return model, x, lengths


#: Recurrent layers only, delays short against the sample (<= 6 steps, T >= 20), and inputs
#: that keep firing: most recurrent spikes are delivered *inside* the sample.
RECURRENT_MODEL_KW = dict(max_layers=2, max_neurons=24, max_delay=6, recurrences=("dense", "conv"))
RECURRENT_INPUT_KW = dict(kinds=("sparse", "burst", "long"), min_steps=20, long_steps=120)


@st.composite
def recurrent_cases(draw, **model_kw):
    """(model, x, lengths) in which delayed recurrent arrivals happen within the sample."""
    model = draw(models(**{**RECURRENT_MODEL_KW, **model_kw}))
    x, lengths = draw(inputs(model.n_inputs, **RECURRENT_INPUT_KW))
    return model, x, lengths


# -- raw spike times (seconds) for the binning tests --------------------------------------

STEP_LENGTHS = st.one_of(st.floats(0.05, 50.0),
                         st.sampled_from([0.1, 0.3, 0.7, 1.0, 3.0, 7.0, 9.0, 10.0, 11.0, 13.0]))


def spike_times(dt_ms: float, max_t: float = 2.0, min_size: int = 1, max_size: int = 30):
    """Lists of spike times in [0, max_t] s, many of them on or next to a step edge
    ``k * dt_ms / 1000`` (exactly, or one ulp either side): where ``t * 1000 / dt_ms`` and
    ``t * (1000 / dt_ms)`` round to different steps."""
    def edge(kn):
        k, side = kn
        t = k * dt_ms / 1000.0
        return max(0.0, float(np.nextafter(t, side * np.inf))) if side else t

    edges = st.tuples(st.integers(0, int(max_t * 1000 / dt_ms)), st.sampled_from([-1, 0, 1])).map(edge)
    ms = st.integers(0, int(max_t * 1000)).map(lambda m: m / 1000.0)
    return st.lists(st.one_of(st.floats(0.0, max_t), ms, edges), min_size=min_size, max_size=max_size)


def dt_and_spike_times(**kw):
    """``(dt_ms, times)``: a step length and a list of spike times made for it."""
    return STEP_LENGTHS.flatmap(lambda dt: st.tuples(st.just(dt), spike_times(dt, **kw)))
