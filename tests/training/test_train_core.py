"""Unit tests of the training core: hand traces, delay spread, export, optimiser, state."""

from __future__ import annotations

import numpy as np
import pytest

from evsim.errors import EvsimError
from evsim.model import ModelMetadata
from evsim.training import (SURROGATES, AdamW, ConfigError, Constant, Cosine, Network, NetworkConfig, OneCycle,
                      ParamGroup, clip_grad_norm, delay_tables, get_surrogate, make_optimizer, train_step)

X8 = np.array([0.75, 0.75, 0.75, 0.0, 3.0, 0.0, 0.5, 0.5])


def one_neuron(reset, **kw):
    cfg = NetworkConfig(n_inputs=1, hidden=(1,), recurrence="none", n_classes=2, reset=reset, tau=2.0,
                        gain="one", batchnorm=False, dropout=0.0, rec_dropout=0.0, dtype="float64", **kw)
    net = Network.init(cfg, 0)
    net.params["layer0.weight"][...] = 1.0
    net.params["layer0.bias"][...] = 0.0
    return net


@pytest.mark.parametrize("reset, expected", [
    ("zero", [0, 1, 0, 0, 1, 0, 0, 0]),          # v: .75 1.125* .75 .375 3.1875* 0 .5 .75
    ("subtract", [0, 1, 0, 0, 1, 1, 0, 0]),      # v: .75 1.125* .8125 .40625 3.203125* 1.1015625* ...
])
def test_one_neuron_hand_trace(reset, expected):
    net = one_neuron(reset)
    res = net.evaluate(X8[None, :, None], record_spikes=True)
    assert res.spikes[0][0, :, 0].tolist() == expected
    caches, *_ = net._forward(X8[None, :, None], train=True, rng=None, sigma=0.0, update_stats=False)
    assert caches[0].s[0, :, 0].tolist() == expected
    if reset == "zero":
        np.testing.assert_allclose(caches[0].v[0, :, 0], [.75, 1.125, .75, .375, 3.1875, 0, .5, .75])


def self_loop(delay, sigma=0.0):
    """One neuron driven at step 0 only, feeding back to itself (conv k=1, K=[0]) so the
    recorded z_t is the delayed, spread copy of its own spike train."""
    cfg = NetworkConfig(n_inputs=1, hidden=(1,), recurrence="conv", kernel_size=1, n_classes=2, tau=1.0,
                        gain="one", batchnorm=False, dropout=0.0, rec_dropout=0.0, dtype="float64")
    net = Network.init(cfg, 0)
    net.params["layer0.weight"][...] = 2.0
    net.params["layer0.bias"][...] = 0.0
    net.params["layer0.recurrent"][...] = 0.0
    net.params["layer0.delays"][...] = delay
    x = np.zeros((1, 12, 1))
    x[0, 0, 0] = 1.0
    caches, *_ = net._forward(x, train=True, rng=None, sigma=sigma, update_stats=False)
    return caches[0].z[0, :, 0]


def test_integer_delay_arrives_at_t_plus_1_plus_d():
    for d in range(5):
        z = self_loop(float(d))
        expected = np.zeros(12)
        expected[1 + d] = 1.0
        np.testing.assert_array_equal(z, expected)


def test_fractional_delay_interpolates_between_two_steps():
    z = self_loop(2.25)
    expected = np.zeros(12)
    expected[3], expected[4] = 0.75, 0.25
    np.testing.assert_allclose(z, expected, atol=1e-15)


def test_spread_is_a_normalised_triangle():
    z = self_loop(5.0, sigma=2.0)       # w = 3: weights (3 - |k - 6|) / 9 for k = 4..8
    expected = np.zeros(12)
    expected[4:9] = np.array([1, 2, 3, 2, 1]) / 9
    np.testing.assert_allclose(z, expected, atol=1e-15)
    assert abs(z.sum() - 1) < 1e-12


@pytest.mark.parametrize("sigma", [0.0, 0.3, 1.0, 2.5, 10.0])
def test_delay_tables_match_the_dense_mask(sigma):
    d = np.array([0.0, 0.4, 3.0, 7.65, 12.5])
    klo, mtab, dmtab = delay_tables(d, sigma)
    w = 1 + sigma
    for j in range(d.size):
        k = np.arange(1, 40)
        m = np.maximum(0, w - np.abs(k - 1 - d[j])) / w**2
        dm = np.where(np.abs(k - 1 - d[j]) < w, np.sign(k - 1 - d[j]) / w**2, 0)
        dense = np.zeros(40)
        dense_d = np.zeros(40)
        q = np.arange(mtab.shape[1])
        dense[klo[j] + q] = mtab[j]
        dense_d[klo[j] + q] = dmtab[j]
        np.testing.assert_allclose(dense[1:], m, atol=1e-15)
        np.testing.assert_allclose(dense_d[1:], dm, atol=1e-15)
        assert klo[j] >= 1


