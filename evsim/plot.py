"""Pictures of a model and its runs (optional extra ``evsim[plot]``, matplotlib).

Headless by construction: figures are ``matplotlib.figure.Figure`` objects drawn by the Agg
canvas, never pyplot, so no display and no global state is touched.  Files are PNG or SVG
(by the extension) and written atomically (a temporary name, then a rename).

* :func:`raster_figure`: one sample: input counts, every hidden layer's spikes over time
  (every neuron has its row, so silent neurons show as empty rows and are counted in the
  title), and the running class scores ``sum_{t' <= t} softmax(u_t')``;
* :func:`delays_figure`: the learned delays of each recurrent layer, with the initial
  distribution (uniform in the training config's ``delay_init``) where the run is known;
* :func:`training_figure`: loss, accuracy (train / validation), sigma and firing rate per
  layer and epoch, from a run directory's ``log.jsonl``;
* :func:`confusion_figure`: the confusion matrix of a model on a labelled file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

import numpy as np

from .errors import EvsimError
from .model import Model

__all__ = ["FORMATS", "raster_figure", "delays_figure", "training_figure", "confusion_figure", "save_figure",
           "read_log"]

FORMATS = (".png", ".svg")


def _figure(width: float, height: float, layout: str | None = "constrained"):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise EvsimError("pictures need the optional extra: pip install 'evsim[plot]' (matplotlib)") from exc
    return Figure(figsize=(width, height), dpi=100, layout=layout)


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> None:
    """Write ``fig`` to ``path`` (.png or .svg) atomically."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise EvsimError(f"picture file {path!r}: unknown format {ext or '(none)'}; expected one of {', '.join(FORMATS)}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise EvsimError(f"cannot write {path}: directory {directory} does not exist")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ._io import publish

    FigureCanvasAgg(fig)
    fd, tmp = tempfile.mkstemp(prefix=".evsim-", suffix=ext, dir=directory)
    os.close(fd)
    try:
        fig.savefig(tmp, format=ext[1:], dpi=dpi)
        publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# -- raster -----------------------------------------------------------------------------
def raster_figure(model: Model, counts: np.ndarray, title: str = "", label: int | None = None):
    """Input, spikes of every hidden layer and running class scores of one binned sample
    ``counts`` (steps, n_inputs), run by the event engine."""
    from .event import simulate
    from .engine import softmax

    res = simulate(model, counts, record_spikes=True)
    n_t = counts.shape[0]
    rows = 2 + len(model.layers)
    fig = _figure(9, 1.2 + 1.9 * len(model.layers) + 1.6 + 0.5, layout=None)
    axes = fig.subplots(rows, 1, sharex=True, height_ratios=[1.2] + [1.9] * len(model.layers) + [1.6])
    fig.subplots_adjust(left=0.08, right=0.98, top=0.935, bottom=0.06, hspace=0.45)
    extent = (-0.5, n_t - 0.5, -0.5, None)
    ax = axes[0]
    ax.imshow(counts.T, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest",
              extent=extent[:3] + (counts.shape[1] - 0.5,))
    ax.set_ylabel("input")
    ax.set_title(f"input: {int(counts.sum())} events on {model.n_inputs} inputs", fontsize=9, loc="left")
    for l, (layer, spikes) in enumerate(zip(model.layers, res.spikes)):
        s = spikes[0]
        silent = int(np.count_nonzero(s.sum(axis=0) == 0))
        ax = axes[1 + l]
        ax.set_facecolor("#f2f2f2")
        ax.imshow(np.ma.masked_equal(s.T, 0), aspect="auto", origin="lower", cmap="Blues", vmin=0, vmax=1,
                  interpolation="nearest", extent=extent[:3] + (layer.n - 0.5,))
        for i in np.nonzero(s.sum(axis=0) == 0)[0]:
            ax.axhspan(i - 0.5, i + 0.5, color="tab:red", alpha=0.3, lw=0)
        ax.set_ylim(-0.5, layer.n - 0.5)
        ax.set_ylabel(f"layer{l}")
        ax.set_title(f"layer{l} ({layer.recurrence}): {100 * s.mean():.1f} % fire per step, "
                     f"{silent} of {layer.n} neurons silent (red rows)", fontsize=9, loc="left")
    ax = axes[-1]
    per_step = softmax(res.readout[0]) if model.readout.decision == "sum_softmax" else res.readout[0]
    running = np.cumsum(per_step, axis=0)
    pred = int(res.predictions[0])
    names = model.class_names
    for c in range(model.n_classes):
        style = {"lw": 2.2, "color": "tab:blue", "zorder": 3} if c == pred else {"lw": 0.7, "color": "0.65"}
        if label is not None and c == label and c != pred:
            style = {"lw": 1.8, "color": "tab:red", "zorder": 2}
        ax.plot(np.arange(n_t), running[:, c], **style)
    verdict = "" if label is None else (" (correct)" if label == pred else f", label {names[label]} in red")
    ax.set_title(f"running class scores: prediction {names[pred]} (blue){verdict}", fontsize=9, loc="left")
    ax.set_ylabel("score")
    ax.set_xlabel(f"step ({model.metadata.dt_ms:g} ms)")
    ax.set_xlim(-0.5, n_t - 0.5)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# -- delays -----------------------------------------------------------------------------
def delay_init(model: Model) -> tuple[float, float] | None:
    """(low, high) of the uniform initial delays, from the training config in the model's
    provenance, or None when the model does not say."""
    net = ((model.metadata.provenance or {}).get("config") or {}).get("network") or {}
    init = net.get("delay_init")
    if isinstance(init, (list, tuple)) and len(init) == 2 and all(isinstance(v, (int, float)) for v in init):
        return float(init[0]), float(init[1])
    return None


