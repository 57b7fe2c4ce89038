"""`evsim run --precision`: both engines in float32 give the predictions of the float32
reference, the choice is shown (text and JSON), the default `auto` runs float32 for a
neuron-cell model (float64 for a CS-GRU one), and an unknown precision is a usage error."""

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


def test_run_names_the_precision_unless_it_is_float64(model_file, spike_file):
    first = invoke("run", "--model", model_file, "--input", spike_file, "--engine", "event",
                   "--precision", "float32").output.splitlines()[0]
    assert first == f"model: {model_file}; input: {spike_file}; engine: event (float32)"
    auto = invoke("run", "--model", model_file, "--input", spike_file, "--precision", "float32").output.splitlines()[0]
    assert auto.startswith(f"model: {model_file}; input: {spike_file}; engine: ") and auto.endswith(", float32)")
    assert "(auto, for " in auto
    f64 = invoke("run", "--model", model_file, "--input", spike_file, "--engine", "event",
                 "--precision", "float64").output.splitlines()[0]
    assert f64 == f"model: {model_file}; input: {spike_file}; engine: event"


@pytest.mark.parametrize("engine", ["event", "dense"])
def test_default_precision_is_auto_float32_for_a_cell_model(model_file, spike_file, engine):
    default = json.loads(invoke("run", "--model", model_file, "--input", spike_file, "--engine", engine, "--json").output)
    f32 = json.loads(invoke("run", "--model", model_file, "--input", spike_file, "--engine", engine, "--json",
                            "--precision", "float32").output)
    assert (default["precision"], default["precision_option"]) == ("float32", "auto")
    assert default["samples"] == f32["samples"] and default["stats"] == f32["stats"]
    f64 = json.loads(invoke("run", "--model", model_file, "--input", spike_file, "--engine", engine, "--json",
                            "--precision", "float64").output)
    assert (f64["precision"], f64["precision_option"]) == ("float64", "float64")


def test_auto_resolves_by_the_models_layers(model_file):
    from evsim.errors import EvsimError
    from evsim.precision import resolve_precision
    from tests.csgru_strategies import random_stack_case

    cells = load_model(model_file)
    assert resolve_precision("auto", cells) == "float32"
    assert resolve_precision("float64", cells) == "float64" and resolve_precision("float32", cells) == "float32"
    stack, _, _ = random_stack_case(3)                  # neuron-cell and CS-GRU layers
    assert resolve_precision("auto", stack) == "float64"
    assert resolve_precision("float32", stack) == "float32"   # explicit: the engines refuse it (tests/evsim)
    with pytest.raises(EvsimError, match="^unknown precision 'float16'; expected one of auto, float64, float32$"):
        resolve_precision("float16", cells)


def test_unknown_precision_is_a_usage_error(model_file, spike_file):
    res = CliRunner().invoke(evsim, ["run", "--model", str(model_file), "--input", str(spike_file),
                                     "--precision", "float16"])
    assert res.exit_code == 2
    assert "Invalid value for '--precision': 'float16' is not one of 'auto', 'float64', 'float32'" in res.output
