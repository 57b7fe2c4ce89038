"""Fuzzing the file readers through the command line: hypothesis-made malformed model
(.npz) and spike (HDF5) files.

Whatever the file, a command either works or fails with exactly one ``Error: ...`` line
and exit status 1: never a traceback, never another exception, never a partial output
file.  The default run tries a few dozen files of each kind; ``-m slow`` tries hundreds.
"""

import io
import json
import os
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evsim.cli.main import evsim
from evsim.data import write_spike_file
from tests.conftest import make_samples, make_small_model

FAST = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check_outcome(res) -> None:
    """Success, or one ``Error:`` line with exit 1; anything else is a bug."""
    if res.exit_code == 0:
        return
    assert isinstance(res.exception, SystemExit), f"{res.exception!r}\n{res.output}"
    lines = [l for l in res.output.splitlines() if l.strip() and not l.startswith("warning: ")]  # by design
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output


def invoke(*args):
    return CliRunner().invoke(evsim, [str(a) for a in args])


# -- model files ---------------------------------------------------------------------------

KEYS = sorted(make_small_model().to_arrays())
DTYPES = ["bool", "int8", "uint64", "float16", "float64", "complex64", "<U3", "S3", ">f4"]
META_FIELDS = ["dt_ms", "input_channels", "pool", "n_steps", "class_names", "provenance", "layers", "readout",
               "layers.0", "layers.0.reset", "layers.1.recurrence", "readout.decision"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)
shapes = st.lists(st.integers(0, 4), max_size=3).map(tuple)
headers = st.tuples(st.sampled_from(["<f4", "|O", "<c16", "|b1", "<U5", "|V4", ">i8", "<f8"]),
                    st.lists(st.integers(0, 10**7), max_size=3).map(tuple), st.integers(0, 80))

mutations = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(KEYS)),
    st.tuples(st.just("dtype"), st.sampled_from(KEYS), st.sampled_from(DTYPES)),
    st.tuples(st.just("shape"), st.sampled_from(KEYS), shapes),
    st.tuples(st.just("values"), st.sampled_from(KEYS),
              st.sampled_from([np.nan, np.inf, -1.0, 1e39, 2.0**40, 0.0, 0.5])),
    st.tuples(st.just("meta"), st.sampled_from(META_FIELDS), json_values),
    st.tuples(st.just("meta_text"), st.text(max_size=30)),
    st.tuples(st.just("extra"), st.text(min_size=1, max_size=8).filter(lambda s: "/" not in s and "\0" not in s)),
    st.tuples(st.just("header"), st.sampled_from(KEYS), headers),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
)


