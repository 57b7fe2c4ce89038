"""training.augment: per-channel shift, centre of mass, thinning and the same-class blend."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from evsim.errors import EvsimError
from evsim.training.augment import (Augment, alignment_shift, blend, centre_of_mass, shift_channels, thin_samples,
                                    shift_channels_by, shift_frequency, shift_time, stretch_time, thin,
                                    voice_transform)


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


# -- voice transforms: frequency shift and time stretch -----------------------------------

def naive_frequency_shift(x, shifts):
    """Obvious loop: out[b, t, c + k] = x[b, t, c] when c + k stays on the channel axis."""
    B, T, C = x.shape
    out = np.zeros_like(x)
    for b in range(B):
        for c in range(C):
            if 0 <= c + shifts[b] < C:
                out[b, :, c + shifts[b]] = x[b, :, c]
    return out


def naive_stretch(x, factors):
    """Obvious loop: step t of the output is step floor(t / r) of the input, if any."""
    B, T, C = x.shape
    out = np.zeros_like(x)
    for b in range(B):
        for t in range(T):
            src = int(np.floor(t / factors[b]))
            if src < T:
                out[b, t] = x[b, src]
    return out


@settings(max_examples=60, deadline=None)
@given(x=counts, data=st.data())
def test_frequency_shift_matches_naive(x, data):
    B, T, C = x.shape
    k = data.draw(hnp.arrays(np.int64, (B,), elements=st.integers(-C - 1, C + 1)))
    y = shift_frequency(x, k)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, naive_frequency_shift(x, k))
    np.testing.assert_array_equal(shift_frequency(x[0], k[:1]), y[0])        # one (T, C) sample


@settings(max_examples=60, deadline=None)
@given(x=counts, data=st.data())
def test_stretch_matches_naive(x, data):
    B = x.shape[0]
    r = data.draw(hnp.arrays(np.float64, (B,), elements=st.floats(0.25, 4.0)))
    y = stretch_time(x, r)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, naive_stretch(x, r))


def test_stretch_by_hand():
    x = np.zeros((6, 1), np.float32)
    x[:, 0] = [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(stretch_time(x, [2.0])[:, 0], [1, 1, 2, 2, 3, 3])   # slower: bins repeated
    np.testing.assert_array_equal(stretch_time(x, [0.5])[:, 0], [1, 3, 5, 0, 0, 0])   # faster: bins skipped
    np.testing.assert_array_equal(stretch_time(x, [1.0])[:, 0], x[:, 0])
    with pytest.raises(EvsimError, match="stretch"):
        stretch_time(x, [0.0])


def test_voice_transform_ranges_and_off_draws_nothing():
    x = np.zeros((400, 30, 40), np.float32)
    x[:, 0, 20] = 1                                              # one spike at step 0, channel 20
    x[:, 9, 20] = 1                                              # and one at step 9
    rng = np.random.default_rng(0)
    y = voice_transform(x, 3, 0.25, rng)
    channel = np.argmax(y[:, 0, :], axis=1)                      # step 0 stays at step 0 (stretch about t = 0)
    assert set(channel - 20) == {-3, -2, -1, 0, 1, 2, 3}
    # step 9 covers the t with floor(t / r) = 9, t in [9 r, 10 r), r in [1/1.25, 1.25]: at
    # most step 12; a shortening (r < 1) may skip it
    late = np.array([np.flatnonzero(y[b].sum(axis=1))[-1] for b in range(400)])
    kept = late[late > 0]
    assert kept.min() >= 8 and kept.max() <= 12 and np.unique(kept).size == 5
    assert 0 < np.sum(late == 0) < 100
    # both off: the very array back, and the random stream untouched
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert voice_transform(x, 0, 0.0, rng_a) is x
    assert rng_a.integers(1 << 30) == rng_b.integers(1 << 30)


def test_voice_transform_config_checks():
    assert Augment().freq_shift == 0 and Augment().time_stretch == 0.0         # off by default
    with pytest.raises(EvsimError, match="freq_shift"):
        Augment(freq_shift=-1)
    with pytest.raises(EvsimError, match="time_stretch"):
        Augment(time_stretch=1.5)
    from evsim.training.presets import ConfigFileError, TrainConfig

    for bad in ({"freq_shift": -2}, {"freq_shift": 1.5}, {"time_stretch": -0.1}, {"time_stretch": float("nan")},
                {"time_stretch": 2}):
        with pytest.raises(ConfigFileError, match=next(iter(bad))):
            TrainConfig(**bad)


def test_iterate_batches_moves_every_view():
    """With the voice transforms on, every view of the epoch is moved (the originals too);
    with them off the batches are those of the plain augmented epoch, bit for bit."""
    from evsim.training.data import iterate_batches

    ds = tiny_dataset()
    idx = np.arange(len(ds))
    plain = list(iterate_batches(ds, idx, 4, np.random.default_rng(1), augment=Augment(max_shift=1)))
    off = list(iterate_batches(ds, idx, 4, np.random.default_rng(1), augment=Augment(max_shift=1, freq_shift=0)))
    for (x0, y0), (x1, y1) in zip(plain, off):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)
    unshifted = list(iterate_batches(ds, idx, 64, np.random.default_rng(2), shuffle=False,
                                     augment=Augment(shift=False, blend=False)))[0][0]
    moved = list(iterate_batches(ds, idx, 64, np.random.default_rng(2), shuffle=False,
                                 augment=Augment(shift=False, blend=False, freq_shift=2)))[0][0]
    # each sample is its original moved along the channels by some k in [-2, 2]
    ks = []
    for a, b in zip(unshifted, moved):
        match = [k for k in range(-2, 3) if np.array_equal(shift_frequency(a, [k]), b)]
        assert match, "a view is not a frequency shift of its sample"
        ks.append(match[0])
    assert len(set(ks)) > 1


def tiny_dataset():
    """A SpikeDataset of 12 samples, 8 steps, 6 inputs, one spike per sample at a distinct place."""
    from evsim.training.data import SpikeDataset

    n, T, C = 12, 8, 6
    keys = np.array([(i % T) * C + (i % 4) + 1 for i in range(n)], np.int32)
    return SpikeDataset(keys=keys, counts=np.ones(n, np.uint16), offsets=np.arange(n + 1, dtype=np.int64),
                        labels=np.arange(n) % 3, speakers=None, class_names=("a", "b", "c"), n_steps=T,
                        dt_ms=10.0, pool=1, input_channels=C)


def test_mask_frequency_silences_exactly_the_bands():
    from evsim.training.augment import mask_frequency

    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(4, 7, 12)).astype(np.float32)
    before = x.copy()
    starts = np.array([[0, 5], [10, 10], [3, 0], [11, 2]])
    widths = np.array([[2, 1], [5, 0], [0, 0], [4, 3]])   # sample 1's first band runs past the end
    y = mask_frequency(x, starts, widths)
    expected = x.copy()
    for b in range(4):
        for a, w in zip(starts[b], widths[b]):
            for c in range(a, min(a + w, 12)):
                expected[b, :, c] = 0
    assert y.dtype == x.dtype and np.array_equal(y, expected)
    assert np.array_equal(mask_frequency(x[1], starts[1:2], widths[1:2]), expected[1])       # one (T, C) sample
    assert np.array_equal(x, before)                                                          # input untouched


def test_voice_transform_masks_bands_per_sample():
    """Every sample loses at most M bands of at most W inputs, all its steps alike; the other
    inputs are untouched; over many samples every width 0..W occurs."""
    rng = np.random.default_rng(0)
    x = np.ones((400, 5, 30), np.float32)
    y = voice_transform(x, 0, 0.0, rng, freq_mask=6, freq_masks=2)
    silent = (y == 0).all(axis=1)                                   # (B, C) inputs silenced
    assert np.array_equal(y, np.where(silent[:, None, :], 0, x))    # whole inputs, every step
    assert silent.sum(axis=1).max() <= 12
    assert (silent.sum(axis=1) > 0).mean() > 0.8                  # most samples lose something
    single = voice_transform(x, 0, 0.0, np.random.default_rng(1), freq_mask=6, freq_masks=1)
    widths = (single == 0).all(axis=1).sum(axis=1)
    assert set(widths.tolist()) == set(range(7))
    # the same draws whatever else is on: seeded, and reproducible
    again = voice_transform(x, 0, 0.0, np.random.default_rng(0), freq_mask=6, freq_masks=2)
    assert np.array_equal(y, again)


def test_freq_mask_config_checks():
    assert Augment().freq_mask == 0
    for bad in ({"freq_mask": -1}, {"freq_mask": 2.5}, {"freq_masks": 0}):
        with pytest.raises(EvsimError, match=next(iter(bad))):
            Augment(**bad)
    from evsim.training.presets import ConfigFileError, TrainConfig

    for bad in ({"freq_mask": -1}, {"freq_masks": 0}, {"freq_masks": 1.5}):
        with pytest.raises(ConfigFileError, match=next(iter(bad))):
            TrainConfig(**bad)


def _plain_and_augmented(**voice):
    from evsim.training.data import iterate_batches

    ds = tiny_dataset()
    idx = np.arange(len(ds))
    return [list(iterate_batches(ds, idx, 64, np.random.default_rng(2), shuffle=False,
                                 augment=Augment(shift=False, blend=False, **voice)))[0][0] for voice in ({}, voice)]


def test_iterate_batches_masks_every_view():
    """With frequency masks on, each view is its unmasked self with whole inputs silenced."""
    plain, masked = _plain_and_augmented(freq_mask=3, freq_masks=1)
    silent = (masked == 0).all(axis=1)
    assert np.array_equal(masked, np.where(silent[:, None, :], 0, plain))
    assert (plain.sum(axis=(1, 2)) > masked.sum(axis=(1, 2))).any()          # some spikes were masked out


def test_iterate_batches_drops_spikes_in_every_view():
    """With spike_drop on, each view is a thinning of its plain self (never a spike more)."""
    plain, thinned = _plain_and_augmented(spike_drop=0.9)
    assert (thinned <= plain).all() and thinned.sum() < plain.sum()



def test_thin_samples_keeps_each_samples_share():
    """Per-sample thinning: keep 1 leaves a sample as it is, keep 0 empties it, and in between
    the kept share of many spikes is close to that sample's keep; never more than there was."""
    x = np.full((4, 50, 40), 3, np.float32)
    keeps = np.array([1.0, 0.0, 0.25, 0.75])
    y = thin_samples(x, keeps, np.random.default_rng(0))
    assert y.dtype == x.dtype and (y <= x).all() and (y >= 0).all()
    assert np.array_equal(y[0], x[0]) and not y[1].any()
    share = y.sum(axis=(1, 2)) / x.sum(axis=(1, 2))
    assert abs(share[2] - 0.25) < 0.02 and abs(share[3] - 0.75) < 0.02      # 6000 spikes each: sd 0.006


