"""Shared fixtures: small model and spike files made in a temporary directory.

Tests never read ../shared: everything they need is built here.
"""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _no_compile_note(monkeypatch):
    """The CLI's "compiling kernels" note depends on numba's on-disk cache (present on a
    developer's machine, absent in a fresh CI run); the tests of exact output must not.
    The note itself is tested in tests/cli/test_newcomer.py, which patches this back."""
    import evsim.cli.common

    monkeypatch.setattr(evsim.cli.common, "kernels_cached", lambda module: True)

from evsim.data import write_spike_file
from evsim.model import ModelMetadata, build_model, pooled_inputs


def make_small_model(seed=0, recurrence=("none", "conv"), n_channels=20, pool=2, hidden=(12, 10),
                     n_classes=3, dt_ms=10.0, n_steps=None):
    """A small random model with recurrence and delays, inputs = n_channels / pool."""
    rng = np.random.default_rng(seed)
    n_in = pooled_inputs(n_channels, pool)
    weights, recs, delays = [], [], []
    prev = n_in
    for n, kind in zip(hidden, recurrence):
        weights.append(rng.normal(0.2, 0.6, (n, prev)))
        recs.append(rng.normal(0, 0.5, 3) if kind == "conv" else rng.normal(0, 0.3, (n, n)) if kind == "dense" else None)
        delays.append(rng.integers(0, 5, n) if kind != "none" else None)
        prev = n
    meta = ModelMetadata(dt_ms=dt_ms, input_channels=n_channels, pool=pool, n_steps=n_steps,
                         class_names=tuple(f"class{c}" for c in range(n_classes)),
                         provenance={"made_by": "tests"})
    return build_model(weights, rng.normal(0, 0.5, (n_classes, prev)), recurrence=list(recurrence),
                       recurrent=recs, delays=delays, beta=0.8, metadata=meta)


def assert_same_results(a, b):
    """Two SimResults are equal bit for bit: readout, scores, spike rasters and stats."""
    np.testing.assert_array_equal(a.readout, b.readout)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert (a.spikes is None) == (b.spikes is None)
    for x, y in zip(a.spikes or (), b.spikes or ()):
        np.testing.assert_array_equal(x, y)
    assert a.stats.keys() == b.stats.keys()
    for key in a.stats:
        np.testing.assert_array_equal(a.stats[key], b.stats[key])


def make_samples(n=6, n_channels=20, n_classes=3, seed=1, max_t=0.2, rate=60):
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        k = int(rng.integers(1, rate))
        t = np.sort(rng.uniform(0, max_t, k))
        u = rng.integers(0, n_channels, k)
        samples.append((t, u))
    labels = rng.integers(0, n_classes, n)
    return samples, labels


@pytest.fixture
def small_model():
    return make_small_model()


@pytest.fixture
def model_file(tmp_path, small_model):
    path = tmp_path / "model.npz"
    small_model.save(path)
    return path


@pytest.fixture
def spike_file(tmp_path):
    samples, labels = make_samples()
    path = tmp_path / "spikes.h5"
    write_spike_file(path, samples, labels=labels, class_names=["class0", "class1", "class2"],
                     speakers=np.arange(len(samples)) % 3)
    return path
