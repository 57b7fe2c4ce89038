"""The trainable CS-GRU network (training/stack.py): finite-difference checks of the whole
loss (readout, two CS-GRU layers chained, delays of the second), training forward =
the engines on the exported model, and the csgru recipe end to end through the trainer.

FD checks as elsewhere: float64, H replaced by the surrogate's smooth primitive
(``smooth_forward``), 4th-order central differences, relative error below 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
from evsim.training.stack import StackConfig, StackNetwork

from evsim import event, reference
from evsim.errors import EvsimError

from .finite_differences import fd_gradient

RTOL = 1e-4


def small(**kw):
    cfg = dict(n_inputs=8, in_channels=2, channels=(2, 3), layer_delays=(False, True), kernel_size=3,
               delay_init=(0.0, 3.0), n_classes=3, readout_tau=2.0)
    cfg.update(kw)
    return StackConfig(**cfg)


@pytest.mark.parametrize("options", [dict(), dict(loss="sum_logits", gate="input"),
                                     dict(detach_reset=False, layer_delays=(True, True), readout_gain="1-beta")])
def test_every_gradient_matches_finite_differences(options):
    cfg = small(smooth_forward=True, **options)
    net = StackNetwork.init(cfg, seed=1)
    rng = np.random.default_rng(2)
    x = rng.poisson(0.6, (2, 7, cfg.n_inputs)).astype(np.float64)
    y = np.array([0, 2])
    sigma = 0.7
    _, grads, _ = net.loss_and_grad(x, y, sigma=sigma)
    for name, arr in net.params.items():
        fd = fd_gradient(arr.reshape(-1), lambda: net.loss_and_grad(x, y, sigma=sigma)[0])
        g = grads[name].reshape(-1)
        err = np.linalg.norm(fd - g) / max(np.linalg.norm(fd), np.linalg.norm(g), 1e-8)
        assert err < RTOL, (name, err)
        assert np.linalg.norm(g) > 0, name
    assert set(grads) == set(net.params)
    assert ("layer0.delays" in grads) == cfg.layer_delays[0]


def test_training_forward_equals_both_engines_on_the_exported_model():
    cfg = small(channels=(3, 2), layer_delays=(False, True), delay_init=(0.0, 4.0))
    net = StackNetwork.init(cfg, seed=4)
    for name in net.weight_names:          # scale up so that the layers spike
        if name.startswith("layer"):
            net.params[name] *= 3.0
    net.params["layer1.delays"] += 0.4     # not whole steps: the export rounds them
    rng = np.random.default_rng(5)
    x = rng.poisson(0.8, (3, 20, cfg.n_inputs)).astype(np.float64)
    mine = net.evaluate(x, record_spikes=True)
    model = net.export()
    assert np.array_equal(model.layers[1].delays, np.rint(net.params["layer1.delays"]))
    ev = event.simulate(model, x, record_spikes=True)
    ref = reference.simulate(model, x, record_spikes=True)
    assert sum(int(s.sum()) for s in mine.spikes) > 0
    for a, b, c in zip(mine.spikes, ev.spikes, ref.spikes):
        assert np.array_equal(a, b) and np.array_equal(b, c)
    assert np.allclose(mine.readout, ev.readout, rtol=1e-6, atol=1e-5)   # weights float32 in the file
    assert np.array_equal(ev.predictions, ref.predictions)


def test_state_dict_round_trip_and_config_checks():
    net = StackNetwork.init(small(), seed=0)
    back = StackNetwork.from_state_dict(net.state_dict())
    assert back.config == net.config
    assert all(np.array_equal(back.params[k], v) for k, v in net.params.items())
    other = StackNetwork.init(small(channels=(2, 2)), seed=0)
    with pytest.raises(EvsimError, match="different configuration"):
        other.load_state_dict(net.state_dict())
    with pytest.raises(EvsimError, match="in_channels"):
        small(in_channels=3)
    with pytest.raises(EvsimError, match="layer_delays"):
        small(layer_delays=(True,))
    with pytest.raises(EvsimError, match="kernel_size"):
        small(kernel_size=4)


def _csgru_config(**changes):
    from evsim.training.presets import make_config

    sets = {"input_channels": 60, "pool": 2, "epochs": 2, "batch_size": 16, "val_fraction": 0.25,
            "network": {"channels": [2, 2], "delay_init": [0.0, 4.0]}}
    sets.update(changes)
    return make_config("csgru", overrides=sets)


def test_csgru_recipe_trains_and_exports_what_both_engines_run(tmp_path):
    import json

    from evsim.training.trainer import train

    from evsim.model import load_model
    from evsim.run import classify_file
    from tests.training.test_trainer import _toy

    toy = _toy(tmp_path / "train.h5", 48, 1), _toy(tmp_path / "test.h5", 20, 2)
    result = train(_csgru_config(), *toy, tmp_path / "run")
    model = load_model(result["model"])
    assert [l.cell for l in model.layers] == ["csgru", "csgru"]
    assert not model.layers[0].delays.any()
    acc = {engine: classify_file(model, str(toy[1]), engine=engine).accuracy for engine in ("event", "dense")}
    assert acc["event"] == acc["dense"] == result["test_accuracy"]
    assert set(result["delays"]) == {"layer0", "layer1"}
    log = [json.loads(l) for l in open(tmp_path / "run" / "log.jsonl")]
    assert log[0]["sigma"] > log[1]["sigma"] > 0          # DelRec's schedule
    fixed = train(_csgru_config(learn_delays=False), *toy, tmp_path / "fixed")
    log = [json.loads(l) for l in open(tmp_path / "fixed" / "log.jsonl")]
    assert all(r["sigma"] == 0.0 for r in log) and log[0]["delays_mean"] == log[-1]["delays_mean"]
    assert fixed["delays"]["layer1"]["max"] <= 4


def test_csgru_recipe_refuses_unknown_network_settings():
    from evsim.errors import EvsimError

    with pytest.raises(EvsimError, match="unknown setting.*hidden"):
        _csgru_config(network={"hidden": [3]})
