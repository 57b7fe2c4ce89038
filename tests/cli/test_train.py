"""`evsim train` and `evsim data` as a user runs them."""

import json

from click.testing import CliRunner

from evsim.cli.main import evsim
from tests.training.test_trainer import _toy

SMALL = ["--set", "input_channels=60", "--set", "pool=2", "--set", "val_fraction=0.25",
         "--set", "network.hidden=[8,8]", "--set", 'network.recurrence=["none","conv"]',
         "--set", "network.tau=[1.5,1.5]", "--set", 'network.gain=["one","1-beta"]',
         "--set", "network.kernel_size=3", "--set", "network.delay_init=[0,3]", "--batch-size", "16"]


def run(*args):
    return CliRunner().invoke(evsim, [str(a) for a in args])


def test_train_then_run_gives_the_same_accuracy(tmp_path):
    tr, te = _toy(tmp_path / "tr.h5", 64, 1), _toy(tmp_path / "te.h5", 20, 2)
    out = tmp_path / "run"
    res = run("train", "--train", tr, "--test", te, "--out", out, "--epochs", 2, "--json", *SMALL)
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{"):])
    assert json.loads((out / "config.json").read_text())["preset"] == "default"     # no --preset: the default recipe
    again = json.loads(run("run", "--model", out / "model.npz", "--input", te, "--json").output)
    assert again["accuracy"] == result["test_accuracy"]
    dense = json.loads(run("run", "--model", out / "model.npz", "--input", te, "--json", "--engine", "dense").output)
    assert dense["accuracy"] == result["test_accuracy"]


def test_train_on_every_speaker_says_there_is_no_validation(tmp_path):
    tr, te = _toy(tmp_path / "tr.h5", 64, 1), _toy(tmp_path / "te.h5", 20, 2)
    out = tmp_path / "run"
    res = run("train", "--train", tr, "--test", te, "--out", out, "--epochs", 2,
              *[a if a != "val_fraction=0.25" else "val_fraction=0" for a in SMALL])
    assert res.exit_code == 0, res.output
    assert "epoch 2/2: loss" in res.output and "validation none, sigma" in res.output
    assert "(validation none, epoch 2)" in res.output
    info = run("info", out / "model.npz")
    assert "validation accuracy: none (trained on every training speaker)" in info.output


def test_train_needs_data():
    res = run("train")
    assert res.exit_code == 1
    assert "Error: nothing to train on: give DATASET (shd or ssc) with --data-dir, or both --train FILE and --test FILE" in res.output


def test_train_shd_with_missing_files(tmp_path):
    res = run("train", "shd", "--data-dir", tmp_path)
    assert res.exit_code == 1
    assert "shd_train.h5 is missing; shd_test.h5 is missing" in res.output
    assert isinstance(res.exception, SystemExit)


def test_train_bad_settings_fail_before_work(tmp_path):
    tr = _toy(tmp_path / "tr.h5", 8, 1)
    for args, message in ((["--preset", "snn"], "unknown preset 'snn'"),
                          (["--set", "network.kernel_size=4"], "kernel_size: 4; expected an odd positive integer"),
                          (["--set", "epochs"], "--set 'epochs': expected KEY=VALUE"),
                          (["--init-from", tmp_path / "nowhere"], "init_from: no checkpoint at"),
                          (["--set", "network.rate_cost=energy"], "rate_cost: 'energy'; expected one of uniform, synops")):
        res = run("train", "--train", tr, "--test", tr, "--out", tmp_path / "x", *args)
        assert res.exit_code == 1 and message in res.output, res.output
        assert isinstance(res.exception, SystemExit)
        assert not (tmp_path / "x").exists()


def test_data_download_offline_says_where_to_put_files(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", offline)
    res = run("data", "download", "shd", "--dir", tmp_path / "d")
    assert res.exit_code == 1
    assert "this machine may be offline" in res.output
    assert "shd_train.h5.gz" in res.output and "shd_test.h5" in res.output
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_help_for_every_command():
    for args in (["train"], ["data"], ["data", "download"], ["data", "check"]):
        res = run(*args, "--help")
        assert res.exit_code == 0 and "Usage:" in res.output


def test_resume_alone_continues_with_the_runs_settings(tmp_path):
    tr, te = _toy(tmp_path / "tr.h5", 64, 1), _toy(tmp_path / "te.h5", 20, 2)
    out = tmp_path / "run"
    from evsim.training.presets import make_config, parse_overrides
    from evsim.training.trainer import train

    cfg = make_config("crsnn", overrides={**parse_overrides([a for a in SMALL[1::2] if "=" in a]), "epochs": 2, "batch_size": 16})
    train(cfg, tr, te, out, stop_after_epochs=1)
    res = run("train", "--train", tr, "--test", te, "--out", out, "--resume", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["epochs_done"] == 2


def test_train_prints_validation_accuracy_by_speaker(tmp_path):
    tr, te = _toy(tmp_path / "tr.h5", 64, 1), _toy(tmp_path / "te.h5", 20, 2)
    res = run("train", "--train", tr, "--test", te, "--out", tmp_path / "run", "--epochs", 1, *SMALL)
    assert res.exit_code == 0, res.output
    line = next(l for l in res.output.splitlines() if l.startswith("validation by speaker, worst first: "))
    by_speaker = json.loads((tmp_path / "run" / "result.json").read_text())["validation_by_speaker"]
    assert line.count("%") == len(by_speaker) >= 1
    speaker, entry = next(iter(by_speaker.items()))
    assert f"{speaker} {100 * entry['accuracy']:.1f} % ({entry['n']})" in line
