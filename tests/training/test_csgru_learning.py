"""The CS-GRU kernels learn: a small layer plus a linear readout, trained with AdamW and
the hand-written gradients (delays included, spread sigma = 1) on a toy task, fits it;
exported with rounded delays, the event engine gives the training forward's spikes."""

import numpy as np

from evsim.cells.csgru import event_run
from evsim.training.csgru import PARAM_NAMES, backward, export_params, forward, init_params
from evsim.training.network import cross_entropy
from evsim.training.optim import AdamW, ParamGroup


def toy_task(rng, n=24, n_t=16, n_p=6):
    """Class 0: a burst on the low positions then the high ones; class 1: the reverse.
    The same spikes in both classes, only their order differs (recurrence must hold it)."""
    y = np.arange(n) % 2
    x = np.zeros((n, n_t, 1, n_p))
    for b in range(n):
        first, second = (slice(0, 3), slice(3, 6)) if y[b] == 0 else (slice(3, 6), slice(0, 3))
        t0 = int(rng.integers(0, 3))
        x[b, t0:t0 + 2, 0, first] = 1.0
        x[b, t0 + 6:t0 + 8, 0, second] = 1.0
    return x, y


def test_csgru_layer_and_readout_fit_an_order_task():
    rng = np.random.default_rng(0)
    x, y = toy_task(rng)
    layer = init_params(4, 1, 6, 3, gate="current", delay_range=(0.0, 4.0), rng=rng)
    params = {name: getattr(layer, name).copy() for name in PARAM_NAMES}
    params["k_ix"] *= 3.0
    params["w_o"] = rng.normal(0, 0.1, (2, 4 * 6))
    opt = AdamW(params, [ParamGroup("weights", tuple(k for k in params if k != "delays"), lr=0.02),
                         ParamGroup("delays", ("delays",), lr=0.1)])
    losses, accs = [], []
    for step in range(60):
        p = layer._replace(**{k: params[k] for k in PARAM_NAMES})
        cache = forward(p, x, sigma=1.0)
        flat = cache.s.reshape(x.shape[0], x.shape[1], -1)            # (B, T, C*P), channel-major
        scores = flat.sum(axis=1) @ params["w_o"].T / x.shape[1]
        loss, g_scores = cross_entropy(scores, y)
        losses.append(loss)
        accs.append(float(np.mean(scores.argmax(axis=1) == y)))
        g_w = g_scores.T @ flat.sum(axis=1) / x.shape[1]
        gs = np.broadcast_to((g_scores @ params["w_o"] / x.shape[1])[:, None, :], flat.shape).reshape(cache.s.shape)
        grads, _ = backward(p, cache, gs)
        grads["w_o"] = g_w
        opt.step(grads)
        np.maximum(params["delays"], 0.0, out=params["delays"])
    assert losses[-1] < 0.3 * losses[0], losses[::10]
    assert max(accs[-5:]) == 1.0 and accs[0] < 1.0, accs[::10]
    assert not np.allclose(params["delays"], layer.delays)          # the delays were learned too
    # exported (delays rounded, sigma 0): the event engine's spikes = the training forward's
    trained = export_params(layer._replace(**{k: params[k] for k in PARAM_NAMES}))
    assert trained.delays.dtype == np.int64
    assert np.array_equal(trained.delays, np.rint(np.maximum(params["delays"], 0)))
    rounded = forward(trained, x, sigma=0.0)
    for b in range(x.shape[0]):
        assert np.array_equal(event_run(trained, x[b]).s, rounded.s[b])
