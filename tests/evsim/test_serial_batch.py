"""One-thread batches run the serial kernel (kernels.event.run_batch_serial) in a state
per thread: the main thread and another thread give the same outputs, bit for bit."""

import threading

import numba
import numpy as np
import pytest

from evsim import event
from evsim.model_file import load_model
from evsim.names import BUILTIN_MODELS, builtin_path
from tests.conftest import assert_same_results, make_small_model


def _in_thread(fn):
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("result", fn()))
    worker.start()
    worker.join()
    return out["result"]


def _one_thread(fn):
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return fn()
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("name", ["builtin", "small"])
def test_main_thread_equals_another_thread(name, precision, monkeypatch):
    model = (load_model(builtin_path(BUILTIN_MODELS["default"])) if name == "builtin"
             else make_small_model(seed=3, recurrence=("dense", "conv")))
    x = np.random.default_rng(5).poisson(0.4, (5, 40, model.n_inputs)).astype(np.float64)
    lengths = np.array([40, 31, 7, 40, 1])
    calls = []
    real = event._direct
    monkeypatch.setattr(event, "_direct", lambda name, p: calls.append(name) or real(name, p))

    def run():
        return _one_thread(lambda: event.simulate(model, x, lengths, record_spikes=True, precision=precision))

    main = run()
    other = _in_thread(run)
    assert calls == ["run_batch_serial", "run_batch_serial"]
    assert_same_results(main, other)
