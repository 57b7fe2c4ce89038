"""training.data: loading and binning, the speaker split, the batch iterator."""

import os
import tempfile

import h5py
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from evsim.data import SpikeFile, bin_spikes, n_steps_for, write_spike_file
from evsim.errors import EvsimError, InputFileError
from tests.strategies import dt_and_spike_times
from evsim.model import ModelMetadata
from evsim.training.augment import Augment
from evsim.training.data import iterate_batches, load_dataset, n_batches, split_by_speaker, split_speaker_fold


def _samples(rng, n, t_max=0.5, spikes=(0, 60)):
    out = []
    for _ in range(n):
        k = int(rng.integers(*spikes))
        out.append((np.sort(rng.uniform(0, t_max, k)), rng.integers(0, 700, k)))
    return out


@pytest.fixture
def shd_file(tmp_path):
    """24 samples, 4 classes, 6 speakers (every speaker says every class), one empty sample."""
    rng = np.random.default_rng(0)
    samples = _samples(rng, 24, spikes=(5, 80))
    samples[5] = ([], [])
    labels = np.tile(np.arange(4), 6)
    speakers = np.repeat(np.arange(10, 16), 4)
    path = tmp_path / "train.h5"
    write_spike_file(path, samples, labels=labels, class_names=["a", "b", "c", "d"], speakers=speakers)
    return path


def test_load_matches_evsim_binning(shd_file):
    ds = load_dataset(shd_file, dt_ms=10.0, pool=5)
    with SpikeFile(shd_file) as f:
        expected_steps = max(int(np.floor(f.read(i).times.max() * 100)) + 1 for i in range(len(f)) if f.read(i).times.size)
        assert ds.n_steps == expected_steps
        x = ds.dense(np.arange(len(ds)))
        assert x.shape == (24, ds.n_steps, 140) and x.dtype == np.float32
        for i in range(len(f)):                           # the oracle: evsim.data.bin_spikes
            np.testing.assert_array_equal(x[i], f.binned(i, dt_ms=10.0, pool=5, n_steps=ds.n_steps))
        assert ds.n_spikes.sum() == sum(f.read(i).times.size for i in range(len(f)))
    assert x[5].sum() == 0 and ds.n_dropped == 0
    assert ds.class_names == ("a", "b", "c", "d") and ds.n_classes == 4
    np.testing.assert_array_equal(ds.speakers, np.repeat(np.arange(10, 16), 4))
    meta = ModelMetadata(**ds.metadata())
    assert meta.n_steps == ds.n_steps and meta.n_inputs == 140


def test_fixed_n_steps_drops_later_spikes(shd_file):
    full = load_dataset(shd_file, dt_ms=10.0, pool=5)
    cut = load_dataset(shd_file, dt_ms=10.0, pool=5, n_steps=20)
    xf, xc = full.dense(range(24)), cut.dense(range(24))
    assert xc.shape == (24, 20, 140)
    np.testing.assert_array_equal(xc, xf[:, :20])
    assert cut.n_dropped == xf[:, 20:].sum()
    longer = load_dataset(shd_file, n_steps=full.n_steps + 7)          # zero padding at the end
    np.testing.assert_array_equal(longer.dense(range(24))[:, :full.n_steps], xf)
    assert longer.dense(range(24))[:, full.n_steps:].sum() == 0


def test_other_dt_and_pool(shd_file):
    ds = load_dataset(shd_file, dt_ms=1.0, pool=1)
    with SpikeFile(shd_file) as f:
        np.testing.assert_array_equal(ds.dense([3])[0], f.binned(3, dt_ms=1.0, pool=1, n_steps=ds.n_steps))


def test_label_errors(tmp_path, shd_file):
    with pytest.raises(EvsimError, match=r"label 3 of sample 3 \(and 5 more\) is outside \[0, 3\); the model has 3 classes"):
        load_dataset(shd_file, n_classes=3)
    path = tmp_path / "nolabels.h5"
    write_spike_file(path, [([0.1], [1])])
    with pytest.raises(EvsimError, match="no 'labels'"):
        load_dataset(path)
    path = tmp_path / "nokeys.h5"
    write_spike_file(path, [([0.1], [1]), ([0.2], [2])], labels=[0, 2])
    assert load_dataset(path).class_names == ("0", "1", "2")
    with pytest.raises(EvsimError, match="pool"):
        load_dataset(path, pool=0)


