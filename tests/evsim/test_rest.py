"""Coming to rest: once a sample's hidden layers provably cannot spike again (no spike in
the step, nothing queued, no input left, every cell's rest test passed), the event engine
runs only the readout for the sample's remaining steps (``evsim.kernels.event``, "Coming
to rest").  That must change nothing: readout trace, scores, predictions, spike rasters
and counters bit for bit those of the full run (``simulate(..., rest=False)``), in both
precisions, and the engine must still equal the dense reference.  Hand-made cases check
that it does not stop while something can still happen: a neuron that its bias alone
drives to threshold after the input has ended, a delayed spike still in a queue, an
adaptive cell (no proof, so no rest)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evsim import event, reference
from evsim.model import HiddenLayer, Model, ModelMetadata, Readout
from tests.evsim.test_event import HYP, PRECISIONS, assert_equivalent, case_kw
from tests.strategies import inputs, models, random_case


def with_silence(x, lengths, extra: int):
    """The batch with ``extra`` zero steps appended to every sample (its length too): a
    tail of silence, as a model's fixed n_steps gives a sample after its word ends."""
    x = np.asarray(x, np.float64)
    b, n_t, n_in = x.shape
    out = np.zeros((b, n_t + extra, n_in))
    for i in range(b):
        out[i, :lengths[i]] = x[i, :lengths[i]]
    return out, np.asarray(lengths, np.int64) + extra


def bits(a):
    return np.ascontiguousarray(a).tobytes()


def assert_same_as_full_run(model, x, lengths, precision="float64") -> int:
    """simulate with rest = without, bit for bit; returns how many samples came to rest."""
    fast = event.simulate(model, x, lengths, record_spikes=True, precision=precision)
    full = event.simulate(model, x, lengths, record_spikes=True, precision=precision, rest=False)
    assert bits(fast.readout) == bits(full.readout)
    assert bits(fast.scores) == bits(full.scores)
    assert fast.predictions.tolist() == full.predictions.tolist()
    for a, b in zip(fast.spikes, full.spikes):
        assert np.array_equal(a, b)
    for key in ("synaptic_events", "spikes_per_layer"):
        assert np.array_equal(fast.stats[key], full.stats[key]), key
    _, lengths = reference.check_inputs(model, x, lengths)
    assert full.stats["hidden_steps"].tolist() == lengths.tolist()
    ran = fast.stats["hidden_steps"]
    assert np.all(ran <= lengths) and np.all(ran >= np.minimum(lengths, 1))
    # after the step it stopped at, no spike anywhere (the proof's claim, seen in the full run)
    for raster in full.spikes:
        for b in range(raster.shape[0]):
            assert not raster[b, ran[b]:lengths[b]].any()
    return int(np.sum(ran < lengths))


