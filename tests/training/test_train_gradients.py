"""Finite-difference checks of every hand-written gradient.

The step function is replaced by the surrogate's primitive (``smooth_forward=True``), so
the network is smooth and the surrogate backward pass is its exact gradient.  float64,
small hypothesis-drawn networks, central differences; the relative error of each
parameter's gradient must be below 1e-4.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evsim.errors import EvsimError
from evsim.training import Network, NetworkConfig

from .finite_differences import fd_gradient
from .train_strategies import randomise, small_configs

RTOL = 1e-4


def fd_check(net: Network, x, y, sigma, seed=3, keys=None):
    """Compare analytic gradients with 4th-order central differences; returns
    {name: relative error ||fd - g|| / max(||fd||, ||g||, 1e-4 max(1, |L|))}.  The floor only
    matters for gradients that are negligible or vanish in theory (the bias under
    batch-statistics BatchNorm, the weights of a one-input layer under BatchNorm), which are
    then held to an absolute error of 1e-8 max(1, |L|)."""
    loss, grads, _ = net.loss_and_grad(x, y, seed, sigma, update_stats=False)
    # FD round-off: the loss carries ~1e-14 |L| of rounding (BatchNorm over a few rows
    # amplifies it), divided by EPS
    floor = 1e-4 * max(1.0, abs(loss))
    errors = {}
    for k in keys or list(net.params):
        if net.config.batchnorm and k.endswith(".bias") and k.startswith("layer"):
            # zero in theory (batch-statistics BatchNorm removes any constant shift): check
            # that, since finite differences of it only measure round-off
            errors[k] = float(np.abs(grads[k]).max()) / floor
            continue
        p = net.params[k]
        flat = p.reshape(-1)
        fd = fd_gradient(flat, lambda: net.loss_and_grad(x, y, seed, sigma, update_stats=False)[0])
        g = grads[k].reshape(-1)
        scale = max(np.linalg.norm(fd), np.linalg.norm(g))
        diff = np.linalg.norm(fd - g)
        # a gradient that is zero in theory (the bias under batch-statistics BatchNorm)
        # is checked in absolute terms
        errors[k] = diff / max(scale, floor)
    return errors


def assert_fd(net, x, y, sigma, seed=3):
    errors = fd_check(net, x, y, sigma, seed)
    bad = {k: e for k, e in errors.items() if not e < RTOL}
    assert not bad, f"gradient errors above {RTOL}: {bad} (config {net.config})"


@st.composite
def cases(draw):
    cfg = draw(small_configs(detach=False))
    rate_reg = draw(st.sampled_from([0.0, 0.0, 0.5, 5.0]))
    if rate_reg:
        cfg = dataclasses.replace(cfg, rate_reg=rate_reg, rate_target=draw(st.sampled_from([0.0, 0.05, 0.2])),
                                  rate_cost=draw(st.sampled_from(["uniform", "synops"])))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    b = draw(st.integers(1, 3))
    t = draw(st.integers(3, 9))
    x = rng.poisson(1.0, (b, t, cfg.n_inputs)).astype(np.float64)
    # no constant input channel: BatchNorm of a constant (variance 0) amplifies round-off
    x[0, 0], x[0, -1] = 0.0, 2.0
    y = rng.integers(0, cfg.n_classes, b)
    sigma = draw(st.sampled_from([0.0, 0.5, 1.0, 1.5, 3.0]))
    return cfg, seed, x, y, sigma


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_gradient_matches_finite_differences(case):
    cfg, seed, x, y, sigma = case
    net = randomise(Network.init(cfg, seed), np.random.default_rng(seed + 1))
    assert_fd(net, x, y, sigma, seed=seed % 1000)


# explicit cases so each path is covered whatever hypothesis draws
PATHS = [
    dict(recurrence=("none", "conv"), reset="zero"),
    dict(recurrence=("dense", "conv"), reset="zero"),
    dict(recurrence=("conv", "dense"), reset="subtract"),
    dict(recurrence=("dense", "none"), reset="subtract"),
]


@pytest.mark.parametrize("surrogate", ["arctan", "fast_sigmoid", "triangle"])
@pytest.mark.parametrize("path", PATHS)
def test_paths(path, surrogate):
    cfg = NetworkConfig(n_inputs=3, hidden=(4, 3), kernel_size=3, n_classes=3, surrogate=surrogate,
                        surrogate_alpha=2.0, smooth_forward=True, dropout=0.2, rec_dropout=0.2,
                        dropout_mode="step", batchnorm=True, dtype="float64", detach_reset=False, **path)
    rng = np.random.default_rng(7)
    net = randomise(Network.init(cfg, 1), rng)
    x = rng.poisson(1.0, (3, 12, 3)).astype(np.float64)
    y = np.array([0, 1, 2])
    assert_fd(net, x, y, sigma=1.5)


def penalty_case(seed, y, **cfg_kw):
    """A small smooth-forward float64 network with a spike-rate penalty, its input, and the
    loss, gradients and stats of the same network without the penalty."""
    cfg = NetworkConfig(n_inputs=3, hidden=(4, 3), kernel_size=3, surrogate_alpha=2.0, smooth_forward=True,
                        dropout=0.2, rec_dropout=0.2, batchnorm=True, dtype="float64", **cfg_kw)
    rng = np.random.default_rng(seed)
    net = randomise(Network.init(cfg, 1), rng)
    x = rng.poisson(1.0, (3, 12, 3)).astype(np.float64)
    base = Network(dataclasses.replace(cfg, rate_reg=0.0), net.params, net.buffers)
    return cfg, net, x, base.loss_and_grad(x, y, 3, 1.5, update_stats=False)


@pytest.mark.parametrize("target", ["l1", "between"])
@pytest.mark.parametrize("path", [PATHS[1], PATHS[2]])
def test_rate_penalty_gradients(path, target):
    """The spike-rate penalty, weighted heavily so that its share of every gradient is far
    above the FD tolerance: L1 form (rate_target 0), and the squared hinge with the target
    between the two layers' rates (one layer penalised, one not)."""
    y = np.array([0, 1, 2])
    cfg, net, x, (l0, g0, _) = penalty_case(11, y, n_classes=3, rate_reg=20.0, **path)
    rates = np.array(net.loss_and_grad(x, y, 3, 1.5, update_stats=False)[2]["spike_rate"])
    if target == "between":
        # layer 1 is penalised; layer 0 is not, its parameters feel P only through layer 1
        assert rates[1] > rates[0] + 0.01
        net.config = dataclasses.replace(cfg, rate_reg=2000.0, rate_target=float(rates.mean()))
    loss, grads, stats = net.loss_and_grad(x, y, 3, 1.5, update_stats=False)
    if target == "l1":
        expected = 20.0 * rates.sum()
    else:
        expected = 2000.0 * (rates.max() - rates.mean()) ** 2
    np.testing.assert_allclose(stats["rate_penalty"], expected, rtol=1e-12)
    np.testing.assert_allclose(loss, l0 + stats["rate_penalty"], rtol=1e-12)
    # the penalty is a large part of the gradient of every hidden parameter (the biases
    # excepted: zero under batch-statistics BatchNorm) ...
    for k in net.params:
        if k.startswith("layer") and not k.endswith(".bias"):
            assert np.linalg.norm(grads[k] - g0[k]) > 0.1 * np.linalg.norm(grads[k]), k
    assert np.array_equal(grads["readout.weight"], g0["readout.weight"])
    # ... and the whole gradient matches finite differences
    assert_fd(net, x, y, sigma=1.5)


