"""Training forward = inference: the training network in evaluation mode (integer delays,
sigma = 0, no dropout, running-statistics BatchNorm) gives the same spikes and scores as
``evsim.reference.simulate`` on the exported model.

Parameters are drawn so that the exported float32 file holds exactly the network's float64
values (float32-representable weights, power-of-two BatchNorm scales, dyadic offsets, bn_eps
0), so both sides compute in float64 from identical numbers; a differing spike is allowed
only at a floating-point tie: the membrane within 1e-9 max(1, |theta|) of threshold.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evsim.model import ModelMetadata, load_model
from evsim.reference import simulate
from evsim.training import Network

from .train_strategies import small_configs


def f32(a):
    return np.asarray(a, np.float32).astype(np.float64)


def exact_params(net: Network, rng: np.random.Generator) -> Network:
    """Random parameters that survive export (BN folding, float32) exactly."""
    dyadic = lambda shape: rng.integers(-32, 33, shape) / 64.0
    for k, p in net.params.items():
        if k.endswith(".delays"):
            p[...] = rng.integers(0, 6, p.shape)
        elif k.endswith(".weight") and not k.endswith("bn_weight"):
            p[...] = f32(rng.normal(0.4, 1.0, p.shape))
        elif k.endswith("bn_weight"):
            p[...] = rng.choice([-1.0, 1.0], p.shape) * 2.0 ** rng.integers(-1, 2, p.shape)
        elif k.endswith(".recurrent"):
            p[...] = f32(rng.normal(0.0, 1.0, p.shape))
        else:  # biases, bn_bias
            p[...] = dyadic(p.shape)
    for k, b in net.buffers.items():
        if k.endswith("bn_mean"):
            b[...] = dyadic(b.shape)
        elif k.endswith("bn_var"):
            b[...] = 4.0 ** rng.integers(-1, 2, b.shape)
        elif k.endswith("beta") or k.endswith("gain"):
            b[...] = f32(b)
    return net


def check_same(net: Network, x: np.ndarray, model):
    ref = simulate(model, x, record_spikes=True)
    caches, _, u, _, scores = net._forward(net._check_x(x), train=False, rng=None, sigma=0.0, update_stats=False)
    theta = net.config.threshold
    n_b = x.shape[0]
    for b in range(n_b):
        first = None
        for l, c in enumerate(caches):
            diff = np.nonzero(np.any(ref.spikes[l][b] != c.s[b], axis=1))[0]
            if diff.size and (first is None or diff[0] < first[0]):
                first = (diff[0], l)
        if first is None:
            np.testing.assert_allclose(u[b], ref.readout[b], rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(scores[b], ref.scores[b], rtol=1e-9, atol=1e-9)
        else:
            t, l = first
            i = np.nonzero(ref.spikes[l][b, t] != caches[l].s[b, t])[0]
            gap = np.abs(caches[l].v[b, t, i] - theta)
            assert np.all(gap <= 1e-9 * max(1.0, abs(theta))), f"sample {b}: spikes differ at step {t} of layer {l} with membrane {theta} + {gap}"
    return ref


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_configs(smooth=False, dropout=True), st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 25))
def test_training_forward_equals_reference(cfg, seed, n_b, n_t):
    cfg = dataclasses.replace(cfg, bn_eps=0.0)
    rng = np.random.default_rng(seed)
    net = exact_params(Network.init(cfg, seed), rng)
    x = rng.poisson(1.0, (n_b, n_t, cfg.n_inputs)).astype(np.float64)
    model = net.export(ModelMetadata(input_channels=cfg.n_inputs, pool=1))
    ref = check_same(net, x, model)
    res = net.evaluate(x)
    np.testing.assert_array_equal(res.predictions, np.argmax(res.scores, axis=1))
    assert ref.scores.shape == res.scores.shape


def test_equivalence_through_a_saved_file(tmp_path):
    """A larger network with every recurrence kind and many spikes, through Model.save."""
    from evsim.training import NetworkConfig

    cfg = NetworkConfig(n_inputs=10, hidden=(16, 12, 14), recurrence=("none", "conv", "dense"), kernel_size=5,
                        n_classes=4, reset="subtract", tau=(1.05, 1.169, 2.0), bn_eps=0.0, dtype="float64")
    rng = np.random.default_rng(0)
    net = exact_params(Network.init(cfg, 0), rng)
    x = rng.poisson(0.8, (4, 60, 10)).astype(np.float64)
    path = tmp_path / "m.npz"
    net.export(ModelMetadata(input_channels=20, pool=2)).save(path)
    ref = check_same(net, x, load_model(path))
    assert all(s.mean() > 0.02 for s in ref.spikes), "test network should spike"
    assert ref.spikes[1].sum() > 0


def test_train_mode_without_dropout_matches_eval_mode_with_batch_stats_as_running():
    """With no dropout, sigma 0 and integer delays, the training forward (batch-statistics
    BatchNorm) equals evaluation once the running statistics are the batch's."""
    from evsim.training import NetworkConfig

    cfg = NetworkConfig(n_inputs=6, hidden=(8, 8), recurrence=("none", "conv"), kernel_size=3, n_classes=3,
                        dropout=0.0, rec_dropout=0.0, bn_eps=1e-5, bn_momentum=1.0, dtype="float64")
    net = Network.init(cfg, 0)
    for k in net.delay_names:
        net.params[k][...] = np.rint(net.params[k]) % 7
    x = np.random.default_rng(1).poisson(1.0, (3, 40, 6)).astype(np.float64)
    caches_t, _, _, _, scores_t = net._forward(x, train=True, rng=None, sigma=0.0, update_stats=True)
    # momentum 1 stores the batch statistics; running var is unbiased, batch var biased
    rows = 3 * 40
    for l in range(2):
        net.buffers[f"layer{l}.bn_var"] *= (rows - 1) / rows
    caches_e, _, _, _, scores_e = net._forward(x, train=False, rng=None, sigma=0.0, update_stats=False)
    for ct, ce in zip(caches_t, caches_e):
        np.testing.assert_allclose(ct.v, ce.v, atol=1e-9)
    np.testing.assert_allclose(scores_t, scores_e, atol=1e-9)