def delays_figure(model: Model, title: str = ""):
    """Histogram of the (rounded, learned) delays of each recurrent layer, with the initial
    uniform distribution where the model's provenance records it."""
    rec = [(l, layer) for l, layer in enumerate(model.layers) if layer.recurrence != "none"]
    if not rec:
        raise EvsimError("the model has no recurrent layer, so no delays to plot")
    init = delay_init(model)
    top = max(layer.max_delay for _, layer in rec)
    if init is not None:
        top = max(top, int(np.ceil(init[1])))
    fig = _figure(8, 0.6 + 1.9 * len(rec))
    axes = np.atleast_1d(fig.subplots(len(rec), 1, sharex=True))
    bins = np.arange(-0.5, top + 1.5)
    for ax, (l, layer) in zip(axes, rec):
        d = np.asarray(layer.delays).ravel()      # a CS-GRU layer's are (C, P)
        ax.hist(d, bins=bins, color="tab:blue", label="learned (rounded)")
        if init is not None:
            lo, hi = init
            per_step = layer.n / max(hi - lo, 1e-9)
            ax.plot([lo, lo, hi, hi], [0, per_step, per_step, 0], color="tab:orange", lw=2, ls="--",
                    label=f"initial: uniform [{lo:g}, {hi:g}] (expected count)")
        ax.set_title(f"layer{l} ({layer.recurrence}, {layer.n} neurons): delays {d.min()}..{d.max()} steps, "
                     f"mean {d.mean():.1f}", fontsize=9, loc="left")
        ax.set_ylabel("neurons")
        ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel(f"delay (steps of {model.metadata.dt_ms:g} ms)")
    if title:
        fig.suptitle(title + ("" if init is not None else " (initial distribution not recorded)"), fontsize=10)
    return fig


# -- training ---------------------------------------------------------------------------
def read_log(run_dir: str | os.PathLike) -> list[dict]:
    """The per-epoch records of a run directory's ``log.jsonl``."""
    path = os.path.join(os.fspath(run_dir), "log.jsonl")
    if not os.path.isfile(path):
        raise EvsimError(f"{run_dir}: no log.jsonl; expected the --out directory of `evsim train`")
    records = []
    with open(path) as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvsimError(f"{path}: line {i} is not JSON ({exc})") from exc
            missing = [k for k in ("epoch", "train_loss", "train_accuracy", "val_accuracy", "sigma", "spike_rate")
                       if k not in rec]
            if missing:
                raise EvsimError(f"{path}: line {i} lacks {', '.join(missing)}")
            records.append(rec)
    if not records:
        raise EvsimError(f"{path}: no epochs logged yet")
    return records


def training_figure(records: list[dict], title: str = ""):
    """Loss, accuracy (train / validation), sigma and firing rate per layer, per epoch."""
    ep = [r["epoch"] for r in records]
    fig = _figure(9, 5.5)
    (a, b), (c, d) = fig.subplots(2, 2, sharex=True)
    a.plot(ep, [r["train_loss"] for r in records], "o-", label="train")
    if all(r.get("val_loss") is not None for r in records):
        a.plot(ep, [r["val_loss"] for r in records], "s-", label="validation")
    a.set_title("loss", fontsize=9, loc="left")
    a.legend(fontsize=8)
    b.plot(ep, [100 * r["train_accuracy"] for r in records], "o-", label="train")
    validated = [r for r in records if r["val_accuracy"] is not None]
    if validated:
        b.plot([r["epoch"] for r in validated], [100 * r["val_accuracy"] for r in validated], "s-", label="validation")
        best = max(validated, key=lambda r: r["val_accuracy"])
        title = f"accuracy (%): best validation {100 * best['val_accuracy']:.1f} % at epoch {best['epoch']}"
    else:
        title = "accuracy (%): no validation (trained on every speaker)"
    b.set_title(title, fontsize=9, loc="left")
    b.legend(fontsize=8)
    c.plot(ep, [r["sigma"] for r in records], "o-", color="tab:purple")
    c.set_title("delay spread sigma (steps)", fontsize=9, loc="left")
    c.set_xlabel("epoch")
    rates = np.array([r["spike_rate"] for r in records], float).reshape(len(records), -1)
    for l in range(rates.shape[1]):
        d.plot(ep, rates[:, l], "o-", label=f"layer{l}")
    d.set_title("firing rate (spikes per neuron per step)", fontsize=9, loc="left")
    d.set_xlabel("epoch")
    d.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# -- confusion --------------------------------------------------------------------------
def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) counts, row = true class, column = predicted class."""
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return m


def confusion_figure(matrix: np.ndarray, class_names, title: str = ""):
    """The confusion matrix, counts written in the cells, accuracy in the title."""
    c = matrix.shape[0]
    size = 2.5 + 0.38 * c
    fig = _figure(size + 1, size)
    ax = fig.subplots()
    im = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    hi = matrix.max() if matrix.size else 0
    for i in range(c):
        for j in range(c):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > hi / 2 else "black")
    ax.set_xticks(range(c), class_names, rotation=90, fontsize=8)
    ax.set_yticks(range(c), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = matrix.sum()
    acc = np.trace(matrix) / total if total else float("nan")
    ax.set_title(f"{title + ': ' if title else ''}{100 * acc:.1f} % of {total} samples", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig
