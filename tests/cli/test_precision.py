"""`evsim run --precision`: both engines in float32 give the predictions of the float32
reference, the choice is shown (text and JSON), and an unknown precision is a usage error."""

import json

import pytest
from click.testing import CliRunner

from evsim.cli.main import evsim
from evsim.data import SpikeFile
from evsim.model import load_model
from evsim.reference import simulate


def invoke(*args):
    return CliRunner().invoke(evsim, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("engine", ["event", "dense"])
def test_run_in_float32_gives_the_float32_reference_predictions(model_file, spike_file, engine):
    res = invoke("run", "--model", model_file, "--input", spike_file, "--engine", engine, "--precision", "float32",
                 "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    model = load_model(model_file)
    with SpikeFile(spike_file, n_channels=20) as f:
        preds = [int(simulate(model, f.binned(i, dt_ms=10, pool=2), precision="float32").predictions[0])
                 for i in range(len(f))]
    assert [s["prediction"] for s in out["samples"]] == preds
    assert out["precision"] == "float32" and out["engine"] == engine


def test_run_names_the_precision_unless_it_is_the_default(model_file, spike_file):
    first = invoke("run", "--model", model_file, "--input", spike_file, "--engine", "event",
                   "--precision", "float32").output.splitlines()[0]
    assert first == f"model: {model_file}; input: {spike_file}; engine: event (float32)"
    auto = invoke("run", "--model", model_file, "--input", spike_file, "--precision", "float32").output.splitlines()[0]
    assert auto.startswith(f"model: {model_file}; input: {spike_file}; engine: ") and auto.endswith(", float32)")
    assert "(auto, for " in auto
    default = json.loads(invoke("run", "--model", model_file, "--input", spike_file, "--json").output)
    assert default["precision"] == "float64"


def test_unknown_precision_is_a_usage_error(model_file, spike_file):
    res = CliRunner().invoke(evsim, ["run", "--model", str(model_file), "--input", str(spike_file),
                                     "--precision", "float16"])
    assert res.exit_code == 2
    assert "Invalid value for '--precision': 'float16' is not one of 'float64', 'float32'" in res.output
