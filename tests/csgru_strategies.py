"""Random CS-GRU layers and inputs, for hypothesis (``csgru_cases``) and seeded loops
(``random_csgru_case``): C 1..4 channels, Cin 1..3 input channels, P 1..9 positions,
kernels of length 1, 3 or 5 (each its own), both gates, delays 0..6, theta in [0.5, 2],
inputs of spike counts (Poisson) or binary spikes, 0..60 steps."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from evsim.cells.csgru import GATES, make_params

from .strategies import _Draw, _Seeded

KERNEL_SIZES = (1, 3, 5)


def _build(pick, integer_delays=True, sigma_max=0.0, max_steps=60):
    rng = np.random.default_rng(pick.integers(0, 2**32 - 1, "seed"))
    c = pick.integers(1, 4, "C")
    c_in = pick.integers(1, 3, "Cin")
    n_p = pick.integers(1, 9, "P")
    gate = pick.sampled_from(tuple(GATES), "gate")
    scale = pick.floats(0.3, 2.5, "scale")
    theta = float(rng.uniform(0.5, 2.0))

    def kern(c_out, c_src, name):
        k = pick.sampled_from(KERNEL_SIZES, name)
        return rng.normal(0, 1.0, (c_out, c_src, k)) * scale * theta / np.sqrt(c_src * k / 2)

    k_zin = kern(c, c if gate == "current" else c_in, "k_zin")
    d_max = pick.integers(0, 6, "d_max")
    delays = rng.integers(0, d_max + 1, (c, n_p)) if integer_delays else rng.uniform(0, d_max + 0.999, (c, n_p))
    params = make_params(kern(c, c_in, "k_rx"), kern(c, c_in, "k_ix"), k_zin, kern(c, c, "k_rh"),
                         kern(c, c, "k_ih"), kern(c, c, "k_zh"), rng.normal(0, 1.0, c),
                         rng.normal(0, 0.5, c) * theta, rng.normal(0, 1.0, c), delays, gate=gate, theta=theta,
                         integer_delays=integer_delays)
    n_t = pick.integers(0, max_steps, "T")
    kind = pick.sampled_from(("counts", "spikes", "burst"), "input_kind")
    rate = pick.floats(0.02, 1.0, "rate")
    if kind == "counts":
        x = rng.poisson(rate, (n_t, c_in, n_p))
    elif kind == "spikes":
        x = rng.random((n_t, c_in, n_p)) < rate
    else:
        x = np.zeros((n_t, c_in, n_p))
        if n_t:
            t0 = int(rng.integers(n_t))
            x[t0:t0 + 5] = rng.poisson(3.0, x[t0:t0 + 5].shape)
    return params, x.astype(np.float64)


@st.composite
def csgru_cases(draw, **kw):
    """(params, x): a random layer with integer delays and one input sample (T, Cin, P)."""
    return _build(_Draw(draw), **kw)


def random_csgru_case(seed: int, **kw):
    """What :func:`csgru_cases` draws, from ``numpy.random.default_rng(seed)``."""
    return _build(_Seeded(np.random.default_rng(seed)), **kw)


# -- models with CS-GRU layers (mixed stacks) ------------------------------------------------

#: the stack shapes the random models draw: a LIF layer ("lif"), a CS-GRU layer ("csgru")
STACKS = (("csgru",), ("csgru", "csgru"), ("lif", "csgru"), ("lif", "csgru", "csgru"), ("csgru", "lif"),
          ("lif", "csgru", "lif"), ("csgru", "lif", "csgru"))


def _csgru_layer(pick, rng, c_in, n_p, name):
    from evsim.csgru_layer import CSGRULayer

    c = pick.integers(1, 3, f"{name}_C")
    gate = pick.sampled_from(tuple(GATES), f"{name}_gate")
    scale = pick.floats(0.5, 2.5, f"{name}_scale")

    def kern(c_out, c_src, label):
        k = pick.sampled_from(KERNEL_SIZES, f"{name}_{label}")
        return rng.normal(0, 1.0, (c_out, c_src, k)) * scale / np.sqrt(c_src * k / 2)

    d_max = pick.integers(0, 5, f"{name}_dmax")
    return CSGRULayer(kern(c, c_in, "rx"), kern(c, c_in, "ix"), kern(c, c if gate == "current" else c_in, "zin"),
                      kern(c, c, "rh"), kern(c, c, "ih"), kern(c, c, "zh"), rng.normal(0, 1.0, c),
                      rng.normal(0.2, 0.5, c), rng.normal(0, 1.0, c), rng.integers(0, d_max + 1, (c, n_p)),
                      gate=gate, theta=1.0, name=name)


def _lif_layer(pick, rng, n_in, n, name):
    from evsim.model import HiddenLayer

    rec = pick.sampled_from(("none", "conv", "dense"), f"{name}_rec")
    theta = rng.uniform(0.5, 1.5, n)
    w = rng.normal(0.3, 1.0, (n, n_in)) * pick.floats(0.5, 3.0, f"{name}_scale") / np.sqrt(max(1, n_in) / 4)
    recurrent = {"none": np.zeros(0), "conv": rng.normal(0, 1.0, 3), "dense": rng.normal(0, 0.5, (n, n))}[rec]
    return HiddenLayer(weight=w, bias=rng.uniform(-0.2, 0.3, n), beta=rng.uniform(0, 1, n), threshold=theta,
                       gain=np.ones(n), reset=pick.sampled_from(("zero", "subtract"), f"{name}_reset"),
                       recurrence=rec, recurrent=recurrent,
                       delays=None if rec == "none" else rng.integers(0, 4, n), name=name)


def _build_stack(pick, max_steps=40):
    from evsim.model import Model, ModelMetadata, Readout

    rng = np.random.default_rng(pick.integers(0, 2**32 - 1, "seed"))
    kinds = pick.sampled_from(STACKS, "stack")
    n_p = pick.integers(1, 6, "P")
    c_prev = pick.integers(1, 2, "Cin")
    n_inputs = c_prev * n_p if kinds[0] == "csgru" else pick.integers(1, 8, "n_inputs")
    layers, n_prev = [], n_inputs
    for l, kind in enumerate(kinds):
        name = f"layer{l}"
        if kind == "csgru":
            layer = _csgru_layer(pick, rng, c_prev, n_p, name)
            c_prev = layer.channels
        else:   # a LIF layer of Cin x P neurons when a CS-GRU layer follows it
            c_next = pick.integers(1, 2, f"{name}_Cnext")
            n = c_next * n_p if l + 1 < len(kinds) and kinds[l + 1] == "csgru" else pick.integers(1, 8, f"{name}_n")
            layer = _lif_layer(pick, rng, n_prev, n, name)
            c_prev = c_next
        layers.append(layer)
        n_prev = layer.n
    c = pick.integers(1, 4, "classes")
    readout = Readout(weight=rng.normal(0, 1.0, (c, n_prev)), bias=rng.normal(0, 0.2, c),
                      beta=rng.uniform(0, 1, c), gain=rng.uniform(0.2, 1.5, c),
                      decision=pick.sampled_from(("sum_softmax", "sum_membrane"), "decision"))
    model = Model(layers=tuple(layers), readout=readout, metadata=ModelMetadata(input_channels=n_inputs, pool=1))
    b = pick.integers(1, 3, "batch")
    n_t = pick.integers(0, max_steps, "T")
    x = rng.poisson(pick.floats(0.05, 1.0, "rate"), (b, n_t, n_inputs)).astype(np.float64)
    lengths = rng.integers(0, n_t + 1, b) if pick.booleans("ragged") else np.full(b, n_t)
    return model, x, lengths


@st.composite
def stack_cases(draw, **kw):
    """(model, x (B, T, n_inputs), lengths): a random model with CS-GRU layers in one of
    :data:`STACKS` and a padded batch of input counts."""
    return _build_stack(_Draw(draw), **kw)


def random_stack_case(seed: int, **kw):
    """What :func:`stack_cases` draws, from ``numpy.random.default_rng(seed)``."""
    return _build_stack(_Seeded(np.random.default_rng(seed)), **kw)
