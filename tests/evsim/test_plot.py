"""Pictures, drawn headless (Agg, no pyplot): what each one shows, PNG and SVG files."""

import json
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the optional extra evsim[plot] (matplotlib) is not installed")

from evsim.errors import EvsimError  # noqa: E402
from evsim.event import simulate  # noqa: E402
from evsim.plot import (confusion_figure, confusion_matrix, delays_figure, raster_figure,  # noqa: E402
                        read_log, save_figure, training_figure)
from tests.conftest import make_small_model  # noqa: E402


def counts(model, steps=30, seed=0):
    return np.random.default_rng(seed).poisson(0.8, (steps, model.n_inputs)).astype(float)


def test_raster_shows_every_layer_and_counts_the_silent_neurons(small_model):
    x = counts(small_model)
    fig = raster_figure(small_model, x, title="t", label=1)
    axes = fig.get_axes()
    assert len(axes) == 2 + len(small_model.layers)
    spikes = simulate(small_model, x, record_spikes=True).spikes
    for l, s in enumerate(spikes):
        silent = int(np.count_nonzero(s[0].sum(axis=0) == 0))
        assert f"{silent} of {small_model.layers[l].n} neurons silent" in axes[1 + l].get_title(loc="left")
        assert axes[1 + l].get_ylim() == (-0.5, small_model.layers[l].n - 0.5)   # every neuron has a row
    assert len(axes[-1].get_lines()) == small_model.n_classes                  # one running score per class
    final = np.array([line.get_ydata()[-1] for line in axes[-1].get_lines()])
    assert np.allclose(final, simulate(small_model, x).scores[0])


@pytest.mark.parametrize("ext, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_pictures_are_written_as_png_and_svg(tmp_path, small_model, ext, magic):
    path = tmp_path / f"r{ext}"
    save_figure(raster_figure(small_model, counts(small_model)), path)
    assert path.read_bytes()[:len(magic)] == magic
    assert [p.name for p in tmp_path.iterdir()] == [path.name]      # no temporary file left


def test_unknown_picture_format_is_refused(tmp_path, small_model):
    with pytest.raises(EvsimError, match=r"unknown format \.jpg; expected one of \.png, \.svg"):
        save_figure(delays_figure(small_model), tmp_path / "d.jpg")
    assert list(tmp_path.iterdir()) == []


def test_delays_histogram_with_and_without_the_initial_range(small_model):
    fig = delays_figure(small_model)
    (ax,) = fig.get_axes()                                  # one recurrent layer
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == small_model.layers[1].n
    assert heights[:5] == np.bincount(small_model.layers[1].delays, minlength=5)[:5].tolist()
    assert ax.get_lines() == []
    known = replace(small_model, metadata=replace(small_model.metadata,
                                                  provenance={"config": {"network": {"delay_init": [1, 4]}}}))
    (ax,) = delays_figure(known).get_axes()
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [1, 1, 4, 4] and line.get_ydata()[1] == pytest.approx(10 / 3)
    with pytest.raises(EvsimError, match="no recurrent layer"):
        delays_figure(make_small_model(recurrence=("none", "none")))


def write_log(run_dir, n=4):
    recs = [{"epoch": e + 1, "train_loss": 2.0 / (e + 1), "train_accuracy": 0.2 * e, "val_loss": 2.5 / (e + 1),
             "val_accuracy": 0.15 * e, "sigma": 10 * 0.9 ** e, "spike_rate": [0.1, 0.2 - 0.01 * e]} for e in range(n)]
    (run_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return recs


def test_training_curves_from_log(tmp_path):
    recs = write_log(tmp_path)
    fig = training_figure(read_log(tmp_path))
    loss, acc, sigma, rate = fig.get_axes()
    assert [list(l.get_ydata()) for l in loss.get_lines()] == [[r["train_loss"] for r in recs], [r["val_loss"] for r in recs]]
    assert list(acc.get_lines()[1].get_ydata()) == pytest.approx([100 * r["val_accuracy"] for r in recs])
    assert list(sigma.get_lines()[0].get_ydata()) == [r["sigma"] for r in recs]
    assert len(rate.get_lines()) == 2


def test_training_log_errors(tmp_path):
    with pytest.raises(EvsimError, match="no log.jsonl; expected the --out directory of `evsim train`"):
        read_log(tmp_path)
    (tmp_path / "log.jsonl").write_text('{"epoch": 1}\n')
    with pytest.raises(EvsimError, match="line 1 lacks train_loss"):
        read_log(tmp_path)


def test_confusion_matrix_by_hand():
    m = confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    fig = confusion_figure(m, ["a", "b", "c"], title="x")
    assert fig.get_axes()[0].get_title() == "x: 60.0 % of 5 samples"
