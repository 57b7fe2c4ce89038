"""CS-GRU training kernels: forward = the dense reference, and finite-difference checks
of every hand-written gradient (the six kernels, three biases, delays, and the input).

As in test_train_gradients.py: float64, the step function replaced by the surrogate's
smooth primitive, 4th-order central differences, relative error below 1e-4.  The
detached reset is checked as the exact gradient of the function whose reset subtracts a
fixed spike train (the forward's ``reset_spikes``, held at the spikes of the point).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evsim.cells.csgru import make_params
from evsim.cells.csgru_reference import run_reference
from evsim.training.csgru import PARAM_NAMES, backward, forward, init_params
from evsim.training.surrogates import SURROGATES

from .finite_differences import fd_gradient

RTOL = 1e-4


def loss_fn(params, x, weights, *, sigma, surrogate, alpha, reset_spikes=None):
    """L = sum G . s (smooth spikes): a fixed random linear readout of the layer."""
    cache = forward(params, x, sigma=sigma, surrogate=surrogate, alpha=alpha, smooth=True,
                    reset_spikes=reset_spikes)
    return float(np.sum(weights * cache.s)), cache


def fd_errors(params, x, weights, *, sigma, surrogate="inverse_quadratic", alpha=10.0, detach=False,
              names=PARAM_NAMES, check_input=True):
    """{name: ||fd - g|| / max(||fd||, ||g||, 1e-4 max(1, |L|))} for every array in ``names``
    (and ``x``), plus the gradient norms (to show they are not trivially zero)."""
    loss, cache = loss_fn(params, x, weights, sigma=sigma, surrogate=surrogate, alpha=alpha)
    reset = cache.s.copy() if detach else None
    grads, gx = backward(params, cache, weights, detach_reset=detach)
    grads = dict(grads, x=gx)
    arrays = {n: getattr(params, n) for n in names}
    if check_input:
        arrays["x"] = x
    floor = 1e-4 * max(1.0, abs(loss))
    errors, norms = {}, {}
    for name, arr in arrays.items():
        arr = arr if name == "x" else arr.copy()
        flat = arr.reshape(-1)
        p = params if name == "x" else params._replace(**{name: arr})
        fd = fd_gradient(flat, lambda: loss_fn(p, x, weights, sigma=sigma, surrogate=surrogate, alpha=alpha,
                                               reset_spikes=reset)[0])
        g = grads[name].reshape(-1)
        errors[name] = np.linalg.norm(fd - g) / max(np.linalg.norm(fd), np.linalg.norm(g), floor)
        norms[name] = float(np.linalg.norm(g))
    return errors, norms


def case(gate, delays, seed=0, c=2, c_in=2, n_p=4, k=3, n_t=9, n_b=2):
    rng = np.random.default_rng(seed)
    params = init_params(c, c_in, n_p, k, gate=gate, delay_range=(0.2, 3.8) if delays else (0, 0), rng=rng)
    params = params._replace(k_ix=params.k_ix * 2.5, b_i=params.b_i + 0.3)   # drive v up to theta
    x = rng.poisson(1.0, (n_b, n_t, c_in, n_p)).astype(np.float64)
    weights = rng.normal(0, 1.0, (n_b, n_t, c, n_p))
    return params, x, weights


def assert_fd(errors, norms):
    bad = {k: e for k, e in errors.items() if not e < RTOL}
    assert not bad, f"gradient errors above {RTOL}: {bad}"
    assert all(v > 1e-6 for v in norms.values()), f"a gradient is (nearly) zero: {norms}"


@pytest.mark.parametrize("detach", [False, True], ids=["reset", "detached"])
@pytest.mark.parametrize("delays", [True, False], ids=["delays", "no_delays"])
@pytest.mark.parametrize("gate", ["current", "input"])
def test_every_gradient_matches_finite_differences(gate, delays, detach):
    """Both gates x with / without delays x both reset options; every parameter and the
    input.  Without delays (d = 0, sigma = 0: the plain CS-GRU) the delays are not learned."""
    params, x, weights = case(gate, delays)
    names = PARAM_NAMES if delays else tuple(n for n in PARAM_NAMES if n != "delays")
    errors, norms = fd_errors(params, x, weights, sigma=1.3 if delays else 0.0, detach=detach, names=names)
    assert set(errors) == set(names) | {"x"}
    assert_fd(errors, norms)


def test_detaching_changes_the_gradient():
    """The reset path carries gradient: detaching it changes every kernel's gradient."""
    params, x, weights = case("current", True)
    cache = forward(params, x, sigma=1.0, smooth=True)
    full, _ = backward(params, cache, weights)
    detached, _ = backward(params, cache, weights, detach_reset=True)
    for name in PARAM_NAMES:
        assert not np.allclose(full[name], detached[name], rtol=1e-3), name


def test_delay_gradient_at_sigma_zero():
    """sigma = 0, non-integer delays: the spread still interpolates two steps; d gets a gradient."""
    params, x, weights = case("input", True, seed=4)
    errors, norms = fd_errors(params, x, weights, sigma=0.0, names=("delays",), check_input=False)
    assert_fd(errors, norms)


