"""A small training run on shared/data/digits/digits_train.h5 (slow; never the test file).

    python -m tests.training.test_train_digits          # prints the figures
    pytest -m slow tests/training/test_train_digits.py

A stratified subset of the training file is binned with ``SpikeFile.binned(i, dt_ms=10,
pool=5, n_steps=100)``; a held-out set of speakers of the same file serves as validation.
The CRSNN network (4 x 256, conv k = 5, delays) is trained for a few epochs with the
method's recipe (AdamW + one-cycle, delays AdamW + cosine, sigma 10 -> small).  The loss
must fall and the delays must move away from their initial values.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from evsim.training import Network, NetworkConfig, make_optimizer, train_step

PATH = "/work/shared/data/digits/digits_train.h5"


def load_subset(n_train_per_class=32, n_val_per_class=8, n_steps=100, seed=0):
    from evsim.data import SpikeFile

    rng = np.random.default_rng(seed)
    with SpikeFile(PATH) as f:
        labels, speakers = f.labels, f.speakers
        val_speakers = set(rng.choice(np.unique(speakers), size=max(1, len(np.unique(speakers)) // 10), replace=False).tolist())
        is_val = np.array([s in val_speakers for s in speakers])
        tr, va = [], []
        for c in range(20):
            tr += rng.choice(np.nonzero((labels == c) & ~is_val)[0], n_train_per_class, replace=False).tolist()
            va += rng.choice(np.nonzero((labels == c) & is_val)[0], n_val_per_class, replace=False).tolist()
        tr, va = rng.permutation(tr), np.array(va)
        x_tr = np.stack([f.binned(int(i), dt_ms=10, pool=5, n_steps=n_steps) for i in tr])
        x_va = np.stack([f.binned(int(i), dt_ms=10, pool=5, n_steps=n_steps) for i in va])
    return x_tr, labels[tr], x_va, labels[va]


def run(epochs=8, batch=32, seed=0, log=print):
    x_tr, y_tr, x_va, y_va = load_subset(seed=seed)
    cfg = NetworkConfig()                                   # CRSNN: 140 -> 4 x 256 conv k=5 -> 20
    net = Network.init(cfg, seed)
    d0 = {k: net.params[k].copy() for k in net.delay_names}
    n_batches = len(x_tr) // batch
    opt = make_optimizer(net, total_steps=epochs * n_batches)
    rng = np.random.default_rng(seed + 1)
    history = []
    t_start = time.perf_counter()
    for epoch in range(epochs):
        sigma = 10.0 * (0.95 ** (100 / epochs)) ** epoch
        order = rng.permutation(len(x_tr))
        losses, correct = [], 0
        t0 = time.perf_counter()
        for b in range(n_batches):
            idx = order[b * batch:(b + 1) * batch]
            loss, stats = train_step(net, opt, x_tr[idx], y_tr[idx], rng, sigma)
            losses.append(loss)
            correct += stats["correct"]
        step_s = (time.perf_counter() - t0) / n_batches
        val = net.evaluate(x_va, y_va).stats
        moved = np.concatenate([np.abs(net.params[k] - d0[k]) for k in d0])
        rec = {"epoch": epoch, "sigma": sigma, "train_loss": float(np.mean(losses)),
               "train_acc": correct / (n_batches * batch), "val_loss": val["loss"], "val_acc": val["accuracy"],
               "delay_shift_mean": float(moved.mean()), "delay_shift_max": float(moved.max()),
               "delays_rounded_changed": float(np.mean(moved > 0.5)), "step_s": step_s,
               "spike_rate": stats["spike_rate"]}
        history.append(rec)
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items() if k != "spike_rate")
            + " rates=" + ",".join(f"{r:.3f}" for r in rec["spike_rate"]))
    log(f"total {time.perf_counter() - t_start:.1f} s, {len(x_tr)} training / {len(x_va)} validation samples")
    return history


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(PATH), reason="shared digits data not available")
def test_small_run_loss_falls_and_delays_move():
    hist = run(epochs=8)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.15
    assert hist[-1]["delay_shift_mean"] > 0.1
    assert hist[-1]["val_acc"] > 0.1          # chance is 0.05


if __name__ == "__main__":
    run(epochs=int(os.environ.get("EPOCHS", "8")))