def test_split_by_speaker_is_disjoint_and_covers(shd_file):
    ds = load_dataset(shd_file)
    split = split_by_speaker(ds, fraction=0.34, seed=1)
    train, val = split
    assert split.by_speaker and split.warning is None
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(24))
    assert not set(ds.speakers[train]) & set(ds.speakers[val])
    assert set(ds.speakers[val]) == set(split.val_speakers.tolist())
    assert len(val) == 8                                   # 2 of 6 speakers ~ 0.34
    assert np.array_equal(np.bincount(ds.labels[val], minlength=4), [2, 2, 2, 2])
    again = split_by_speaker(ds, fraction=0.34, seed=1)
    assert np.array_equal(again.val, val)
    others = {tuple(split_by_speaker(ds, 0.34, seed=s).val_speakers) for s in range(10)}
    assert len(others) > 1                                 # the seed matters
    with pytest.raises(EvsimError, match="strictly between 0 and 1"):
        split_by_speaker(ds, fraction=1.0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 60), n_speakers=st.integers(2, 8), n_classes=st.integers(1, 5),
       fraction=st.floats(0.05, 0.6), seed=st.integers(0, 2**16))
def test_split_properties(n, n_speakers, n_classes, fraction, seed):
    rng = np.random.default_rng(seed)
    speakers = rng.integers(0, n_speakers, n)
    labels = rng.integers(0, n_classes, n)

    class Fake:                                            # split_by_speaker reads only these
        pass

    ds = Fake()
    ds.labels, ds.speakers, ds.n_classes, ds.path = labels, speakers, n_classes, "fake"
    train, val = split = split_by_speaker(ds, fraction, seed)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(n))
    if np.unique(speakers).size >= 2:
        assert split.by_speaker and len(val) > 0 and len(train) > 0
        assert not set(speakers[train]) & set(speakers[val])
    else:
        assert not split.by_speaker and "random" in split.warning


