"""Hand-computed traces of the CS-GRU dense reference (evsim/cells/csgru_reference.py)."""

import math

import numpy as np
import pytest

from evsim.cells.csgru import make_params
from evsim.cells.csgru_reference import conv_same, delay_weight, run_reference
from evsim.errors import EvsimError


def layer(c=1, c_in=1, n_p=1, k_ix=1.0, k_ih=0.0, k_zin=0.0, b_r=0.0, b_i=0.0, b_z=0.0, delays=None,
          gate="input", theta=1.0, integer_delays=True):
    """Single-tap kernels (k = 1: no mixing across positions); gates 0.5 unless set."""
    full = lambda value, a, b: np.full((a, b, 1), float(value))
    return make_params(full(0, c, c_in), full(k_ix, c, c_in), full(k_zin, c, c if gate == "current" else c_in),
                       full(0, c, c), full(k_ih, c, c), full(0, c, c), np.full(c, b_r), np.full(c, b_i),
                       np.full(c, b_z), np.zeros((c, n_p)) if delays is None else delays, gate=gate,
                       theta=theta, integer_delays=integer_delays)


def test_one_unit_soft_reset_trace():
    """r = z = 1/2: i_t = i_{t-1}/2 + x_t, v_t = v_{t-1}/2 + i_t/2 - s_{t-1}; v = 1 spikes (H(0) = 1)."""
    x = np.array([2.0, 0, 0, 2, 0])[:, None, None]
    out = run_reference(layer(), x)
    np.testing.assert_array_equal(out.r[:, 0, 0], 0.5)
    np.testing.assert_array_equal(out.z[:, 0, 0], 0.5)
    np.testing.assert_array_equal(out.i[:, 0, 0], [2, 1, 0.5, 2.25, 1.125])
    np.testing.assert_array_equal(out.v[:, 0, 0], [1, 0, 0.25, 1.25, 0.1875])
    np.testing.assert_array_equal(out.s[:, 0, 0], [1, 0, 0, 1, 0])


def test_delay_equal_to_the_position_and_undelayed_reset():
    """Three positions spike at t = 0; K_ih = 1/2 with delay p delivers to position p at
    step 1 + p, while the reset (-theta s_0) acts at step 1 everywhere."""
    x = np.zeros((4, 1, 3))
    x[0] = 2.0
    out = run_reference(layer(n_p=3, k_ih=0.5, delays=np.array([[0, 1, 2]])), x)
    np.testing.assert_array_equal(out.s[0, 0], 1)
    expected_hat = np.zeros((4, 3))
    expected_hat[1, 0] = expected_hat[2, 1] = expected_hat[3, 2] = 1
    np.testing.assert_array_equal(out.s_hat[:, 0], expected_hat)
    np.testing.assert_array_equal(out.v[:, 0], [[1, 1, 1], [0.25, 0, 0], [0.5, 0.5, 0.25], [0.4375, 0.5, 0.5]])
    assert not out.s[1:].any()


def test_update_gate_from_the_current():
    """Gate "current": z_t = sigma(K_zi i_t); with K_zi = ln 3 and i_0 = 1, z_0 = 3/4."""
    x = np.array([1.0, 0])[:, None, None]
    out = run_reference(layer(k_zin=math.log(3.0), gate="current"), x)
    np.testing.assert_allclose(out.z[0, 0, 0], 0.75, rtol=1e-15)
    np.testing.assert_allclose(out.v[0, 0, 0], 0.25, rtol=1e-15)
    z1 = math.sqrt(3) / (1 + math.sqrt(3))           # sigma(ln(3) / 2), i_1 = 1/2
    np.testing.assert_allclose(out.i[1, 0, 0], 0.5, rtol=1e-15)
    np.testing.assert_allclose(out.z[1, 0, 0], z1, rtol=1e-15)
    np.testing.assert_allclose(out.v[1, 0, 0], 0.25 * z1 + 0.5 * (1 - z1), rtol=1e-15)


def test_gate_input_ignores_the_current():
    """Gate "input": z from x_t; K_zx = ln 3 and x_0 = 1 give z_0 = 3/4, x_1 = 0 gives 1/2."""
    x = np.array([1.0, 0])[:, None, None]
    out = run_reference(layer(k_zin=math.log(3.0), gate="input"), x)
    np.testing.assert_allclose(out.z[:, 0, 0], [0.75, 0.5], rtol=1e-15)


def test_bias_gates():
    """b_r = ln 3: r = 3/4 (the current's leak); b_z = -ln 3: z = 1/4."""
    x = np.array([1.0, 0, 0])[:, None, None]
    out = run_reference(layer(b_r=math.log(3.0), b_z=-math.log(3.0), theta=10.0), x)
    np.testing.assert_allclose(out.i[:, 0, 0], [1, 0.75, 0.5625], rtol=1e-15)
    # v_t = v_{t-1} / 4 + 3 i_t / 4: 0.75, 0.1875 + 0.5625, 0.1875 + 0.421875
    np.testing.assert_allclose(out.v[:, 0, 0], [0.75, 0.75, 0.609375], rtol=1e-15)