def test_export_rounds_delays_to_nearest_and_folds_batchnorm():
    cfg = NetworkConfig(n_inputs=3, hidden=(4, 5), recurrence=("none", "dense"), n_classes=2, dtype="float64")
    net = Network.init(cfg, 0)
    net.params["layer1.delays"][...] = [0.4, 0.6, 2.5, 3.5, 7.49]
    rng = np.random.default_rng(0)
    for l in range(2):
        net.params[f"layer{l}.bn_weight"][...] = rng.uniform(0.5, 2, net.params[f"layer{l}.bn_weight"].shape)
        net.params[f"layer{l}.bn_bias"][...] = rng.normal(size=net.params[f"layer{l}.bn_bias"].shape)
        net.buffers[f"layer{l}.bn_mean"][...] = rng.normal(size=net.buffers[f"layer{l}.bn_mean"].shape)
        net.buffers[f"layer{l}.bn_var"][...] = rng.uniform(0.5, 2, net.buffers[f"layer{l}.bn_var"].shape)
    model = net.export(ModelMetadata(input_channels=3, pool=1))
    assert model.layers[1].delays.tolist() == [0, 1, 2, 4, 7]      # numpy.rint: half to even
    assert model.layers[0].delays.tolist() == [0, 0, 0, 0]
    x = rng.normal(size=(7, 3))
    for l, layer in enumerate(model.layers[:1]):
        p = f"layer{l}."
        a = x @ net.params[p + "weight"].T + net.params[p + "bias"]
        bn = (a - net.buffers[p + "bn_mean"]) / np.sqrt(net.buffers[p + "bn_var"] + cfg.bn_eps) * net.params[p + "bn_weight"] + net.params[p + "bn_bias"]
        np.testing.assert_allclose(x @ layer.weight.T.astype(float) + layer.bias, bn, rtol=1e-5, atol=1e-5)
    assert model.readout.decision == "sum_softmax"
    assert model.layers[1].gain[0] == pytest.approx(1 - model.layers[1].beta[0])
    with pytest.raises(EvsimError, match="model inputs"):
        net.export(ModelMetadata(input_channels=700, pool=5))


def test_evaluate_uses_rounded_clamped_delays_and_leaves_state_alone():
    cfg = NetworkConfig(n_inputs=4, hidden=(6, 6), kernel_size=3, n_classes=3, dtype="float64")
    net = Network.init(cfg, 1)
    x = np.random.default_rng(0).poisson(1.0, (2, 30, 4))
    before = net.state_dict()
    r1 = net.evaluate(x)
    for k, v in before.items():
        if k != "config":
            np.testing.assert_array_equal(v, net.state_dict()[k])
    d = net.params["layer1.delays"]
    d[...] = np.rint(d) + 0.3
    r2 = net.evaluate(x)
    d[...] = np.rint(d) - 0.3
    r3 = net.evaluate(x)
    np.testing.assert_array_equal(r2.scores, r3.scores)
    d[0] = -0.4                       # clamped to 0, not rounded from -0.4
    d[...] = np.rint(d)
    assert net.export().layers[1].delays.min() >= 0


def test_surrogates_by_name_and_their_primitives():
    with pytest.raises(EvsimError, match="valid surrogates: arctan, fast_sigmoid, inverse_quadratic, triangle"):
        get_surrogate("sigmoidal")
    with pytest.raises(EvsimError, match="valid surrogates"):
        NetworkConfig(surrogate="nope")
    for name, sur in SURROGATES.items():
        for alpha in (0.5, 2.0, 5.0):
            for x in np.linspace(-2, 2, 41) + 0.013:
                h = 1e-6
                num = (sur.primitive(x + h, alpha) - sur.primitive(x - h, alpha)) / (2 * h)
                assert num == pytest.approx(sur.grad(x, alpha), rel=1e-5, abs=1e-8), (name, alpha, x)
    assert SURROGATES["arctan"].grad(0.0, 5.0) == 2.5
    assert SURROGATES["triangle"].grad(0.5, 1.0) == 0.5
    assert SURROGATES["inverse_quadratic"].grad(0.5, 10.0) == 1 / 3.5      # CS-GRU: 1 / (1 + gamma x^2)
    assert SURROGATES["inverse_quadratic"].primitive(-1e9, 10.0) == pytest.approx(0.0, abs=1e-9)


