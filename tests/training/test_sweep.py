"""Sweeps: parsing, planning, per-run failures, resume, summary figures."""

import csv
import io
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from evsim.cli.main import evsim
from evsim.errors import EvsimError
from evsim.model import load_model
from evsim.parallel import Executor
from evsim.training.sweep import (SweepError, SweepSpec, load_sweep_file, parse_axis, parse_seeds, plan_jobs, run_sweep,
                            summary_text)
from evsim.training.trainer import train

from .test_trainer import _toy

SMALL = {"input_channels": 60, "pool": 2, "epochs": 2, "batch_size": 16, "val_fraction": 0.25,
         "network.hidden": [12, 10], "network.recurrence": ["none", "conv"], "network.tau": [1.5, 1.5],
         "network.gain": ["one", "1-beta"], "network.kernel_size": 3, "network.delay_init": [0.0, 4.0]}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweepdata")
    return str(_toy(d / "train.h5", 96, 1)), str(_toy(d / "test.h5", 30, 2))


def spec(toy, **changes):
    fields = dict(train=toy[0], test=toy[1], base=dict(SMALL), grid=[["lr", [1e-3, 3e-3]]], seeds=[0, 1])
    fields.update(changes)
    return SweepSpec(**fields)


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("0-1,5") == [0, 1, 5]
    assert parse_seeds("5") == [5]
    for bad in ("4-2", "a", "-1", "0,0", ""):
        with pytest.raises(SweepError, match="--seeds"):
            parse_seeds(bad)


def test_parse_axis_splits_at_top_level_commas_only():
    assert parse_axis("lr=1e-3,2e-3") == ("lr", [1e-3, 2e-3])
    assert parse_axis("network.hidden=[64,64],[128,128]") == ("network.hidden", [[64, 64], [128, 128]])
    assert parse_axis("lr_schedule=cosine,one_cycle") == ("lr_schedule", ["cosine", "one_cycle"])
    assert parse_axis("epochs=3") == ("epochs", [3])
    with pytest.raises(SweepError, match="expected KEY=VALUE"):
        parse_axis("lr")


