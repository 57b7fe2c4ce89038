"""The training forward against a slow NumPy oracle written from the equations of
:mod:`evsim.training.network`, with the delays spread (sigma > 0) and the dropout masks the
forward drew (both recurrent-dropout placements), and the placement's gradients by
finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from evsim.training import Network, NetworkConfig

from .test_train_gradients import assert_fd, randomise


def spread_mask(d: np.ndarray, sigma: float, n_t: int) -> np.ndarray:
    """M[j, k] = max(0, w - |k - 1 - d_j|) / w^2 for k = 0..T-1 (M[:, 0] = 0), w = 1 + sigma."""
    w = 1.0 + sigma
    k = np.arange(n_t)[None, :]
    m = np.maximum(0.0, w - np.abs(k - 1.0 - d[:, None])) / (w * w)
    m[:, 0] = 0.0
    return m


def oracle_layer(c, cfg, l, params, buffers, sigma, zmask, rec_dropout_at):
    """v, s, z, I of hidden layer l for its drive c (B, T, n), step by step in NumPy."""
    n_b, n_t, n = c.shape
    p = f"layer{l}."
    beta, gain, theta = buffers[p + "beta"], buffers[p + "gain"], buffers[p + "threshold"]
    rec = cfg.recurrence[l]
    v = np.zeros((n_b, n_t, n))
    s = np.zeros((n_b, n_t, n))
    z = np.zeros((n_b, n_t, n))
    cur = np.zeros((n_b, n_t, n))
    m = spread_mask(params[p + "delays"], sigma, n_t) if rec != "none" else None
    for t in range(n_t):
        r = np.zeros((n_b, n))
        if rec != "none":
            z[:, t] = sum(m[:, k] * s[:, t - k] for k in range(1, t + 1)) if t else 0.0
            if rec_dropout_at == "spikes":
                z[:, t] *= zmask[:, t]
            if rec == "dense":
                r = z[:, t] @ params[p + "recurrent"].T
            else:
                kern = params[p + "recurrent"]
                h = len(kern) // 2
                for i in range(n):
                    for mm, km in enumerate(kern):
                        if 0 <= i + mm - h < n:
                            r[:, i] += km * z[:, t, i + mm - h]
            if rec_dropout_at == "input":
                r = r * zmask[:, t]
        cur[:, t] = c[:, t] + r
        v_prev = v[:, t - 1] if t else np.zeros((n_b, n))
        s_prev = s[:, t - 1] if t else np.zeros((n_b, n))
        kept = v_prev - theta * s_prev if cfg.reset == "subtract" else v_prev * (1.0 - s_prev)
        v[:, t] = beta * kept + gain * cur[:, t]
        s[:, t] = (v[:, t] >= theta).astype(float)
    return v, s, z, cur


def make_net(recurrence, rec_dropout_at, reset, seed=0):
    cfg = NetworkConfig(n_inputs=5, hidden=(7, 6, 5), recurrence=recurrence, kernel_size=3, n_classes=3,
                        tau=(1.5, 2.0, 1.3), gain=("one", "1-beta", "1-beta"), reset=reset, batchnorm=False,
                        dropout=0.3, rec_dropout=0.4, rec_dropout_at=rec_dropout_at, dropout_mode="step",
                        dtype="float64")
    rng = np.random.default_rng(seed)
    net = randomise(Network.init(cfg, seed), rng, scale=1.5)
    for k in net.delay_names:
        net.params[k][...] = rng.uniform(0.0, 5.0, net.params[k].shape)
    return net


@pytest.mark.parametrize("rec_dropout_at", ["spikes", "input"])
@pytest.mark.parametrize("recurrence, reset", [(("none", "conv", "dense"), "zero"),
                                               (("dense", "conv", "conv"), "subtract")])
def test_training_forward_equals_the_numpy_oracle(recurrence, reset, rec_dropout_at):
    net = make_net(recurrence, rec_dropout_at, reset)
    rng = np.random.default_rng(5)
    x = rng.poisson(1.0, (3, 25, 5)).astype(np.float64)
    sigma = 1.7
    caches, h, u, _, _ = net._forward(x, train=True, rng=np.random.default_rng(9), sigma=sigma, update_stats=False)
    layer_in = x
    n_spikes = 0
    for l, cache in enumerate(caches):
        p = f"layer{l}."
        c = layer_in @ net.params[p + "weight"].T + net.params[p + "bias"]
        if recurrence[l] != "none":
            assert cache.zmask.shape == c.shape and set(np.unique(cache.zmask)) == {0.0, 1 / 0.6}
        v, s, z, cur = oracle_layer(c, net.config, l, net.params, net.buffers, sigma, cache.zmask, rec_dropout_at)
        np.testing.assert_array_equal(cache.s, s, err_msg=f"layer {l} spikes")
        np.testing.assert_allclose(cache.v, v, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cache.cur, cur, rtol=1e-12, atol=1e-12)
        if recurrence[l] != "none":
            np.testing.assert_allclose(cache.z, z, rtol=1e-12, atol=1e-12)
        n_spikes += s.sum()
        layer_in = s * cache.fmask
    a_o = layer_in @ net.params["readout.weight"].T + net.params["readout.bias"]
    u_ref = np.zeros_like(a_o)
    acc = 0.0
    for t in range(a_o.shape[1]):
        acc = net.buffers["readout.beta"] * acc + net.buffers["readout.gain"] * a_o[:, t]
        u_ref[:, t] = acc
    np.testing.assert_allclose(u, u_ref, rtol=1e-12, atol=1e-12)
    assert n_spikes > 20, "too few spikes for the comparison to mean much"


def test_the_two_placements_differ():
    """Same weights, masks and input: masking z or masking R gives different currents
    (a placement option that changed nothing would pass the oracle test trivially)."""
    x = np.random.default_rng(5).poisson(1.0, (3, 25, 5)).astype(np.float64)
    got = {}
    for at in ("spikes", "input"):
        net = make_net(("none", "conv", "dense"), at, "zero")
        caches, *_ = net._forward(x, train=True, rng=np.random.default_rng(9), sigma=1.7, update_stats=False)
        got[at] = caches[2].cur
    assert not np.allclose(got["spikes"], got["input"])


@pytest.mark.parametrize("rec_dropout_at", ["spikes", "input"])
@pytest.mark.parametrize("recurrence", [("dense", "conv"), ("conv", "dense")])
def test_recurrent_dropout_placement_gradients(recurrence, rec_dropout_at):
    cfg = NetworkConfig(n_inputs=3, hidden=(4, 3), recurrence=recurrence, kernel_size=3, n_classes=3,
                        surrogate_alpha=2.0, smooth_forward=True, dropout=0.2, rec_dropout=0.4,
                        rec_dropout_at=rec_dropout_at, dropout_mode="step", batchnorm=True, dtype="float64")
    rng = np.random.default_rng(7)
    net = randomise(Network.init(cfg, 1), rng)
    x = rng.poisson(1.0, (3, 12, 3)).astype(np.float64)
    assert_fd(net, x, np.array([0, 1, 2]), sigma=1.5)