def test_config_validation_messages():
    with pytest.raises(ConfigError, match="expected one of none, dense, conv"):
        NetworkConfig(recurrence="lstm")
    with pytest.raises(ConfigError, match="odd"):
        NetworkConfig(kernel_size=4)
    with pytest.raises(ConfigError, match="2 entries for 4 hidden layers"):
        NetworkConfig(tau=(1.1, 1.2))
    with pytest.raises(ConfigError, match="dropout"):
        NetworkConfig(dropout=1.0)
    cfg = NetworkConfig(hidden=(256, 256), recurrence=("none", "dense"), tau=(1.05, (1.5,) * 256))
    net = Network.init(cfg, 0)
    assert net.buffers["layer1.beta"].shape == (256,)
    assert NetworkConfig.from_json(cfg.to_json()) == cfg


def test_input_and_label_checks():
    net = Network.init(NetworkConfig(n_inputs=3, hidden=(4,), n_classes=2, dropout=0.3), 0)
    with pytest.raises(EvsimError, match=r"expected \(batch, steps, 3\)"):
        net.loss_and_grad(np.zeros((2, 5, 4)), np.array([0, 1]), 0)
    with pytest.raises(EvsimError, match=r"labels must lie in \[0, 2\)"):
        net.loss_and_grad(np.zeros((2, 5, 3)), np.array([0, 2]), 0)
    with pytest.raises(EvsimError, match="needs randomness"):
        net.loss_and_grad(np.zeros((2, 5, 3)), np.array([0, 1]))
    with pytest.raises(EvsimError, match="NaN"):
        net.evaluate(np.full((1, 2, 3), np.nan))


def test_dropout_masks_per_sequence_and_per_step():
    for mode in ("sequence", "step"):
        cfg = NetworkConfig(n_inputs=3, hidden=(50,), recurrence="conv", kernel_size=3, n_classes=2,
                            dropout=0.5, rec_dropout=0.5, dropout_mode=mode)
        net = Network.init(cfg, 0)
        caches, *_ = net._forward(np.ones((2, 20, 3), np.float32), train=True, rng=np.random.default_rng(0),
                                  sigma=0.0, update_stats=False)
        fm, zm = caches[0].fmask, caches[0].zmask
        assert set(np.unique(fm)) == {0.0, 2.0} and set(np.unique(zm)) == {0.0, 2.0}
        same_over_time = np.all(zm == zm[:, :1]) and np.all(np.broadcast_to(fm, (2, 20, 50)) == fm[:, :1])
        assert same_over_time == (mode == "sequence")


def test_adamw_matches_hand_computation_and_groups():
    params = {"w": np.array([1.0, -2.0]), "d": np.array([5.0])}
    opt = AdamW(params, [ParamGroup("weights", ("w",), lr=0.1, weight_decay=0.5),
                         ParamGroup("delays", ("d",), lr=1.0)])
    g = {"w": np.array([0.5, 0.25]), "d": np.array([-2.0])}
    opt.step(g)
    # step 1: m_hat = g, v_hat = g^2 -> update lr * sign(g) (eps aside); decay first
    np.testing.assert_allclose(params["w"], np.array([1.0, -2.0]) * (1 - 0.05) - 0.1 * np.sign(g["w"]), rtol=1e-6)
    np.testing.assert_allclose(params["d"], [6.0], rtol=1e-6)
    opt.step(g)
    np.testing.assert_allclose(params["d"], [7.0], rtol=1e-6)
    sd = opt.state_dict()
    assert int(sd["adamw.step.delays"]) == 2
    with pytest.raises(EvsimError, match="two optimiser groups"):
        AdamW(params, [ParamGroup("a", ("w",), 0.1), ParamGroup("b", ("w",), 0.1)])


def test_schedules():
    oc = OneCycle(total_steps=100, pct_start=0.3)
    assert oc.factor(0) == pytest.approx(1 / 25)
    assert oc.factor(29) == pytest.approx(1.0)
    assert oc.factor(99) == pytest.approx(1 / 25 / 1e4)
    assert max(oc.factor(i) for i in range(100)) == pytest.approx(1.0)
    cos = Cosine(total_steps=10)
    assert cos.factor(0) == 1.0 and cos.factor(5) == pytest.approx(0.5) and cos.factor(10) == pytest.approx(0.0)
    assert Constant().factor(123) == 1.0