def test_sweep_file_flattens_tables(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('seeds = "0-2"\n[base]\nepochs = 3\n[base.network]\ndropout = 0.2\n'
                    '[grid]\nlr = [1e-3, 2e-3]\n[grid.network]\nhidden = [[64, 64], [32, 32]]\n')
    got = load_sweep_file(str(path))
    assert got["seeds"] == [0, 1, 2]
    assert got["base"] == {"epochs": 3, "network.dropout": 0.2}
    assert got["grid"] == [["lr", [1e-3, 2e-3]], ["network.hidden", [[64, 64], [32, 32]]]]
    path.write_text('[grid]\n"network.rate_reg" = [0.0, 10.0]\n[[runs]]\n"network.dropout" = 0.44\n'
                    '[[runs]]\nnetwork = { dropout = 0.2 }\n')
    got = load_sweep_file(str(path))
    assert got["runs"] == [{"network.dropout": 0.44}, {"network.dropout": 0.2}]
    toy = ("train.h5", "test.h5")
    settings = SweepSpec(toy[0], toy[1], grid=got["grid"], runs=got["runs"]).settings()
    assert settings == [{"network.dropout": d, "network.rate_reg": r} for d in (0.44, 0.2) for r in (0.0, 10.0)]
    path.write_text('[grid]\nlr = 0.001\n')
    with pytest.raises(SweepError, match="grid.lr is 0.001; expected a non-empty list"):
        load_sweep_file(str(path))
    path.write_text('sedes = [1]\n')
    with pytest.raises(SweepError, match="unknown key"):
        load_sweep_file(str(path))


def test_plan_is_runs_times_grid_times_seeds_and_validates_first(toy, tmp_path):
    s = spec(toy, runs=[{}, {"network.dropout": 0.1}], seeds=[0, 1, 2])
    jobs = plan_jobs(s, str(tmp_path))
    assert len(jobs) == 2 * 2 * 3
    assert len({j.run_dir for j in jobs}) == len(jobs)
    assert jobs[0].run_dir == os.path.join(str(tmp_path), "lr=0.001", "seed0")
    assert jobs[-1].label == "network.dropout=0.1_lr=0.003"
    assert json.loads(jobs[-1].config)["network"]["dropout"] == 0.1
    assert [json.loads(j.config)["seed"] for j in jobs[:3]] == [0, 1, 2]
    with pytest.raises(SweepError, match="seed is set by --seeds"):
        plan_jobs(spec(toy, base={**SMALL, "seed": 3}), str(tmp_path))
    with pytest.raises(EvsimError, match="kernel_size"):
        run_sweep(spec(toy, grid=[["network.kernel_size", [3, 4]]]), str(tmp_path / "bad"), Executor())
    assert not (tmp_path / "bad" / "sweep.json").exists()   # nothing recorded: the corrected sweep can start there


def test_sweep_summary_failures_and_files(toy, tmp_path):
    s = spec(toy, grid=[["init_from", ["", "/does/not/exist"]]])
    seen = []
    with Executor(jobs=1) as ex:
        summary = run_sweep(s, str(tmp_path), ex, on_result=lambda job, r, err, n, total: seen.append((job.label, err)))
    assert len(seen) == 4 and summary["n_done"] == 2 and summary["n_failed"] == 2
    ok, failed = summary["settings"]
    assert failed["n_failed"] == 2 and all("no checkpoint at /does/not/exist" in r["error"] for r in failed["runs"])
    results = [json.load(open(os.path.join(r["run_dir"], "result.json"))) for r in ok["runs"]]
    acc = [r["test_accuracy"] for r in results]
    assert ok["metrics"]["test_accuracy"]["mean"] == pytest.approx(np.mean(acc))
    assert ok["metrics"]["test_accuracy"]["std"] == pytest.approx(np.std(acc, ddof=1))
    assert failed["metrics"]["test_accuracy"]["mean"] is None
    rows = list(csv.DictReader(io.StringIO(open(tmp_path / "summary.csv").read())))
    assert [r["setting"] for r in rows] == ["init_from=", "init_from=doesnotexist"]   # directory names
    assert [json.loads(r["init_from"]) for r in rows] == ["", "/does/not/exist"]
    assert float(rows[0]["test_accuracy_mean"]) == pytest.approx(np.mean(acc)) and rows[1]["test_accuracy_mean"] == ""
    assert rows[0]["run_dirs"].split(";") == [r["run_dir"] for r in ok["runs"]]
    assert json.load(open(tmp_path / "summary.json")) == summary
    text = summary_text(summary)
    assert f"{100 * np.mean(acc):.2f} +- {100 * np.std(acc, ddof=1):.2f}" in text
    assert text.count("failed: ") == 2
    assert json.load(open(tmp_path / "status.json"))["failed"].keys() == {r["run_dir"] for r in failed["runs"]}


def test_interrupted_sweep_resumes_to_the_uninterrupted_result(toy, tmp_path):
    s = spec(toy, grid=[], seeds=[0, 1], base={**SMALL, "epochs": 3})
    jobs = plan_jobs(s, str(tmp_path / "sweep"))
    with Executor(jobs=1) as ex:
        full = run_sweep(s, str(tmp_path / "full"), ex)
    # the "interruption": seed 0 finished, seed 1 stopped after its first epoch
    with pytest.raises(SweepError, match="already holds a sweep"):
        with Executor(jobs=1) as ex:
            run_sweep(s, str(tmp_path / "full"), ex)
    from evsim.training.presets import TrainConfig
    os.makedirs(tmp_path / "sweep")
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps({"version": 1, "spec": s.to_dict()}))
    train(TrainConfig.from_json(jobs[0].config), *toy, jobs[0].run_dir)
    train(TrainConfig.from_json(jobs[1].config), *toy, jobs[1].run_dir, stop_after_epochs=1)
    done_before = os.stat(os.path.join(jobs[0].run_dir, "result.json")).st_mtime_ns
    ran = []
    with Executor(jobs=1) as ex:
        with pytest.raises(SweepError, match="has other settings"):
            run_sweep(spec(toy, seeds=[0, 1, 2]), str(tmp_path / "sweep"), ex, resume=True)
        resumed = run_sweep(None, str(tmp_path / "sweep"), ex, resume=True, on_result=lambda j, *a: ran.append(j.seed))
    assert ran == [1]
    assert os.stat(os.path.join(jobs[0].run_dir, "result.json")).st_mtime_ns == done_before
    assert [r["test_accuracy"] for r in resumed["settings"][0]["runs"]] == \
        [r["test_accuracy"] for r in full["settings"][0]["runs"]]
    a = load_model(os.path.join(jobs[1].run_dir, "model.npz")).to_arrays()
    b = load_model(os.path.join(full["settings"][0]["runs"][1]["run_dir"], "model.npz")).to_arrays()
    assert all(np.array_equal(a[k], b[k]) for k in a if k != "metadata")


