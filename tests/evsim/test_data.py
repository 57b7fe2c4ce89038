"""The SHD-layout reader: binning, pooling, and clear errors for bad files."""

import math

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evsim.data import (MAX_STEPS, SpikeFile, batch_steps, bin_batch, bin_spikes, bin_validated, concat_samples, n_steps_for, speaker_codes, time_to_step,
                        write_spike_file)
from evsim.errors import InputFileError
from tests.strategies import dt_and_spike_times


def test_binning_and_pooling_by_hand():
    times = np.array([0.0, 0.0049, 0.005, 0.0101, 0.0299, 0.03])
    units = np.array([0, 1, 2, 3, 4, 5])
    # dt = 10 ms -> bins 0,0,0,1,2,3 ; pool 2 -> inputs 0,0,1,1,2,2
    x = bin_spikes(times, units, dt_ms=10, n_channels=6, pool=2)
    expected = np.zeros((4, 3), np.float32)
    expected[0, 0] = 2
    expected[0, 1] = 1
    expected[1, 1] = 1
    expected[2, 2] = 1
    expected[3, 2] = 1
    assert np.array_equal(x, expected)


def test_counts_are_summed_not_clipped():
    x = bin_spikes(np.array([0.001, 0.002, 0.003]), np.array([3, 3, 4]), dt_ms=10, n_channels=5, pool=5)
    assert x.shape == (1, 1) and x[0, 0] == 3


def test_fixed_steps_pad_and_drop():
    x = bin_spikes(np.array([0.001, 0.055]), np.array([0, 1]), dt_ms=10, n_channels=2, pool=1, n_steps=3)
    assert x.shape == (3, 2) and x.sum() == 1   # the spike in bin 5 is beyond 3 steps
    y = bin_spikes(np.array([0.001]), np.array([0]), dt_ms=10, n_channels=2, pool=1, n_steps=8)
    assert y.shape == (8, 2) and y[0, 0] == 1 and y[1:].sum() == 0


def test_uneven_pooling_makes_a_partial_last_group():
    x = bin_spikes(np.array([0.0]), np.array([6]), dt_ms=1, n_channels=7, pool=3)
    assert x.shape == (1, 3) and x[0, 2] == 1


def test_steps_for_empty_sample():
    assert n_steps_for(np.zeros(0), 10) == 1
    assert bin_spikes(np.zeros(0), np.zeros(0, int), dt_ms=10, n_channels=4).shape == (1, 4)


def test_file_reads_float16_times_and_metadata(tmp_path):
    path = tmp_path / "f.h5"
    write_spike_file(path, [([0.0, 0.5], [1, 699]), ([0.25], [3])], labels=[4, 2],
                     class_names=["a", "b", "c", "d", "e"], speakers=[7, 8])
    with SpikeFile(path) as f:
        assert len(f) == 2
        assert f.labels.tolist() == [4, 2] and f.speakers.tolist() == [7, 8]
        assert f.class_names == ("a", "b", "c", "d", "e")
        s = f.read(0)
        assert s.times.dtype == np.float64 and s.units.dtype == np.int64 and s.label == 4
        x = f.binned(0, dt_ms=10, pool=5)
        assert x.shape == (51, 140) and x[0, 0] == 1 and x[50, 139] == 1
        assert f.read(1).label == 2
        with pytest.raises(InputFileError, match=r"sample -1 out of range: .* has 2 samples \(0\.\.1\)"):
            f.read(-1)                                  # case 14: no Python-style negative index


def _raw_file(path, times, units, labels=None):
    with h5py.File(path, "w") as h5:
        g = h5.create_group("spikes")
        g.create_dataset("times", (len(times),), dtype=h5py.vlen_dtype(np.float64))
        g.create_dataset("units", (len(units),), dtype=h5py.vlen_dtype(np.int64))
        for i, t in enumerate(times):
            g["times"][i] = np.asarray(t, np.float64)
        for i, u in enumerate(units):
            g["units"][i] = np.asarray(u, np.int64)
        if labels is not None:
            h5.create_dataset("labels", data=labels)
    return path


