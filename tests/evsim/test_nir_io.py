"""NIR export and import: round trips on random models, units on hand-made graphs, refusals.

Every written file is read back with nir's own reader (``nir.read``, type-checked)."""

from dataclasses import replace

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="the optional extra evsim[nir] (package nir) is not installed")

from evsim import event, reference  # noqa: E402
from evsim.errors import EvsimError, ModelFileError  # noqa: E402
from evsim.model import Model, load_model  # noqa: E402
from evsim.nir_io import (export_nir, from_nir_graph, nir_node_counts, to_nir_graph,  # noqa: E402
                          toeplitz_from_kernel)
from tests.strategies import random_inputs, random_model  # noqa: E402


def leaky(model: Model) -> Model:
    """``model`` with every beta = 1 (no finite NIR tau) lowered to 0.75."""
    layers = tuple(replace(l, beta=np.minimum(l.beta, 0.75)) for l in model.layers)
    return replace(model, layers=layers, readout=replace(model.readout, beta=np.minimum(model.readout.beta, 0.75)))


def assert_same_model(a: Model, b: Model):
    arr_a, arr_b = a.to_arrays(), b.to_arrays()
    assert arr_a.keys() == arr_b.keys()
    for key in arr_a:
        assert arr_a[key].dtype == arr_b[key].dtype and np.array_equal(arr_a[key], arr_b[key]), key


@pytest.mark.parametrize("seed", range(12))
def test_faithful_round_trip_gives_identical_model_and_outputs(tmp_path, seed):
    model = leaky(random_model(seed, max_neurons=24, max_delay=12, cells=["lif"]))
    path = tmp_path / "m.nir"
    graph, warnings = export_nir(model, path)
    assert warnings == []
    read = nir.read(path)                       # nir's own reader, with its type check
    n_rec = sum(l.recurrence != "none" for l in model.layers)
    counts = nir_node_counts(read)
    assert counts.get("Delay", 0) == n_rec and counts["LIF"] == len(model.layers) and counts["LI"] == 1
    assert counts.get("Conv1d", 0) == sum(l.recurrence == "conv" for l in model.layers)
    back = load_model(path)
    assert_same_model(model, back)
    x, lengths = random_inputs(seed, model.n_inputs)
    r1 = event.simulate(model, x, lengths=lengths, record_spikes=True)
    r2 = event.simulate(back, x, lengths=lengths, record_spikes=True)
    assert np.array_equal(r1.readout, r2.readout) and np.array_equal(r1.scores, r2.scores)
    assert all(np.array_equal(s1, s2) for s1, s2 in zip(r1.spikes, r2.spikes))


def test_graph_metadata_states_what_nir_cannot(small_model):
    graph, _ = to_nir_graph(small_model)
    meta = graph.metadata
    assert meta["dt"] == pytest.approx(0.01) and meta["time_unit"] == "s"
    assert "t + 1 + delay/dt" in meta["cycle_convention"]
    assert meta["spike_condition"] == "v >= v_threshold"
    assert "softmax" in meta["decision"]
    assert graph.nodes["layer1.lif"].metadata["reset"] == "zero"
    conv = graph.nodes["layer1.rec"]
    assert isinstance(conv, nir.Conv1d) and conv.padding == "same" and conv.weight.shape == (1, 1, 3)
    delay = graph.nodes["layer1.delay"]
    assert np.allclose(delay.delay.ravel(), small_model.layers[1].delays * 0.01)


def test_units_tau_and_r_per_step():
    """beta = 1 - dt/tau and g = r dt/tau, checked on values worked out by hand."""
    model = leaky(random_model(3, max_neurons=8, cells=["lif"]))
    graph, _ = to_nir_graph(model)
    lif = graph.nodes["layer0.lif"]
    layer = model.layers[0]
    dt = model.metadata.dt_ms / 1000
    assert np.allclose(lif.tau.ravel(), dt / (1 - layer.beta.astype(float)))
    assert np.allclose(lif.r.ravel(), layer.gain / (1 - layer.beta.astype(float)))


