"""evsim.inputs.open_input: a spike file opens as SpikeFile; recordings open as a reader
whose samples are exactly those `evsim encode` writes (same seed), in any reading order."""

import numpy as np
import pytest

from evsim.audio.dataset import find_recordings, write_encoded
from evsim.data import SpikeFile, write_spike_file
from evsim.errors import InputFileError
from evsim.inputs import RecordingsReader, open_input

from .conftest import word_like, write_wav


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "rec"
    for k, word in enumerate(("yes", "no")):
        (root / word).mkdir(parents=True)
        for i in range(2):
            write_wav(root / word / f"{i}.wav", word_like(0.2, seed=10 * k + i))
    return root


def test_recordings_read_as_their_encoding(folder, tmp_path):
    out = tmp_path / "enc.h5"
    write_encoded(str(out), find_recordings([str(folder)]), seed=3)
    with SpikeFile(out) as encoded, open_input(folder, seed=3) as reader:
        assert isinstance(reader, RecordingsReader)
        assert len(reader) == len(encoded) == 4
        assert reader.class_names == encoded.class_names
        assert np.array_equal(reader.labels, encoded.labels)
        for i in (2, 0, 3, 1):                              # out of order: the same spikes
            a, b = reader.read(i), encoded.read(i)
            assert np.array_equal(a.times, b.times) and np.array_equal(a.units, b.units) and a.label == b.label
        x = reader.binned(1, dt_ms=10, pool=5, dtype=np.float64)
        assert np.array_equal(x, encoded.binned(1, dt_ms=10, pool=5, dtype=np.float64))


def test_recordings_labels_follow_given_class_names(folder):
    with open_input(folder, class_names=("yes", "no")) as reader:
        assert reader.class_names == ("yes", "no")
        assert [reader.read(i).label for i in range(len(reader))] == [1, 1, 0, 0]   # no/ sorts first


def test_spike_file_opens_as_spike_file(tmp_path):
    path = tmp_path / "s.h5"
    write_spike_file(path, [(np.array([0.01]), np.array([3]))], labels=[0])
    with open_input(path) as f:
        assert isinstance(f, SpikeFile) and len(f) == 1 and f.index(0) == 0
        with pytest.raises(InputFileError, match=r"sample 1 out of range: .* has 1 samples \(0\.\.0\)"):
            f.index(1)


def test_recordings_refuse_a_bad_index_and_other_channel_counts(folder):
    with open_input(folder) as reader:
        with pytest.raises(InputFileError, match=r"sample 4 out of range: .* has 4 recordings \(0\.\.3\)"):
            reader.read(4)
        with pytest.raises(InputFileError, match="must be an integer"):
            reader.read(True)
    with pytest.raises(InputFileError, match="recordings give 700 channels"):
        open_input(folder, n_channels=64)