def test_voice_transform_spike_drop_per_sample():
    """spike_drop D: each sample keeps a share of its spikes drawn in [1 - D, 1]; off draws nothing."""
    x = np.full((300, 20, 30), 2, np.float32)
    y = voice_transform(x, 0, 0.0, np.random.default_rng(3), spike_drop=0.5)
    share = y.sum(axis=(1, 2)) / x.sum(axis=(1, 2))
    assert share.min() > 0.45 and share.max() <= 1.0 and share.min() < 0.55 and share.max() > 0.95
    assert np.array_equal(y, voice_transform(x, 0, 0.0, np.random.default_rng(3), spike_drop=0.5))
    rng = np.random.default_rng(4)
    assert np.array_equal(voice_transform(x, 0, 0.0, rng), x)
    assert rng.integers(1 << 30) == np.random.default_rng(4).integers(1 << 30)   # no draw when off


def test_spike_drop_config_checks():
    assert Augment().spike_drop == 0.0
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(EvsimError, match="spike_drop"):
            Augment(spike_drop=bad)
    from evsim.training.presets import ConfigFileError, TrainConfig

    for bad in (-0.1, 1.0, True, "x"):
        with pytest.raises(ConfigFileError, match="spike_drop"):
            TrainConfig(spike_drop=bad)