@pytest.mark.parametrize("times, units, message", [
    ([[0.1, 0.2]], [[1]], "times has 2 entries but units has 1; they must pair up one to one"),
    ([[0.1]], [[700]], "unit 700 outside [0, 700)"),
    ([[0.1]], [[-2]], "unit -2 outside [0, 700)"),
    ([[-0.5]], [[1]], "negative spike time -0.5 s"),
    ([[np.nan]], [[1]], "NaN or infinite spike time"),
    ([[np.inf]], [[1]], "NaN or infinite spike time"),
])
def test_bad_samples_say_what_is_wrong(tmp_path, times, units, message):
    path = _raw_file(tmp_path / "bad.h5", times, units)
    with SpikeFile(path) as f, pytest.raises(InputFileError) as info:
        f.read(0)
    assert message in str(info.value)
    assert "sample 0" in str(info.value)


def test_bad_files(tmp_path):
    with pytest.raises(InputFileError, match="input file not found"):
        SpikeFile(tmp_path / "none.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(InputFileError, match="is not an HDF5 file; expected the SHD layout"):
        SpikeFile(tmp_path / "text.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as h5:
        h5.create_dataset("labels", data=[1])
    with pytest.raises(InputFileError, match="missing dataset 'spikes/times'"):
        SpikeFile(tmp_path / "empty.h5")
    _raw_file(tmp_path / "lab.h5", [[0.1], [0.2]], [[1], [2]], labels=np.array([1, 2, 3]))
    with pytest.raises(InputFileError, match="labels has shape \\(3,\\), expected \\(2,\\)"):
        SpikeFile(tmp_path / "lab.h5")
    with pytest.raises(InputFileError, match="is a directory"):
        SpikeFile(tmp_path)


def test_sample_index_out_of_range(tmp_path):
    path = _raw_file(tmp_path / "ok.h5", [[0.1]], [[1]])
    with SpikeFile(path) as f, pytest.raises(InputFileError, match="sample 5 out of range: .* has 1 samples"):
        f.read(5)


# -- one binning rule: time_to_step -------------------------------------------------------

def test_time_to_step_is_floor_of_t_times_1000_over_dt():
    steps = time_to_step(np.array([0.0, 0.0099, 0.01, 0.0251, 1.001]), 10)
    assert steps.dtype == np.int64 and steps.tolist() == [0, 0, 1, 2, 100]
    assert time_to_step(np.float16(0.5), 10) == 50                  # any real dtype, computed in float64
    assert time_to_step([[0.02]], 10).shape == (1, 1)
    assert time_to_step([1e300], 1.0)[0] == 2**62                    # clipped, not an undefined cast


def test_last_spike_kept_where_the_two_float_forms_disagree():
    # t * 1000 / 7 = 142.99999... but t * (1000 / 7) = 143.0: binning once used the second
    # form with n_steps from the first, giving 143 steps and dropping the only spike
    assert np.floor(1.001 * (1000.0 / 7)) != np.floor(1.001 * 1000.0 / 7)
    x = bin_spikes([1.001], [0], dt_ms=7, n_channels=1)
    assert n_steps_for(np.array([1.001]), 7) == 143
    assert x.shape == (143, 1) and x.sum() == 1 and x[142, 0] == 1


@settings(max_examples=200, deadline=None)
@given(dt_and_spike_times(), st.data())
def test_no_spike_is_dropped_when_n_steps_is_none(case, data):
    dt_ms, times = case
    times = np.array(times)
    units = np.array(data.draw(st.lists(st.integers(0, 4), min_size=times.size, max_size=times.size)))
    x = bin_spikes(times, units, dt_ms=dt_ms, n_channels=5)
    assert x.sum() == times.size                                      # nothing dropped
    assert x.shape[0] == n_steps_for(times, dt_ms) and x[-1].sum() >= 1   # the last step is used
    expected = np.zeros_like(x)
    for t, u in zip(times.tolist(), units.tolist()):                  # one spike at a time, in Python floats
        expected[math.floor(t * 1000.0 / dt_ms), u] += 1
    np.testing.assert_array_equal(x, expected)


# -- absurd sample lengths --------------------------------------------------------------

def test_absurd_sample_length_is_refused_with_the_numbers():
    with pytest.raises(InputFileError) as info:
        bin_spikes([0.1, 6e4], [0, 1], dt_ms=10, n_channels=2)
    msg = str(info.value)
    assert "spike time 60000 s implies 6000001 steps at dt = 10 ms" in msg
    assert f"limit of {MAX_STEPS} steps" in msg and MAX_STEPS == 1_000_000
    # with n_steps given the sample is cut, not refused
    x = bin_spikes([0.1, 6e4], [0, 1], dt_ms=10, n_channels=2, n_steps=20)
    assert x.shape == (20, 2) and x.sum() == 1
    # exactly MAX_STEPS steps is fine
    assert n_steps_for(np.array([(MAX_STEPS - 1) * 1e-3]), 1.0) == MAX_STEPS


def test_absurd_sample_length_in_a_file_names_the_sample(tmp_path):
    path = tmp_path / "bogus.h5"
    write_spike_file(path, [([0.125], [3]), ([0.25, 6e4], [1, 2])], labels=[0, 1])   # float16-exact
    with SpikeFile(path) as f:
        assert f.binned(0, dt_ms=10).shape == (13, 700)
        with pytest.raises(InputFileError, match=r"bogus.h5 sample 1: spike time 60000 s implies 6000001 steps "
                                                 r"at dt = 10 ms, more than the limit of 1000000 steps"):
            f.binned(1, dt_ms=10)


# -- speakers of any label type -----------------------------------------------------------

@pytest.mark.parametrize("stored, expected", [
    (np.array([b"anna", b"bob", b"anna", b"cleo"]), [0, 1, 0, 2]),
    (np.array(["zed", "amy", "zed", "amy"], dtype=h5py.string_dtype()), [1, 0, 1, 0]),
    (np.array([3.5, -1.0, 3.5, 2.0]), [2, 0, 2, 1]),
    (np.array([12, 7, 12, 9], np.uint16), [12, 7, 12, 9]),          # integers are kept
])
def test_speaker_labels_of_any_type_become_integer_codes(tmp_path, stored, expected):
    path = tmp_path / "spk.h5"
    write_spike_file(path, [([0.1], [1])] * 4, labels=[0, 1, 0, 1])
    with h5py.File(path, "a") as h5:
        h5["extra"].create_dataset("speaker", data=stored)
    with SpikeFile(path) as f:
        assert f.speakers.dtype == np.int64 and f.speakers.tolist() == expected
        assert f.binned(0, dt_ms=10).sum() == 1                        # reading still works


def test_speaker_codes_of_unorderable_labels():
    codes = speaker_codes(np.array(["a", b"a", "a", 3], dtype=object))
    assert codes.dtype == np.int64 and codes.tolist() == [0, 1, 0, 2]


def test_reading_in_order_by_blocks_gives_every_row_as_read_alone(tmp_path, monkeypatch):
    import evsim.data as data

    monkeypatch.setattr(data, "READ_BLOCK", 3)          # several blocks and a partial last one
    rng = np.random.default_rng(0)
    samples = [(np.sort(rng.uniform(0, 0.5, k)), rng.integers(0, 20, k)) for k in rng.integers(0, 30, 10)]
    write_spike_file(tmp_path / "f.h5", samples, labels=np.arange(10) % 3)
    with SpikeFile(tmp_path / "f.h5", n_channels=20) as f:
        order = (9, 0, 7, 2, 5, 1, 8, 3, 6, 4)                             # no two in order: row by row
        alone = dict(zip(order, [f.read(i) for i in order]))
        in_order = [f.read(i) for i in range(10)] + [f.read(i) for i in (4, 5, 6, 0, 1)]
        assert f._block is not None                                         # blocks were read
    for i, s in zip(list(range(10)) + [4, 5, 6, 0, 1], in_order):
        np.testing.assert_array_equal(s.times, alone[i].times)
        np.testing.assert_array_equal(s.units, alone[i].units)
        assert s.label == alone[i].label == i % 3
        np.testing.assert_array_equal(s.times, np.asarray(samples[i][0], np.float16).astype(np.float64))


def test_a_bad_sample_inside_a_block_is_named(tmp_path):
    samples = [(np.array([0.1, 0.2]), np.array([1, 2]))] * 4
    write_spike_file(tmp_path / "f.h5", samples)
    with h5py.File(tmp_path / "f.h5", "a") as h5:
        h5["spikes/units"][2] = np.array([1, 99], np.uint16)
    with SpikeFile(tmp_path / "f.h5", n_channels=20) as f:
        f.read(0), f.read(1)
        with pytest.raises(InputFileError, match="sample 2: unit 99 outside"):
            f.read(2)


# -- a batch at a time: read_events, batch_steps, bin_batch --------------------------------

@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_batch_is_binned_as_each_sample_alone_then_padded(data):
    from evsim.run import pad_batch

    dt = data.draw(st.sampled_from([1.0, 4.0, 10.0, 7.0]))
    pool = data.draw(st.sampled_from([1, 3, 5]))
    n_channels = data.draw(st.integers(1, 12))
    fixed = data.draw(st.one_of(st.none(), st.integers(1, 40)))
    samples = []
    for _ in range(data.draw(st.integers(1, 6))):
        k = data.draw(st.integers(0, 25))
        times = np.array(data.draw(st.lists(st.floats(0, 0.3, allow_nan=False), min_size=k, max_size=k)))
        samples.append((times.astype(np.float64), np.array(data.draw(
            st.lists(st.integers(0, n_channels - 1), min_size=k, max_size=k)), np.int64)))
    events = concat_samples(samples)
    lengths = batch_steps(events, dt, fixed)
    alone = [bin_validated(t, u, dt_ms=dt, n_channels=n_channels, pool=pool, n_steps=fixed, dtype=np.float64)
             for t, u in samples]
    x, want_lengths = pad_batch(alone)
    assert lengths.tolist() == want_lengths.tolist()
    for compiled in (False, True):              # NumPy, and the event engine's numba kernel
        got = bin_batch(events, lengths, dt_ms=dt, n_channels=n_channels, pool=pool, compiled=compiled)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, x)


def test_batch_steps_refuses_an_absurd_sample_by_name():
    events = concat_samples([(np.array([0.1]), np.array([0])), (np.array([0.2, 5e4]), np.array([0, 1]))])
    with pytest.raises(InputFileError, match="f.h5 sample 7: spike time 50000 s implies"):
        batch_steps(events, 1.0, None, where=lambda k: f"f.h5 sample {[3, 7][k]}")


def test_read_events_equals_reading_each_sample(tmp_path, monkeypatch):
    import evsim.data as data

    monkeypatch.setattr(data, "READ_BLOCK", 3)
    rng = np.random.default_rng(1)
    samples = [(np.sort(rng.uniform(0, 0.5, k)), rng.integers(0, 20, k)) for k in rng.integers(0, 30, 9)]
    write_spike_file(tmp_path / "f.h5", samples)
    with SpikeFile(tmp_path / "f.h5", n_channels=20) as f:
        for chunk in ([0, 1, 2, 3], [4, 5, 6, 7, 8], [8, 2, 5], []):
            ev = f.read_events(chunk)
            each = concat_samples([f.read(i) for i in chunk])
            for a, b in zip(ev, each):
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)


def test_read_events_names_the_bad_sample(tmp_path):
    samples = [(np.array([0.1, 0.2]), np.array([1, 2]))] * 4
    write_spike_file(tmp_path / "f.h5", samples)
    with h5py.File(tmp_path / "f.h5", "a") as h5:
        h5["spikes/units"][2] = np.array([1, 99], np.uint16)
    with SpikeFile(tmp_path / "f.h5", n_channels=20) as f, \
            pytest.raises(InputFileError, match="sample 2: unit 99 outside"):
        f.read_events([0, 1, 2, 3])
    path = _raw_file(tmp_path / "bad.h5", [[0.1], [0.1, 0.2], [0.3]], [[1], [1], [1, 2]])   # lengths cross over
    with SpikeFile(path) as f, pytest.raises(InputFileError, match="sample 1: times has 2 entries but units has 1"):
        f.read_events([0, 1, 2])
