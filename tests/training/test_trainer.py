"""The training run: resume equals an uninterrupted run, clean stops, exports that
`evsim run` reproduces exactly."""

import json
import os
from dataclasses import replace

import numpy as np
import pytest

from evsim.data import write_spike_file
from evsim.errors import EvsimError
from evsim.model import load_model
from evsim.run import classify_file
from evsim.training.presets import make_config
from evsim.training.trainer import TrainingError, train


def _toy(path, n, seed):
    """Three classes told apart by which third of 60 channels fires; speakers independent of class."""
    r = np.random.default_rng(seed)
    samples, labels, speakers = [], [], []
    for i in range(n):
        c = int(r.integers(0, 3))
        k = 60
        t = np.sort(r.uniform(0, 0.25, k))
        u = (r.integers(0, 20, k) + 20 * c) % 60
        samples.append((t, u))
        labels.append(c)
        speakers.append(int(r.integers(0, 8)))
    write_spike_file(path, samples, labels=labels, class_names=["a", "b", "c"], speakers=speakers)
    return path


@pytest.fixture
def toy(tmp_path):
    return _toy(tmp_path / "train.h5", 96, 1), _toy(tmp_path / "test.h5", 30, 2)


def small_config(**changes):
    sets = {"input_channels": 60, "pool": 2, "epochs": 3, "batch_size": 16, "val_fraction": 0.25,
            "network": {"hidden": [12, 10], "recurrence": ["none", "conv"], "tau": [1.5, 1.5],
                        "gain": ["one", "1-beta"], "kernel_size": 3, "delay_init": [0.0, 4.0]}}
    sets.update(changes)
    return make_config("crsnn", overrides=sets)


def test_resume_gives_exactly_the_uninterrupted_result(tmp_path, toy):
    cfg = small_config()
    full = train(cfg, *toy, tmp_path / "full")
    part = train(cfg, *toy, tmp_path / "part", stop_after_epochs=1)
    assert part["epochs_done"] == 1
    resumed = train(cfg, *toy, tmp_path / "part", resume=True)
    assert resumed["test_accuracy"] == full["test_accuracy"]
    assert resumed["validation_accuracy"] == full["validation_accuracy"]
    a = load_model(tmp_path / "full" / "model.npz").to_arrays()
    b = load_model(tmp_path / "part" / "model.npz").to_arrays()
    for key in a:
        if key != "metadata":
            assert np.array_equal(a[key], b[key]), key
    log_full = [json.loads(l) for l in open(tmp_path / "full" / "log.jsonl")]
    log_part = [json.loads(l) for l in open(tmp_path / "part" / "log.jsonl")]
    assert [r["train_loss"] for r in log_full] == [r["train_loss"] for r in log_part]


def test_resume_reads_the_checkpoint_once_and_the_test_file_opens_once(tmp_path, toy, monkeypatch):
    import evsim.inputs
    from evsim.training import trainer

    cfg = small_config(epochs=2, limit=20)
    train(cfg, *toy, tmp_path / "part", stop_after_epochs=1)
    reads, opened = [], []
    real_load, real_open = trainer.load_checkpoint, evsim.inputs.open_input
    monkeypatch.setattr(trainer, "load_checkpoint", lambda path, keys=None: reads.append(keys) or real_load(path, keys))
    monkeypatch.setattr(evsim.inputs, "open_input", lambda path, **kw: opened.append(str(path)) or real_open(path, **kw))
    trainer.saved_config(tmp_path / "part")
    train(cfg, *toy, tmp_path / "part", resume=True)
    assert reads == [("config",), None]          # the configuration alone, then the whole checkpoint once
    # once before training (labels, size; it was twice), once for the final test
    assert opened.count(str(toy[1])) == 2


