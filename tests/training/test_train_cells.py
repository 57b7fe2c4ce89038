"""Training with the adaptive LIF cell and with learned per-neuron decays: finite-difference
checks of every new parameter (beta, beta_w, a, b), training forward = the dense reference
on the exported model, the bounds kept after an optimiser step."""

from __future__ import annotations

import numpy as np
import pytest

from evsim.cells import CELLS, get_cell
from evsim.model import ModelMetadata
from evsim.training import Network, NetworkConfig, make_optimizer, train_step

from .test_train_equivalence import check_same, exact_params, f32
from .test_train_gradients import assert_fd, randomise


def set_cell_params(net: Network, rng, exact=False):
    """Cell parameters inside sensible ranges (randomise draws them from N(0, 1)): beta in
    [0.3, 0.95], adlif's as below, any other cell's extra parameters in their ``draw``
    ranges (else their training bounds)."""
    cast = f32 if exact else (lambda a: a)
    kind = get_cell(net.config.cell)
    ranges = {"beta": (0.3, 0.95), **{q.name: q.draw or q.train for q in kind.params}}
    if kind.name == "adlif":
        ranges.update(beta_w=(0.5, 0.97), a=(-0.6, 0.6), b=(0.0, 1.5))
    for l in range(net.config.n_layers):
        p = f"layer{l}."
        n = net.config.hidden[l]
        for name, (lo, hi) in ranges.items():
            if p + name in net.params:
                net.params[p + name][...] = cast(rng.uniform(lo, hi, n))
    return net


CASES = [
    dict(recurrence=("dense", "conv"), reset="zero", detach_reset=False, rec_dropout_at="input"),
    dict(recurrence=("conv", "dense"), reset="subtract", detach_reset=False, rec_dropout_at="spikes"),
    dict(recurrence=("none", "conv"), reset="subtract", detach_reset=False, rec_dropout_at="input"),
]


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("gain", ["one", "1-beta"])
def test_every_cells_gradients(cell, case, gain):
    """Finite differences of every parameter of every registered cell (beta learned)."""
    cfg = NetworkConfig(n_inputs=3, hidden=(4, 3), kernel_size=3, n_classes=3, cell=cell, gain=gain,
                        learn_beta=True, surrogate_alpha=2.0, smooth_forward=True, dropout=0.2, rec_dropout=0.2,
                        dropout_mode="step", batchnorm=True, dtype="float64", **case)
    rng = np.random.default_rng(7)
    net = set_cell_params(randomise(Network.init(cfg, 1), rng), rng)
    names = {"beta", *get_cell(cell).param_names}
    assert {f"layer{l}.{k}" for l in range(2) for k in names} <= set(net.params)
    x = rng.poisson(1.0, (3, 14, 3)).astype(np.float64)
    assert_fd(net, x, np.array([0, 1, 2]), sigma=1.5)


