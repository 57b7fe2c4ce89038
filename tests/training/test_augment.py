"""training.augment: per-channel shift, centre of mass, thinning and the same-class blend."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from evsim.errors import EvsimError
from evsim.training.augment import (Augment, alignment_shift, blend, centre_of_mass, shift_channels,
                              shift_channels_by, shift_time, thin)


def naive_shift(x, shifts):
    """Obvious loop: out[b, t + s, c] = x[b, t, c] when t + s stays in the window."""
    B, T, C = x.shape
    out = np.zeros_like(x)
    for b in range(B):
        for c in range(C):
            for t in range(T):
                u = t + shifts[b, c]
                if 0 <= u < T:
                    out[b, u, c] = x[b, t, c]
    return out


counts = hnp.arrays(np.float32, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=6),
                    elements=st.integers(0, 4).map(float))


@settings(max_examples=60, deadline=None)
@given(x=counts, data=st.data())
def test_shift_matches_naive_and_conserves_what_stays(x, data):
    B, T, C = x.shape
    s = data.draw(hnp.arrays(np.int64, (B, C), elements=st.integers(-T - 1, T + 1)))
    y = shift_channels_by(x, s)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, naive_shift(x, s))
    # what is dropped is exactly the counts whose destination leaves the window
    t = np.arange(T)[None, :, None]
    leaving = ((t + s[:, None, :]) < 0) | ((t + s[:, None, :]) >= T)
    assert y.sum() == x.sum() - x[leaving].sum()


def test_shift_inside_window_preserves_counts_and_moves_each_channel():
    x = np.zeros((1, 10, 3), np.float32)
    x[0, 4, :] = [1, 2, 3]
    y = shift_channels_by(x, [[-4, 0, 5]])
    assert y.sum() == x.sum()
    assert y[0, 0, 0] == 1 and y[0, 4, 1] == 2 and y[0, 9, 2] == 3
    y = shift_channels_by(x, [[-5, 0, 6]])                  # channels 0 and 2 leave the window
    assert y.sum() == 2 and y[0, 4, 1] == 2


def test_shift_zero_is_identity():
    rng = np.random.default_rng(1)
    x = rng.poisson(1.0, (4, 20, 7)).astype(np.float32)
    np.testing.assert_array_equal(shift_channels(x, 0, rng), x)
    np.testing.assert_array_equal(shift_channels_by(x, 0), x)
    np.testing.assert_array_equal(shift_channels_by(x[0], [0] * 7), x[0])   # (T, C) input


def test_random_shift_range_and_independence():
    S, T, C = 3, 20, 400
    x = np.zeros((2, T, C), np.int64)
    x[:, 10, :] = 1                                         # one spike per channel, in the middle
    y = shift_channels(x, S, np.random.default_rng(0))
    assert y.sum() == x.sum()
    moved = np.argmax(y, axis=1) - 10                      # (2, C) shift of each channel
    assert moved.min() == -S and moved.max() == S          # the whole range, and no more
    assert len(set(np.unique(moved))) == 2 * S + 1
    assert not np.array_equal(moved[0], moved[1])          # per sample, per channel draws
    counts_per_shift = np.bincount((moved + S).ravel())
    assert counts_per_shift.min() > 0.6 * moved.size / (2 * S + 1)


def test_centre_of_mass():
    x = np.zeros((10, 2))
    x[2, 0] = 1
    x[6, 1] = 3                                            # (2 * 1 + 6 * 3) / 4 = 5
    assert centre_of_mass(x) == 5.0
    assert np.isnan(centre_of_mass(np.zeros((4, 2))))
    np.testing.assert_array_equal(centre_of_mass(np.stack([x, x])), [5.0, 5.0])


def test_alignment_rounds_halves_up_and_ignores_empty():
    a = np.zeros((10, 1)); a[4, 0] = 1; a[5, 0] = 1       # com 4.5
    b = np.zeros((10, 1)); b[2, 0] = 1                    # com 2
    assert alignment_shift(a, b) == 3                     # 2.5 -> 3
    assert alignment_shift(b, a) == -2                    # -2.5 -> -2
    assert alignment_shift(a, np.zeros((10, 1))) == 0


def test_blend_aligns_centres_exactly_without_thinning():
    x = np.zeros((30, 3), np.float32)
    x[10, 0] = 2
    x[14, 2] = 2                                           # com 12
    p = np.zeros((30, 3), np.float32)
    p[3, 1] = 1
    p[5, 1] = 1                                            # com 4 -> moved by +8
    y = blend(x, p, np.random.default_rng(0), keep=1.0)
    np.testing.assert_array_equal(y, x + shift_time(p, [8]))
    assert y[11, 1] == 1 and y[13, 1] == 1 and y.sum() == x.sum() + p.sum()
    assert centre_of_mass(shift_time(p, [8])) == centre_of_mass(x)


def test_blend_batch_and_shape_check():
    rng = np.random.default_rng(3)
    x = rng.poisson(1.0, (3, 15, 4)).astype(np.float32)
    p = rng.poisson(1.0, (3, 15, 4)).astype(np.float32)
    y = blend(x, p, rng, keep=1.0)
    for b in range(3):
        np.testing.assert_array_equal(y[b], blend(x[b], p[b], rng, keep=1.0))
    assert np.array_equal(blend(x, p, rng, keep=0.0), np.zeros_like(x))
    with pytest.raises(EvsimError, match="partner shape"):
        blend(x, p[:, :10], rng)


def test_blend_keeps_about_half_of_each():
    # x lives in channel 0, p in channel 1, so the two halves can be counted apart
    T = 200
    x = np.zeros((T, 2), np.int64)
    p = np.zeros((T, 2), np.int64)
    x[50:150, 0] = 40                                      # 4000 spikes, com 99.5
    p[20:120, 1] = 60                                      # 6000 spikes, com 69.5 -> moved by 30
    y = blend(x, p, np.random.default_rng(42))
    # Binomial(4000, 1/2): sd ~ 32; Binomial(6000, 1/2): sd ~ 39; bounds are 5 sd
    assert abs(y[:, 0].sum() - 2000) < 160
    assert abs(y[:, 1].sum() - 3000) < 200
    assert y[:50, 1].sum() == 0 and y[50:150, 1].min() > 0   # p now covers x's steps
    assert abs(centre_of_mass(y[:, 1:]) - centre_of_mass(x)) < 1.0
    assert np.all(y[:, 0] <= x[:, 0])                        # thinning never adds


def test_thin_mean_and_bounds():
    rng = np.random.default_rng(7)
    x = np.full((100, 100), 10.0, np.float32)
    y = thin(x, rng)
    assert y.dtype == np.float32 and np.all((y >= 0) & (y <= x))
    assert abs(y.mean() - 5.0) < 0.1                        # sd of the mean ~ 0.016


def test_augment_config():
    assert Augment().factor == 3 and Augment().views == (0, 1, 2)
    assert Augment(blend=False).views == (0, 1)
    assert Augment(shift=False, blend=False).factor == 1
    with pytest.raises(EvsimError, match="max_shift"):
        Augment(max_shift=-1)
    with pytest.raises(EvsimError, match="keep"):
        Augment(keep=1.5)


def test_default_shift_is_100_ms_at_10_ms_steps():
    # the method's S = 100 is in 1 ms steps; at dt = 10 ms the same 100 ms is 10 steps
    # (S = 100 steps would be 1 s, about a whole SHD sample)
    assert Augment().max_shift == 10
    from evsim.training.presets import TrainConfig

    assert TrainConfig.__dataclass_fields__["shift_max"].default == Augment().max_shift
    x = np.zeros((41, 2000), np.float32)
    x[20] = 1                                                # every channel fires at step 20
    y = shift_channels(x, Augment().max_shift, np.random.default_rng(0))
    assert y.sum() == 2000                                   # nothing pushed out of 41 steps
    moved = np.argmax(y, axis=0) - 20
    assert moved.min() == -10 and moved.max() == 10
