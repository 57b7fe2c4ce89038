"""EventStream's flat buffers (``evsim.kernels.event.flatten``, ``run_flat``) and its one-call
``step`` and ``push`` kernels (``stream_step``, ``stream_push``): the same outputs, bit for
bit, as the whole-sample run, in both precisions."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from evsim import event
from evsim.data import bin_spikes, time_to_step
from tests.strategies import random_case

PRECISIONS = ("float64", "float32")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_flatten_keeps_every_array_and_views_the_buffers(precision):
    from evsim.kernels import event as k

    model, _, _ = random_case(3, model_kw={"recurrences": ("conv", "dense")})
    params = event.pack_model(model, precision)
    real = params.cells.beta.dtype
    for tree, spec, roles in ((params, k.PARAMS_SPEC, k.PARAMS_ROLES),
                              (k.new_state(params), k.STATE_SPEC, k.STATE_ROLES)):
        buffers, views = k.flatten(tree, spec, roles, real)
        dtypes = {**k.ROLE_DTYPE, "r": real}
        assert [b.dtype for b in buffers] == [np.dtype(dtypes[r]) for r in roles]
        paths = k.leaf_paths(spec)
        head = buffers[0][:k.layout_size(spec)].reshape(-1, 3)
        assert head.shape[0] == len(paths)
        for (path, role), (start, stop, cols) in zip(paths, head):
            old, new = tree, views
            for name in path.split("."):
                old, new = getattr(old, name), getattr(new, name)
            buffer = buffers[roles.index(role[0])]
            np.testing.assert_array_equal(new, old)
            assert new.dtype == old.dtype and new.shape == old.shape, path
            assert np.shares_memory(new, buffer) and new.size == stop - start, path
            assert cols == (old.shape[1] if role.endswith("2") else 0), path


def test_flatten_refuses_a_leaf_of_the_wrong_type():
    from evsim.kernels import event as k

    model, _, _ = random_case(1)
    params = event.pack_model(model)
    wrong = params._replace(ff=params.ff._replace(size=params.ff.size.astype(np.int32)))
    with pytest.raises(TypeError, match="role 'i' is 1-D int32, expected 1-D int64"):
        k.flatten(wrong, k.PARAMS_SPEC, k.PARAMS_ROLES, np.float64)
    flat = params._replace(cells=params.cells._replace(extra=params.cells.extra.ravel()))
    with pytest.raises(TypeError, match="role 'r2' is 1-D"):
        k.flatten(flat, k.PARAMS_SPEC, k.PARAMS_ROLES, np.float64)


def _pieces(times, units, dt_ms, n_steps):
    """A sample's raw events step by step: (times, units, until = the step's end)."""
    step_of = time_to_step(times, dt_ms)
    edges = np.searchsorted(step_of, np.arange(n_steps + 1), side="left")
    return [(times[a:b], units[a:b], (s + 1) * dt_ms / 1e3) for s, (a, b) in enumerate(itertools.pairwise(edges))]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_step_and_push_equal_the_batch_in_both_precisions(precision):
    """Seeded models with every recurrence: ``step`` row by row (C-ordered float64 rows:
    the one-call kernel; read-only and strided rows: the checked path), and ``push`` of
    each step's raw events with ``until`` its end (the one-call push kernel) or without
    (binning, then running), equal ``simulate`` in the same precision bit for bit."""
    rng = np.random.default_rng(0)
    for seed in range(4):
        model, _, _ = random_case(seed, model_kw={"recurrences": ("none", "dense", "conv")})
        pool, dt, n_steps = 2, 2.5, 40
        channels = model.n_inputs * pool
        model = dataclasses.replace(model, metadata=dataclasses.replace(
            model.metadata, dt_ms=dt, input_channels=channels, pool=pool, n_steps=n_steps))
        times = np.sort(rng.uniform(0.0, 0.12, 300))
        units = rng.integers(0, channels, times.size)
        x = bin_spikes(times, units, dt_ms=dt, n_channels=channels, pool=pool, n_steps=n_steps, dtype=np.float64)
        whole = event.simulate(model, x[None], precision=precision)
        stream = event.EventStream(model, precision=precision)
        for make_row in (np.ascontiguousarray, _read_only, _strided):
            stream.reset()
            rows = np.array([stream.step(make_row(row)) for row in x])
            np.testing.assert_array_equal(rows, whole.readout[0])
            np.testing.assert_array_equal(stream.scores, whole.scores[0])
        for with_until in (True, False):
            stream.reset()
            out = [stream.push(t, u, until=until if with_until else None)
                   for t, u, until in _pieces(times, units, dt, n_steps)]
            out = np.concatenate(out + [stream.finish()])
            np.testing.assert_array_equal(out, whole.readout[0])
            np.testing.assert_array_equal(stream.scores, whole.scores[0])
            assert stream.stats["synaptic_events"] == whole.stats["synaptic_events"][0]
            np.testing.assert_array_equal(stream.stats["spikes_per_layer"], whole.stats["spikes_per_layer"][0])


def _read_only(row):
    row = np.array(row)
    row.flags.writeable = False
    return row


def _strided(row):
    return np.repeat(row, 2)[::2]


def test_push_until_past_the_buffer_runs_silence_and_keeps_later_events():
    """``push`` with ``until`` beyond every buffered row runs the missing steps as silence;
    events pushed earlier for later steps (without ``until``) stay buffered and run when
    their step comes, as in the whole sample."""
    model, _, _ = random_case(5, model_kw={"recurrences": ("conv",)})
    meta = dataclasses.replace(model.metadata, dt_ms=1.0, input_channels=model.n_inputs, pool=1, n_steps=None)
    model = dataclasses.replace(model, metadata=meta)
    times = np.array([0.0005, 0.0305, 0.0306, 0.0901])
    units = np.array([0, 1, 0, model.n_inputs - 1])
    x = bin_spikes(times, units, dt_ms=1.0, n_channels=model.n_inputs, pool=1, dtype=np.float64)
    whole = event.simulate(model, x[None])
    stream = event.EventStream(model)
    rows = [stream.push(times[:1], units[:1], until=0.02)]             # steps 0..19
    rows.append(stream.push(times[1:3], units[1:3]))                  # 20..29 run, step 30 buffered
    rows.append(stream.push(np.zeros(0), np.zeros(0, np.int64), until=0.05))   # 30..49: past the buffered rows
    rows.append(stream.push(times[3:], units[3:]))                    # 50..89 run, step 90 buffered
    rows.append(stream.finish())                                      # step 90
    assert [r.shape[0] for r in rows] == [20, 10, 20, 40, 1]
    np.testing.assert_array_equal(np.concatenate(rows), whole.readout[0])
    np.testing.assert_array_equal(stream.scores, whole.scores[0])