@pytest.mark.parametrize("gain", ["one", "1-beta"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_learned_lif_beta_gradients(gain, reset):
    cfg = NetworkConfig(n_inputs=3, hidden=(4, 3), recurrence=("none", "conv"), kernel_size=3, n_classes=3,
                        gain=gain, reset=reset, learn_beta=True, surrogate_alpha=2.0, smooth_forward=True,
                        dropout=0.2, rec_dropout=0.2, batchnorm=False, dtype="float64")
    rng = np.random.default_rng(3)
    net = set_cell_params(randomise(Network.init(cfg, 1), rng), rng)
    assert "layer1.beta" in net.params and "layer1.beta" not in net.buffers
    x = rng.poisson(1.0, (3, 14, 3)).astype(np.float64)
    assert_fd(net, x, np.array([0, 1, 2]), sigma=1.5)


def test_lif_beta_is_fixed_by_default():
    net = Network.init(NetworkConfig(n_inputs=3, hidden=(4,), n_classes=2), 0)
    assert "layer0.beta" in net.buffers and "layer0.beta" not in net.params


@pytest.mark.parametrize("recurrence", [("none", "conv", "dense"), ("dense", "dense", "conv")])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_adlif_training_forward_equals_the_reference_on_the_export(tmp_path, recurrence, reset):
    cfg = NetworkConfig(n_inputs=6, hidden=(10, 9, 8), recurrence=recurrence, kernel_size=3, n_classes=3,
                        cell="adlif", reset=reset, bn_eps=0.0, dtype="float64")
    rng = np.random.default_rng(1)
    net = set_cell_params(exact_params(Network.init(cfg, 0), rng), rng, exact=True)
    for l in range(cfg.n_layers):   # exact_params wrote the cell parameters as biases
        net.buffers[f"layer{l}.gain"][...] = f32(net.buffers[f"layer{l}.gain"])
    x = rng.poisson(1.0, (3, 50, 6)).astype(np.float64)
    path = tmp_path / "adlif.npz"
    net.export(ModelMetadata(input_channels=6, pool=1)).save(path)
    from evsim.model import load_model

    model = load_model(path)
    assert {l.cell for l in model.layers} == {"adlif"}
    assert np.array_equal(model.layers[1].extra["a"], net.params["layer1.a"].astype(np.float32))
    ref = check_same(net, x, model)
    assert all(s.sum() > 10 for s in ref.spikes), "the test network should spike"


def test_cell_parameters_stay_in_their_bounds_after_a_step():
    cfg = NetworkConfig(n_inputs=4, hidden=(6, 5), recurrence=("none", "conv"), kernel_size=3, n_classes=3,
                        cell="adlif", dropout=0.0, rec_dropout=0.0)
    net = Network.init(cfg, 0)
    for name, (lo, hi) in cfg.learned_bounds().items():
        assert np.all((net.params[f"layer0.{name}"] >= lo) & (net.params[f"layer0.{name}"] <= hi)), name
    opt = make_optimizer(net, total_steps=1, lr=50.0, schedule="constant")   # absurd steps: parameters leave their range
    rng = np.random.default_rng(0)
    x = rng.poisson(1.0, (4, 20, 4)).astype(np.float32)
    train_step(net, opt, x, np.array([0, 1, 2, 0]), rng, 1.0)
    for name, (lo, hi) in cfg.learned_bounds().items():
        for l in range(2):
            v = net.params[f"layer{l}.{name}"]
            assert np.all((v >= lo) & (v <= hi)), name


def test_cell_ranges_and_defaults_come_from_the_registry_and_can_be_changed():
    import json

    from evsim.cells import get_cell
    from evsim.training import ConfigError

    kind = get_cell("adlif")
    cfg = NetworkConfig(cell="adlif")
    assert cfg.cell_bounds == {p.name: p.train for p in kind.params}
    assert cfg.learn_beta is kind.training.learn_beta and cfg.beta_range == kind.training.beta_range
    assert cfg.gain == (kind.training.gain,) * cfg.n_layers
    for p in kind.params:
        lo, hi = cfg.cell_init[p.name]
        assert cfg.cell_bounds[p.name][0] <= lo <= hi <= cfg.cell_bounds[p.name][1]
    lif = NetworkConfig()
    assert lif.cell_bounds == {} and lif.cell_init == {} and not lif.learn_beta
    narrow = NetworkConfig(cell="adlif", cell_bounds={"b": [0.5, 0.75]})
    assert narrow.cell_bounds["b"] == (0.5, 0.75) and narrow.cell_init["b"] == (0.5, 0.75)   # no overlap: the bounds
    assert NetworkConfig(cell="adlif", cell_bounds={"b": [0.1, 1]}).cell_init["b"] == (0.1, 0.2)
    with pytest.raises(ConfigError, match="cell_bounds: izh is not a parameter of a 'adlif' cell"):
        NetworkConfig(cell="adlif", cell_bounds={"izh": [0, 1]})
    with pytest.raises(ConfigError, match="cell_init.b: "):
        NetworkConfig(cell="adlif", cell_bounds={"b": [0, 0.5]}, cell_init={"b": [0, 1]})
    with pytest.raises(ConfigError, match="cell_bounds.beta_w: "):
        NetworkConfig(cell="adlif", cell_bounds={"beta_w": [0, 2]})       # outside what a model file may hold
    with pytest.raises(ConfigError, match="is not a parameter of a 'lif' cell"):
        NetworkConfig(cell_init={"a": [0, 1]})
    # a configuration written before cell_bounds existed (adlif_a etc.) still reads
    old = json.loads(cfg.to_json())
    del old["cell_bounds"], old["cell_init"]
    old["adlif_a"] = [-0.5, 0.5]
    again = NetworkConfig.from_json(json.dumps(old))
    assert again.cell_bounds["a"] == (-0.5, 0.5) and again.cell_init["a"] == (-0.5, 0.5)
    assert NetworkConfig.from_json(cfg.to_json()) == cfg