@pytest.mark.parametrize("precision", PRECISIONS)
@settings(max_examples=120, **HYP)
@given(data=st.data())
def test_rest_changes_nothing_and_matches_the_dense_engine(precision, data):
    model = data.draw(models(**case_kw(precision)))
    x, lengths = data.draw(inputs(model.n_inputs, max_steps=40))
    x, lengths = with_silence(x, lengths, data.draw(st.integers(0, 60), label="silence"))
    assert_same_as_full_run(model, x, lengths, precision)
    assert_equivalent(model, x, lengths, precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_rest_happens_often_over_seeded_cases(precision):
    """The property above is not vacuous: over a fixed population of random LIF models
    (adlif never rests) with a tail of silence, a good share of the samples come to rest
    (and each is exact).  Many random models never do: a neuron whose bias alone takes it
    past threshold fires forever, and recurrences can sustain activity."""
    rested = total = 0
    for seed in range(60):
        model_kw = {**case_kw(precision), "cells": ("lif",), "max_layers": 2}
        model, x, lengths = random_case(seed, model_kw=model_kw, input_kw={"max_steps": 30})
        x, lengths = with_silence(x, lengths, 40)
        rested += assert_same_as_full_run(model, x, lengths, precision)
        total += x.shape[0]
    assert rested >= 0.25 * total, f"{rested} of {total} samples came to rest"


# -- hand-made cases -------------------------------------------------------------------

def _layer(w, *, threshold=1.0, beta=0.0, gain=1.0, bias=0.0, recurrence="none", recurrent=None, delays=None,
           cell="lif", extra=None, name="layer"):
    n = np.asarray(w).shape[0]
    return HiddenLayer(weight=np.asarray(w, float), bias=np.broadcast_to(np.asarray(bias, float), (n,)).copy(),
                       beta=np.full(n, beta), threshold=np.full(n, threshold), gain=np.full(n, gain), reset="zero",
                       recurrence=recurrence, recurrent=np.zeros(0) if recurrent is None else recurrent,
                       delays=delays, name=name, cell=cell, extra=extra or {})


def _model(layers, n_classes=2):
    """A leaky softmax readout with a bias, so that its tail after the rest is not trivial."""
    n_last = layers[-1].n
    ro = Readout(weight=np.linspace(-1.0, 1.0, n_classes * n_last).reshape(n_classes, n_last),
                 bias=np.linspace(0.1, 0.3, n_classes), beta=np.full(n_classes, 0.9), gain=np.full(n_classes, 0.7),
                 decision="sum_softmax")
    return Model(layers=tuple(layers), readout=ro, metadata=ModelMetadata(input_channels=layers[0].n_in, pool=1))


def _spike_steps(model, x, precision):
    res = event.simulate(model, x, record_spikes=True, precision=precision)
    return res, [np.nonzero(r[0].any(axis=1))[0].tolist() for r in res.spikes]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_quiet_sample_stops_right_after_its_last_spike(precision):
    """One neuron, beta 0.5, no bias: the input's spike at step 2, then silence; the neuron
    is at rest after step 3 (step 2 spiked), so the hidden layer runs 4 of 50 steps."""
    model = _model([_layer([[2.0]], beta=0.5)])
    x = np.zeros((1, 50, 1))
    x[0, 2, 0] = 1
    res, steps = _spike_steps(model, x, precision)
    assert steps == [[2]]
    assert res.stats["hidden_steps"].tolist() == [4]
    assert_same_as_full_run(model, x, None, precision) == 1
    assert_equivalent(model, x, None, precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_neuron_its_bias_drives_to_threshold_after_the_input_keeps_the_run_going(precision):
    """Neuron 0 is held down by its input for 10 steps (v_9 = -8.8 (1 - 2^-10)), then its
    bias (fixed point 1.2, threshold 1) drives it back up: v = -3.80, -1.30, -0.05, 0.58,
    0.89, 1.04 -> a first spike at step 15, six steps after the last input, then from
    the reset 0.6, 0.9, 1.05: every 3 steps.  Neuron 1 rests throughout; the membrane of
    neuron 0 is below threshold for five silent steps, but nothing may stop."""
    layer = _layer([[-5.0], [0.0]], beta=0.5, bias=[0.6, 0.0])
    model = _model([layer])
    x = np.zeros((1, 40, 1))
    x[0, :10, 0] = 1
    res, steps = _spike_steps(model, x, precision)
    assert steps == [[15, 18, 21, 24, 27, 30, 33, 36, 39]]
    assert res.stats["hidden_steps"].tolist() == [40]
    assert_same_as_full_run(model, x, None, precision)
    assert_equivalent(model, x, None, precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_fixed_point_at_the_threshold_is_not_proven_quiet(precision):
    """beta 0.5, bias 0.5, threshold 1: v -> 1 from below (0.5, 0.75, 0.875, ...), and in
    floating point the halving gap rounds away: the neuron spikes once the gap is below
    the precision's rounding (~25 steps in float32, ~54 in float64).  The rest test must
    not claim it quiet before: its fixed point is not below M = theta (1 - 2^-20)."""
    model = _model([_layer([[0.0]], beta=0.5, bias=0.5)])
    x = np.zeros((1, 120, 1))
    res, steps = _spike_steps(model, x, precision)
    assert steps[0] and steps[0][0] > 20
    assert res.stats["hidden_steps"].tolist() == [120]
    assert_same_as_full_run(model, x, None, precision)
    assert_equivalent(model, x, None, precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_delayed_spike_in_the_queue_keeps_the_run_going(precision):
    """Neuron 0 spikes at step 0; its recurrent weight reaches neuron 1 after 1 + 30 steps
    and makes it spike at step 31, whose own (zero-weight) delivery arrives at step 32.
    Every membrane is at rest from step 1 on, but the queue is not empty until step 32:
    the hidden layer runs 33 steps of 60."""
    rec = np.zeros((2, 2))
    rec[1, 0] = 2.0                                        # target 1 <- source 0
    layer = _layer([[2.0], [0.0]], beta=0.25, recurrence="dense", recurrent=rec, delays=np.array([30, 0]))
    model = _model([layer])
    x = np.zeros((1, 60, 1))
    x[0, 0, 0] = 1
    res, steps = _spike_steps(model, x, precision)
    assert steps == [[0, 31]]
    assert res.stats["hidden_steps"].tolist() == [33]
    assert_same_as_full_run(model, x, None, precision) == 1
    assert_equivalent(model, x, None, precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_spike_reaching_a_higher_layer_late_keeps_the_run_going(precision):
    """Two layers: layer 0 quiet after its input, layer 1 tonic (bias above threshold):
    the network never rests."""
    model = _model([_layer([[2.0]], beta=0.5, name="layer0"),
                    _layer([[0.5]], beta=0.5, bias=0.7, name="layer1")])
    x = np.zeros((1, 30, 1))
    x[0, 0, 0] = 1
    res = event.simulate(model, x, precision=precision)
    assert res.stats["hidden_steps"].tolist() == [30]
    assert_same_as_full_run(model, x, None, precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_adaptive_cells_never_rest(precision):
    """adlif proves nothing (its membrane can overshoot through w), so it runs every step,
    even when it is silent."""
    extra = {"beta_w": np.full(1, 0.9), "a": np.full(1, 0.1), "b": np.full(1, 0.5)}
    model = _model([_layer([[2.0]], beta=0.5, cell="adlif", extra=extra)])
    x = np.zeros((1, 30, 1))
    x[0, 0, 0] = 1
    res = event.simulate(model, x, precision=precision)
    assert res.stats["hidden_steps"].tolist() == [30]
    assert_same_as_full_run(model, x, None, precision)


def test_streams_run_every_step_and_equal_the_batch():
    """A stream's state must stay exact for the calls that follow, so it never stops; its
    outputs equal simulate's, which does."""
    model = _model([_layer([[2.0]], beta=0.5)])
    x = np.zeros((1, 50, 1))
    x[0, 2, 0] = 1
    res = event.simulate(model, x)
    assert res.stats["hidden_steps"].tolist() == [4]
    stream = event.EventStream(model)
    rows = stream.run_chunk(x[0])
    assert bits(rows) == bits(res.readout[0]) and bits(stream.scores) == bits(res.scores[0])
    assert stream.n_steps == 50
