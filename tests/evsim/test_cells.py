"""The cell registry: every registered cell runs in every engine, and every engine refuses
a kind (cell, recurrence, reset, decision, surrogate) it does not know, with an error
rather than a silent fall-through."""

from dataclasses import replace

import numpy as np
import pytest

from evsim import event, reference
from evsim.cells import CELLS, get_cell
from evsim.errors import EvsimError, ModelFileError
from tests.evsim.test_event import assert_equivalent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import inputs, models, random_case

BAD = 97   # a code no dispatcher knows


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_every_cell_runs_in_the_reference_and_the_event_engine(cell):
    ties = samples = spikes = 0
    for seed in range(12):
        model, x, lengths = random_case(seed, model_kw={"cells": (cell,), "max_neurons": 24})
        assert {l.cell for l in model.layers} == {cell}
        ties += assert_equivalent(model, x, lengths)
        samples += x.shape[0]
        spikes += sum(int(r.sum()) for r in reference.simulate(model, x, lengths, record_spikes=True).spikes)
    assert spikes > 0 and ties <= 0.05 * samples


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(cells=("adlif",), weights="dyadic", max_neurons=16), st.data())
def test_adlif_event_equals_dense_exact_ties(model, data):
    """Dyadic AdLIF models (beta_w 0, 1/2 or 1; a, b multiples of 1/4): membranes land on
    the threshold exactly, and both engines agree there (H(0) = 1); no tie is allowed."""
    x, lengths = data.draw(inputs(model.n_inputs))
    assert assert_equivalent(model, x, lengths) == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(cells=("adlif",), max_neurons=24), st.data())
def test_adlif_event_equals_dense(model, data):
    x, lengths = data.draw(inputs(model.n_inputs))
    assert assert_equivalent(model, x, lengths) <= 0.05 * x.shape[0]


def test_unknown_cell_names_are_refused():
    with pytest.raises(EvsimError, match="unknown cell 'izhikevich'; expected one of lif, adlif"):
        get_cell("izhikevich")
    model, _, _ = random_case(0, model_kw={"cells": ("lif",)})
    layer = model.layers[0]
    with pytest.raises(ModelFileError, match="layer0: unknown cell 'izhikevich'"):
        replace(layer, cell="izhikevich")
    with pytest.raises(ModelFileError, match="do not belong to a 'lif' cell"):
        replace(layer, extra={"a": np.zeros(layer.n)})
    with pytest.raises(ModelFileError, match="a 'adlif' cell needs the per-neuron parameter 'beta_w'"):
        replace(layer, cell="adlif")
    with pytest.raises(ModelFileError, match="beta_w: values outside \\[0, 1\\]"):
        replace(layer, cell="adlif", extra={"beta_w": np.full(layer.n, 1.5), "a": np.zeros(layer.n), "b": np.zeros(layer.n)})


def _tampered(model, layer_attr=None, value=None, decision=None):
    """A model whose first layer (or readout) holds a kind no engine knows: validation is
    bypassed, as a bug or a hand-edited object would."""
    layer = model.layers[0]
    if layer_attr is not None:
        object.__setattr__(layer, layer_attr, value)
    if decision is not None:
        object.__setattr__(model.readout, "decision", decision)
    return model


@pytest.mark.parametrize("attr", ["recurrence", "reset", "cell", "decision"])
def test_the_reference_refuses_unknown_kinds(attr):
    model, x, lengths = random_case(3, model_kw={"recurrences": ("conv",)})
    if attr == "decision":
        _tampered(model, decision="argmax")
    else:
        _tampered(model, attr, "bogus")
    with pytest.raises(EvsimError, match="unknown"):
        reference.simulate(model, x, lengths)


@pytest.mark.parametrize("group, field", [("rec", "kind"), ("cells", "reset"), ("cells", "kind"), ("ro", "decision")])
def test_the_event_kernel_refuses_unknown_codes(group, field):
    from evsim.kernels import event as k

    model, x, lengths = random_case(3, model_kw={"recurrences": ("conv",)})
    x, lengths = reference.check_inputs(model, x, lengths)
    lengths = np.maximum(lengths, 1)
    params = event.pack_model(model)
    codes = getattr(getattr(params, group), field).copy()
    codes[0] = BAD
    bad = k.as_plain(params._replace(**{group: getattr(params, group)._replace(**{field: codes})}))
    b, n_t, _ = x.shape
    args = (np.ascontiguousarray(x), lengths, np.zeros((b, n_t, model.n_classes)),
            np.zeros((b, model.n_classes)), np.zeros((b, 0, int(params.ff.nrn_off[-1])), np.uint8), False,
            np.zeros(b, np.int64), np.zeros((b, len(model.layers)), np.int64))
    with pytest.raises(ValueError, match="unknown"):
        k.run_batch_serial(*bad, *args)
    stream = event.EventStream(model)
    with pytest.raises(ValueError, match="unknown"):
        k.stream_chunk(bad, stream._state_t, np.ascontiguousarray(x[0]), 1, np.zeros((1, model.n_classes)))


def test_event_packing_refuses_unknown_kinds():
    model, _, _ = random_case(3, model_kw={"recurrences": ("conv",)})
    with pytest.raises(EvsimError, match="unknown cell"):
        event.simulate(_tampered(model, "cell", "bogus"), np.zeros((1, 2, model.n_inputs)))
