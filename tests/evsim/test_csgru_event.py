"""The CS-GRU event kernel against the dense reference (the oracle).

Equivalence: identical spike rasters and membrane / current traces within 1e-6 relative.
The one allowed difference is the floating-point tie of tests/evsim/test_event.py: the
two engines sum a step's inputs in different orders, so a membrane within rounding of the
threshold may spike in one and not the other.  At the first step where the rasters
differ, every differing unit's reference membrane must be within 1e-9 x max(1, |theta|)
of theta; after a tie the runs may diverge, so nothing later is compared.  Ties must
stay rare (counted over a seeded population).
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from evsim.cells.csgru import CSGRUStream, event_run, make_params, pack_event
from evsim.cells.csgru_reference import run_reference
from evsim.errors import EvsimError
from tests.csgru_strategies import csgru_cases, random_csgru_case

TIE_TOL = 1e-9
RTOL = 1e-6
HYP = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def expected_synaptic_events(params, x, s):
    """Weight additions counted from the reference's rasters: each nonzero input adds
    G_in x C weights per in-range tap of the (padded) fused input kernel, each spike 3 x C
    per in-range tap of the fused recurrent kernel."""
    n_p, c = params.n_positions, params.n_channels
    w = pack_event(params)

    def taps(k):
        half = k // 2
        q = np.arange(n_p)[:, None] - np.arange(k)[None, :] + half
        return ((q >= 0) & (q < n_p)).sum(axis=1)            # per source position

    g_in = w.w_in.shape[2]
    inputs = int(((x != 0).sum(axis=(0, 1)) * taps(w.w_in.shape[1])).sum()) * g_in * c
    spikes = int((s.sum(axis=(0, 1)) * taps(w.w_rec.shape[1])).sum()) * 3 * c
    return inputs + spikes


def assert_equivalent(params, x, ref=None):
    """Event == reference up to a documented tie; returns 1 for a tie, else 0."""
    ev = event_run(params, x)
    ref = run_reference(params, x) if ref is None else ref
    assert ev.s.shape == ref.s.shape
    bad = np.nonzero((ev.s != ref.s).any(axis=(1, 2)))[0]
    end = bad[0] if bad.size else x.shape[0]
    for name in ("v", "i"):
        got, want = getattr(ev, name)[:end], getattr(ref, name)[:end]
        assert np.all(np.abs(got - want) <= RTOL * np.maximum(1.0, np.abs(want))), name
    if not bad.size:
        assert ev.spikes == int(ref.s.sum())
        assert ev.synaptic_events == expected_synaptic_events(params, x, ref.s)
        return 0
    t = bad[0]
    units = np.nonzero(ev.s[t] != ref.s[t])
    gap = np.abs(ref.v[t][units] - params.theta)
    assert np.all(gap <= TIE_TOL * max(1.0, abs(params.theta))), (
        f"rasters differ at step {t}, units {units}, but the reference membrane {ref.v[t][units]} "
        f"is not at the threshold {params.theta}")
    return 1


@settings(max_examples=100, **HYP)
@given(csgru_cases())
def test_event_equals_reference(case):
    params, x = case
    assert_equivalent(params, x)


def test_ties_are_rare_and_layers_are_active_over_seeded_cases():
    """100 seeded cases: at most 3 end at a tie; most spike, and delayed recurrent spikes
    arrive inside the sample in most (so the ring buffer is exercised)."""
    ties = active = arrivals = 0
    for seed in range(100):
        params, x = random_csgru_case(seed)
        ref = run_reference(params, x)
        ties += assert_equivalent(params, x, ref)
        active += ref.s.any()
        arrivals += ref.s_hat.any()
    assert ties <= 3, f"{ties} of 100 cases tied"
    assert active >= 70 and arrivals >= 65, (active, arrivals)


@pytest.mark.slow
@settings(max_examples=2000, **HYP)
@given(csgru_cases())
def test_event_equals_reference_many(case):
    params, x = case
    assert_equivalent(params, x)


@settings(max_examples=60, **HYP)
@given(csgru_cases())
def test_stream_equals_whole_sample(case):
    """Step by step through CSGRUStream = event_run bit for bit; reset starts over."""
    params, x = case
    whole = event_run(params, x)
    stream = CSGRUStream(params)
    for repeat in range(2):
        for t in range(x.shape[0]):
            s = stream.step(x[t])
            assert np.array_equal(s, whole.s[t])
            assert np.array_equal(stream.membrane, whole.v[t]) and np.array_equal(stream.current, whole.i[t])
        assert stream.n_steps == x.shape[0]
        assert stream.counters == {"spikes": whole.spikes, "synaptic_events": whole.synaptic_events}
        stream.reset()
        assert stream.n_steps == 0


def test_longest_delay_uses_the_row_just_read():
    """slots = D + 1: a spike with the largest delay D lands on the row read this step
    and must still arrive exactly D + 1 steps later (one unit, K_ih large)."""
    d = 3
    p = make_params(np.zeros((1, 1, 1)), np.full((1, 1, 1), 2.0), np.zeros((1, 1, 1)), np.zeros((1, 1, 1)),
                    np.full((1, 1, 1), 8.0), np.zeros((1, 1, 1)), [-50.0], [0.0], [-50.0], np.array([[d]]),
                    gate="input", integer_delays=True)
    x = np.zeros((8, 1, 1))
    x[0] = 1.0                                  # r, z ~ 0: v = i - s_{t-1}; spike at t = 0
    ev = event_run(p, x)
    assert ev.s[:, 0, 0].tolist() == [1, 0, 0, 0, 1, 0, 0, 0]      # re-spike at 0 + 1 + d
    assert np.array_equal(ev.s, run_reference(p, x).s)


def test_event_engine_refuses_real_delays():
    p = make_params(*(np.zeros((1, 1, 1)) for _ in range(6)), [0.0], [0.0], [0.0], np.array([[1.5]]))
    with pytest.raises(EvsimError, match="delays must be integers"):
        event_run(p, np.zeros((2, 1, 1)))
    q = make_params(*(np.zeros((1, 1, 1)) for _ in range(6)), [0.0], [0.0], [0.0], np.zeros((1, 2)),
                    integer_delays=True)
    with pytest.raises(EvsimError, match=r"expected \(T, 1, 2\)"):
        CSGRUStream(q).step(np.zeros((1, 3)))


def test_kernels_refuse_an_unknown_gate_code():
    """A gate code the kernels do not know raises in the event kernel, the reference and
    the training kernels (no silent fall-through)."""
    from evsim.cells.csgru_reference import run_reference
    from evsim.training.csgru import backward, forward

    p = make_params(*(np.zeros((1, 1, 1)) for _ in range(6)), [0.0], [0.0], [0.0], np.zeros((1, 2)),
                    integer_delays=True)
    bad = p._replace(gate=7)
    x = np.zeros((3, 1, 2))
    with pytest.raises(ValueError, match="unknown CS-GRU gate code"):
        event_run(bad, x)
    with pytest.raises(ValueError, match="unknown CS-GRU gate code 7"):
        run_reference(bad, x)
    with pytest.raises(ValueError, match="unknown CS-GRU gate code"):
        forward(bad, x[None])
    cache = forward(p, x[None])
    with pytest.raises(ValueError, match="unknown CS-GRU gate code"):
        backward(bad, cache, np.zeros_like(cache.s))
