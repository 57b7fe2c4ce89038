"""The batch-parallel builds of the LIF kernels equal the serial builds, bit for bit.

``training.network`` switches to ``lif_fwd_parallel`` / ``lif_bwd_parallel`` only above
``PARALLEL_MIN_WORK`` neuron-steps per layer, which no other test reaches; here the
threshold is patched to 0 (every layer parallel) and to infinity (every layer serial) and
the two runs of the same training step are compared exactly.  Every thread of the
parallel build owns one sample, so nothing is summed in a different order.
"""

from __future__ import annotations

import numpy as np
import pytest

from evsim.training import Network, NetworkConfig
from evsim.training import _kernels as K

from .train_strategies import randomise


def _spy(monkeypatch, name, calls):
    """Replace ``K.<name>`` by a wrapper that counts its calls and runs the real kernel."""
    real = getattr(K, name)

    def wrapped(*args):
        calls[name] = calls.get(name, 0) + 1
        return real(*args)

    monkeypatch.setattr(K, name, wrapped)


def _step(net, x, y, sigma):
    caches, _, u, _, scores = net._forward(net._check_x(x), train=True, rng=7, sigma=sigma, update_stats=False)
    loss, grads, _ = net.loss_and_grad(x, y, rng=7, sigma=sigma, update_stats=False)
    return caches, u, scores, loss, grads


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("recurrence", [("none", "conv", "dense"), ("conv", "dense", "conv")])
def test_parallel_kernels_equal_serial(monkeypatch, recurrence, dtype):
    cfg = NetworkConfig(n_inputs=6, hidden=(9, 8, 7), recurrence=recurrence, kernel_size=3, n_classes=3,
                        dropout=0.3, rec_dropout=0.25, dropout_mode="step", dtype=dtype)
    net = randomise(Network.init(cfg, seed=1), np.random.default_rng(2), scale=0.8)
    for k in net.delay_names:
        net.params[k][...] = np.random.default_rng(3).uniform(0.0, 6.0, net.params[k].shape)
    rng = np.random.default_rng(4)
    x = rng.poisson(0.6, (5, 40, 6)).astype(np.float64)
    y = rng.integers(0, 3, 5)
    sigma = 1.5

    calls: dict = {}
    for name in ("layer_fwd_parallel", "layer_bwd_parallel", "layer_fwd_serial", "layer_bwd_serial"):
        _spy(monkeypatch, name, calls)

    monkeypatch.setattr(K, "PARALLEL_MIN_WORK", 10**18)
    serial = _step(net, x, y, sigma)
    assert calls == {"layer_fwd_serial": 6, "layer_bwd_serial": 3}
    calls.clear()
    monkeypatch.setattr(K, "PARALLEL_MIN_WORK", 0)
    parallel = _step(net, x, y, sigma)
    assert calls == {"layer_fwd_parallel": 6, "layer_bwd_parallel": 3}

    (c_s, u_s, sc_s, loss_s, g_s), (c_p, u_p, sc_p, loss_p, g_p) = serial, parallel
    assert sum(c.s.sum() for c in c_s) > 0, "no spikes: the comparison would be vacuous"
    for l, (a, b) in enumerate(zip(c_s, c_p)):
        for field in ("v", "s", "z", "zmask", "fmask", "cur", "a"):
            fa, fb = getattr(a, field), getattr(b, field)
            if fa is None:
                assert fb is None
            else:
                np.testing.assert_array_equal(fa, fb, err_msg=f"layer {l} {field}")
    np.testing.assert_array_equal(u_s, u_p)
    np.testing.assert_array_equal(sc_s, sc_p)
    assert loss_s == loss_p
    assert set(g_s) == set(g_p) == set(net.params)
    for k in g_s:
        np.testing.assert_array_equal(g_s[k], g_p[k], err_msg=k)
    # the delays and the recurrent weights do get a gradient: the check is not vacuous
    for k in net.delay_names:
        assert np.any(g_s[k] != 0), k