def test_exported_model_gives_the_reported_accuracy_on_both_engines(tmp_path, toy):
    result = train(small_config(epochs=2), *toy, tmp_path / "run")
    model = load_model(result["model"])
    for engine in ("event", "dense"):
        assert classify_file(model, str(toy[1]), engine=engine).accuracy == result["test_accuracy"]
    assert model.metadata.provenance["test_accuracy"] == result["test_accuracy"]
    assert model.metadata.n_steps is not None
    assert set(os.listdir(tmp_path / "run")) == {"config.json", "checkpoint.npz", "log.jsonl", "model.npz", "result.json", "train.lock"}


def test_delays_stay_fixed_without_delay_learning(tmp_path, toy):
    from evsim.training.checkpoint import load_checkpoint

    cfg = small_config(learn_delays=False, epochs=2)
    train(cfg, *toy, tmp_path / "fixed")
    ck = load_checkpoint(tmp_path / "fixed" / "checkpoint.npz")
    delays = [k for k in ck if k.startswith("net/") and "delay" in k]
    assert delays
    for k in delays:
        assert np.array_equal(ck[k], np.rint(ck[k]))   # still the rounded initial values
    log = [json.loads(l) for l in open(tmp_path / "fixed" / "log.jsonl")]
    assert all(r["sigma"] == 0.0 for r in log)
    assert log[0]["delays_mean"] == log[-1]["delays_mean"]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, toy, monkeypatch):
    from evsim.training.network import Network

    cfg = small_config()
    original = Network.loss_and_grad

    def poisoned(self, x, y, rng, sigma, **kw):
        loss, grads, stats = original(self, x, y, rng, sigma, **kw)
        return (float("nan") if sigma < cfg.sigma0 else loss), grads, stats   # from the 2nd epoch on

    monkeypatch.setattr(Network, "loss_and_grad", poisoned)
    with pytest.raises(TrainingError, match="the loss became nan at epoch 2; training stopped. The last good checkpoint \\(end of epoch 1\\)"):
        train(cfg, *toy, tmp_path / "run")
    from evsim.training.checkpoint import load_checkpoint

    assert int(load_checkpoint(tmp_path / "run" / "checkpoint.npz")["epoch"]) == 0


def test_ctrl_c_exports_the_best_model_and_can_resume(tmp_path, toy, monkeypatch):
    from evsim.training.network import Network

    cfg = small_config()
    original = Network.loss_and_grad

    def interrupted(self, x, y, rng, sigma, **kw):
        if sigma < cfg.sigma0:   # the 2nd epoch
            raise KeyboardInterrupt
        return original(self, x, y, rng, sigma, **kw)

    monkeypatch.setattr(Network, "loss_and_grad", interrupted)
    with pytest.raises(TrainingError, match="interrupted during epoch 2; .* \\(continue with --resume\\)"):
        train(cfg, *toy, tmp_path / "run")
    assert os.path.exists(tmp_path / "run" / "model.npz")
    monkeypatch.setattr(Network, "loss_and_grad", original)
    full = train(cfg, *toy, tmp_path / "full")
    resumed = train(cfg, *toy, tmp_path / "run", resume=True)
    assert resumed["test_accuracy"] == full["test_accuracy"]


def test_refuses_to_overwrite_a_run_and_resume_needs_a_checkpoint(tmp_path, toy):
    cfg = small_config(epochs=1)
    train(cfg, *toy, tmp_path / "run")
    with pytest.raises(TrainingError, match="already holds a run"):
        train(cfg, *toy, tmp_path / "run")
    with pytest.raises(EvsimError, match="--resume: no checkpoint in"):
        train(cfg, *toy, tmp_path / "other", resume=True)
    with pytest.raises(EvsimError, match="made with a different configuration"):
        train(small_config(epochs=2), *toy, tmp_path / "run", resume=True)