def hand_graph(tau=0.05, r=2.0, dt=0.01, delay=None, rec_weight=5.0, v_threshold=1.0, extra=None):
    """Input(1) -> Affine(1) -> LIF [-> Delay -> Linear -> LIF] -> Affine(1) -> LI -> Output."""
    one = np.ones(1)
    nodes = {"in": nir.Input(input_type={"input": np.array([1])}),
             "ff": nir.Affine(weight=np.ones((1, 1), np.float32), bias=np.zeros(1, np.float32)),
             "lif": nir.LIF(tau=tau * one, r=r * one, v_leak=0 * one, v_threshold=v_threshold * one, v_reset=0 * one),
             "ro": nir.Affine(weight=np.ones((1, 1), np.float32), bias=np.zeros(1, np.float32)),
             "li": nir.LI(tau=tau * one, r=r * one, v_leak=0 * one),
             "out": nir.Output(output_type={"output": np.array([1])})}
    edges = [("in", "ff"), ("ff", "lif"), ("lif", "ro"), ("ro", "li"), ("li", "out")]
    if delay is not None:
        nodes["d"] = nir.Delay(delay=np.array([delay]))
        nodes["rec"] = nir.Linear(weight=np.full((1, 1), rec_weight, np.float32))
        edges += [("lif", "d"), ("d", "rec"), ("rec", "lif")]
    nodes.update(extra or {})
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt})


def test_hand_made_graph_units():
    """tau = 50 ms, r = 2 at dt = 10 ms: beta = 0.8, g = 0.4; the membrane follows by hand."""
    model = from_nir_graph(hand_graph())
    assert model.layers[0].beta[0] == np.float32(0.8) and model.layers[0].gain[0] == np.float32(0.4)
    assert model.metadata.dt_ms == pytest.approx(10.0) and model.layers[0].recurrence == "none"
    x = np.array([[1.0], [1.0], [0.0], [3.0]])
    res = reference.simulate(model, x, record_spikes=True, record_membrane=True)
    v = res.stats["membrane"][0][0, :, 0]
    # v0 = 0.4, v1 = 0.8*0.4 + 0.4 = 0.72, v2 = 0.576, v3 = 0.4608 + 1.2 = 1.6608 (spike)
    assert np.allclose(v, [0.4, 0.72, 0.576, 1.6608])
    assert res.spikes[0][0, :, 0].tolist() == [0, 0, 0, 1]


def test_hand_made_delay_in_seconds_and_the_plus_one_step():
    """A Delay of 30 ms at dt = 10 ms: a spike of step t comes back at t + 1 + 3."""
    model = from_nir_graph(hand_graph(tau=0.0100001, delay=0.03))
    assert model.layers[0].recurrence == "dense" and model.layers[0].delays.tolist() == [3]
    x = np.zeros((14, 1))
    x[0] = 10.0
    res = reference.simulate(model, x, record_spikes=True)
    assert np.nonzero(res.spikes[0][0, :, 0])[0].tolist() == [0, 4, 8, 12]


@pytest.mark.parametrize("kwargs, message", [
    ({"tau": 0.005}, "tau 0.005 s is shorter than the step dt = 0.01 s"),
    ({"delay": 0.015}, "delays are not whole multiples of dt = 0.01 s"),
])
def test_hand_made_graphs_with_wrong_units_are_refused(kwargs, message):
    with pytest.raises(ModelFileError, match=message):
        from_nir_graph(hand_graph(**kwargs))


def test_graph_without_dt_is_refused():
    g = hand_graph()
    g.metadata = {}
    with pytest.raises(ModelFileError, match="has no 'dt'"):
        from_nir_graph(g)


def test_unknown_node_is_refused_by_name():
    g = hand_graph()
    one = np.ones(1)
    g.nodes["lif"] = nir.CubaLIF(tau_syn=0.05 * one, tau_mem=0.05 * one, r=one, v_leak=0 * one, v_threshold=one)
    with pytest.raises(ModelFileError, match="node 'lif' is a CubaLIF, which evsim cannot run"):
        from_nir_graph(g)


