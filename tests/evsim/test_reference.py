"""Hand-computed traces for the dense reference simulator.

Values are dyadic fractions, exact in floating point, so every comparison is exact.
"""

import numpy as np
import pytest

from evsim.model import HiddenLayer, Model, ModelMetadata, Readout, build_model
from evsim.reference import simulate, softmax

X = np.array([0.75, 0.75, 0.75, 0.0, 3.0, 0.0, 0.5, 0.5])


def one_neuron(reset, beta=0.5):
    meta = ModelMetadata(input_channels=1, pool=1)
    layer = HiddenLayer(weight=[[1.0]], bias=[0.0], beta=[beta], threshold=[1.0], gain=[1.0], reset=reset)
    readout = Readout(weight=[[1.0]], bias=[0.0], beta=[0.5], gain=[1.0], decision="sum_membrane")
    return Model(layers=(layer,), readout=readout, metadata=meta)


def test_one_neuron_zero_reset():
    # v: .75, 1.125*, .75, .375, 3.1875*, 0, .5, .75   (* = spike; v -> 0 before the decay)
    res = simulate(one_neuron("zero"), X[:, None], record_spikes=True)
    assert res.spikes[0][0, :, 0].tolist() == [0, 1, 0, 0, 1, 0, 0, 0]


def test_one_neuron_subtract_reset():
    # v: .75, 1.125*, .8125, .40625, 3.203125*, 1.1015625*, .55078125, .775390625
    res = simulate(one_neuron("subtract"), X[:, None], record_spikes=True)
    assert res.spikes[0][0, :, 0].tolist() == [0, 1, 0, 0, 1, 1, 0, 0]


def test_readout_leaks_and_sums():
    res = simulate(one_neuron("zero"), X[:, None])
    # readout: u_t = .5 u_{t-1} + s_t with s = 0,1,0,0,1,0,0,0
    expected = [0, 1, .5, .25, 1.125, .5625, .28125, .140625]
    assert res.readout[0, :, 0].tolist() == expected
    assert res.scores[0, 0] == sum(expected)


def test_softmax_decision():
    model = build_model([np.eye(2)], np.eye(2), beta=0.0, readout_beta=0.0)
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    res = simulate(model, x)
    u = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert np.allclose(res.scores[0], softmax(u).sum(0))
    assert res.predictions[0] == 0


def test_threshold_is_inclusive():
    res = simulate(one_neuron("zero"), np.array([[1.0]]), record_spikes=True)
    assert res.spikes[0][0, 0, 0] == 1


def chain_model(n=4, delays=None):
    """Neuron i excites neuron i+1 (dense recurrence) with delay d_i = i."""
    w_rec = np.zeros((n, n))
    for i in range(n - 1):
        w_rec[i + 1, i] = 2.0
    w_in = np.zeros((n, 1))
    w_in[0, 0] = 2.0
    delays = np.arange(n) if delays is None else delays
    return build_model([w_in], np.eye(n), recurrence="dense", recurrent=[w_rec], delays=[delays], beta=0.0)


def test_chain_delivers_after_one_plus_delay_steps():
    # neuron 0 fires at 0; neuron i fires at t_{i-1} + 1 + d_{i-1}: 0, 1, 3, 6
    x = np.zeros((10, 1))
    x[0, 0] = 1.0
    res = simulate(chain_model(), x, record_spikes=True)
    s = res.spikes[0][0]
    assert [np.nonzero(s[:, i])[0].tolist() for i in range(4)] == [[0], [1], [3], [6]]


def test_chain_spike_beyond_the_end_is_lost():
    x = np.zeros((6, 1))
    x[0, 0] = 1.0
    res = simulate(chain_model(), x, record_spikes=True)
    assert res.spikes[0][0, :, 3].sum() == 0   # would arrive at step 6, the sample has 6 steps


def conv_model(kernel, n=5, delay=0):
    w_in = np.eye(n)
    return build_model([w_in], np.eye(n), recurrence="conv", recurrent=[np.asarray(kernel, float)],
                       delays=[np.full(n, delay)], beta=0.0)


@pytest.mark.parametrize("kernel, start, expected_order", [
    ([1.0, 0.0, 0.0], 0, [0, 1, 2, 3, 4]),    # K[0]: target i = j + 1, travels right, falls off the right edge
    ([0.0, 0.0, 1.0], 4, [4, 3, 2, 1, 0]),    # K[2]: target i = j - 1, travels left
    ([0.0, 0.0, 1.0], 0, [0]),                # neuron 0 has no left neighbour: zero edge
    ([1.0, 0.0, 0.0], 4, [4]),                # neuron 4 has no right neighbour
])
def test_conv_kernel_at_the_edges(kernel, start, expected_order):
    x = np.zeros((12, 5))
    x[0, start] = 1.0
    s = simulate(conv_model(kernel), x, record_spikes=True).spikes[0][0]
    fired = [(int(t), int(i)) for t, i in zip(*np.nonzero(s))]
    assert fired == [(k, n) for k, n in enumerate(expected_order)]


def test_conv_with_delay_and_five_taps():
    # kernel of 5: K[m] reaches i = j - m + 2 ; K[4] -> i = j - 2. Delay 2: arrival 3 steps later.
    x = np.zeros((12, 5))
    x[0, 4] = 1.0
    s = simulate(conv_model([0, 0, 0, 0, 1.0], delay=2), x, record_spikes=True).spikes[0][0]
    assert [(int(t), int(i)) for t, i in zip(*np.nonzero(s))] == [(0, 4), (3, 2), (6, 0)]


def test_lengths_mask_padded_steps():
    model = one_neuron("zero")
    x = np.stack([X, np.r_[X[:5], 0, 0, 0]])[:, :, None]
    res = simulate(model, x, lengths=[8, 5])
    alone = simulate(model, X[:5, None])
    assert np.array_equal(res.scores[1], alone.scores[0])
    assert np.all(res.readout[1, 5:] == 0)