def test_clip_grad_norm():
    g = {"a": np.array([3.0]), "b": np.array([4.0])}
    assert clip_grad_norm(g, 1.0) == pytest.approx(5.0)
    assert np.hypot(g["a"][0], g["b"][0]) == pytest.approx(1.0, rel=1e-5)
    g = {"a": np.array([0.3])}
    clip_grad_norm(g, 1.0)
    assert g["a"][0] == 0.3


def test_make_optimizer_groups_and_delay_clamp():
    net = Network.init(NetworkConfig(n_inputs=5, hidden=(6, 6), n_classes=3, kernel_size=3), 0)
    opt = make_optimizer(net, total_steps=10)
    names = {g.name: g for g in opt.groups}
    assert set(names["delays"].keys) == {"layer1.delays"} and names["delays"].weight_decay == 0.0
    assert "layer1.delays" not in names["weights"].keys and "layer0.bn_weight" in names["weights"].keys
    net.params["layer1.delays"][:3] = -1.0
    net.clamp_delays()
    assert net.params["layer1.delays"].min() >= 0.0


def test_checkpoint_roundtrip_resumes_identically(tmp_path):
    cfg = NetworkConfig(n_inputs=5, hidden=(8, 8), n_classes=3, kernel_size=3)
    rng = np.random.default_rng(0)
    x = rng.poisson(1.0, (4, 20, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 0])

    def run(net, opt, steps, seed):
        r = np.random.default_rng(seed)
        return [train_step(net, opt, x, y, r, sigma=2.0, clip=1.0)[0] for _ in range(steps)]

    net = Network.init(cfg, 3)
    opt = make_optimizer(net, total_steps=6)
    run(net, opt, 3, 1)
    np.savez(tmp_path / "ck.npz", **net.state_dict(), **opt.state_dict())
    losses_a = run(net, opt, 3, 2)
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as f:
        state = {k: f[k] for k in f.files}
    net2 = Network.from_state_dict(state)
    opt2 = make_optimizer(net2, total_steps=6)
    opt2.load_state_dict(state)
    losses_b = run(net2, opt2, 3, 2)
    assert losses_a == losses_b
    for k in net.params:
        np.testing.assert_array_equal(net.params[k], net2.params[k])
    other = Network.init(NetworkConfig(n_inputs=5, hidden=(8,), n_classes=3), 0)
    with pytest.raises(EvsimError, match="different configuration"):
        other.load_state_dict(state)


def test_float32_by_default():
    net = Network.init(NetworkConfig(n_inputs=4, hidden=(5, 5), n_classes=2, kernel_size=3), 0)
    assert all(p.dtype == np.float32 for p in net.params.values())
    loss, grads, stats = net.loss_and_grad(np.ones((2, 6, 4)), np.array([0, 1]), 0, 1.0)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert np.isfinite(loss) and set(stats) >= {"loss", "correct", "accuracy", "spike_rate", "batch"}


def test_evaluate_in_chunks_equals_one_batch():
    net = Network.init(NetworkConfig(n_inputs=4, hidden=(6, 6), kernel_size=3, n_classes=3), 0)
    x = np.random.default_rng(0).poisson(1.0, (7, 15, 4))
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    a = net.evaluate(x, y, record_spikes=True, batch_size=3)
    b = net.evaluate(x, y, record_spikes=True)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.stats == b.stats
    for sa, sb in zip(a.spikes, b.spikes):
        np.testing.assert_array_equal(sa, sb)


def test_rate_reg_validation():
    for bad in (-0.1, float("nan"), float("inf"), "0.1", True):
        with pytest.raises(ConfigError, match="rate_reg"):
            NetworkConfig(rate_reg=bad)
    for bad in (-0.01, 1.0, 2, float("nan")):
        with pytest.raises(ConfigError, match="rate_target"):
            NetworkConfig(rate_target=bad)
    cfg = NetworkConfig(rate_reg=np.float32(0.5), rate_target=0)
    assert type(cfg.rate_reg) is float and type(cfg.rate_target) is float
    assert NetworkConfig.from_json(cfg.to_json()) == cfg