@st.composite
def random_cases(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    gate = draw(st.sampled_from(["current", "input"]))
    c, c_in, n_p = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 5))
    ks = [draw(st.sampled_from([1, 3, 5])) for _ in range(6)]
    bound = np.sqrt(1.0 / c)
    shapes = [(c, c_in), (c, c_in), (c, c if gate == "current" else c_in), (c, c), (c, c), (c, c)]
    kernels = [rng.uniform(-bound, bound, s + (k,)) for s, k in zip(shapes, ks)]
    kernels[1] *= 2.5
    # real delays at least 0.05 from the kinks of the triangle (whole and half steps for
    # these sigmas), where finite differences would straddle a corner
    d_max = draw(st.sampled_from([0, 1, 4]))
    delays = (rng.integers(0, d_max + 1, (c, n_p)) + rng.uniform(0.05, 0.45, (c, n_p))
              + 0.5 * rng.integers(0, 2, (c, n_p)))
    theta = draw(st.sampled_from([0.5, 1.0, 1.5]))
    params = make_params(*kernels, *(rng.uniform(-bound, bound, c) for _ in range(3)), delays, gate=gate, theta=theta)
    surrogate = draw(st.sampled_from(sorted(SURROGATES)))
    alpha = 10.0 if surrogate == "inverse_quadratic" else 2.0
    x = rng.poisson(1.0, (draw(st.integers(1, 2)), draw(st.integers(2, 8)), c_in, n_p)).astype(np.float64)
    weights = rng.normal(0, 1.0, x.shape[:2] + (c, n_p))
    return params, x, weights, draw(st.sampled_from([0.0, 0.5, 1.5, 3.0])), surrogate, alpha, draw(st.booleans())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_cases())
def test_random_layers_match_finite_differences(case):
    """Random shapes (kernel lengths differ per kernel), gates, surrogates, spreads,
    thresholds, resets."""
    params, x, weights, sigma, surrogate, alpha, detach = case
    errors, _ = fd_errors(params, x, weights, sigma=sigma, surrogate=surrogate, alpha=alpha, detach=detach)
    bad = {k: e for k, e in errors.items() if not e < RTOL}
    assert not bad, f"gradient errors above {RTOL}: {bad}"


def test_two_layers_chain_through_the_input_gradient():
    """Layer 2 on layer 1's spikes: dL/ds_1 = layer 2's input gradient; layer 1's
    parameters checked by finite differences of the stacked loss."""
    p1, x, _ = case("current", True, seed=7, c=2, c_in=1, n_p=4)
    rng = np.random.default_rng(8)
    p2 = init_params(3, 2, 4, 3, gate="input", delay_range=(0.5, 2.5), rng=rng)
    p2 = p2._replace(k_ix=p2.k_ix * 3.0)
    weights = rng.normal(0, 1.0, x.shape[:2] + (3, 4))

    def stacked(params1):
        c1 = forward(params1, x, sigma=0.8, smooth=True)
        c2 = forward(p2, c1.s, sigma=0.8, smooth=True)
        return float(np.sum(weights * c2.s)), c1, c2

    _, c1, c2 = stacked(p1)
    _, gs1 = backward(p2, c2, weights)
    grads, _ = backward(p1, c1, gs1)
    for name in ("k_rx", "k_zin", "k_rh", "b_z", "delays"):
        arr = getattr(p1, name).copy()
        flat = arr.reshape(-1)
        fd = fd_gradient(flat, lambda: stacked(p1._replace(**{name: arr}))[0])
        g = grads[name].reshape(-1)
        assert np.linalg.norm(fd - g) < RTOL * max(np.linalg.norm(fd), 1e-8), name


# -- the training forward against the reference --------------------------------------

def _primitive(surrogate, alpha):
    return np.vectorize(lambda u: SURROGATES[surrogate].primitive(float(u), alpha))


@pytest.mark.parametrize("gate", ["current", "input"])
@pytest.mark.parametrize("sigma", [0.0, 1.7])
def test_forward_equals_reference(gate, sigma):
    """Smooth forward (and a fixed reset train) equals the reference to 1e-12; with H
    and integer delays, identical rasters (no value lies within 1e-9 of theta here)."""
    params, x, _ = case(gate, True, seed=11, n_t=14)
    cache = forward(params, x, sigma=sigma, smooth=True)
    reset = np.random.default_rng(0).random(cache.s.shape)
    fixed = forward(params, x, sigma=sigma, smooth=True, reset_spikes=reset)
    for b in range(x.shape[0]):
        ref = run_reference(params, x[b], sigma=sigma, spike=_primitive("inverse_quadratic", 10.0))
        ref_fixed = run_reference(params, x[b], sigma=sigma, spike=_primitive("inverse_quadratic", 10.0),
                                  reset_spikes=reset[b])
        for name in ("r", "i", "z", "v", "s", "s_hat"):
            np.testing.assert_allclose(getattr(cache, name)[b], getattr(ref, name), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(getattr(fixed, name)[b], getattr(ref_fixed, name), rtol=1e-12, atol=1e-12)
    whole = params._replace(delays=np.round(params.delays))
    cache = forward(whole, x, sigma=0.0)
    for b in range(x.shape[0]):
        ref = run_reference(whole, x[b])
        assert np.min(np.abs(ref.v - whole.theta)) > 1e-9
        assert np.array_equal(cache.s[b], ref.s) and cache.s[b].any()


def test_parallel_build_equals_serial(monkeypatch):
    """The batch-parallel kernels (prange over samples) give the serial kernels' results."""
    import evsim.training.csgru_kernels as ck

    params, x, weights = case("current", True, seed=5, n_b=3, n_t=10)
    results = []
    for threshold in (10**12, 0):                     # serial, then parallel
        monkeypatch.setattr(ck, "PARALLEL_MIN_WORK", threshold)
        cache = forward(params, x, sigma=1.0)
        grads, gx = backward(params, cache, weights)
        results.append((cache, grads, gx))
    (c0, g0, x0), (c1, g1, x1) = results
    assert np.array_equal(c0.s, c1.s) and c0.s.any()
    np.testing.assert_allclose(c1.v, c0.v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x1, x0, rtol=1e-12, atol=1e-12)
    for name in PARAM_NAMES:
        np.testing.assert_allclose(g1[name], g0[name], rtol=1e-12, atol=1e-12)
