"""Tonic-style structured events (t in microseconds, x, p) bin exactly as the SHD files do."""

import numpy as np
import pytest

from evsim.data import SpikeFile, write_spike_file
from evsim.errors import InputFileError
from evsim.event import EventStream, simulate
from evsim.structured import bin_structured, split_structured
from tests.conftest import make_samples, make_small_model

EVENT_DTYPE = np.dtype([("t", np.float64), ("x", np.int64), ("p", np.int64)])  # as tonic's audio datasets


def as_tonic(times_s, units, t_dtype=np.float64):
    ev = np.zeros(len(times_s), np.dtype([("t", t_dtype), ("x", np.int64), ("p", np.int64)]))
    ev["t"] = np.asarray(times_s, np.float64) * 1e6
    ev["x"] = units
    ev["p"] = 1
    return ev


@pytest.mark.parametrize("dt_ms, pool, n_steps", [(10.0, 2, None), (1.0, 1, None), (7.0, 3, 25), (4.0, 5, 5)])
def test_structured_events_bin_as_the_file_does(tmp_path, dt_ms, pool, n_steps):
    samples, labels = make_samples(n=8, seed=4, max_t=0.3)
    path = tmp_path / "s.h5"
    write_spike_file(path, samples, labels=labels)
    with SpikeFile(path, n_channels=20) as f:
        for i in range(len(f)):
            s = f.read(i)                                  # the file's times (float16 -> float64)
            ev = as_tonic(s.times, s.units)                 # what tonic's SHD loader hands out
            want = f.binned(i, dt_ms=dt_ms, pool=pool, n_steps=n_steps)
            got = bin_structured(ev, dt_ms=dt_ms, n_channels=20, pool=pool, n_steps=n_steps)
            assert got.dtype == want.dtype and np.array_equal(got, want)


def test_whole_microseconds_by_hand():
    ev = np.zeros(5, [("t", np.int64), ("x", np.int16), ("p", np.int8)])
    ev["t"] = [0, 9_999, 10_000, 25_000, 39_999]
    ev["x"] = [0, 1, 1, 3, 3]
    counts = bin_structured(ev, dt_ms=10.0, n_channels=4)
    # steps from time 0 of the sample (not from the first event, as tonic's ToFrame does)
    assert counts.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
    ev["t"] += 50_000                                       # a late first event: leading silence is kept
    assert bin_structured(ev, dt_ms=10.0, n_channels=4).shape == (9, 4)


def test_push_takes_structured_events_and_equals_the_whole_sample():
    model = make_small_model(n_steps=None)
    samples, _ = make_samples(n=3, seed=7)
    for times, units in samples:
        ev = as_tonic(times, units)
        stream = EventStream(model)
        rows = [stream.push(ev[lo:lo + 7]) for lo in range(0, len(ev), 7)]
        rows.append(stream.finish())
        x = bin_structured(ev, dt_ms=10.0, n_channels=20, pool=2, dtype=np.float64)
        ref = simulate(model, x)
        assert np.array_equal(np.concatenate(rows), ref.readout[0])
        assert np.array_equal(stream.scores, ref.scores[0])


@pytest.mark.parametrize("events, message", [
    (np.zeros(3), "expected a structured event array with fields t (microseconds) and x"),
    (np.zeros(3, [("t", float), ("x", int), ("y", int), ("p", int)]), "a 'y' field (a 2-D sensor)"),
    (np.zeros(3, [("t", float), ("p", int)]), "lack field(s) x"),
    (np.array([(-5.0, 0, 0)], EVENT_DTYPE), "negative spike time"),
    (np.array([(5.0, 99, 0)], EVENT_DTYPE), "unit 99 outside [0, 20)"),
])
def test_bad_structured_events(events, message):
    with pytest.raises(InputFileError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        bin_structured(events, dt_ms=10.0, n_channels=20)


def test_push_refuses_non_structured_events_without_units():
    stream = EventStream(make_small_model())
    with pytest.raises(InputFileError, match="^push: expected a structured event array"):
        stream.push([0.1, 0.2])
    assert split_structured(as_tonic([0.5], [3]))[0].tolist() == [0.5]
