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
