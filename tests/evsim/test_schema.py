"""Model file schema 2 (a cell per layer and its extra per-neuron parameters) and the
schema-1 files written before it, which still load, as LIF."""

import json
import os

import numpy as np
import pytest

import evsim
from evsim.errors import ModelFileError
from evsim.model import SCHEMA_VERSION, load_model
from tests.conftest import make_small_model

BUILTIN = os.path.join(os.path.dirname(evsim.__file__), "_builtin")


def as_schema1(arrays: dict) -> dict:
    """The arrays a schema-1 writer made of the same LIF model (no cell entries)."""
    out = dict(arrays)
    meta = json.loads(str(out["metadata"]))
    for layer in meta["layers"]:
        del layer["cell"]
    out["metadata"] = np.array(json.dumps(meta, sort_keys=True))
    out["schema_version"] = np.array(1, np.int64)
    return out


def test_new_files_are_schema_2_and_name_the_cell(tmp_path):
    model = make_small_model()
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as npz:
        assert int(npz["schema_version"]) == SCHEMA_VERSION == 2
        assert [l["cell"] for l in json.loads(str(npz["metadata"]))["layers"]] == ["lif", "lif"]


def test_schema_1_files_still_load_as_lif(tmp_path):
    model = make_small_model(recurrence=("conv", "dense"))
    path = tmp_path / "v1.npz"
    np.savez(path, **as_schema1(model.to_arrays()))
    again = load_model(path)
    assert [l.cell for l in again.layers] == ["lif", "lif"]
    a, b = model.to_arrays(), again.to_arrays()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_the_builtin_models_are_schema_2_files_and_load():
    """Both built-in models were trained on 2026-11-27, as schema-2 files (the schema-1
    ones they replaced are covered by ``test_schema_1_files_still_load_as_lif``)."""
    for name, schema in (("default_model.npz", 2), ("sparse_model.npz", 2)):
        path = os.path.join(BUILTIN, name)
        with np.load(path) as npz:
            assert int(npz["schema_version"]) == schema
        assert {l.cell for l in load_model(path).layers} == {"lif"}


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["layers"][0].pop("cell"), "metadata.layers\\[0\\] has no cell; schema 2 names each layer's cell"),
    (lambda m: m["layers"][1].__setitem__("cell", "hodgkin"), "layer1: unknown cell 'hodgkin'; expected one of lif, adlif"),
])
def test_bad_cells_in_schema_2_files(tmp_path, edit, message):
    arrays = make_small_model().to_arrays()
    meta = json.loads(str(arrays["metadata"]))
    edit(meta)
    arrays["metadata"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelFileError, match=message):
        load_model(tmp_path / "bad.npz")


def test_a_schema_1_file_naming_a_cell_is_refused(tmp_path):
    arrays = make_small_model().to_arrays()
    arrays["schema_version"] = np.array(1, np.int64)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelFileError, match="schema 1 does not have"):
        load_model(tmp_path / "bad.npz")
