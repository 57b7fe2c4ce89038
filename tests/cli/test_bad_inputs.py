"""One test per numbered case of the hardening issue (#9): each gives one clear line (or
works as documented), loses or mixes nothing."""

import errno
import json
import os
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from evsim.cli.main import evsim
from evsim.data import write_spike_file
from tests.conftest import make_samples
from tests.training.test_trainer import _toy, small_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY = ["--set", "input_channels=60", "--set", "pool=2", "--set", "val_fraction=0.25",
       "--set", "network.hidden=[8,8]", "--set", 'network.recurrence=["none","conv"]',
       "--set", "network.tau=[1.5,1.5]", "--set", 'network.gain=["one","1-beta"]',
       "--set", "network.kernel_size=3", "--set", "network.delay_init=[0,3]", "--batch-size", "16"]


def invoke(*args, **kw):
    return CliRunner().invoke(evsim, [str(a) for a in args], **kw)


def one_error_line(res, exit_code=1) -> str:
    """The command failed with exactly one line, ``Error: ...``, and no traceback."""
    assert res.exit_code == exit_code, res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    lines = [l for l in res.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


def _arrays(model):
    return {k: np.array(v) for k, v in model.to_arrays().items()}


def _meta_file(tmp_path, model, **changes):
    arrays = _arrays(model)
    meta = json.loads(str(arrays["metadata"]))
    meta.update(changes)
    arrays["metadata"] = np.array(json.dumps(meta))
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture
def toy(tmp_path):
    return _toy(tmp_path / "train.h5", 96, 1), _toy(tmp_path / "test.h5", 30, 2)


# -- 1. two runs into one --out ------------------------------------------------------------

def test_case01_second_run_into_a_locked_directory_is_refused_naming_the_holder(tmp_path, toy):
    from evsim.training.runlock import run_lock

    out = tmp_path / "run"
    out.mkdir()
    with run_lock(str(out)):              # another run holds it (flock on its own open file)
        res = invoke("train", "--train", toy[0], "--test", toy[1], "--out", out, "--epochs", 1, *TOY)
        line = one_error_line(res)
    assert f"Error: {out} is in use by another evsim train (pid {os.getpid()} on " in line
    assert "wait for it to finish, or choose another --out" in line
    assert sorted(os.listdir(out)) == ["train.lock"]          # nothing written by the refused run


def test_case01_stale_lock_of_a_killed_run_does_not_block(tmp_path, toy):
    out = tmp_path / "run"
    out.mkdir()
    (out / "train.lock").write_text(json.dumps({"pid": 999999, "host": "gone", "started": "then"}))
    res = invoke("train", "--train", toy[0], "--test", toy[1], "--out", out, "--epochs", 1, "-q", *TOY)
    assert res.exit_code == 0, res.output
    assert json.loads((out / "train.lock").read_text())["pid"] == os.getpid()


# -- 2. --resume on other data --------------------------------------------------------------

def test_case02_resume_with_a_different_training_file_is_refused(tmp_path, toy):
    from evsim.training.trainer import train

    cfg = small_config()
    train(cfg, *toy, tmp_path / "run", stop_after_epochs=1)
    other = _toy(tmp_path / "other.h5", 60, 7)
    res = invoke("train", "--train", other, "--test", toy[1], "--out", tmp_path / "run", "--resume")
    line = one_error_line(res)
    assert f"--resume: the run in {tmp_path / 'run'} was started on train file {toy[0]} (" in line
    assert f"but the train file given now, {other}, is different (" in line
    assert "resume with the same files, or start a new run in another --out" in line
    # the same content under another name is the same data
    os.replace(toy[0], tmp_path / "moved.h5")
    res = invoke("train", "--train", tmp_path / "moved.h5", "--test", toy[1], "--out", tmp_path / "run", "--resume", "-q")
    assert res.exit_code == 0, res.output


# -- 3. metadata listing fewer layers than the file holds -----------------------------------

def test_case03_arrays_the_metadata_does_not_list_are_an_error(tmp_path, small_model):
    arrays = _arrays(small_model)
    meta = json.loads(str(arrays["metadata"]))
    meta["layers"] = meta["layers"][:1]
    arrays["metadata"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    for command in ("run", "info"):
        args = ("run", "--model", tmp_path / "bad.npz") if command == "run" else ("info", tmp_path / "bad.npz")
        line = one_error_line(invoke(*args))
        assert line.startswith(f"Error: {tmp_path / 'bad.npz'}: array(s) 'layer1.beta', 'layer1.bias', 'layer1.delays', "
                               "'layer1.gain', 'layer1.recurrent', ... not accounted for by the metadata, which lists "
                               "1 hidden layer(s)")


# -- 4. push then step: see tests/evsim/test_event.py::test_push_then_step_consumes_... ------

# -- 5. hostile metadata values --------------------------------------------------------------

@pytest.mark.parametrize("value, shown", [(10**9, "1000000000"), (True, "True"), (1e7, "10000000.0"), ("5", "'5'")])
def test_case05_n_steps_type_and_cap(tmp_path, small_model, value, shown):
    path = _meta_file(tmp_path, small_model, n_steps=value)
    for args in (("run", "--model", path), ("info", path)):
        line = one_error_line(invoke(*args))
        assert line == f"Error: metadata.n_steps: {shown}; expected null or an integer in [1, 1000000] (steps of dt per sample)"


@pytest.mark.parametrize("field, value", [("pool", True), ("input_channels", False), ("dt_ms", True),
                                          ("input_channels", 10**12), ("class_names", "abc")])
def test_case05_a_bool_is_not_an_int(tmp_path, small_model, field, value):
    line = one_error_line(invoke("info", _meta_file(tmp_path, small_model, **{field: value})))
    assert line.startswith(f"Error: metadata.{field}: {value!r}; expected ")


# -- 6. an .npy header that declares a huge array ---------------------------------------------

def _with_header(tmp_path, model, key, shape, dtype="<f4"):
    """The model file with array ``key`` replaced by a bare header claiming ``shape``."""
    from numpy.lib import format as npy

    path = tmp_path / "huge.npz"
    np.savez(path, **_arrays(model))
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    import io

    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    members[key + ".npy"] = buf.getvalue() + b"\0" * 64
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_case06_npy_header_checked_before_reading(tmp_path, small_model):
    path = _with_header(tmp_path, small_model, "layer0.weight", (10**6, 10**6))
    for args in (("run", "--model", path), ("info", path)):
        line = one_error_line(invoke(*args))
        assert line == (f"Error: {path}: array 'layer0.weight' declares shape (1000000, 1000000) of float32 "
                        "(4000000000000 bytes) but holds 64 bytes; the file is corrupt or not an evsim model")
    path = _with_header(tmp_path, small_model, "layer0.bias", (3,), dtype="|O")
    assert "holds Python objects (pickle)" in one_error_line(invoke("info", path))


# -- 7. a --config file that is not an object -------------------------------------------------

def test_case07_config_file_holding_a_list(tmp_path, toy):
    (tmp_path / "c.json").write_text("[1, 2]")
    line = one_error_line(invoke("train", "--train", toy[0], "--test", toy[1], "--config", tmp_path / "c.json",
                                 "--out", tmp_path / "run"))
    assert line.startswith(f"Error: config file {tmp_path / 'c.json'}: holds a JSON list; expected an object of settings")
    assert not (tmp_path / "run").exists()


# -- 8. NUMBA_NUM_THREADS=0 --------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_case08_bad_numba_num_threads(monkeypatch, value):
    monkeypatch.setenv("NUMBA_NUM_THREADS", value)
    line = one_error_line(invoke("run"))
    assert line == f"Error: NUMBA_NUM_THREADS={value}: expected a whole number of threads >= 1 (or leave it unset to use every core)"


# -- 9. push(until='5'), complex times: see tests/evsim/test_event.py --------------------------

# -- 10. an unreadable model file --------------------------------------------------------------

def test_case10_unreadable_model_says_permission_denied(tmp_path, model_file, monkeypatch):
    import builtins

    real_open = builtins.open

    def denying_open(file, *args, **kw):     # chmod 000 does not stop root, so deny by hand
        if os.fspath(file) == str(model_file):
            raise PermissionError(errno.EACCES, "Permission denied", str(model_file))
        return real_open(file, *args, **kw)

    monkeypatch.setattr(builtins, "open", denying_open)
    line = one_error_line(invoke("info", model_file))
    assert line == f"Error: cannot read model file {model_file}: permission denied"


# -- 11. disk full while training ---------------------------------------------------------------

def test_case11_disk_full_names_the_file_and_what_is_safe(tmp_path, toy, monkeypatch):
    import evsim.training.trainer as trainer

    real_save = trainer.save_checkpoint
    calls = []

    def full_disk(path, arrays):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, arrays)

    monkeypatch.setattr(trainer, "save_checkpoint", full_disk)
    out = tmp_path / "run"
    line = one_error_line(invoke("train", "--train", toy[0], "--test", toy[1], "--out", out, "--epochs", 3, "-q", *TOY))
    ck = out / "checkpoint.npz"
    assert line == (f"Error: cannot write {ck}: the disk is full; the checkpoint of epoch 1 in {ck} is intact (files "
                    "are replaced only by complete new ones): free space or fix the problem and continue with --resume")
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    res = invoke("train", "--train", toy[0], "--test", toy[1], "--out", out, "--resume", "-q")
    assert res.exit_code == 0, res.output


# -- 12. no internal names in messages -----------------------------------------------------------

def test_case12_one_optimiser_step_is_explained(tmp_path, toy):
    line = one_error_line(invoke("train", "--train", toy[0], "--test", toy[1], "--out", tmp_path / "run",
                                 "--epochs", 1, *TOY, "--batch-size", 100000))
    assert "OneCycle" not in line and "total_steps" not in line
    assert line.startswith("Error: this run would make only 1 optimiser step (")
    assert "in batches of 100000, 1 epoch(s)); the one_cycle learning-rate schedule needs at least 2" in line
    assert not (tmp_path / "run").exists()


# -- 13. absurd times and units ------------------------------------------------------------------

def test_case13_huge_time_and_uint64_unit(tmp_path, model_file):
    import h5py

    for times, units, dtype, message in (
            ([0.1, 1e30], [1, 2], np.uint16, "spike time 1e+30 s implies about 1e+32 steps at dt = 10 ms"),
            ([0.1], [2**63], np.uint64, "unit 9223372036854775808 outside [0, 20)")):
        path = tmp_path / "x.h5"
        with h5py.File(path, "w") as h5:
            g = h5.create_group("spikes")
            g.create_dataset("times", (1,), dtype=h5py.vlen_dtype(np.float64))[0] = np.array(times)
            g.create_dataset("units", (1,), dtype=h5py.vlen_dtype(dtype))[0] = np.array(units, dtype)
        line = one_error_line(invoke("run", "--model", model_file, "--input", path))
        assert line.startswith(f"Error: {path} sample 0: {message}")


# -- 14. negative sample index ---------------------------------------------------------------------

@pytest.mark.parametrize("index", ["-1", "-21"])
def test_case14_negative_sample_is_a_usage_error(model_file, spike_file, index):
    res = invoke("run", "--model", model_file, "--input", spike_file, "--sample", index)
    assert res.exit_code == 2                  # a usage error, as the README says
    assert f"Error: Invalid value for '--sample': {index} is not in the range x>=0." in res.output


# -- 15. quiet without labels, pipes, SIGTERM, bad settings -----------------------------------------

def test_case15_quiet_without_labels_prints_a_summary(tmp_path, model_file):
    samples, _ = make_samples()
    write_spike_file(tmp_path / "nolab.h5", samples)
    res = invoke("run", "--model", model_file, "--input", tmp_path / "nolab.h5", "-q")
    assert res.exit_code == 0 and res.output == "6 samples classified (the input has no labels, so no accuracy)\n"


def _cli(args, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "evsim", *args], cwd=ROOT, env=env, **kw)