def test_split_without_speakers_falls_back(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "nospk.h5"
    write_spike_file(path, _samples(rng, 40, spikes=(1, 5)), labels=np.repeat([0, 1], 20))
    ds = load_dataset(path)
    assert ds.speakers is None
    split = split_by_speaker(ds, fraction=0.25, seed=0)
    assert not split.by_speaker and "no speaker ids" in split.warning and "random" in split.warning
    assert np.array_equal(np.bincount(ds.labels[split.val]), [5, 5])   # stratified
    assert np.intersect1d(split.train, split.val).size == 0 and len(split.train) == 30


def test_iterate_batches_plain(shd_file):
    ds = load_dataset(shd_file)
    idx = np.array([0, 3, 5, 7, 8, 11, 20])
    batches = list(iterate_batches(ds, idx, 3, np.random.default_rng(0), shuffle=False))
    assert [b[0].shape for b in batches] == [(3, ds.n_steps, 140)] * 2 + [(1, ds.n_steps, 140)]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert y.dtype == np.int64 and np.array_equal(y, ds.labels[idx])
    np.testing.assert_array_equal(x, ds.dense(idx))
    shuffled = list(iterate_batches(ds, idx, 3, np.random.default_rng(0), drop_last=True))
    assert len(shuffled) == 2 == n_batches(7, 3, drop_last=True)
    ys = np.concatenate([b[1] for b in iterate_batches(ds, idx, 4, np.random.default_rng(1))])
    assert sorted(ys) == sorted(ds.labels[idx])


def test_iterate_batches_augmented_epoch(tmp_path):
    # class c only ever fires channels 5c..5c+4 (model input c): a blend must stay in input c
    rng = np.random.default_rng(4)
    samples, labels = [], []
    for i in range(30):
        c = i % 3
        k = 30
        samples.append((np.sort(rng.uniform(0.1, 0.3, k)), rng.integers(5 * c, 5 * c + 5, k)))
        labels.append(c)
    path = tmp_path / "cls.h5"
    write_spike_file(path, samples, labels=labels, speakers=np.arange(30) // 3)
    ds = load_dataset(path)
    idx = np.arange(0, 30, 2)
    aug = Augment(max_shift=2)
    batches = list(iterate_batches(ds, idx, 8, np.random.default_rng(0), augment=aug))
    assert len(batches) == n_batches(idx.size, 8, aug) == 6
    y = np.concatenate([b[1] for b in batches])
    assert y.size == 3 * idx.size
    assert np.array_equal(np.bincount(y), 3 * np.bincount(ds.labels[idx]))
    for x, yb in batches:
        assert x.shape[1:] == (ds.n_steps, 140) and x.dtype == np.float32
        active = x.sum(axis=1) > 0                         # (B, inputs)
        for row, c in enumerate(yb):
            assert set(np.flatnonzero(active[row])) <= {int(c)}


def test_default_augmented_epoch_holds_every_sample_three_times(shd_file):
    ds = load_dataset(shd_file)
    out = list(iterate_batches(ds, np.arange(10), 4, np.random.default_rng(0), augment=Augment()))
    assert sum(len(y) for _, y in out) == 30


# -- one binning rule, shared with evsim.data ----------------------------------------------

def _float64_file(path, samples, labels, speakers=None):
    """An SHD-layout file with float64 times (write_spike_file rounds them to float16)."""
    with h5py.File(path, "w") as h5:
        g = h5.create_group("spikes")
        g.create_dataset("times", (len(samples),), dtype=h5py.vlen_dtype(np.float64))
        g.create_dataset("units", (len(samples),), dtype=h5py.vlen_dtype(np.int64))
        for i, (t, u) in enumerate(samples):
            g["times"][i] = np.asarray(t, np.float64)
            g["units"][i] = np.asarray(u, np.int64)
        h5.create_dataset("labels", data=np.asarray(labels, np.int64))
        if speakers is not None:
            h5.create_group("extra").create_dataset("speaker", data=speakers)
    return path


def test_last_spike_kept_at_dt_7(tmp_path):
    # 1.001 s at 7 ms: t * 1000 / 7 -> step 142, t * (1000 / 7) -> step 143; the old
    # loader mixed the two rules with evsim.data and could lose such a spike
    path = _float64_file(tmp_path / "d7.h5", [([1.001], [3]), ([0.5], [0])], labels=[0, 1])
    ds = load_dataset(path, dt_ms=7.0, pool=1)
    assert ds.n_steps == 143 and ds.n_dropped == 0
    x = ds.dense([0, 1])
    assert x[0, 142, 3] == 1 and x.sum() == 2


@settings(max_examples=40, deadline=None)
@given(st.lists(dt_and_spike_times(max_size=20), min_size=1, max_size=4).map(
           lambda cases: (cases[0][0], [times for _, times in cases])),
       st.integers(1, 7), st.sampled_from([None, 1, 50, 400]), st.integers(0, 2**31))
def test_dataset_binning_is_bin_spikes(case, pool, n_steps, seed):
    dt_ms, all_times = case
    rng = np.random.default_rng(seed)
    samples = [(np.array(t), rng.integers(0, 20, len(t))) for t in all_times]
    with tempfile.TemporaryDirectory() as tmp:
        path = _float64_file(os.path.join(tmp, "f.h5"), samples, labels=np.zeros(len(samples), int))
        ds = load_dataset(path, dt_ms=dt_ms, pool=pool, n_steps=n_steps, input_channels=20)
    if n_steps is None:
        assert ds.n_steps == max(n_steps_for(t, dt_ms) for t, _ in samples) and ds.n_dropped == 0
    x = ds.dense(np.arange(len(ds)))
    kept = 0
    for i, (t, u) in enumerate(samples):
        expected = bin_spikes(t, u, dt_ms=dt_ms, n_channels=20, pool=pool, n_steps=ds.n_steps)
        np.testing.assert_array_equal(x[i], expected)
        kept += int(expected.sum())
    assert kept + ds.n_dropped == sum(t.size for t, _ in samples)


def test_absurd_sample_length_is_refused(tmp_path):
    path = _float64_file(tmp_path / "bogus.h5", [([0.1], [1]), ([0.2, 6e4], [2, 3])], labels=[0, 1])
    with pytest.raises(InputFileError, match=r"bogus.h5 sample 1: spike time 60000 s implies 6000001 steps at "
                                             r"dt = 10 ms, more than the limit of 1000000 steps"):
        load_dataset(path)
    cut = load_dataset(path, n_steps=30)                  # a given n_steps cuts instead
    assert cut.n_steps == 30 and cut.n_dropped == 1


def test_string_speakers_split_by_speaker(tmp_path):
    names = np.array([f"spk{i % 4}".encode() for i in range(16)])
    samples = [([0.01 * (i + 1)], [i]) for i in range(16)]
    path = _float64_file(tmp_path / "s.h5", samples, labels=np.arange(16) % 2, speakers=names)
    ds = load_dataset(path)
    np.testing.assert_array_equal(ds.speakers, np.arange(16) % 4)    # codes in sorted order of the names
    split = split_by_speaker(ds, fraction=0.25, seed=0)
    assert split.by_speaker and split.warning is None
    assert not set(names[split.train]) & set(names[split.val])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 80), n_speakers=st.integers(2, 12), folds=st.integers(2, 6), data=st.data())
