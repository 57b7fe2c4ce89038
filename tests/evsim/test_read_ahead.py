"""Reading the next batch on a second thread (evsim.run.read_ahead): the same items in the
same order, errors where their item would have come, the same classification."""

import numba
import numpy as np
import pytest

from evsim.data import write_spike_file
from evsim.errors import InputFileError
from evsim.run import classify_file, read_ahead
from tests.conftest import make_samples


def test_items_come_in_order_and_all_of_them():
    assert list(read_ahead(range(7))) == list(range(7))
    assert list(read_ahead([])) == []


def test_an_error_comes_out_where_its_item_would_have():
    def items():
        yield 1
        yield 2
        raise ValueError("bad third item")

    got = []
    with pytest.raises(ValueError, match="bad third item"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_reader():
    produced = []

    def items():
        for i in range(100):
            produced.append(i)
            yield i

    reader = read_ahead(items())
    assert next(reader) == 0
    reader.close()
    assert len(produced) <= 2           # the item in hand and at most one read ahead


@pytest.fixture
def many_samples(tmp_path):
    samples, labels = make_samples(n=9)
    path = tmp_path / "many.h5"
    write_spike_file(path, samples, labels=labels, class_names=["class0", "class1", "class2"])
    return path


def _classify(model_file, path, threads):
    from evsim.model_file import load_model

    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        return classify_file(load_model(model_file), str(path), engine="event", batch_size=2)
    finally:
        numba.set_num_threads(before)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads (reading ahead is off on one)")
def test_classify_file_reading_ahead_gives_the_one_thread_results(model_file, many_samples, monkeypatch):
    import evsim.run

    calls = []
    monkeypatch.setattr(evsim.run, "read_ahead", lambda items: calls.append(1) or read_ahead(items))
    ahead = _classify(model_file, many_samples, 2)
    assert calls == [1]                  # five batches of 2 on two threads: read ahead
    plain = _classify(model_file, many_samples, 1)
    assert calls == [1]                  # one thread: not
    assert [s.prediction for s in ahead.samples] == [s.prediction for s in plain.samples]
    assert [s.score for s in ahead.samples] == [s.score for s in plain.samples]
    assert ahead.stats == plain.stats


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads (reading ahead is off on one)")
def test_a_bad_sample_read_ahead_raises_its_own_error(tmp_path, model_file):
    samples, labels = make_samples(n=9)
    times, units = samples[7]
    samples[7] = (times, np.full_like(units, 60))       # channel 60 of a 20-channel model
    path = tmp_path / "bad.h5"
    write_spike_file(path, samples, labels=labels, class_names=["class0", "class1", "class2"])
    with pytest.raises(InputFileError, match="sample 7"):
        _classify(model_file, path, 2)
