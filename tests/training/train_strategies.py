"""Hypothesis strategies for the training tests: small networks, inputs, delays."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from evsim.training import SURROGATES, NetworkConfig, Network


@st.composite
def small_configs(draw, smooth=True, dtype="float64", dropout=True, detach=None):
    """A small NetworkConfig: 1-3 hidden layers of 1-5 neurons, any recurrence, reset,
    gain, surrogate, dropout mode, BatchNorm on/off and loss.  ``detach``: the
    ``detach_reset`` value, or None to draw it."""
    n_layers = draw(st.integers(1, 3))
    hidden = tuple(draw(st.lists(st.integers(1, 5), min_size=n_layers, max_size=n_layers)))
    recurrence = tuple(draw(st.lists(st.sampled_from(["none", "dense", "conv"]), min_size=n_layers, max_size=n_layers)))
    tau = tuple(draw(st.lists(st.floats(1.0, 4.0), min_size=n_layers, max_size=n_layers)))
    gain = tuple(draw(st.lists(st.sampled_from(["one", "1-beta"]), min_size=n_layers, max_size=n_layers)))
    use_dropout = dropout and draw(st.booleans())
    batchnorm = draw(st.booleans())
    n_inputs = draw(st.integers(1, 4))
    if batchnorm:
        # BatchNorm of a layer fed by one input is degenerate: its output is +-(normalised
        # input), independent of W and b up to bn_eps, so their gradients are round-off
        n_inputs = max(n_inputs, 2)
        hidden = tuple(max(n, 2) for n in hidden)
    return NetworkConfig(
        n_inputs=n_inputs,
        hidden=hidden,
        recurrence=recurrence,
        kernel_size=draw(st.sampled_from([1, 3, 5])),
        n_classes=draw(st.integers(2, 4)),
        reset=draw(st.sampled_from(["zero", "subtract"])),
        detach_reset=draw(st.booleans()) if detach is None else detach,
        tau=tau,
        gain=gain,
        threshold=draw(st.sampled_from([0.5, 1.0])),
        surrogate=draw(st.sampled_from(sorted(SURROGATES))),
        surrogate_alpha=draw(st.sampled_from([None, 1.0, 2.0])),
        smooth_forward=smooth,
        dropout=draw(st.sampled_from([0.0, 0.3])) if use_dropout else 0.0,
        rec_dropout=draw(st.sampled_from([0.0, 0.3])) if use_dropout else 0.0,
        dropout_mode=draw(st.sampled_from(["step", "sequence"])),
        batchnorm=batchnorm,
        readout_tau=draw(st.floats(1.0, 4.0)),
        readout_gain=draw(st.sampled_from(["one", "1-beta"])),
        loss=draw(st.sampled_from(["sum_softmax", "sum_logits"])),
        dtype=dtype,
    )


def kink_free_delays(rng, n, max_int=5):
    """Non-integer delays whose fractional part lies in [0.15, 0.35]: with sigma an integer
    or a half-integer no triangle corner (k = 1 + d or 1 + d +- w) sits within 0.1 of a
    step, so the loss is smooth in the delays around them."""
    return rng.integers(0, max_int + 1, n) + rng.uniform(0.15, 0.35, n)


def randomise(net: Network, rng: np.random.Generator, scale: float = 1.0) -> Network:
    """Give every parameter and BatchNorm running statistic a random value (delays kink-free)."""
    for k, p in net.params.items():
        if k.endswith(".delays"):
            p[...] = kink_free_delays(rng, p.size)
        elif k.endswith("bn_weight"):
            p[...] = rng.uniform(0.5, 1.5, p.shape)
        else:
            p[...] = rng.normal(0.0, scale, p.shape)
    for k, b in net.buffers.items():
        if k.endswith("bn_mean"):
            b[...] = rng.normal(0, 0.5, b.shape)
        elif k.endswith("bn_var"):
            b[...] = rng.uniform(0.5, 2.0, b.shape)
    return net
