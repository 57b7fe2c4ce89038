"""The model file: round trip, and a clear error for every kind of bad file."""

import json

import numpy as np
import pytest

from evsim.errors import ModelFileError
from evsim.model import HiddenLayer, Model, load_model
from tests.conftest import make_small_model


def test_round_trip_gives_identical_arrays(tmp_path):
    for rec in (("none", "conv"), ("dense", "none"), ("conv", "dense")):
        model = make_small_model(recurrence=rec, n_steps=37)
        path = tmp_path / "m.npz"
        model.save(path)
        again = load_model(path)
        a, b = model.to_arrays(), again.to_arrays()
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].dtype == b[key].dtype, key
            assert np.array_equal(a[key], b[key]), key
        assert again.metadata == model.metadata
        assert [l.recurrence for l in again.layers] == list(rec)


def test_save_is_atomic_and_leaves_no_temporary(tmp_path):
    import os

    model = make_small_model()
    model.save(tmp_path / "m.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "m.npz").st_mode & 0o777 == 0o666 & ~umask


def test_arrays_are_read_only(small_model):
    with pytest.raises(ValueError):
        small_model.layers[0].weight[0, 0] = 1.0


def _write(path, arrays):
    np.savez(path, **arrays)
    return path


def _broken(tmp_path, model, change):
    arrays = {k: np.array(v) for k, v in model.to_arrays().items()}
    change(arrays)
    return _write(tmp_path / "bad.npz", arrays)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("layer1.weight"), "missing array 'layer1.weight'"),
    (lambda a: a.__setitem__("layer0.weight", np.ones((12, 3))), "layer0.weight: 3 inputs, but it is fed by 10 model inputs (20 channels pooled by 2)"),
    (lambda a: a.__setitem__("layer1.bias", np.ones(7)), "layer1.bias: shape (7,), expected (10,)"),
    (lambda a: a.__setitem__("readout.weight", np.ones((3, 4))), "readout.weight: 4 inputs, but the last hidden layer has 10 neurons"),
    (lambda a: a["layer0.weight"].__setitem__((0, 0), np.nan), "layer0.weight: 1 NaN or infinite value(s); all values must be finite"),
    (lambda a: a["readout.bias"].__setitem__(0, np.inf), "readout.bias: 1 NaN or infinite value(s)"),
    (lambda a: a.__setitem__("layer1.delays", np.array([-1] + [0] * 9)), "layer1.delays: negative delay -1; delays must be >= 0"),
    (lambda a: a.__setitem__("layer1.delays", np.array([1.5] + [0.0] * 9)), "layer1.delays: non-integer delay 1.5; delays in a model file are whole steps"),
    (lambda a: a.__setitem__("layer1.recurrent", np.ones(4)), "layer1.recurrent: conv kernel of even length 4; the length must be odd"),
    (lambda a: a.__setitem__("layer1.recurrent", np.ones((3, 3))), "layer1.recurrent: conv kernel has shape (3, 3), expected (k,) with k odd"),
    (lambda a: a.__setitem__("schema_version", np.array(7)), "unknown schema version 7; this evsim reads versions 1, 2"),
    (lambda a: a.__setitem__("metadata", np.array("{not json")), "metadata is not valid JSON"),
    (lambda a: a.__setitem__("layer0.beta", np.full(12, 1.5)), "layer0.beta: values outside [0, 1]"),
    (lambda a: a.__setitem__("layer0.threshold", np.zeros(12)), "layer0.threshold: must be > 0"),
    (lambda a: a.__setitem__("metadata", np.array(json.dumps({**json.loads(str(a["metadata"])), "layers": [{"reset": "zero", "recurrence": "none", "cell": "lif"}, {"reset": "soft", "recurrence": "conv", "cell": "lif"}]}))), "layer1: unknown reset 'soft'; expected one of zero, subtract"),
])
def test_bad_model_files_say_what_is_wrong(tmp_path, small_model, change, message):
    path = _broken(tmp_path, small_model, change)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert message in str(info.value)


def test_object_arrays_are_refused_without_unpickling(tmp_path, small_model):
    arrays = small_model.to_arrays()
    arrays["layer0.bias"] = np.array([object()] * 12, dtype=object)
    path = _write(tmp_path / "pickled.npz", arrays)
    with pytest.raises(ModelFileError, match="holds Python objects \\(pickle\\), which evsim never loads"):
        load_model(path)


def test_missing_and_non_npz_files(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found: .*nothing.npz"):
        load_model(tmp_path / "nothing.npz")
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="is not an evsim model \\(.npz\\) file"):
        load_model(text)
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model(tmp_path)


def test_delays_on_layer_without_recurrence_are_refused():
    with pytest.raises(ModelFileError, match="delays given for a layer without recurrence"):
        HiddenLayer(weight=np.ones((2, 2)), bias=np.zeros(2), beta=np.ones(2) * .5, threshold=np.ones(2),
                    gain=np.ones(2), delays=np.array([1, 0]))


def test_counts(small_model):
    # layer0: 12x10 + 12 ; layer1: 10x12 + 10 + conv 3 + 10 delays ; readout 3x10 + 3
    assert small_model.n_recurrent_params() == 3
    assert small_model.n_params() == (120 + 12) + (120 + 10 + 3 + 10) + (30 + 3)
    assert small_model.max_delay == int(small_model.layers[1].delays.max())
    assert isinstance(small_model, Model)