@pytest.mark.parametrize("target", ["l1", "hinge"])
def test_synops_penalty_value_and_gradients(target):
    """rate_cost "synops": one fan-out-weighted rate C = sum_l f_l S_l / (B T sum_l n_l f_l),
    computed here by hand from the spike counts; P and the whole gradient match finite
    differences (the penalty weighted so that it dominates)."""
    y = np.array([0, 1, 4])
    cfg, net, x, (l0, g0, s0) = penalty_case(5, y, n_classes=5, rate_reg=50.0, rate_cost="synops",
                                             recurrence=("dense", "conv"), reset="zero")
    assert cfg.fan_out() == (3 + 4, 5 + 3)       # next layer + dense n_0; classes + conv k
    # smooth forward: "spikes" are the surrogate primitive, so rates are means of those values
    r = np.array(s0["spike_rate"])
    c = (7 * 4 * r[0] + 8 * 3 * r[1]) / (4 * 7 + 3 * 8)
    if target == "hinge":
        net.config = dataclasses.replace(cfg, rate_reg=3000.0, rate_target=float(c) - 0.02)
        expected = 3000.0 * 0.02 ** 2
    else:
        expected = 50.0 * c
    loss, grads, stats = net.loss_and_grad(x, y, 3, 1.5, update_stats=False)
    np.testing.assert_allclose(stats["rate_penalty"], expected, rtol=1e-9)
    np.testing.assert_allclose(loss, l0 + stats["rate_penalty"], rtol=1e-12)
    for k in net.params:
        if k.startswith("layer") and not k.endswith(".bias"):
            assert np.linalg.norm(grads[k] - g0[k]) > 0.05 * np.linalg.norm(grads[k]), k
    assert_fd(net, x, y, sigma=1.5)
    # below the target: no penalty and exactly the unregularised gradients
    net.config = dataclasses.replace(cfg, rate_reg=3000.0, rate_target=float(c) + 0.02)
    loss, grads, stats = net.loss_and_grad(x, y, 3, 1.5, update_stats=False)
    assert stats["rate_penalty"] == 0.0 and loss == l0
    assert all(np.array_equal(grads[k], g0[k]) for k in grads)


