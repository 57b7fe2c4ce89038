"""Mixed stacks in training (training/stack.py ``cells``): runs of neuron-cell layers (LIF,
AdLIF, with their recurrence and delays, trained by Network's own forward and backward
passes) before, between or after CS-GRU layers.

Finite-difference checks of every parameter as elsewhere (float64, H replaced by the
surrogate's smooth primitive, 4th-order central differences, relative error below 1e-4);
the training forward = both engines on the exported model; the recipe through the trainer."""

from __future__ import annotations

import numpy as np
import pytest
from evsim.training.stack import StackConfig, StackNetwork

from evsim import event, reference
from evsim.errors import EvsimError
from evsim.model import HiddenLayer

from .finite_differences import fd_gradient

RTOL = 1e-4

LIF_PLAIN = {"0": {"hidden": [8], "recurrence": "none"}}
LIF_DELAYS = {"0": {"hidden": [8], "recurrence": "conv", "kernel_size": 3, "delay_init": [0.0, 3.0]}}
EVERYWHERE = {"0": {"hidden": [6, 8], "recurrence": ["none", "dense"], "delay_init": [0.0, 3.0]},
              "1": {"hidden": [5], "recurrence": "conv", "kernel_size": 3, "cell": "adlif", "delay_init": [0.0, 2.0]}}


def small(**kw):
    cfg = dict(n_inputs=8, in_channels=2, channels=(2,), layer_delays=(True,), kernel_size=3,
               delay_init=(0.0, 3.0), n_classes=3, readout_tau=2.0)
    cfg.update(kw)
    return StackConfig(**cfg)


@pytest.mark.parametrize("cells, delays", [(LIF_PLAIN, {1}), (LIF_DELAYS, {0, 1}), (EVERYWHERE, {1, 2, 3})],
                         ids=["lif", "lif-delays", "everywhere"])
def test_every_gradient_of_a_mixed_stack_matches_finite_differences(cells, delays):
    cfg = small(cells=cells, smooth_forward=True)
    net = StackNetwork.init(cfg, seed=1)
    rng = np.random.default_rng(2)
    x = rng.poisson(0.6, (2, 7, cfg.n_inputs)).astype(np.float64)
    y = np.array([0, 2])
    sigma = 0.7
    _, grads, stats = net.loss_and_grad(x, y, sigma=sigma)
    assert set(grads) == set(net.params)
    assert len(stats["spike_rate"]) == cfg.n_hidden_layers
    for name, arr in net.params.items():
        fd = fd_gradient(arr.reshape(-1), lambda: net.loss_and_grad(x, y, sigma=sigma)[0])
        g = grads[name].reshape(-1)
        err = np.linalg.norm(fd - g) / max(np.linalg.norm(fd), np.linalg.norm(g), 1e-8)
        assert err < RTOL, (name, err)
        assert np.linalg.norm(g) > 0, name
    assert set(net.delay_names) == {f"layer{l}.delays" for l in delays}


def test_layers_are_numbered_bottom_to_top_over_the_whole_stack():
    net = StackNetwork.init(small(cells=EVERYWHERE), seed=0)
    assert net.params["layer0.weight"].shape == (6, 8)        # LIF 8 -> 6
    assert net.params["layer1.recurrent"].shape == (8, 8)     # LIF 6 -> 8, dense
    assert net.params["layer2.k_rx"].shape == (2, 2, 3)       # CS-GRU 2 x 4 positions, Cin = 8 / 4
    assert net.params["layer3.weight"].shape == (5, 8)        # AdLIF 8 -> 5
    assert {"layer3.a", "layer3.b", "layer3.beta"} <= set(net.params)
    assert net.params["readout.weight"].shape == (3, 5)
    assert not any(k.startswith("layer4") for k in net.params)


@pytest.mark.parametrize("cells", [LIF_DELAYS, EVERYWHERE], ids=["lif-delays", "everywhere"])
def test_training_forward_equals_both_engines_on_the_exported_mixed_model(cells):
    cfg = small(cells=cells, channels=(3,), delay_init=(0.0, 4.0))
    net = StackNetwork.init(cfg, seed=4)
    for name in net.weight_names:          # scale up so that the layers spike
        if name.startswith("layer") and not name.endswith((".beta", ".a", ".b", ".beta_w")):
            net.params[name] *= 3.0
    for name in net.delay_names:
        net.params[name] += 0.4            # not whole steps: the export rounds them
    rng = np.random.default_rng(5)
    x = rng.poisson(0.8, (3, 20, cfg.n_inputs)).astype(np.float64)
    mine = net.evaluate(x, record_spikes=True)
    model = net.export()
    kinds = ["cells" if isinstance(layer, HiddenLayer) else "csgru" for layer in model.layers]
    assert kinds == [p[0] for p in cfg.plan for _ in range(p[2].n_layers if p[0] == "cells" else 1)]
    assert [layer.name for layer in model.layers] == [f"layer{l}" for l in range(cfg.n_hidden_layers)]
    ev = event.simulate(model, x, record_spikes=True)
    ref = reference.simulate(model, x, record_spikes=True)
    assert len(mine.spikes) == len(ev.spikes) == cfg.n_hidden_layers
    assert all(int(s.sum()) > 0 for s in mine.spikes)
    for a, b, c in zip(mine.spikes, ev.spikes, ref.spikes):
        assert np.array_equal(a, b) and np.array_equal(b, c)
    assert np.allclose(mine.readout, ev.readout, rtol=1e-6, atol=1e-5)   # weights float32 in the file
    assert np.array_equal(ev.predictions, ref.predictions)