def test_rate_reg_zero_is_the_unregularised_path():
    """rate_reg = 0 (the default) leaves the loss and every gradient bit for bit as without
    the penalty, whatever rate_target says; configurations saved before the penalty existed
    (JSON without the fields) load as rate_reg = 0."""
    import json

    from evsim.training import cross_entropy

    kw = dict(n_inputs=5, hidden=(7, 6), recurrence=("none", "conv"), kernel_size=3, n_classes=3)
    old = json.loads(NetworkConfig(**kw).to_json())
    del old["rate_reg"], old["rate_target"]
    cfgs = [NetworkConfig(**kw), NetworkConfig(**kw, rate_reg=0.0, rate_target=0.3),
            NetworkConfig.from_json(json.dumps(old))]
    rng = np.random.default_rng(0)
    x = rng.poisson(1.0, (4, 12, 5))
    y = np.array([0, 1, 2, 0])
    results = [Network.init(cfg, 2).loss_and_grad(x, y, 5, 1.0) for cfg in cfgs]
    loss, grads, stats = results[0]
    assert stats["rate_penalty"] == 0.0 and stats["loss"] == loss
    for l2, g2, s2 in results[1:]:
        assert l2 == loss and s2["rate_penalty"] == 0.0 and s2["spike_rate"] == stats["spike_rate"]
        for k in grads:
            assert g2[k].dtype == grads[k].dtype and np.array_equal(g2[k], grads[k]), k
    # the loss is exactly the cross-entropy of the forward pass's scores
    net = Network.init(cfgs[0], 2)
    *_, scores = net._forward(net._check_x(x), train=True, rng=np.random.default_rng(5), sigma=1.0, update_stats=False)
    assert cross_entropy(scores, y)[0] == loss


def test_rate_penalty_value_and_loss():
    kw = dict(n_inputs=5, hidden=(7, 6), kernel_size=3, n_classes=3, dtype="float64")
    rng = np.random.default_rng(1)
    x = rng.poisson(1.0, (4, 12, 5))
    y = np.array([0, 1, 2, 0])
    l0, _, s0 = Network.init(NetworkConfig(**kw), 2).loss_and_grad(x, y, 5, 1.0)
    rates = np.array(s0["spike_rate"])
    assert rates.min() > 0
    l1, _, s1 = Network.init(NetworkConfig(**kw, rate_reg=0.3), 2).loss_and_grad(x, y, 5, 1.0)
    np.testing.assert_allclose(s1["rate_penalty"], 0.3 * rates.sum(), rtol=1e-12)
    np.testing.assert_allclose(l1, l0 + s1["rate_penalty"], rtol=1e-12)
    assert s1["loss"] == l1 and s1["spike_rate"] == s0["spike_rate"]
    tgt = float(rates.min())          # the least active layer is not penalised
    l2, _, s2 = Network.init(NetworkConfig(**kw, rate_reg=0.3, rate_target=tgt), 2).loss_and_grad(x, y, 5, 1.0)
    np.testing.assert_allclose(s2["rate_penalty"], 0.3 * np.sum(np.maximum(rates - tgt, 0) ** 2), rtol=1e-12)
    np.testing.assert_allclose(l2, l0 + s2["rate_penalty"], rtol=1e-12)


def test_rate_reg_lowers_the_firing_rate():
    """A few AdamW steps on a small random problem: with a large rate_reg every layer ends
    up firing clearly less than it did at the start and than without the penalty."""
    rng = np.random.default_rng(0)
    x = rng.poisson(0.8, (16, 25, 10)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    after = {}
    for reg in (0.0, 10.0):
        cfg = NetworkConfig(n_inputs=10, hidden=(16, 16), kernel_size=3, n_classes=3, delay_init=(0.0, 4.0),
                            dropout=0.0, rec_dropout=0.0, rate_reg=reg)
        net = Network.init(cfg, 0)
        opt = make_optimizer(net, total_steps=10, lr=1e-2, schedule="constant")

        def rates():
            return np.array(net.loss_and_grad(x, y, None, 1.0, update_stats=False)[2]["spike_rate"])

        before = rates()
        assert before.min() > 0.05
        for _ in range(10):
            _, stats = train_step(net, opt, x, y, None, 1.0)
        assert (stats["rate_penalty"] > 0) == (reg > 0)
        after[reg] = rates()
    assert np.all(after[10.0] < 0.8 * before), (before, after)
    assert np.all(after[10.0] < 0.8 * after[0.0]), (before, after)
