"""`--engine auto`: which engine it picks at which size, and that its results are the
picked engine's (evsim.engine_choice, evsim.run.classify_file)."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import evsim.engine_choice as choice
from evsim.errors import EvsimError
from evsim.model_file import load_model
from evsim.names import BUILTIN_MODELS, BUILTIN_SAMPLES, builtin_path
from evsim.run import classify_file, get_engine


@pytest.fixture(scope="module")
def default_model():
    return load_model(builtin_path(BUILTIN_MODELS["default"]))


def test_explicit_engines_pass_and_unknown_names_raise(default_model):
    for engine in ("event", "dense"):
        assert choice.resolve_engine(engine, default_model, 10_000) == engine
    with pytest.raises(EvsimError, match="unknown engine 'fast'; expected one of: auto, event, dense"):
        choice.resolve_engine("fast", default_model, 1)
    with pytest.raises(EvsimError, match="unknown engine 'fast'"):
        get_engine("fast")
    with pytest.raises(EvsimError, match="engine 'auto' picks event or dense"):
        get_engine("auto")


def test_auto_switches_once_where_the_estimates_cross(default_model):
    """Dense up to the crossover of the two estimates, event from there on; the built-in
    model at 106 steps crosses between the 20 built-in samples and the 1000 test samples."""
    picks = [choice.choose_engine(default_model, n, numba_loaded=False) for n in range(1, 1001)]
    first_event = picks.index("event") + 1
    assert set(picks[:first_event - 1]) == {"dense"} and set(picks[first_event - 1:]) == {"event"}
    assert 20 < first_event < 1000
    for n, want in ((first_event - 1, "dense"), (first_event, "event")):
        dense, event = choice.dense_seconds(default_model, n), choice.event_seconds(default_model, n)
        assert (dense <= event) == (want == "dense")


def test_numba_already_loaded_moves_the_crossover_down(default_model):
    def crossover(loaded):
        return next(n for n in range(1, 2000) if choice.choose_engine(default_model, n, numba_loaded=loaded) == "event")

    assert crossover(True) < crossover(False)


def test_work_and_steps_of_the_builtin_model(default_model):
    layers = default_model.layers
    ff = sum(layer.weight.size for layer in layers)
    conv = sum(layer.recurrent.size * layer.n for layer in layers if layer.recurrence == "conv")
    assert choice.step_work(default_model) == ff + conv + default_model.readout.weight.size
    assert choice.sample_steps(default_model) == default_model.metadata.n_steps == 106


def test_cs_gru_layers_always_get_the_event_engine():
    model = SimpleNamespace(layers=[object()])          # not a neuron-cell layer
    assert choice.choose_engine(model, 1) == "event"


@pytest.mark.parametrize("start, picked", [(None, "dense"), (0.0, "event")])
def test_classify_file_auto_equals_the_engine_it_picked(default_model, monkeypatch, start, picked):
    """The 20 built-in samples: auto picks dense as measured; with the event engine's
    start-up taken as free it picks event.  Either way the result is that engine's, bit for
    bit, and both engines predict the same."""
    if start is not None:
        monkeypatch.setattr(choice, "EVENT_START_S", start)
        monkeypatch.setattr(choice, "EVENT_LOAD_S", start)
    path = builtin_path(BUILTIN_SAMPLES)
    auto = classify_file(default_model, path, engine="auto")
    assert auto.engine == picked
    same = classify_file(default_model, path, engine=picked)
    other = classify_file(default_model, path, engine="event" if picked == "dense" else "dense")
    assert [r.score for r in auto.samples] == [r.score for r in same.samples]
    assert [r.prediction for r in auto.samples] == [r.prediction for r in other.samples]
    assert auto.stats["spikes_per_layer"] == same.stats["spikes_per_layer"] == other.stats["spikes_per_layer"]
    assert ("synaptic_events" in auto.stats) == (picked == "event")


def test_one_sample_evsim_run_does_not_import_numba():
    code = ("import sys\nfrom evsim.cli.main import evsim\n"
            "evsim(['run', '--sample', '0', '-q'], standalone_mode=False)\n"
            "print('numba' in sys.modules, 'scipy' in sys.modules, 'evsim.audio.dataset' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert out[-3:] == ["False", "False", "False"]
    assert out[0] == "accuracy:"


def test_scores_equal_between_engines_in_the_auto_path(default_model):
    """The activity line's spike counts of the dense engine are its rasters' (the same as
    the event engine's counters on the built-in samples, checked above); here the sum over
    each sample's own steps only (a padded batch)."""
    from evsim.run import _spikes_in

    rasters = [np.ones((2, 5, 3), np.uint8)]
    assert _spikes_in(rasters, np.array([5, 2])).tolist() == [[15], [6]]