def test_mixed_config_checks_and_state_dict_round_trip():
    net = StackNetwork.init(small(cells=EVERYWHERE), seed=0)
    back = StackNetwork.from_state_dict(net.state_dict())
    assert back.config == net.config
    assert all(np.array_equal(back.params[k], v) for k, v in net.params.items())
    with pytest.raises(EvsimError, match="different configuration"):
        StackNetwork.init(small(cells=LIF_PLAIN), seed=0).load_state_dict(net.state_dict())
    with pytest.raises(EvsimError, match=r"cells\.0: its last layer has 6 neurons.*multiple of 4"):
        small(cells={"0": {"hidden": [6]}})
    with pytest.raises(EvsimError, match=r"cells\.0: n_classes, rate_reg cannot be set"):
        small(cells={"0": {"hidden": [8], "rate_reg": 0.1, "n_classes": 4}})
    with pytest.raises(EvsimError, match=r"cells\.0: no hidden"):
        small(cells={"0": {"recurrence": "none"}})
    with pytest.raises(EvsimError, match=r"cells: entry '2'"):
        small(cells={"2": {"hidden": [8]}})
    with pytest.raises(EvsimError, match=r"cells\.0.*recurrence"):
        small(cells={"0": {"hidden": [8], "recurrence": "sideways"}})
    with pytest.raises(EvsimError, match=r"cells\.0.*unexpected keyword"):
        small(cells={"0": {"hidden": [8], "colour": "red"}})


def test_a_lif_input_layer_then_csgru_trains_through_the_recipe(tmp_path):
    from evsim.training.presets import make_config, parse_overrides
    from evsim.training.trainer import train

    from evsim.model import load_model
    from evsim.run import classify_file
    from tests.training.test_trainer import _toy

    toy = _toy(tmp_path / "train.h5", 48, 1), _toy(tmp_path / "test.h5", 20, 2)
    sets = parse_overrides(["input_channels=60", "pool=2", "epochs=2", "batch_size=16", "val_fraction=0.25",
                            "network.channels=[2]", "network.layer_delays=[true]", "network.delay_init=[0,4]",
                            "network.cells.0.hidden=[30]", "network.cells.0.recurrence=conv",
                            "network.cells.0.kernel_size=3"])
    result = train(make_config("csgru", overrides=sets), *toy, tmp_path / "run")
    model = load_model(result["model"])
    assert [l.cell for l in model.layers] == ["lif", "csgru"]
    assert model.layers[0].recurrence == "conv" and model.layers[0].delays is not None
    acc = {engine: classify_file(model, str(toy[1]), engine=engine).accuracy for engine in ("event", "dense")}
    assert acc["event"] == acc["dense"] == result["test_accuracy"]
    assert set(result["delays"]) == {"layer0", "layer1"}


def test_the_csgru_lif_preset_and_cells_settings_merge_setting_by_setting():
    from evsim.training.presets import make_config, parse_overrides

    net = make_config("csgru-lif").network_config()
    assert [p[0] for p in net.plan] == ["cells", "csgru", "csgru"]
    lif = net.plan[0][2]
    assert (lif.n_inputs, lif.hidden, lif.recurrence, lif.cell, lif.batchnorm) == (140, (140,), ("none",), "lif", True)
    assert net.plan[1][3] == 1                      # the CS-GRU layer reads 1 channel x 140 positions
    changed = make_config("csgru-lif", overrides=parse_overrides(["network.cells.0.recurrence=conv"])).network_config()
    assert changed.plan[0][2].recurrence == ("conv",) and changed.plan[0][2].hidden == (140,)
    dropped = make_config("csgru-lif", overrides=parse_overrides(["network.cells=null"])).network_config()
    assert [p[0] for p in dropped.plan] == ["csgru", "csgru"]
    with pytest.raises(EvsimError, match=r"cells\.0: its last layer has 100 neurons"):
        make_config("csgru-lif", overrides=parse_overrides(["network.cells.0.hidden=[100]"]))