def test_speaker_folds_hold_every_speaker_out_once(n, n_speakers, folds, data):
    """Folds 0..K-1 partition the samples by speaker: each sample is validation in exactly one
    fold, no speaker is on both sides, fold sizes differ by at most one speaker, and the folds
    do not depend on anything but the speaker ids."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    speakers = rng.integers(0, n_speakers, n) * 7 + 3            # ids need not be 0..S-1

    class Fake:                                                   # the split reads only these
        pass

    ds = Fake()
    ds.labels, ds.speakers, ds.n_classes, ds.path = rng.integers(0, 3, n), speakers, 3, "fake"
    distinct = np.unique(speakers).size
    if distinct < folds:
        with pytest.raises(EvsimError, match=f"{distinct} speaker"):
            split_speaker_fold(ds, folds, 0)
        return
    times_held = np.zeros(n, int)
    per_fold = []
    for fold in range(folds):
        split = split_speaker_fold(ds, folds, fold)
        assert np.array_equal(np.sort(np.concatenate(split)), np.arange(n))
        assert not set(speakers[split.train]) & set(speakers[split.val])
        assert set(speakers[split.val]) == set(split.val_speakers.tolist())
        times_held[split.val] += 1
        per_fold.append(split.val_speakers.size)
        assert np.array_equal(split_speaker_fold(ds, folds, fold).val, split.val)
    assert (times_held == 1).all()
    assert max(per_fold) - min(per_fold) <= 1


def test_speaker_fold_errors(tmp_path, shd_file):
    ds = load_dataset(shd_file)                                   # 6 speakers
    for folds, fold, match in ((1, 0, "val_folds: 1"), (3, 3, "val_fold: 3; expected an integer in 0..2"),
                               (7, 0, "6 speaker")):
        with pytest.raises(EvsimError, match=match):
            split_speaker_fold(ds, folds, fold)
    rng = np.random.default_rng(2)
    path = tmp_path / "nospk.h5"
    write_spike_file(path, _samples(rng, 10, spikes=(1, 5)), labels=np.repeat([0, 1], 5))
    with pytest.raises(EvsimError, match="no speaker ids"):
        split_speaker_fold(load_dataset(path), 2, 0)


def test_string_speakers_fold(tmp_path):
    names = np.array([f"spk{i % 4}".encode() for i in range(16)])
    path = _float64_file(tmp_path / "s.h5", [([0.01 * (i + 1)], [i]) for i in range(16)],
                         labels=np.arange(16) % 2, speakers=names)
    ds = load_dataset(path)
    held = [set(names[split_speaker_fold(ds, 2, f).val]) for f in range(2)]
    assert len(held[0]) == len(held[1]) == 2 and not held[0] & held[1]