def test_a_feed_forward_cycle_is_refused():
    g = hand_graph()
    g.edges[g.edges.index(("lif", "ro"))] = ("lif", "ff")
    with pytest.raises(ModelFileError, match=r"node 'ff' \(Affine\): is reached twice"):
        from_nir_graph(g)


def test_wrong_wiring_is_refused_by_name():
    g = hand_graph()
    g.edges.append(("in", "li"))
    with pytest.raises(ModelFileError, match="node 'li'|node 'in'"):
        from_nir_graph(g)


def test_portable_graph_has_no_delays_and_a_toeplitz_linear(tmp_path, small_model):
    path = tmp_path / "p.nir"
    graph, warnings = export_nir(small_model, path, portable=True)
    assert len(warnings) == 1 and "delays" in warnings[0] and "lost" in warnings[0]
    read = nir.read(path)
    assert "Delay" not in nir_node_counts(read) and "Conv1d" not in nir_node_counts(read)
    back = load_model(path)
    assert back.layers[1].recurrence == "dense" and back.max_delay == 0
    # the same network with its delays zeroed, run with the conv kernel
    zeroed = replace(small_model, layers=(small_model.layers[0],
                                          replace(small_model.layers[1], delays=np.zeros(10, np.int32))))
    x, lengths = random_inputs(5, small_model.n_inputs)
    assert np.allclose(event.simulate(back, x, lengths).readout, event.simulate(zeroed, x, lengths).readout,
                       rtol=1e-9, atol=1e-12)


def test_toeplitz_matches_the_conv_rule():
    k = np.array([1.0, 2.0, 3.0], np.float32)
    t = toeplitz_from_kernel(k, 4)
    # target i gets K[m] from source i + m - 1
    assert t.tolist() == [[2, 3, 0, 0], [1, 2, 3, 0], [0, 1, 2, 3], [0, 0, 1, 2]]


def test_exporter_refuses_leakless_neurons_and_unknown_cells(small_model):
    no_leak = replace(small_model, readout=replace(small_model.readout, beta=np.ones(3)))
    with pytest.raises(EvsimError, match="beta = 1"):
        to_nir_graph(no_leak)

    class GRULayer(type(small_model.layers[0])):
        cell = "csgru"

    odd = object.__new__(Model)
    object.__setattr__(odd, "layers", (object.__new__(GRULayer),))
    object.__setattr__(odd, "readout", small_model.readout)
    object.__setattr__(odd, "metadata", small_model.metadata)
    with pytest.raises(EvsimError, match="^layer0: cell kind 'csgru' cannot be exported to NIR"):
        to_nir_graph(odd)


def test_nothing_left_when_the_directory_is_missing(tmp_path, small_model):
    with pytest.raises(EvsimError, match="does not exist"):
        export_nir(small_model, tmp_path / "nope" / "m.nir")


def test_portable_export_warns_about_a_subtractive_reset(small_model):
    sub = replace(small_model, layers=tuple(replace(l, reset="subtract") for l in small_model.layers))
    _, warnings = to_nir_graph(sub, portable=True)
    assert [w for w in warnings if "subtractive reset" in w] == [
        f"layer{i}: the subtractive reset is stated only in the metadata; other tools will reset to v_reset = 0"
        for i in range(2)]
    faithful, warnings = to_nir_graph(sub)
    assert warnings == [] and faithful.nodes["layer0.lif"].metadata["reset"] == "subtract"


def test_adaptive_lif_layers_are_refused_naming_the_layer(tmp_path):
    """NIR has no adaptive-LIF node (CubaLIF is a synaptic current, not an adaptation
    variable): an AdLIF model is refused with one line, and nothing is written."""
    model = random_model(5, max_layers=2, max_neurons=8, cells=["adlif"])
    with pytest.raises(EvsimError, match="^layer0: cell kind 'adlif' cannot be exported to NIR"):
        export_nir(model, tmp_path / "m.nir")
    assert not list(tmp_path.iterdir())