def test_cli_sweep_joblib_two_jobs(toy, tmp_path):
    pytest.importorskip("joblib", reason="the joblib back end needs the extra evsim[parallel]")
    args = ["sweep", "--train", toy[0], "--test", toy[1], "--seeds", "0-1", "--jobs", "2", "--threads", "1", "--out", str(tmp_path / "s"),
            "--set", "epochs=1"] + [f"--set={k}={json.dumps(v)}" for k, v in SMALL.items() if k != "epochs"]
    res = CliRunner().invoke(evsim, args + ["--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["n_done"] == 2 and summary["settings"][0]["label"] == "default"
    with Executor(jobs=1, threads=1) as ex:   # the same runs in this process, on 1 thread as the workers
        here = run_sweep(spec(toy, grid=[], base={**SMALL, "epochs": 1}), str(tmp_path / "here"), ex)
    for a, b in zip(summary["settings"][0]["runs"], here["settings"][0]["runs"]):
        assert a["test_accuracy"] == b["test_accuracy"]
        ma, mb = (load_model(os.path.join(r["run_dir"], "model.npz")).to_arrays() for r in (a, b))
        assert all(np.array_equal(ma[k], mb[k]) for k in ma if k != "metadata")
    again = CliRunner().invoke(evsim, ["sweep", "--summary-only", "--out", str(tmp_path / "s"), "--json"])
    assert json.loads(again.stdout) == summary
    res = CliRunner().invoke(evsim, args)
    assert res.exit_code == 1 and "already holds a sweep" in res.output


def test_cli_sweep_bad_input(toy, tmp_path):
    res = CliRunner().invoke(evsim, ["sweep", "--train", toy[0], "--test", toy[1], "--seeds", "2-1", "--out", str(tmp_path)])
    assert res.exit_code == 1 and res.output.startswith("Error: --seeds '2-1': expected seeds >= 0")
    res = CliRunner().invoke(evsim, ["sweep", "--train", str(tmp_path / "no.h5"), "--test", toy[1], "--out", str(tmp_path / "s")])
    assert res.exit_code == 1 and res.output == f"Error: data file not found: {tmp_path / 'no.h5'}\n"
    res = CliRunner().invoke(evsim, ["sweep", "--resume", "--out", str(tmp_path / "none")])
    assert res.exit_code == 1 and "Error: --resume: no sweep in" in res.output


def test_cli_sweep_reports_failed_runs_and_exits_1(toy, tmp_path):
    args = ["sweep", "--train", toy[0], "--test", toy[1], "--out", str(tmp_path / "s"), "--set", "epochs=1",
            "--set", "init_from=,/nowhere"] + [f"--set={k}={json.dumps(v)}" for k, v in SMALL.items() if k != "epochs"]
    res = CliRunner().invoke(evsim, args)
    assert res.exit_code == 1
    assert "init_from=  " in res.stdout and "1/1" in res.stdout and "0/1" in res.stdout
    assert "failed: " in res.stdout and "no checkpoint at /nowhere" in res.stdout
    assert res.stderr.strip().splitlines()[-1].startswith("Error: 1 of 2 runs failed")


def test_folds_plan_one_run_per_seed_and_fold_and_pool_in_the_summary(toy, tmp_path):
    """--folds K: each setting x seed runs K times, fold i holding out fold i's speakers; the
    summary pools a setting's folds; folds cannot also be settings."""
    from evsim.training.data import load_dataset, split_speaker_fold

    jobs = plan_jobs(spec(toy, folds=3), str(tmp_path))
    assert len(jobs) == 2 * 2 * 3
    assert jobs[4].run_dir == os.path.join(str(tmp_path), "lr=0.001", "seed0_fold1") and jobs[4].fold == 1
    # fold-major: every setting and seed of fold 0 first, the settings paired within a seed
    assert [(j.fold, j.seed) for j in jobs] == [(f, s) for f in range(3) for s in (0, 1) for _ in range(2)]
    assert [j.label for j in jobs[:2]] == ["lr=0.001", "lr=0.003"]
    assert [(json.loads(j.config)["val_folds"], json.loads(j.config)["val_fold"]) for j in jobs[::4]] == [(3, 0), (3, 1), (3, 2)]
    assert sorted(j.run_dir for j in jobs) == sorted({j.run_dir for j in jobs})
    for bad, match in (({"folds": 1}, "--folds 1: expected 0"), ({"base": {**SMALL, "val_fold": 1}}, "set by --folds")):
        with pytest.raises(SweepError, match=match):
            plan_jobs(spec(toy, **{"folds": 2, **bad}), str(tmp_path))
    with Executor(jobs=1) as ex:
        summary = run_sweep(spec(toy, grid=[], seeds=[0], folds=2, base={**SMALL, "epochs": 1}), str(tmp_path / "cv"), ex)
    (setting,) = summary["settings"]
    assert setting["n_done"] == 2 and [r["fold"] for r in setting["runs"]] == [0, 1]
    ds = load_dataset(toy[0], dt_ms=10.0, pool=2, input_channels=60)
    for run in setting["runs"]:
        result = json.load(open(os.path.join(run["run_dir"], "result.json")))
        held = split_speaker_fold(ds, 2, run["fold"]).val_speakers.tolist()
        assert sorted(map(int, result["validation_by_speaker"])) == held
    vals = [r["validation_accuracy"] for r in setting["runs"]]
    assert setting["metrics"]["validation_accuracy"]["mean"] == pytest.approx(np.mean(vals))


def test_cli_sweep_folds_bad_input(toy, tmp_path):
    res = CliRunner().invoke(evsim, ["sweep", "--train", toy[0], "--test", toy[1], "--folds", "1", "--out", str(tmp_path / "s")])
    assert res.exit_code == 1 and res.output.startswith("Error: --folds 1: expected 0 (none) or a number of speaker folds >= 2")
    res = CliRunner().invoke(evsim, ["sweep", "--train", toy[0], "--test", toy[1], "--folds", "9", "--out", str(tmp_path / "t")]
                             + [f"--set={k}={json.dumps(v)}" for k, v in SMALL.items()])
    assert res.exit_code == 1 and res.output.startswith(f"Error: --folds 9: {toy[0]} has 8 speaker(s); expected at least 9")
    assert not (tmp_path / "t").exists()                                  # refused before any run