@pytest.mark.parametrize("cost", ["uniform", "synops"])
def test_rate_scale_is_a_factor_on_the_weight(cost):
    """loss_and_grad(rate_scale=s) is the network with rate_reg * s, bit for bit (the
    trainer's warm-up ramp), and rate_scale=0 is the unregularised network."""
    cfg = NetworkConfig(n_inputs=3, hidden=(4, 3), kernel_size=3, n_classes=3, dropout=0.0, rec_dropout=0.0,
                        dtype="float64", rate_reg=8.0, rate_cost=cost)
    rng = np.random.default_rng(2)
    net = randomise(Network.init(cfg, 1), rng)
    x = rng.poisson(2.0, (2, 10, 3)).astype(np.float64)
    y = np.array([0, 2])
    for scale, reg in ((0.25, 2.0), (0.0, 0.0)):
        ref = Network(dataclasses.replace(cfg, rate_reg=reg), net.params, net.buffers)
        la, ga, sa = net.loss_and_grad(x, y, 3, 1.0, update_stats=False, rate_scale=scale)
        lb, gb, sb = ref.loss_and_grad(x, y, 3, 1.0, update_stats=False)
        assert la == lb and sa["rate_penalty"] == sb["rate_penalty"]
        assert all(np.array_equal(ga[k], gb[k]) for k in ga)
    assert net.loss_and_grad(x, y, 3, 1.0, update_stats=False)[2]["rate_penalty"] > 0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(EvsimError, match="rate_scale"):
            net.loss_and_grad(x, y, 3, 1.0, rate_scale=bad)


def test_delay_gradient_nonzero_and_correct_at_sigma_zero():
    """With sigma = 0 and non-integer delays the spread still interpolates between two steps,
    so delays get a gradient."""
    cfg = NetworkConfig(n_inputs=2, hidden=(3,), recurrence="dense", n_classes=2, smooth_forward=True,
                        dropout=0.0, rec_dropout=0.0, batchnorm=False, dtype="float64")
    rng = np.random.default_rng(3)
    net = randomise(Network.init(cfg, 0), rng)
    x = rng.poisson(1.5, (2, 15, 2)).astype(np.float64)
    y = np.array([0, 1])
    _, grads, _ = net.loss_and_grad(x, y, None, 0.0)
    assert np.abs(grads["layer0.delays"]).max() > 1e-6
    errors = fd_check(net, x, y, 0.0, keys=["layer0.delays"])
    assert errors["layer0.delays"] < RTOL


def test_float32_gradients_close_to_float64():
    cfg64 = NetworkConfig(n_inputs=4, hidden=(6, 5), kernel_size=3, n_classes=3, dropout=0.0, rec_dropout=0.0,
                          smooth_forward=True, dtype="float64")
    net64 = randomise(Network.init(cfg64, 0), np.random.default_rng(0), scale=0.5)
    net32 = Network.from_state_dict({**net64.state_dict(), "config": np.array(cfg64.to_json().replace("float64", "float32"))})
    x = np.random.default_rng(1).poisson(1.0, (4, 10, 4))
    y = np.array([0, 1, 2, 0])
    l64, g64, _ = net64.loss_and_grad(x, y)
    l32, g32, _ = net32.loss_and_grad(x, y)
    assert abs(l64 - l32) < 1e-4
    for k in g64:
        assert g32[k].dtype == np.float32
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-2, atol=1e-4 * max(1.0, np.abs(g64[k]).max()))


