"""The command line on a model with CS-GRU layers: evsim info shows the layers, their
parameters and delays; evsim run gives the same predictions with both engines."""

import json

import numpy as np
from click.testing import CliRunner
from evsim.cli.main import evsim

from evsim.csgru_layer import CSGRULayer
from evsim.data import write_spike_file
from evsim.model import Model, ModelMetadata, Readout


def _model(tmp_path):
    rng = np.random.default_rng(0)
    c, n_p = 3, 10                      # 20 raw channels pooled by 2 = 1 x 10 positions

    def layer(c_in, name, dmax):
        k = lambda c_src: rng.normal(0, 1.2, (c, c_src, 3))
        return CSGRULayer(k(c_in), k(c_in), k(c), k(c), k(c), k(c), rng.normal(0, 1, c), rng.normal(0.5, 0.3, c),
                          rng.normal(0, 1, c), rng.integers(0, dmax + 1, (c, n_p)), name=name)

    layers = (layer(1, "layer0", 0), layer(c, "layer1", 5))
    ro = Readout(rng.normal(0, 1, (3, c * n_p)), np.zeros(3), np.full(3, 0.5), np.ones(3))
    model = Model(layers=layers, readout=ro, metadata=ModelMetadata(input_channels=20, pool=2,
                                                                    class_names=("a", "b", "c")))
    path = tmp_path / "csgru.npz"
    model.save(path)
    samples = [(np.sort(rng.uniform(0, 0.3, 80)), rng.integers(0, 20, 80)) for _ in range(5)]
    data = tmp_path / "x.h5"
    write_spike_file(data, samples, labels=[0, 1, 2, 0, 1], class_names=["a", "b", "c"])
    return path, data


def test_info_and_run_on_a_csgru_model(tmp_path):
    path, data = _model(tmp_path)
    runner = CliRunner()
    res = runner.invoke(evsim, ["info", str(path)])
    assert res.exit_code == 0, res.output
    assert "layer1: 30 (3 x 10) -> 30 CS-GRU (3 channels x 10 positions), kernel k=3" in res.output
    assert "(81 recurrent)" in res.output and res.output.count("delays (steps)") == 2
    js = json.loads(runner.invoke(evsim, ["info", str(path), "--json"]).output)
    assert js["layers"][1]["delays"]["max"] <= 5 and js["params_recurrent"] == 2 * 81
    out = {}
    for engine in ("event", "dense"):
        res = runner.invoke(evsim, ["run", "--model", str(path), "--input", str(data), "--engine", engine, "--json"])
        assert res.exit_code == 0, res.output
        out[engine] = json.loads(res.output)
    assert [s["prediction"] for s in out["event"]["samples"]] == [s["prediction"] for s in out["dense"]["samples"]]
    # the default precision, auto, runs a CS-GRU model in float64 (its only precision)
    assert all((o["precision"], o["precision_option"]) == ("float64", "auto") for o in out.values())
    assert out["event"]["accuracy"] == out["dense"]["accuracy"]