@pytest.mark.parametrize("sets, message", [
    ({"network": {"kernel_size": 4}}, "kernel_size: 4; expected an odd positive integer"),
    ({"epochs": 0}, "epochs: 0; expected a positive integer"),
    ({"lr_schedule": "linear"}, "lr_schedule: 'linear'; expected one of one_cycle, cosine, constant"),
    ({"learning_rate": 1}, "unknown setting(s): learning_rate"),
    ({"learn_delays": "no"}, "learn_delays: 'no'; expected true or false"),
    ({"augment": "False"}, "augment: 'False'; expected true or false"),
    ({"epochs": True}, "epochs: True; expected a positive integer"),
    ({"seed": -1}, "seed: -1; expected an integer >= 0"),
    ({"seed": "abc"}, "seed: 'abc'; expected an integer >= 0"),
    ({"val_fraction": 1}, "val_fraction: 1; expected a fraction in [0, 1): 0 trains on every training speaker"),
    ({"val_fraction": -0.1}, "val_fraction: -0.1; expected a fraction in [0, 1)"),
    ({"lr": float("inf")}, "lr: inf; expected a finite positive number"),
    ({"preset": "other"}, "preset: 'other'; expected one of default, crsnn, delrec"),
    ({"rate_warmup": -1}, "rate_warmup: -1; expected an integer >= 0"),
    ({"rate_warmup": 1.5}, "rate_warmup: 1.5; expected an integer >= 0"),
    ({"rate_warmup": 5, "epochs": 5}, "rate_warmup: 5; expected fewer epochs than epochs (5)"),
    ({"network": {"rate_cost": "energy"}}, "rate_cost: 'energy'; expected one of uniform, synops"),
    ({"val_folds": 1}, "val_folds: 1; expected 0 (off) or an integer >= 2"),
    ({"val_folds": 4, "val_fold": 4}, "val_fold: 4; expected an integer in 0..3 (a fold of val_folds = 4)"),
    ({"val_fold": 1}, "val_fold: 1; expected an integer in 0..0 (a fold of val_folds = 0)"),
])
def test_bad_configuration_fails_before_any_work(sets, message):
    with pytest.raises(EvsimError) as info:
        make_config("crsnn", overrides=sets)
    assert message in str(info.value)


def test_unknown_preset():
    with pytest.raises(EvsimError, match="unknown preset 'snn'; expected one of: default, crsnn, delrec"):
        make_config("snn")


def test_labels_out_of_range(tmp_path, toy):
    bad = tmp_path / "bad_test.h5"
    write_spike_file(bad, [([0.01], [1])], labels=[5], class_names=["a", "b", "c"])
    with pytest.raises(EvsimError, match="label"):
        train(small_config(epochs=1), toy[0], bad, tmp_path / "run")


def test_presets_make_the_documented_choices():
    """The README's table of choices where DelRec and CRSNN disagree."""
    crsnn = make_config("crsnn").network_config(n_classes=20)
    assert crsnn.hidden == (256, 256, 256, 256) and crsnn.recurrence == ("none", "conv", "conv", "conv")
    assert crsnn.kernel_size == 5
    assert crsnn.gain == ("one", "1-beta", "1-beta", "1-beta") and crsnn.readout_gain == "one"
    assert crsnn.detach_reset is False and crsnn.dropout_mode == "step"
    assert (crsnn.dropout, crsnn.rec_dropout) == (0.44, 0.24)
    delrec = make_config("delrec").network_config(n_classes=20)
    assert delrec.hidden == (256, 256) and delrec.recurrence == ("none", "dense")
    assert delrec.gain == ("one", "one") and delrec.detach_reset is True and delrec.dropout_mode == "sequence"


