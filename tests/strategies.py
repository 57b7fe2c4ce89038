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

from evsim.model import HiddenLayer, Model, ModelMetadata, Readout

__all__ = ["models", "inputs", "model_and_inputs"]

KERNEL_SIZES = (1, 3, 5, 7)


@st.composite
def models(draw, max_layers: int = 3, max_neurons: int = 64, max_delay: int = 40,
           max_inputs: int = 16, max_classes: int = 5, recurrences=("none", "dense", "conv"),
           weights=None) -> Model:
    """A random valid :class:`Model`: 1..max_layers hidden layers of 1..max_neurons
    neurons, each with recurrence none/dense/conv (k in 1, 3, 5, 7), delays in
    0..max_delay, varied beta, thresholds, gains, both reset modes and positive, zero or
    negative biases."""
    n_layers = draw(st.integers(1, max_layers), label="n_layers")
    n_in = draw(st.integers(1, max_inputs), label="n_inputs")
    kind = weights or draw(st.sampled_from(["gauss", "dyadic"]), label="weights")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    layers, prev = [], n_in
    for i in range(n_layers):
        n = draw(st.integers(1, max_neurons), label=f"n{i}")
        rec = draw(st.sampled_from(recurrences), label=f"recurrence{i}")
        reset = draw(st.sampled_from(("zero", "subtract")), label=f"reset{i}")
        bias_sign = draw(st.sampled_from(("zero", "positive", "negative", "mixed")), label=f"bias{i}")
        beta_kind = draw(st.sampled_from(("random", "zero", "one", "constant")), label=f"beta{i}")
        gain_kind = draw(st.sampled_from(("one", "1-beta", "random")), label=f"gain{i}")
        if kind == "dyadic":
            theta = rng.integers(1, 9, n) / 4.0
            w = rng.integers(-4, 9, (n, prev)) / 4.0
            beta = {"random": rng.integers(0, 3, n) / 2.0, "zero": np.zeros(n), "one": np.ones(n),
                    "constant": np.full(n, 0.5)}[beta_kind]
            gain = np.ones(n) if gain_kind != "random" else rng.integers(1, 3, n) / 2.0
            bias_mag = rng.integers(0, 3, n) / 4.0
            kern = rng.integers(-4, 5, draw(st.sampled_from(KERNEL_SIZES), label=f"k{i}")) / 4.0
            w_rec = rng.integers(-4, 5, (n, n)) / 4.0
        else:
            theta = rng.uniform(0.2, 3.0, n)
            scale = draw(st.floats(0.3, 3.0), label=f"scale{i}")
            w = rng.normal(0.3, 1.0, (n, prev)) * scale * theta.mean() / np.sqrt(max(1, prev) / 4)
            beta = {"random": rng.uniform(0, 1, n), "zero": np.zeros(n), "one": np.ones(n),
                    "constant": np.full(n, rng.uniform(0.5, 0.99))}[beta_kind]
            gain = np.ones(n) if gain_kind == "one" else rng.uniform(0.1, 2.0, n)
            bias_mag = rng.uniform(0, 0.5, n) * theta
            kern = rng.normal(0, 1.0, draw(st.sampled_from(KERNEL_SIZES), label=f"k{i}")) * theta.mean()
            w_rec = rng.normal(0, 1.0, (n, n)) * theta.mean() / np.sqrt(n / 2)
        if gain_kind == "1-beta":
            gain = 1.0 - beta
        bias = {"zero": np.zeros(n), "positive": bias_mag, "negative": -bias_mag,
                "mixed": bias_mag * rng.choice([-1.0, 1.0], n)}[bias_sign]
        if rec == "none":
            recurrent, delays = np.zeros(0), None
        else:
            d_max = draw(st.integers(0, max_delay), label=f"max_delay{i}")
            delays = rng.integers(0, d_max + 1, n)
            recurrent = w_rec if rec == "dense" else kern
        layers.append(HiddenLayer(weight=w, bias=bias, beta=beta, threshold=theta, gain=gain,
                                  reset=reset, recurrence=rec, recurrent=recurrent,
                                  delays=delays, name=f"layer{i}"))
        prev = n
    c = draw(st.integers(1, max_classes), label="n_classes")
    decision = draw(st.sampled_from(("sum_softmax", "sum_membrane")), label="decision")
    ro_beta = rng.uniform(0, 1, c) if draw(st.booleans(), label="readout_leaky") else np.ones(c)
    readout = Readout(weight=rng.normal(0, 1.0, (c, prev)), bias=rng.normal(0, 0.2, c),
                      beta=ro_beta, gain=rng.uniform(0.2, 1.5, c), decision=decision)
    return Model(layers=tuple(layers), readout=readout,
                 metadata=ModelMetadata(input_channels=n_in, pool=1))


INPUT_KINDS = ("empty", "single", "sparse", "burst", "last_step", "long")


@st.composite
def inputs(draw, n_inputs: int, max_batch: int = 3, max_steps: int = 80,
           long_steps: int = 300, kinds=INPUT_KINDS):
    """A padded batch of binned counts ``x`` (B, T, n_inputs) float32 and ``lengths`` (B,).

    kinds: ``empty`` (no spikes at all), ``single`` (one spike), ``sparse`` (Poisson),
    ``burst`` (dense bursts of multi-counts), ``last_step`` (spikes only on each sample's
    last counted step), ``long`` (up to ``long_steps`` steps).  Lengths are either all T
    or random in [0, T]; steps beyond a length may hold spikes (they must be ignored).
    """
    kind = draw(st.sampled_from(kinds), label="input_kind")
    b = draw(st.integers(1, max_batch), label="batch")
    t_max = long_steps if kind == "long" else max_steps
    n_t = draw(st.integers(0 if kind == "empty" else 1, t_max), label="steps")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="input_seed"))
    if draw(st.booleans(), label="ragged") and n_t > 0:
        lengths = rng.integers(0, n_t + 1, b)
    else:
        lengths = np.full(b, n_t)
    x = np.zeros((b, n_t, n_inputs), np.float32)
    if n_t == 0 or kind == "empty":
        pass
    elif kind == "single":
        x[rng.integers(b), rng.integers(n_t), rng.integers(n_inputs)] = 1
    elif kind in ("sparse", "long"):
        rate = draw(st.floats(0.01, 1.0), label="rate")
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
