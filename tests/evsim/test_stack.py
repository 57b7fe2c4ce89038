"""Models with CS-GRU layers (evsim.stack): event engine = dense reference on random
mixed stacks, streaming = whole sample, the model file (round trip, bad files), the
stacks that are allowed and the ones refused, and ``evsim info``.

Equivalence: identical spike rasters in every layer and readouts within 1e-6 relative.
The weights are Gaussian, so a membrane exactly at the threshold (the tie of
test_event.py, where the engines' summation orders may differ) has probability ~0; a
tie would show as a differing raster here."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from evsim import event, reference
from evsim.csgru_layer import CSGRULayer
from evsim.errors import ModelFileError
from evsim.info import describe, format_description
from evsim.model import HiddenLayer, Model, ModelMetadata, Readout
from evsim.model_file import load_model, model_to_arrays, save_model
from tests.csgru_strategies import STACKS, random_stack_case, stack_cases

RTOL = 1e-6
HYP = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_same(model, x, lengths):
    ev = event.simulate(model, x, lengths, record_spikes=True)
    ref = reference.simulate(model, x, lengths, record_spikes=True)
    assert len(ev.spikes) == len(ref.spikes) == len(model.layers)
    for l, (a, b) in enumerate(zip(ev.spikes, ref.spikes)):
        assert np.array_equal(a, b), f"layer{l} rasters differ"
    assert np.all(np.abs(ev.readout - ref.readout) <= RTOL * np.maximum(1.0, np.abs(ref.readout)))
    assert np.all(np.abs(ev.scores - ref.scores) <= RTOL * np.maximum(1.0, np.abs(ref.scores)))
    assert np.array_equal(ev.stats["spikes_per_layer"], np.stack([r.sum(axis=(1, 2)) for r in ref.spikes], axis=1))
    return ev


@settings(max_examples=60, **HYP)
@given(stack_cases())
def test_event_equals_reference_on_random_stacks(case):
    assert_same(*case)


def test_every_stack_shape_is_active_over_seeded_cases():
    """Seeded cases cover every stack shape of STACKS, and most spike in every layer."""
    seen, active = set(), 0
    for seed in range(40):
        model, x, lengths = random_stack_case(seed)
        ev = assert_same(model, x, lengths)
        seen.add(tuple("csgru" if isinstance(l, CSGRULayer) else "lif" for l in model.layers))
        active += bool(np.all(ev.stats["spikes_per_layer"].sum(axis=0) > 0))
    assert seen == set(STACKS)
    assert active >= 15


def _stack_model(seed=3, kinds=("lif", "csgru", "csgru")):
    for s in range(seed, seed + 500):
        model, x, lengths = random_stack_case(s)
        if tuple("csgru" if isinstance(l, CSGRULayer) else "lif" for l in model.layers) == kinds and x.shape[1] > 5:
            return model, x, lengths
    raise AssertionError("no such case")


@pytest.mark.parametrize("kinds", [("lif", "csgru", "csgru"), ("csgru", "lif"), ("csgru", "lif", "csgru")])
def test_stream_equals_whole_sample_in_random_chunks(kinds):
    model, x, lengths = _stack_model(kinds=kinds)
    rng = np.random.default_rng(0)
    whole = event.simulate(model, x[:1])
    stream = event.EventStream(model)
    assert type(stream).__name__ == "StackStream"
    rows, t = [], 0
    while t < x.shape[1]:
        n = int(rng.integers(1, 6))
        chunk = x[0, t:t + n]
        rows.append(stream.step(chunk[0]) if len(chunk) == 1 else stream.run_chunk(chunk))
        t += n
    got = np.vstack([r.reshape(-1, model.n_classes) for r in rows])
    assert np.array_equal(got, whole.readout[0])
    assert np.array_equal(stream.scores, whole.scores[0])
    assert stream.prediction == whole.predictions[0]
    assert stream.n_steps == x.shape[1]
    assert stream.stats["synaptic_events"] == whole.stats["synaptic_events"][0]
    assert np.array_equal(stream.stats["spikes_per_layer"], whole.stats["spikes_per_layer"][0])
    stream.reset()
    assert stream.n_steps == 0 and not stream.scores.any()
    assert np.array_equal(stream.run_chunk(x[0]), whole.readout[0])


def test_stream_push_raw_events_equals_whole_sample():
    model, x, _ = _stack_model(kinds=("csgru", "csgru"))
    counts = x[0].astype(int)
    steps, units = np.nonzero(counts)
    times = np.repeat((steps + 0.5) * model.metadata.dt_ms / 1000, counts[steps, units])
    units = np.repeat(units, counts[steps, units])
    whole = event.simulate(model, x[:1])
    stream = event.EventStream(model)
    half = len(times) // 2
    stream.push(times[:half], units[:half])
    stream.push(times[half:], units[half:], until=x.shape[1] * model.metadata.dt_ms / 1000)
    assert stream.n_steps == x.shape[1]
    assert np.array_equal(stream.scores, whole.scores[0])


def test_model_file_round_trip(tmp_path):
    model, x, lengths = _stack_model()
    path = tmp_path / "m.npz"
    save_model(model, path)
    back = load_model(path)
    assert [type(l) for l in back.layers] == [type(l) for l in model.layers]
    for a, b in zip(model.to_arrays().items(), back.to_arrays().items()):
        assert a[0] == b[0] and np.array_equal(a[1], b[1]) and a[1].dtype == b[1].dtype
    assert np.array_equal(event.simulate(back, x, lengths).readout, event.simulate(model, x, lengths).readout)
    meta = json.loads(str(model.to_arrays()["metadata"]))
    assert meta["layers"][1] == {"kind": "csgru", "gate": model.layers[1].gate, "detach_reset": False,
                                 "theta": 1.0, "channels": model.layers[1].channels,
                                 "in_channels": model.layers[1].in_channels, "positions": model.layers[1].positions}


def _bad_file(tmp_path, edit):
    model, _, _ = _stack_model(kinds=("csgru", "csgru"))
    arrays = model_to_arrays(model)
    meta = json.loads(str(arrays["metadata"]))
    edit(meta, arrays)
    arrays["metadata"] = np.array(json.dumps(meta))
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    return str(err.value)


def test_bad_files_are_refused_clearly(tmp_path):
    def kind(m, a):
        m["layers"][0]["kind"] = "gru"
    assert "kind: 'gru'; expected \"csgru\"" in _bad_file(tmp_path, kind)

    def channels(m, a):
        m["layers"][0]["channels"] += 1
    assert "channels = " in _bad_file(tmp_path, channels) and "but the arrays hold" in _bad_file(tmp_path, channels)

    def missing(m, a):
        del a["layer1.k_zh"]
    assert "missing array 'layer1.k_zh'" in _bad_file(tmp_path, missing)

    def delays(m, a):
        a["layer0.delays"] = a["layer0.delays"].astype(np.float32) + 0.5
    assert "non-integer delay" in _bad_file(tmp_path, delays)

    def even(m, a):
        a["layer0.k_rh"] = np.zeros(a["layer0.k_rh"].shape[:2] + (2,), np.float32)
    assert "k odd" in _bad_file(tmp_path, even)

    def gate(m, a):
        m["layers"][0]["gate"] = "forget"
    assert "unknown CS-GRU gate 'forget'" in _bad_file(tmp_path, gate)

    def extra(m, a):
        a["layer0.weight"] = np.zeros((1, 1), np.float32)
    assert "not accounted for" in _bad_file(tmp_path, extra)


def test_shapes_that_do_not_chain_are_refused():
    model, _, _ = _stack_model(kinds=("lif", "csgru", "csgru"))
    lif, gru = model.layers[0], model.layers[1]
    wrong = HiddenLayer(weight=np.ones((lif.n + 1, lif.n_in)), bias=np.zeros(lif.n + 1), beta=np.zeros(lif.n + 1),
                        threshold=np.ones(lif.n + 1), gain=np.ones(lif.n + 1), name="layer0")
    with pytest.raises(ModelFileError, match=r"layer1: a csgru layer of .* takes \d+ inputs per step, but it is fed by"):
        Model(layers=(wrong, gru), readout=Readout(np.ones((2, gru.n)), np.zeros(2), np.zeros(2), np.ones(2)),
              metadata=ModelMetadata(input_channels=lif.n_in, pool=1))
    with pytest.raises(ModelFileError, match="is not a model layer"):
        Model(layers=(object(),), readout=model.readout, metadata=model.metadata)


def test_info_shows_csgru_parameters_and_delays():
    model, _, _ = _stack_model(kinds=("lif", "csgru", "csgru"))
    d = describe(model)
    entry = d["layers"][1]
    layer = model.layers[1]
    assert entry["kind"] == "csgru" and entry["channels"] == layer.channels
    assert entry["recurrent_params"] == sum(getattr(layer, k).size for k in ("k_rh", "k_ih", "k_zh"))
    assert entry["params"] == sum(getattr(layer, k).size for k in
                                  ("k_rx", "k_ix", "k_zin", "k_rh", "k_ih", "k_zh", "b_r", "b_i", "b_z", "delays"))
    assert entry["delays"]["max"] == int(layer.delays.max())
    assert d["params_total"] == model.n_params()
    text = format_description(d)
    assert f"CS-GRU ({layer.channels} channels x {layer.positions} positions)" in text
    assert f"{entry['params']} params ({entry['recurrent_params']} recurrent)" in text
    assert text.count("delays (steps)") >= 2


def test_nir_export_refuses_a_csgru_layer(tmp_path):
    pytest.importorskip("nir", reason="needs the evsim[nir] extra")
    from evsim.errors import EvsimError
    from evsim.nir_io import export_nir

    model, _, _ = _stack_model(kinds=("csgru", "csgru"))
    with pytest.raises(EvsimError, match="csgru"):
        export_nir(model, tmp_path / "m.nir")
    assert not (tmp_path / "m.nir").exists()