def _set_meta(meta: dict, dotted: str, value) -> None:
    node, parts = meta, dotted.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if not isinstance(node, (dict, list)):
            return
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _npz_bytes(arrays: dict, raw_members: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    if not raw_members:
        return buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members.update(raw_members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def mutated_model_file(path, steps) -> None:
    from numpy.lib import format as npy

    arrays = {k: np.array(v) for k, v in make_small_model().to_arrays().items()}
    raw, cut = {}, None
    for step in steps:
        op, *args = step
        if op == "drop":
            arrays.pop(args[0], None)
        elif op == "dtype" and args[0] in arrays:
            try:
                with np.errstate(all="ignore"):
                    arrays[args[0]] = arrays[args[0]].astype(args[1])
            except ValueError:                       # e.g. the metadata text to int8: store zeros
                arrays[args[0]] = np.zeros(arrays[args[0]].shape, args[1])
        elif op == "shape" and args[0] in arrays:
            arrays[args[0]] = np.ones(args[1], np.float32)
        elif op == "values" and args[0] in arrays and arrays[args[0]].dtype.kind in "fi" and arrays[args[0]].size:
            a = arrays[args[0]].astype(np.float64)
            a.flat[0] = args[1]
            arrays[args[0]] = a
        elif op == "meta" and "metadata" in arrays and arrays["metadata"].dtype.kind == "U":
            try:
                meta = json.loads(str(arrays["metadata"]))
                _set_meta(meta, args[0], args[1])
            except (ValueError, IndexError, KeyError, TypeError, AttributeError):
                continue
            arrays["metadata"] = np.array(json.dumps(meta))
        elif op == "meta_text":
            arrays["metadata"] = np.array(args[0])
        elif op == "extra":
            arrays[args[0]] = np.zeros(2, np.float32)
        elif op == "header":
            descr, shape, n_bytes = args[1]
            head = io.BytesIO()
            npy.write_array_header_1_0(head, {"descr": descr, "fortran_order": False, "shape": shape})
            raw[args[0] + ".npy"] = head.getvalue() + b"\x01" * n_bytes
        elif op == "truncate":
            cut = args[0]
    data = _npz_bytes(arrays, raw)
    if cut is not None:
        data = data[:int(len(data) * cut)]
    path.write_bytes(data)


@pytest.fixture(scope="module")
def spikes(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "spikes.h5"
    samples, labels = make_samples(n=3)
    write_spike_file(path, samples, labels=labels)
    return path


def _model_case(tmp_path, spikes, steps):
    path = tmp_path / "m.npz"
    mutated_model_file(path, steps)
    check_outcome(invoke("info", path))
    check_outcome(invoke("run", "--model", path, "--input", spikes, "-q"))


@FAST
@given(steps=st.lists(mutations, min_size=1, max_size=3))
def test_malformed_model_files_give_one_error_line(tmp_path, spikes, steps):
    _model_case(tmp_path, spikes, steps)


@pytest.mark.slow
@SLOW
@given(steps=st.lists(mutations, min_size=1, max_size=4))
def test_malformed_model_files_many(tmp_path, spikes, steps):
    _model_case(tmp_path, spikes, steps)


# -- spike files -------------------------------------------------------------------------------

def _vlen(dtype):
    import h5py

    return h5py.vlen_dtype(np.dtype(dtype))


row_values = st.lists(st.sampled_from([0.0, 0.01, 0.15, 1.5, -0.1, np.nan, np.inf, 1e30, 19.0, 20.0, 700.0, 2.0**63]),
                      max_size=5)
column = st.one_of(
    st.tuples(st.just("vlen"), st.sampled_from(["float16", "float64", "uint16", "int64", "uint64", "float32"]),
              st.lists(row_values, min_size=0, max_size=3)),
    st.tuples(st.just("fixed"), st.sampled_from(["float64", "int32"]), shapes),
    st.tuples(st.just("strings"), st.lists(st.text(max_size=3), max_size=3)),
    st.tuples(st.just("group")),
    st.tuples(st.just("missing")),
)
labels_s = st.one_of(st.none(), st.tuples(st.sampled_from(["int64", "float32", "int8", "uint64"]),
                                          st.lists(st.integers(-3, 30), max_size=4)))
keys_s = st.one_of(st.none(), st.lists(st.text(max_size=4), max_size=4), st.lists(st.integers(0, 9), max_size=3))
speakers_s = st.one_of(st.none(), st.lists(st.integers(0, 4) | st.text(max_size=2), max_size=4))


def _write_column(group, name, spec):
    kind = spec[0]
    if kind == "vlen":
        _, dtype, rows = spec
        ds = group.create_dataset(name, (len(rows),), dtype=_vlen(dtype))
        for i, r in enumerate(rows):
            with np.errstate(all="ignore"):
                ds[i] = np.array(r, np.float64).astype(dtype)
    elif kind == "fixed":
        group.create_dataset(name, data=np.zeros(spec[2], spec[1]))
    elif kind == "strings":
        group.create_dataset(name, data=np.array([s.encode() for s in spec[1]], dtype="S8"))
    elif kind == "group":
        group.create_group(name)


def malformed_spike_file(path, times, units, labels, keys, speakers):
    import h5py

    with h5py.File(path, "w") as h5:
        g = h5.create_group("spikes")
        _write_column(g, "times", times)
        _write_column(g, "units", units)
        if labels is not None:
            with np.errstate(all="ignore"):
                h5.create_dataset("labels", data=np.array(labels[1]).astype(labels[0]))
        extra = h5.create_group("extra")
        if keys is not None:
            extra.create_dataset("keys", data=np.array([str(k).encode() for k in keys], dtype="S8")
                                 if keys and isinstance(keys[0], str) else np.array(keys, np.int64))
        if speakers is not None:
            data = [str(s) for s in speakers] if any(isinstance(s, str) for s in speakers) else speakers
            extra.create_dataset("speaker", data=np.array([str(s).encode() for s in data], dtype="S4")
                                 if data and isinstance(data[0], str) else np.array(data, np.int64))


def _spike_case(tmp_path, model_path, times, units, labels, keys, speakers, train: bool):
    path = tmp_path / "in.h5"
    malformed_spike_file(path, times, units, labels, keys, speakers)
    check_outcome(invoke("run", "--model", model_path, "--input", path))
    if train:
        out = tmp_path / "run"
        res = invoke("train", "--train", path, "--test", path, "--out", out, "--epochs", 1, "-q",
                     "--set", "input_channels=20", "--set", "pool=2", "--set", "network.hidden=[4]",
                     "--set", 'network.recurrence=["none"]', "--set", "network.tau=[1.5]", "--set", 'network.gain=["one"]')
        check_outcome(res)
        if res.exit_code != 0:     # nothing half-made: no directory at all for a run refused at the start
            assert not out.exists() or not {"model.npz", "checkpoint.npz"} & set(os.listdir(out))
        if out.exists():
            import shutil

            shutil.rmtree(out)


@pytest.fixture(scope="module")
def fuzz_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzzm") / "model.npz"
    make_small_model().save(path)
    return path


@FAST
@given(times=column, units=column, labels=labels_s, keys=keys_s, speakers=speakers_s)
def test_malformed_spike_files_give_one_error_line(tmp_path, fuzz_model, times, units, labels, keys, speakers):
    _spike_case(tmp_path, fuzz_model, times, units, labels, keys, speakers, train=False)


@settings(FAST, max_examples=8)
@given(times=column, units=column, labels=labels_s, keys=keys_s, speakers=speakers_s)
def test_malformed_training_files_leave_nothing_behind(tmp_path, fuzz_model, times, units, labels, keys, speakers):
    _spike_case(tmp_path, fuzz_model, times, units, labels, keys, speakers, train=True)


@pytest.mark.slow
@SLOW
@given(times=column, units=column, labels=labels_s, keys=keys_s, speakers=speakers_s, train=st.booleans())
def test_malformed_spike_files_many(tmp_path, fuzz_model, times, units, labels, keys, speakers, train):
    _spike_case(tmp_path, fuzz_model, times, units, labels, keys, speakers, train=train)