def test_default_recipe_is_crsnn_with_the_measured_levers():
    """The README's "default recipe": crsnn's network and optimisation, plus 64 epochs, the
    voice transforms, label smoothing, the weight average and every training speaker
    trained on; nothing else differs."""
    default, crsnn = make_config(), make_config("crsnn")
    assert default.preset == "default"
    levers = {"epochs": 64, "freq_shift": 4, "time_stretch": 0.1, "ema": 0.999, "val_fraction": 0.0}
    assert {k: getattr(default, k) for k in levers} == levers
    assert {k: getattr(crsnn, k) for k in levers} == {"epochs": 24, "freq_shift": 0, "time_stretch": 0.0, "ema": 0.0,
                                                      "val_fraction": 0.1}
    assert replace(default, preset="crsnn", network=crsnn.network, **{k: getattr(crsnn, k) for k in levers}) == crsnn
    assert default.network == {**crsnn.network, "label_smoothing": 0.1}


def test_sigma_schedule_is_delrecs():
    from evsim.training.presets import sigma_at

    cfg = make_config("crsnn", overrides={"epochs": 100})
    assert sigma_at(cfg, 0) == 10.0
    assert sigma_at(cfg, 100) == pytest.approx(10 * 0.95 ** 100)
    cfg = make_config("crsnn", overrides={"epochs": 20})
    assert sigma_at(cfg, 20) == pytest.approx(10 * 0.95 ** 100)   # same end point for any length


