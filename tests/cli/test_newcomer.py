"""What a newcomer stumbled on (issue #9): compile note, help texts, data location,
quick trial, progress lines, precision of `info`."""

import json
import types

from click.testing import CliRunner

from evsim.cli import common
from evsim.cli.common import kernels_cached as real_kernels_cached  # before conftest's autouse patch
from evsim.cli.main import evsim
from tests.cli.test_bad_inputs import TOY
from tests.training.test_trainer import _toy


def invoke(*args, **kw):
    return CliRunner().invoke(evsim, [str(a) for a in args], **kw)


def test_compile_note_only_when_kernels_are_not_cached(monkeypatch, capsys):
    module = types.ModuleType("fake_kernels")
    monkeypatch.setattr(common, "kernels_cached", lambda m: False)
    common.note_compilation(module, "the event engine's")
    err = capsys.readouterr().err
    assert err.startswith("evsim: compiling the event engine's kernels for this machine (first run only")
    monkeypatch.setattr(common, "kernels_cached", lambda m: True)
    common.note_compilation(module, "the event engine's")
    assert capsys.readouterr().err == ""


def test_kernels_cached_reads_numbas_index(tmp_path):
    from evsim.event import simulate
    from evsim.kernels import event as kernels
    from tests.conftest import make_small_model
    import numpy as np

    simulate(make_small_model(), np.zeros((2, 3, 10)))        # compiled (and cached) by now
    simulate(make_small_model(), np.zeros((3, 10)))
    assert real_kernels_cached(kernels) is True               # compiled and cached by the runs above
    empty = types.ModuleType("no_kernels")
    assert real_kernels_cached(empty) is True


def test_help_texts():
    assert "Usage: evsim info [OPTIONS] [MODEL]" in invoke("info", "--help").output
    out = invoke("run", "--help").output
    assert "--batch-size" in out and "Samples simulated together" in out
    assert "score" in out and "firing rate is spikes / (hidden neurons x steps run)" in " ".join(out.split())


def test_info_prints_accuracies_as_percentages():
    out = invoke("info").output
    assert "test accuracy: 90.80 %" in out and "validation accuracy: none (trained on every training speaker)" in out


def test_train_finds_files_in_evsim_data_and_limit_is_a_quick_trial(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    _toy(data / "tr.h5", 96, 1)
    _toy(data / "te.h5", 30, 2)
    monkeypatch.setenv("EVSIM_DATA", str(data))
    monkeypatch.chdir(tmp_path)
    res = invoke("train", "--train", "tr.h5", "--test", "te.h5", "--out", "run", "--epochs", 1, "--limit", 40,
                 "--json", *TOY)
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{"):])
    assert result["test_file"] == str(data / "te.h5")
    log = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["limit"] == 40
    first = res.output.splitlines()[0]
    # 40 of the 96 training samples (split into training and validation); the test file has only 30
    assert first.startswith("train 30 / validation 10 / test 30 samples"), first


def test_progress_lines_when_stderr_is_not_a_terminal(capsys):
    from evsim.cli.train import _TrainReporter

    rep = _TrainReporter(quiet=False, every_seconds=0.0)
    rep.epoch_start(0, 3, 10, 1.0)
    rep.batch({"batch": 4, "loss": 2.0, "correct": 1, "spike_rate": [0.1], "sigma": 1.0})
    assert capsys.readouterr().err == "epoch 1/3: batch 1/10, loss 2.000, train 25.0 %, 0 s\n"
    quiet = _TrainReporter(quiet=True, every_seconds=0.0)
    quiet.epoch_start(0, 3, 10, 1.0)
    quiet.batch({"batch": 4, "loss": 2.0, "correct": 1, "spike_rate": [0.1], "sigma": 1.0})
    assert capsys.readouterr().err == ""


def test_tiny_preset_is_small():
    from evsim.training.presets import make_config

    cfg = make_config("tiny")
    assert cfg.epochs == 3 and cfg.network_config().hidden == (64, 64)