def test_case15_broken_pipe_is_silent():
    proc = subprocess.Popen([sys.executable, "-m", "evsim", "run", "--engine", "dense"], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # the reader goes away before evsim writes (as `| head -1` does once it has its line):
    # closing it now, not after reading a line, makes the broken pipe certain, however
    # fast evsim writes (it could otherwise fit all its output in the pipe's buffer)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 1 and "Error" not in err and "Traceback" not in err, err


def test_case15_closed_stdout_is_an_error():
    res = _cli(["info"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert res.returncode == 1
    assert res.stderr.decode() == ("Error: standard output is closed; evsim writes its results there: redirect it "
                                   "to a file or to /dev/null instead of closing it\n")


def test_case15_sigterm_exports_the_best_model_like_ctrl_c(tmp_path, toy, monkeypatch):
    from evsim.training.network import Network
    from evsim.training.trainer import TrainingError, train

    cfg = small_config()
    original = Network.loss_and_grad

    def terminated(self, x, y, rng, sigma, **kw):
        if sigma < cfg.sigma0:   # the 2nd epoch
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, x, y, rng, sigma, **kw)

    monkeypatch.setattr(Network, "loss_and_grad", terminated)
    with pytest.raises(TrainingError, match=r"terminated \(SIGTERM\) during epoch 2; .*continue with --resume\), "
                                            r"the best model so far in .*model.npz"):
        train(cfg, *toy, tmp_path / "run")
    assert os.path.exists(tmp_path / "run" / "model.npz")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL      # the handler is removed again


@pytest.mark.parametrize("args, message", [
    (["--max-minutes", "-1"], "--max-minutes: -1.0; expected a positive number of minutes"),
    (["--max-minutes", "nan"], "--max-minutes: nan; expected a positive number of minutes"),
    (["--set", "shift_max=1000000000"], "shift_max: 1000000000; expected at most 10000 steps"),
    (["--set", "shift_max=30"], "shift_max: 30 steps, not less than the samples' 26 steps"),
    (["--set", "freq_shift=30"], "freq_shift: 30 inputs, not less than the model's 30 inputs"),
    (["--set", "time_stretch=2"], "time_stretch: 2; expected a fraction in [0, 1] (0: off)"),
    (["--set", "freq_mask=30"], "freq_mask: 30 inputs, not less than the model's 30 inputs"),
    (["--set", "freq_masks=0"], "freq_masks: 0; expected a positive integer"),
    (["--set", "spike_drop=1"], "spike_drop: 1; expected a fraction in [0, 1) (0: off)"),
    (["--set", "network.label_smoothing=1"], "label_smoothing: 1; expected a number in [0, 1) (0: off)"),
    (["--set", "pool=7"], "pool: 7; expected a divisor of input_channels = 60 (e.g. 1, 2, 3, 4, 5, 6, 10, 12, 15, 20)"),
])
def test_case15_bad_settings_are_refused(tmp_path, toy, args, message):
    line = one_error_line(invoke("train", "--train", toy[0], "--test", toy[1], "--out", tmp_path / "run", *TOY, *args))
    assert line.startswith("Error: " + message), line
    assert not (tmp_path / "run").exists()


# -- 16. delay queues: see tests/evsim/test_event.py::test_queue_memory_cap_is_a_total_over_threads --

def test_case16_absurd_delays_refused_by_run(tmp_path, spike_file):
    from tests.conftest import make_small_model

    arrays = _arrays(make_small_model(hidden=(12, 300)))
    arrays["layer1.delays"] = np.full(300, 999_999, np.int32)
    np.savez(tmp_path / "slow.npz", **arrays)
    # the event engine's queues (`auto` would pick the dense engine for these few samples)
    line = one_error_line(invoke("run", "--model", tmp_path / "slow.npz", "--input", spike_file, "--engine", "event"))
    assert line.startswith("Error: refused: the delay queues of one sample would need 1152 MiB, more than the 512 MiB limit")
    res = invoke("run", "--model", tmp_path / "slow.npz", "--input", spike_file, "--engine", "dense", "-q")
    assert res.exit_code == 0, res.output