@pytest.mark.parametrize("smooth", [True, False])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_detached_reset_matches_hand_derivation(reset, smooth):
    """One input, one neuron, sum_logits readout: with the reset detached,
    dL/dv_t = e_t sg(v_t - theta) + dL/dv_{t+1} * (beta (1 - s_t) | beta), where e_t is
    dL/ds_t from the readout; dL/dw = sum_t g x_t dL/dv_t."""
    from evsim.training.surrogates import arctan_grad, arctan_primitive

    cfg = NetworkConfig(n_inputs=1, hidden=(1,), recurrence="none", n_classes=2, reset=reset, detach_reset=True,
                        tau=2.0, gain="one", surrogate="arctan", surrogate_alpha=2.0, smooth_forward=smooth,
                        dropout=0.0, rec_dropout=0.0, batchnorm=False, readout_tau=2.0, loss="sum_logits",
                        dtype="float64")
    net = Network.init(cfg, 0)
    net.params["layer0.weight"][...] = 0.9
    net.params["layer0.bias"][...] = 0.1
    net.params["readout.weight"][...] = [[1.0], [-0.5]]
    x = np.array([[[1.0], [0.2], [1.5], [0.0], [0.7], [1.2]]])
    y = np.array([1])
    _, grads, _ = net.loss_and_grad(x, y)
    beta, g, theta, beta_o = 0.5, 1.0, 1.0, 0.5
    w, b, wo = 0.9, 0.1, np.array([1.0, -0.5])
    spike = (lambda h: arctan_primitive(h, 2.0)) if smooth else (lambda h: float(h >= 0))
    n_t = x.shape[1]
    v, s = np.zeros(n_t), np.zeros(n_t)
    v_prev = s_prev = 0.0
    for t in range(n_t):
        a = w * x[0, t, 0] + b
        v[t] = (beta * v_prev * (1 - s_prev) if reset == "zero" else beta * (v_prev - theta * s_prev)) + g * a
        s[t] = spike(v[t] - theta)
        v_prev, s_prev = v[t], s[t]
    scores = np.zeros(2)
    u = np.zeros(2)
    for t in range(n_t):
        u = beta_o * u + (wo * s[t] + net.params["readout.bias"])
        scores += u
    p = np.exp(scores - scores.max())
    p /= p.sum()
    g_scores = p - np.eye(2)[1]
    e = np.array([g_scores @ wo * sum(beta_o ** (t2 - t) for t2 in range(t, n_t)) for t in range(n_t)])
    gv = np.zeros(n_t)
    for t in range(n_t - 1, -1, -1):
        nxt = 0.0 if t == n_t - 1 else gv[t + 1] * (beta * (1 - s[t]) if reset == "zero" else beta)
        gv[t] = e[t] * arctan_grad(v[t] - theta, 2.0) + nxt
    np.testing.assert_allclose(grads["layer0.weight"][0, 0], np.sum(g * x[0, :, 0] * gv), rtol=1e-12)
    np.testing.assert_allclose(grads["layer0.bias"][0], np.sum(g * gv), rtol=1e-12)


@pytest.mark.parametrize("loss", ["sum_softmax", "sum_logits"])
def test_label_smoothing_value_and_gradients(loss):
    """label_smoothing e: the loss is -mean_b sum_c q_bc log p_bc with q = (1 - e) onehot + e / C
    (computed here from the scores by hand), it differs from the plain loss, and every
    gradient matches finite differences."""
    from evsim.training import cross_entropy

    y = np.array([0, 1, 2])
    cfg, net, x, (l0, g0, _) = penalty_case(13, y, n_classes=3, loss=loss)
    net.config = dataclasses.replace(cfg, label_smoothing=0.3)
    loss_value, grads, _ = net.loss_and_grad(x, y, 3, 1.5, update_stats=False)
    *_, scores = net._forward(net._check_x(x), train=True, rng=np.random.default_rng(3), sigma=1.5,
                              update_stats=False)
    logp = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    q = np.full((3, 3), 0.1)
    q[np.arange(3), y] += 0.7
    np.testing.assert_allclose(loss_value, -(q * logp).sum() / 3, rtol=1e-12)
    assert abs(loss_value - l0) > 1e-3
    np.testing.assert_allclose(cross_entropy(scores, y, 0.3)[0], loss_value, rtol=1e-12)
    assert_fd(net, x, y, sigma=1.5)


def test_label_smoothing_zero_is_the_plain_loss_and_is_checked():
    from evsim.training.config import ConfigError

    y = np.array([0, 1, 2])
    cfg, net, x, (l0, g0, _) = penalty_case(13, y, n_classes=3)
    assert cfg.label_smoothing == 0.0
    net.config = dataclasses.replace(cfg, label_smoothing=0)
    loss_value, grads, _ = net.loss_and_grad(x, y, 3, 1.5, update_stats=False)
    assert loss_value == l0 and all(np.array_equal(grads[k], g0[k]) for k in g0)
    for bad in (-0.1, 1.0, True, "0.1", float("nan")):
        with pytest.raises(ConfigError, match="label_smoothing"):
            NetworkConfig(label_smoothing=bad)
