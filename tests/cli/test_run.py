"""`evsim run` and `evsim info` as a user runs them: exit codes and exact messages."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from evsim.cli.main import evsim
from evsim.model import load_model
from evsim.reference import simulate
from evsim.data import SpikeFile

ENGINES = ["dense", "event"]


def invoke(*args):
    return CliRunner().invoke(evsim, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("engine", ENGINES)
def test_run_prints_each_sample_and_accuracy(model_file, spike_file, engine):
    res = invoke("run", "--model", model_file, "--input", spike_file, "--engine", engine)
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 10
    # which model and input were used, and what the score means
    assert lines[0] == f"model: {model_file}; input: {spike_file}; engine: {engine} (float32)"
    assert lines[1].startswith("score = sum over the sample's steps of the class's softmax probability")
    assert lines[2].startswith("sample 0: class") and " steps)  label class" in lines[2]
    assert lines[-1].startswith("accuracy: ")
    assert lines[-2].startswith("activity: firing rate ") and \
        "% (spikes / (hidden neurons x steps run); layers: " in lines[-2]
    # only the event engine counts synaptic events, and the dense one says so instead of a figure
    if engine == "event":
        assert lines[-2].endswith(" synaptic events per step")
    else:
        assert lines[-2].endswith(", synaptic events not counted by the dense engine")


@pytest.mark.parametrize("engine", ENGINES)
def test_run_json_matches_the_reference(model_file, spike_file, engine):
    res = invoke("run", "--model", model_file, "--input", spike_file, "--engine", engine, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    model = load_model(model_file)
    with SpikeFile(spike_file, n_channels=20) as f:
        preds = [int(simulate(model, f.binned(i, dt_ms=10, pool=2)).predictions[0]) for i in range(len(f))]
        labels = f.labels.tolist()
    assert [s["prediction"] for s in out["samples"]] == preds
    assert [s["label"] for s in out["samples"]] == labels
    assert out["accuracy"] == pytest.approx(np.mean(np.array(preds) == np.array(labels)))
    assert out["engine"] == engine and out["engine_option"] == engine and out["n_samples"] == 6
    # activity from the engine's counters, checked against the reference's rasters of each sample alone
    steps = sum(s["steps"] for s in out["samples"])
    with SpikeFile(spike_file, n_channels=20) as f:
        runs = [simulate(model, f.binned(i, dt_ms=10, pool=2), record_spikes=True) for i in range(len(f))]
    spikes = np.sum([[r.sum() for r in res.spikes] for res in runs], axis=0)
    assert spikes.sum() > 0
    sizes = np.array([layer.n for layer in model.layers])
    assert out["firing_rates"] == pytest.approx((spikes / (sizes * steps)).tolist())
    assert out["firing_rate"] == pytest.approx(spikes.sum() / (sizes.sum() * steps))
    assert out["stats"]["spikes_per_layer"] == spikes.tolist()
    if engine == "event":
        assert out["synaptic_events_per_step"] == pytest.approx(out["stats"]["synaptic_events"] / steps)
    else:   # the dense engine does not count them: no figure rather than a wrong one
        assert out["synaptic_events_per_step"] is None and "synaptic_events" not in out["stats"]


def test_run_auto_says_which_engine_ran_and_matches_it(model_file, spike_file, monkeypatch):
    """--engine auto (the default) runs the engine evsim.engine_choice picks, names it, and
    gives that engine's output; forced each way, it equals the explicit engine's run."""
    import evsim.engine_choice as choice

    for picked in ("dense", "event"):
        monkeypatch.setattr(choice, "choose_engine", lambda *a, picked=picked, **k: picked)
        auto = invoke("run", "--model", model_file, "--input", spike_file)
        lines = auto.output.strip().splitlines()
        assert lines[0] == f"model: {model_file}; input: {spike_file}; engine: {picked} (auto, for 6 samples, float32)"
        explicit = invoke("run", "--model", model_file, "--input", spike_file, "--engine", picked)
        assert lines[1:] == explicit.output.strip().splitlines()[1:]
        out = json.loads(invoke("run", "--model", model_file, "--input", spike_file, "--json").output)
        assert out["engine"] == picked and out["engine_option"] == "auto"


def test_run_auto_picks_dense_for_one_sample_and_event_for_many(model_file, spike_file):
    from evsim.engine_choice import choose_engine

    model = load_model(model_file)
    assert choose_engine(model, 1, numba_loaded=False) == "dense"
    out = json.loads(invoke("run", "--model", model_file, "--input", spike_file, "--sample", 2, "--json").output)
    assert out["engine"] == "dense" and out["engine_option"] == "auto"


def test_run_one_sample(model_file, spike_file):
    res = invoke("run", "--model", model_file, "--input", spike_file, "--sample", 3, "--engine", "dense", "--json")
    out = json.loads(res.output)
    assert [s["index"] for s in out["samples"]] == [3]


def test_info_text_and_json(model_file):
    res = invoke("info", model_file)
    assert res.exit_code == 0
    assert "layer1: 12 -> 10 LIF, reset zero, recurrence conv k=3" in res.output
    assert "parameters: 308 total, 3 recurrent" in res.output
    d = json.loads(invoke("info", model_file, "--json").output)
    assert d["params_recurrent"] == 3 and d["layers"][1]["delays"]["max"] <= 4


def test_help_everywhere():
    for args in ([], ["run"], ["info"]):
        res = invoke(*args, "--help")
        assert res.exit_code == 0 and "Usage:" in res.output


@pytest.mark.parametrize("args, message", [
    (["run", "--model", "MISSING.npz", "--input", "SPIKES"], "Error: model file not found: MISSING.npz"),
    (["run", "--model", "MODEL", "--input", "MISSING.h5"], "Error: input file not found: MISSING.h5"),
    (["run", "--model", "TEXT", "--input", "SPIKES"], "is not an evsim model (.npz) file"),
    (["run", "--model", "MODEL", "--input", "TEXT"], "is not an HDF5 file; expected the SHD layout"),
    (["run", "--model", "MODEL", "--input", "SPIKES", "--sample", "99"], "sample 99 out of range"),
    (["run", "--model", "MODEL", "--input", "WIDE"], "unit 30 outside [0, 20)"),
    (["info", "TEXT"], "is not an evsim model (.npz) file"),
    (["run", "--model", "DIR", "--input", "SPIKES"], "model path is a directory, not a file"),
])
def test_bad_input_is_one_line_and_non_zero(tmp_path, model_file, spike_file, args, message):
    from evsim.data import write_spike_file

    text = tmp_path / "text.bin"
    text.write_text("hello")
    wide = tmp_path / "wide.h5"
    write_spike_file(wide, [([0.01], [30])])
    subst = {"MODEL": model_file, "SPIKES": spike_file, "TEXT": text, "WIDE": wide, "DIR": tmp_path,
             "MISSING.npz": "MISSING.npz", "MISSING.h5": "MISSING.h5"}
    res = CliRunner().invoke(evsim, [str(subst.get(a, a)) for a in args])
    assert res.exit_code == 1
    assert isinstance(res.exception, SystemExit), res.exception   # a clean exit, not a crash
    assert message in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_label_out_of_range_for_the_model(tmp_path, model_file):
    from evsim.data import write_spike_file

    path = tmp_path / "labels.h5"
    write_spike_file(path, [([0.01], [1])], labels=[7])
    res = CliRunner().invoke(evsim, ["run", "--model", str(model_file), "--input", str(path), "--engine", "dense"])
    assert res.exit_code == 1 and "label 7 is out of range for a model with 3 classes" in res.output
    assert isinstance(res.exception, SystemExit)


def test_empty_file_says_so(tmp_path, model_file):
    from evsim.data import write_spike_file

    path = tmp_path / "empty.h5"
    write_spike_file(path, [])
    res = invoke("run", "--model", model_file, "--input", path)
    assert res.exit_code == 0
    assert res.output.strip().splitlines()[-1] == "0 samples classified (the input has no labels, so no accuracy)"


def test_cli_engine_list_is_the_librarys():
    import evsim.cli.run
    import evsim.run

    assert evsim.cli.run.ENGINES == evsim.run.ENGINES


def test_builtin_models_by_name(tmp_path, model_file, monkeypatch):
    """`--model default|sparse` (and `evsim info NAME`) pick the models shipped with the
    package; the sparse one fires less on the built-in samples; a file of that name wins."""
    out = {}
    for name in ("default", "sparse", None):
        res = invoke("run", "--json", "--engine", "event", *(["--model", name] if name else []))
        assert res.exit_code == 0, res.output
        out[name] = json.loads(res.output)
        assert out[name]["model"].endswith(f"{name or 'default'}_model.npz") and out[name]["n_samples"] == 20
    assert out[None]["samples"] == out["default"]["samples"]
    assert out["sparse"]["firing_rate"] < 0.5 * out["default"]["firing_rate"]
    assert out["sparse"]["synaptic_events_per_step"] < 0.7 * out["default"]["synaptic_events_per_step"]
    info = json.loads(invoke("info", "sparse", "--json").output)
    assert len(info["layers"]) == 4
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sparse").write_bytes(open(model_file, "rb").read())
    local = json.loads(invoke("info", "sparse", "--json").output)
    assert local == json.loads(invoke("info", model_file, "--json").output) and local != info
