"""The N-TIDIGITS converter on a small file in the published layout, made here."""

import os

import h5py
import numpy as np
import pytest

from evsim.data import SpikeFile
from evsim.errors import InputFileError
from evsim.ntidigits import CLASS_NAMES, convert_ntidigits

SAMPLES = {
    "train": {"man-ab-a-1": 30, "woman-cd-b-o": 12, "man-ab-a-17z": 20, "boy-ef-a-z": 0, "man-ab-b-9": 5},
    "test": {"girl-gh-a-3": 8, "man-im-a-7557": 40},
}


def make_source(path, samples=SAMPLES, seed=0, edit=None):
    """An n-tidigits.hdf5 look-alike; returns {key: (times, addresses)} as stored (unsorted)."""
    rng = np.random.default_rng(seed)
    stored = {}
    with h5py.File(path, "w") as h5:
        for split, keys in samples.items():
            h5.create_dataset(f"{split}_labels", data=np.array([k.encode() for k in keys]))
            ga, gt = h5.create_group(f"{split}_addresses"), h5.create_group(f"{split}_timestamps")
            for key, n in keys.items():
                t = rng.uniform(0, 1.5, n)                      # seconds, not sorted
                a = rng.integers(0, 64, n).astype(np.uint8)
                if edit:
                    t, a = edit(key, t, a)
                ga.create_dataset(key, data=a)
                gt.create_dataset(key, data=t)
                stored[key] = (t, a)
    return stored


def test_converts_isolated_digits_to_the_shd_layout(tmp_path):
    stored = make_source(tmp_path / "n-tidigits.hdf5")
    res = convert_ntidigits(tmp_path / "n-tidigits.hdf5", tmp_path / "out")
    assert res["train"].n_samples == 4 and res["train"].n_skipped == 1
    assert res["test"].n_samples == 1 and res["test"].n_skipped == 1
    assert sorted(os.listdir(tmp_path / "out")) == ["ntidigits_test.h5", "ntidigits_train.h5"]
    with SpikeFile(res["train"].path, n_channels=64) as f:
        assert len(f) == 4 and f.class_names == CLASS_NAMES
        assert f.labels.tolist() == [1, 10, 0, 9]           # "1", "o" (oh), "z" (zero), "9"
        keys = ["man-ab-a-1", "woman-cd-b-o", "boy-ef-a-z", "man-ab-b-9"]
        for i, key in enumerate(keys):
            t, a = stored[key]
            order = np.argsort(t, kind="stable")
            sample = f.read(i)
            assert np.array_equal(sample.times, t[order])          # float64 kept exactly
            assert np.array_equal(sample.units, a[order])
        # speakers: man-ab's two takes share a code, the others differ
        sp = f.speakers
        assert sp[0] == sp[3] and len(set(sp[:3].tolist())) == 3
        x = f.binned(0, dt_ms=10.0)
        assert x.shape[1] == 64 and x.sum() == 30
    with h5py.File(res["test"].path) as h5:
        assert h5["extra/sample_id"][()].tolist() == [b"girl-gh-a-3"]
        assert h5["extra/speaker"][()].tolist() == [b"girl-gh"]


@pytest.mark.parametrize("edit, samples, match", [
    (lambda k, t, a: (t, np.where(np.arange(a.size) == 2, 64, a)), None, r"address 64 outside \[0, 64\)"),
    (lambda k, t, a: (np.where(np.arange(t.size) == 1, np.nan, t), a), None, "NaN, infinite or negative timestamp"),
    (lambda k, t, a: (t[:-1], a), None, "timestamps but .* addresses"),
    (None, {"train": {"man-ab-a-x": 3}, "test": {}}, "last part 'x' is not a digit"),
    (None, {"train": {"ab-1": 3}, "test": {}}, r"does not read <group>-<speaker>-...-<digits>"),
    (None, {"train": {"man-ab-a-1": 3}}, "missing 'test_labels'; expected the N-TIDIGITS layout"),
])
def test_bad_sources_fail_with_one_message_and_write_nothing(tmp_path, edit, samples, match):
    src = tmp_path / "src.hdf5"
    make_source(src, samples or SAMPLES, edit=edit)
    out = tmp_path / "out"
    with pytest.raises(InputFileError, match=match):
        convert_ntidigits(src, out)
    assert not out.exists() or os.listdir(out) == []


def test_missing_member_and_non_hdf5(tmp_path):
    src = tmp_path / "src.hdf5"
    make_source(src)
    with h5py.File(src, "a") as h5:
        del h5["train_timestamps/man-ab-b-9"]
    with pytest.raises(InputFileError, match="'man-ab-b-9' is listed in train_labels but missing from train_timestamps"):
        convert_ntidigits(src, tmp_path / "out")
    (tmp_path / "text.hdf5").write_text("not hdf5")
    with pytest.raises(InputFileError, match="is not an HDF5 file"):
        convert_ntidigits(tmp_path / "text.hdf5", tmp_path / "out")
    with pytest.raises(InputFileError, match="N-TIDIGITS file not found"):
        convert_ntidigits(tmp_path / "absent.hdf5", tmp_path / "out")