def test_conv_same_at_the_edges():
    kern = np.array([[[1.0, 2.0, 4.0]]])           # (1, 1, 3): taps a, b, c
    np.testing.assert_array_equal(conv_same(kern, np.array([[1.0, 0, 0]])), [[2, 1, 0]])   # [b, a, 0]
    np.testing.assert_array_equal(conv_same(kern, np.array([[0, 0, 1.0]])), [[0, 4, 2]])   # [0, c, b]
    np.testing.assert_array_equal(conv_same(kern, np.array([[0, 1.0, 0]])), [[4, 2, 1]])
    # channels: out[c] = sum_c' K[c, c'] * x[c']
    two = np.zeros((2, 2, 1))
    two[0, 1, 0], two[1, 0, 0] = 3.0, 5.0
    np.testing.assert_array_equal(conv_same(two, np.array([[1.0, 2.0], [10.0, 20.0]])), [[30, 60], [5, 10]])


def test_recurrent_conv_across_positions():
    """A spike at position 0 reaches positions 0 and 1 through K_ih = [a, b, c] one step later (d = 0)."""
    p = make_params(np.zeros((1, 1, 1)), np.ones((1, 1, 1)), np.zeros((1, 1, 1)), np.zeros((1, 1, 3)),
                    np.array([[[0.125, 0.25, 0.5]]]), np.zeros((1, 1, 3)), [0.0], [0.0], [0.0], np.zeros((1, 3)),
                    gate="input", theta=1.0, integer_delays=True)
    x = np.zeros((2, 1, 3))
    x[0, 0, 0] = 2.0
    out = run_reference(p, x)
    np.testing.assert_array_equal(out.s[0, 0], [1, 0, 0])
    np.testing.assert_array_equal(out.i[1, 0], [1 + 0.25, 0.125, 0])       # [i/2 + b, a, 0]


def test_triangle_spread():
    """d = 1.5, sigma = 0.5 (w = 1.5): a spike at t = 0 arrives at t = 2 and 3 with weight (w - 1/2) / w^2 = 4/9."""
    np.testing.assert_allclose([delay_weight(tau, np.array(1.5), 0.5) for tau in range(1, 5)],
                               [0, 4 / 9, 4 / 9, 0], rtol=1e-15)
    x = np.zeros((5, 1, 1))
    x[0] = 2.0
    out = run_reference(layer(delays=np.array([[1.5]]), integer_delays=False), x, sigma=0.5)
    np.testing.assert_allclose(out.s_hat[:, 0, 0], [0, 0, 4 / 9, 4 / 9, 0], rtol=1e-15)


@pytest.mark.parametrize("change, match", [
    (dict(k_rx=np.zeros((1, 1, 2))), r"k_rx: shape \(1, 1, 2\); expected \(C_out, C_in, k\) with k odd"),
    (dict(k_ih=np.zeros((2, 1, 1))), r"k_ih: shape \(2, 1, 1\); expected \(1, 1, k\)"),
    (dict(b_z=np.zeros(2)), r"b_z: shape \(2,\); expected \(1,\)"),
    (dict(delays=np.array([[-1.0]])), "negative, NaN or infinite delay"),
    (dict(delays=np.array([[0.5]])), "non-integer delay"),
    (dict(gate="forget"), "unknown CS-GRU gate 'forget'; valid gates: current, input"),
    (dict(k_rh=np.full((1, 1, 1), np.nan)), "k_rh: NaN or infinite weight"),
])
def test_bad_parameters(change, match):
    args = dict(k_rx=np.zeros((1, 1, 1)), k_ix=np.zeros((1, 1, 1)), k_zin=np.zeros((1, 1, 1)),
                k_rh=np.zeros((1, 1, 1)), k_ih=np.zeros((1, 1, 1)), k_zh=np.zeros((1, 1, 1)), b_r=[0.0],
                b_i=[0.0], b_z=[0.0], delays=np.zeros((1, 1)))
    gate = change.pop("gate", "current")
    args.update(change)
    with pytest.raises(EvsimError, match=match):
        make_params(**args, gate=gate, integer_delays=True)


def test_bad_input():
    p = layer(n_p=2)
    with pytest.raises(EvsimError, match=r"input: shape \(3, 1, 3\); expected \(T, 1, 2\)"):
        run_reference(p, np.zeros((3, 1, 3)))
    with pytest.raises(EvsimError, match="NaN"):
        run_reference(p, np.full((3, 1, 2), np.nan))