def test_rate_warmup_ramps_the_penalty_per_epoch(tmp_path, toy, monkeypatch):
    """rate_warmup = W: the penalty's weight is scaled by e / W at 0-based epoch e (full from
    epoch W on); every training step of an epoch gets that epoch's scale, also on resume."""
    import evsim.training.optim
    from evsim.training.presets import rate_scale_at

    cfg = make_config("crsnn", overrides={"epochs": 6, "rate_warmup": 4})
    assert [rate_scale_at(cfg, e) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert rate_scale_at(make_config("crsnn"), 0) == 1.0          # default: no warm-up
    seen = []
    original = evsim.training.optim.train_step

    def spy(*args, **kw):
        seen.append(kw["rate_scale"])
        return original(*args, **kw)

    monkeypatch.setattr(evsim.training.optim, "train_step", spy)
    net = {"rate_reg": 1.0, "rate_target": 0.01, "rate_cost": "synops"}
    cfg = small_config(epochs=3, rate_warmup=2, network={**small_config().network, **net})
    train(cfg, *toy, tmp_path / "run", stop_after_epochs=2)
    train(cfg, *toy, tmp_path / "run", resume=True)
    per_epoch = len(seen) // 3
    assert len(seen) == 3 * per_epoch and per_epoch > 0
    assert seen == [0.0] * per_epoch + [0.5] * per_epoch + [1.0] * per_epoch
    # only the epoch at full weight (the third) may be exported, whatever the validation says
    assert json.load(open(tmp_path / "run" / "result.json"))["best_epoch"] == 3


def test_init_from_starts_from_the_earlier_runs_best_network(tmp_path, toy, monkeypatch):
    """--init-from: the first training step sees exactly the parameters and buffers of the
    earlier run's best network; a missing run or another architecture fails before any
    training, with one clear line."""
    import evsim.training.optim
    from evsim.training.checkpoint import load_checkpoint

    train(small_config(epochs=2), *toy, tmp_path / "a")
    best = {k: v for k, v in load_checkpoint(tmp_path / "a" / "checkpoint.npz").items() if k.startswith("best/")}
    assert best
    seen = {}
    original = evsim.training.optim.train_step

    def spy(net, *args, **kw):
        if not seen:
            seen.update({f"best/param.{k}": v.copy() for k, v in net.params.items()})
            seen.update({f"best/buffer.{k}": v.copy() for k, v in net.buffers.items()})
        return original(net, *args, **kw)

    monkeypatch.setattr(evsim.training.optim, "train_step", spy)
    for source in (tmp_path / "a", tmp_path / "a" / "checkpoint.npz"):
        seen.clear()
        out = tmp_path / ("b" + source.suffix)
        train(small_config(epochs=1, init_from=str(source), seed=5), *toy, out)
        assert set(seen) == set(best) - {"best/config"}
        for k, v in seen.items():
            assert np.array_equal(v, best[k]), k
    with pytest.raises(TrainingError, match="init_from: no checkpoint at .*nowhere"):
        train(small_config(init_from=str(tmp_path / "nowhere")), *toy, tmp_path / "c")
    other = small_config(init_from=str(tmp_path / "a"), network={**small_config().network, "hidden": [12, 9]})
    with pytest.raises(TrainingError, match="init_from .*: state_dict array 'param.layer1.weight' has shape \\(10, 12\\), "
                                            "expected \\(9, 12\\); its network must have this run's architecture"):
        train(other, *toy, tmp_path / "d")


def test_test_file_is_classified_once_after_the_last_epoch(tmp_path, toy, monkeypatch):
    import evsim.run

    calls = []
    original = evsim.run.classify_file

    def spy(model, path, *args, **kwargs):
        log = open(tmp_path / "run" / "log.jsonl").read().splitlines()
        calls.append((str(path), len(log)))
        return original(model, path, *args, **kwargs)

    monkeypatch.setattr(evsim.run, "classify_file", spy)
    train(small_config(epochs=3), *toy, tmp_path / "run")
    assert calls == [(str(toy[1]), 3)]


def test_reported_validation_accuracy_is_the_engines(tmp_path, toy):
    from evsim.training.data import load_dataset, split_by_speaker

    cfg = small_config(epochs=2)
    result = train(cfg, *toy, tmp_path / "run")
    ds = load_dataset(toy[0], dt_ms=cfg.dt_ms, pool=cfg.pool, input_channels=cfg.input_channels)
    val = split_by_speaker(ds, fraction=cfg.val_fraction, seed=cfg.seed).val
    model = load_model(result["model"])
    assert classify_file(model, str(toy[0]), indices=val, engine="event").accuracy == result["validation_accuracy"]
    # ... and per held-out speaker, each speaker's own samples through `evsim run`, worst first
    by_speaker = result["validation_by_speaker"]
    assert sorted(map(int, by_speaker)) == sorted(np.unique(ds.speakers[val]).tolist())
    for speaker, entry in by_speaker.items():
        mine = val[ds.speakers[val] == int(speaker)]
        assert entry["n"] == mine.size
        assert classify_file(model, str(toy[0]), indices=mine, engine="event").accuracy == entry["accuracy"]
    accuracies = [entry["accuracy"] for entry in by_speaker.values()]
    assert accuracies == sorted(accuracies)
    assert json.load(open(tmp_path / "run" / "result.json"))["validation_by_speaker"] == by_speaker


def test_weight_average_by_hand():
    from evsim.training.average import WeightAverage

    avg = WeightAverage({"config": np.array("{}"), "param.w": np.array([0.0, 10.0])}, decay=0.5)
    assert avg.rate() == 0.1                                   # warm-up: (1 + 0) / (10 + 0)
    avg.update({"param.w": np.array([10.0, 0.0])})
    np.testing.assert_allclose(avg.average["param.w"], [9.0, 1.0])
    for _ in range(20):
        avg.update({"param.w": np.array([10.0, 0.0])})
    assert avg.rate() == 0.5                                   # the decay once the warm-up is past it
    state = avg.network_state({"config": np.array("{}"), "param.w": np.array([3.0, 3.0])})
    assert str(state["config"]) == "{}" and np.allclose(state["param.w"], avg.average["param.w"])
    other = WeightAverage({"param.w": np.zeros(2)}, decay=0.5)
    other.load_state_dict(avg.state_dict())
    assert other.count == 21 and np.array_equal(other.average["param.w"], avg.average["param.w"])
    with pytest.raises(EvsimError, match="decay"):
        WeightAverage({}, decay=1.0)
    with pytest.raises(EvsimError, match="lacks param.w"):
        other.load_state_dict({"count": np.array(1)})


def test_ema_run_exports_the_average_and_resumes_exactly(tmp_path, toy):
    """With ema the exported model is the averaged network of the best epoch (not the last
    weights), and an interrupted, resumed run ends exactly as an uninterrupted one."""
    from evsim.training.checkpoint import load_checkpoint

    cfg = small_config(ema=0.9, epochs=2)
    full = train(cfg, *toy, tmp_path / "full")
    train(cfg, *toy, tmp_path / "part", stop_after_epochs=1)
    # after one epoch, the best (only) network kept is the average, not the last weights
    ck = load_checkpoint(tmp_path / "part" / "checkpoint.npz")
    assert int(ck["ema/count"]) > 0
    for key in ("param.layer0.weight", "param.layer1.delays", "buffer.layer0.bn_mean"):
        assert np.array_equal(ck["best/" + key], ck["ema/avg." + key]), key
        assert not np.array_equal(ck["best/" + key], ck["net/" + key]), key
    resumed = train(cfg, *toy, tmp_path / "part", resume=True)
    assert resumed["validation_accuracy"] == full["validation_accuracy"]
    a = load_model(tmp_path / "full" / "model.npz").to_arrays()
    b = load_model(tmp_path / "part" / "model.npz").to_arrays()
    assert all(np.array_equal(a[k], b[k]) for k in a if k != "metadata")
    with pytest.raises(EvsimError, match="ema"):
        small_config(ema=1.0)


def test_speaker_folds_hold_out_each_fold_in_turn(tmp_path, toy):
    """--set val_folds=K --set val_fold=i validates on fold i's speakers, whatever the seed;
    two folds' runs hold out disjoint speakers, and too many folds is refused before any work."""
    from evsim.training.data import load_dataset, split_speaker_fold

    ds = load_dataset(toy[0], dt_ms=10.0, pool=2, input_channels=60)
    held = []
    for fold, seed in ((0, 0), (1, 5)):
        result = train(small_config(epochs=1, val_folds=2, val_fold=fold, seed=seed), *toy, tmp_path / f"f{fold}")
        speakers = sorted(map(int, result["validation_by_speaker"]))
        assert speakers == split_speaker_fold(ds, 2, fold).val_speakers.tolist()
        held.append(set(speakers))
    assert not held[0] & held[1] and len(held[0] | held[1]) == np.unique(ds.speakers).size
    with pytest.raises(TrainingError, match="val_folds: 9 folds of speakers, but .* has 8 speaker"):
        train(small_config(val_folds=9), *toy, tmp_path / "f9")
    assert not (tmp_path / "f9").exists()


def test_val_fraction_zero_trains_on_every_speaker_and_exports_the_last_epoch(tmp_path, toy):
    from evsim.training.trainer import Reporter

    class Counts(Reporter):
        def start(self, info):
            self.info = info

    counts = Counts()
    cfg = small_config(val_fraction=0, epochs=2, ema=0.9)
    result = train(cfg, *toy, tmp_path / "all", reporter=counts)
    assert (counts.info["train"], counts.info["val"]) == (96, 0)     # every sample of the training file
    assert result["validation_accuracy"] is None and result["validation_by_speaker"] is None
    assert result["best_epoch"] == 2                    # the last epoch, not a chosen one
    log = [json.loads(l) for l in open(tmp_path / "all" / "log.jsonl")]
    assert [r["val_accuracy"] for r in log] == [None, None]
    exported = load_model(tmp_path / "all" / "model.npz")
    assert exported.metadata.provenance["validation_accuracy"] is None
    assert exported.metadata.provenance["epoch"] == 2
    # the exported model is the last epoch's weight average: resuming a one-epoch run ends the same
    train(cfg, *toy, tmp_path / "part", stop_after_epochs=1)
    resumed = train(cfg, *toy, tmp_path / "part", resume=True)
    assert resumed["test_accuracy"] == result["test_accuracy"]
    a, b = exported.to_arrays(), load_model(tmp_path / "part" / "model.npz").to_arrays()
    assert all(np.array_equal(a[k], b[k]) for k in a if k != "metadata")
