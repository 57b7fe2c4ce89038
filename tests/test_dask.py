"""The Dask back end on a LocalCluster of 2 worker processes: worker threads, batch
inference and a sweep give what one process gives.  CI installs the extra evsim[dask]."""

import json
import os

import numpy as np
import pytest

pytest.importorskip("distributed", reason="the Dask back end needs the extra evsim[dask] (dask[distributed])")

from evsim.model import load_model  # noqa: E402
from evsim.parallel import Executor, worker_threads  # noqa: E402
from evsim.training.sweep import run_sweep  # noqa: E402

from .evsim.test_batch import files, records  # noqa: E402,F401  (fixture)
from .training.test_sweep import spec, toy  # noqa: E402,F401  (fixture)


@pytest.fixture(scope="module")
def cluster():
    with Executor(jobs=2, scheduler="local", threads=1) as ex:
        yield ex


def test_workers_run_tasks_on_the_threads_asked_for(cluster):
    seen = list(cluster.map_ordered(worker_threads, range(6)))
    assert all(s["numba_threads"] == 1 and s["numba_pool"] == 1 for s in seen), seen
    assert all(s["OPENBLAS_NUM_THREADS"] == "1" and s["OMP_NUM_THREADS"] == "1" for s in seen), seen
    assert os.getpid() not in {s["pid"] for s in seen}


def test_batch_on_dask_equals_one_process(cluster, model_file, files):
    d, _ = files
    model = load_model(model_file)
    from evsim.batch import classify_many, input_files, plan_chunks

    chunks, _ = plan_chunks(model, str(model_file), input_files([str(d)]), chunk_size=2, batch_size=2)
    assert list(classify_many(model, str(model_file), chunks, cluster)) == records(model_file, [str(d)])


def test_sweep_on_dask_equals_one_process(cluster, toy, tmp_path):
    s = spec(toy, grid=[], seeds=[0, 1])
    on_dask = run_sweep(s, str(tmp_path / "dask"), cluster)
    with Executor(jobs=1, threads=1) as ex:
        here = run_sweep(s, str(tmp_path / "here"), ex)
    assert on_dask["n_done"] == 2
    for a, b in zip(on_dask["settings"][0]["runs"], here["settings"][0]["runs"]):
        assert a["test_accuracy"] == b["test_accuracy"] and a["validation_accuracy"] == b["validation_accuracy"]
        ma = load_model(os.path.join(a["run_dir"], "model.npz")).to_arrays()
        mb = load_model(os.path.join(b["run_dir"], "model.npz")).to_arrays()
        assert all(np.array_equal(ma[k], mb[k]) for k in ma if k != "metadata")
    assert json.load(open(tmp_path / "dask" / "summary.json"))["n_done"] == 2
