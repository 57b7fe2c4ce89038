"""Batch inference over many files: same results as one process, in order, bad input."""

import json
import sys

import pytest
from click.testing import CliRunner

from evsim.cli.main import evsim
from evsim.batch import classify_many, input_files, plan_chunks
from evsim.data import write_spike_file
from evsim.errors import EvsimError
from evsim.model import load_model
from evsim.parallel import Executor, ParallelError
from evsim.run import classify_file

from ..conftest import make_samples


@pytest.fixture
def files(tmp_path):
    """Two labelled files of 7 and 5 samples in one directory."""
    d = tmp_path / "inputs"
    d.mkdir()
    paths = []
    for k, n in enumerate((7, 5)):
        samples, labels = make_samples(n=n, seed=10 + k)
        paths.append(d / f"part{k}.h5")
        write_spike_file(paths[-1], samples, labels=labels, class_names=["class0", "class1", "class2"])
    (d / "notes.txt").write_text("not an input")
    return d, [str(p) for p in paths]


def records(model_file, paths, executor=None, chunk_size=3, batch_size=2):
    model = load_model(model_file)
    chunks, n = plan_chunks(model, str(model_file), input_files(paths), chunk_size=chunk_size, batch_size=batch_size)
    with executor or Executor(jobs=1, threads=1) as ex:
        out = list(classify_many(model, str(model_file), chunks, ex))
    assert len(out) == n
    return out


def test_input_files_expands_directories(files, tmp_path):
    d, paths = files
    assert input_files([str(d)]) == paths
    assert input_files([paths[1], str(d)]) == [paths[1]] + paths
    with pytest.raises(EvsimError, match="input not found: .*nope.h5; expected a spike file"):
        input_files([str(tmp_path / "nope.h5")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvsimError, match="holds no .h5 or .hdf5 files"):
        input_files([str(tmp_path / "empty")])


def test_serial_records_equal_evsim_run(model_file, files):
    d, paths = files
    out = records(model_file, [str(d)])
    model = load_model(model_file)
    expected = []
    for path in paths:
        res = classify_file(model, path)
        expected += [(path, r.index, r.prediction, r.score, r.label) for r in res.samples]
    assert [(r["file"], r["index"], r["prediction"], r["score"], r["label"]) for r in out] == expected
    assert all(r["scores"][r["prediction"]] == r["score"] == max(r["scores"]) for r in out)
    assert all(r["class"] == model.class_names[r["prediction"]] for r in out)


def test_two_processes_give_the_single_process_output(model_file, files, joblib_pool):
    d, _ = files
    assert records(model_file, [str(d)], _Kept(joblib_pool), chunk_size=2) == records(model_file, [str(d)], chunk_size=5)


class _Kept:
    """A session's executor used in a with block without closing it."""

    def __init__(self, ex):
        self.ex = ex

    def __enter__(self):
        return self.ex

    def __exit__(self, *exc):
        return False


def test_missing_joblib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "joblib.externals.loky", None)
    with pytest.raises(ParallelError, match=r"needs the package joblib, which is not installed; "
                                            r"pip install 'evsim\[parallel\]' \(joblib\), or run with --jobs 1"):
        with Executor(jobs=2):
            pass


def test_bad_executor_settings():
    with pytest.raises(ParallelError, match="--scheduler 'head:8786': expected 'local' or a Dask scheduler address"):
        Executor(scheduler="head:8786")
    with pytest.raises(ParallelError, match="--jobs 0: expected a positive number"):
        Executor(jobs=0)


def test_cli_batch_json_lines_and_output_file(model_file, files, tmp_path):
    d, paths = files
    res = CliRunner().invoke(evsim, ["batch", str(d), "--model", str(model_file), "--chunk-size", "4", "-q"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["file"], r["index"]) for r in lines] == [(paths[0], i) for i in range(7)] + [(paths[1], i) for i in range(5)]
    assert set(lines[0]) == {"file", "index", "prediction", "class", "score", "scores", "label"}
    out = tmp_path / "pred.jsonl"
    res = CliRunner().invoke(evsim, ["batch", paths[0], "--model", str(model_file), "-o", str(out)])
    assert res.exit_code == 0 and res.stdout == ""
    assert "7 samples from 1 file(s), accuracy" in res.stderr and "samples/s" in res.stderr
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines[:7]


def test_cli_batch_bad_input(model_file, files, tmp_path):
    d, paths = files
    res = CliRunner().invoke(evsim, ["batch", str(tmp_path / "missing.h5"), "--model", str(model_file)])
    assert res.exit_code == 1 and res.output.startswith("Error: input not found: ")
    bad = tmp_path / "bad.h5"
    samples, _ = make_samples(n=2)
    write_spike_file(bad, samples, labels=[0, 7])
    out = tmp_path / "pred.jsonl"
    res = CliRunner().invoke(evsim, ["batch", paths[0], str(bad), "--model", str(model_file), "-o", str(out)])
    assert res.exit_code == 1 and "label 7 is out of range for a model with 3 classes" in res.output
    assert not out.exists()
    res = CliRunner().invoke(evsim, ["batch", paths[0], "--model", str(model_file), "--scheduler", "nowhere"])
    assert res.exit_code == 1 and "Error: --scheduler 'nowhere'" in res.output


def test_cli_batch_precision_is_evsim_runs(model_file, files, tmp_path):
    """--precision float32 gives the records `evsim run --precision float32` gives, and so
    does the default (auto: float32 for a neuron-cell model); an unknown precision, or
    float32 for a CS-GRU model, fails before any output."""
    d, paths = files
    res = CliRunner().invoke(evsim, ["batch", paths[0], "--model", str(model_file), "--precision", "float32", "-q"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    run = CliRunner().invoke(evsim, ["run", "--model", str(model_file), "--input", paths[0], "--engine", "event",
                                     "--precision", "float32", "--json"])
    expected = json.loads(run.output)["samples"]
    assert [r["prediction"] for r in lines] == [s["prediction"] for s in expected]
    assert [r["score"] for r in lines] == pytest.approx([s["score"] for s in expected], rel=0, abs=0)
    default = CliRunner().invoke(evsim, ["batch", paths[0], "--model", str(model_file), "-q"])   # auto: float32
    assert default.exit_code == 0 and [json.loads(line) for line in default.stdout.splitlines()] == lines
    res = CliRunner().invoke(evsim, ["batch", paths[0], "--model", str(model_file), "--precision", "float16"])
    assert res.exit_code == 2 and "float16" in res.output
    from tests.cli.test_csgru_cli import _model as csgru_model

    path, data = csgru_model(tmp_path)
    out = tmp_path / "pred.jsonl"
    res = CliRunner().invoke(evsim, ["batch", str(data), "--model", str(path), "--precision", "float32", "-o", str(out)])
    assert res.exit_code == 1 and "Error: precision 'float32' is not available for models with CS-GRU layers" in res.output
    assert not out.exists()
