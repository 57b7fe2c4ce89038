"""Training core of evsim: hand-written backpropagation through time, no autograd.

Every gradient is written out in :mod:`evsim.training.network` (equations in its docstring) and
checked against finite differences in ``tests/training/test_train_gradients.py``.  Time
loops are Numba kernels (:mod:`evsim.training._kernels`), batch-parallel; feed-forward products
are BLAS matmuls over all steps at once.  ``evsim`` never imports ``training``.

How a trainer drives it::

    import numpy as np
    from evsim.training import NetworkConfig, Network, make_optimizer, train_step

    cfg = NetworkConfig()                         # CRSNN SHD: 140 -> 4 x 256 (conv k=5) -> 20
    net = Network.init(cfg, seed=0)
    opt = make_optimizer(net, total_steps=n_epochs * batches_per_epoch)   # lr 1.3e-3 one-cycle,
                                                  # wd 4e-6; delays lr 2.8e-2 cosine, no wd
    rng = np.random.default_rng(0)                # dropout masks
    for epoch in range(n_epochs):
        sigma = 10 * (0.95 ** (100 / n_epochs)) ** epoch   # DelRec: 10 -> ~0.06
        for x, y in batches:                      # x (B, T, 140) float32 counts, y (B,) int
            loss, stats = train_step(net, opt, x, y, rng, sigma, clip=None)
            # == loss, grads, stats = net.loss_and_grad(x, y, rng, sigma)
            #    clip_grad_norm(grads, max_norm); opt.step(grads); net.clamp_delays()
        res = net.evaluate(x_val, y_val)          # rounded delays, sigma 0, eval BatchNorm
        res.stats["accuracy"], res.stats["loss"], res.predictions, res.scores
    net.export(metadata).save("model.npz")        # evsim.model.Model, BN folded, rint delays
    ckpt = {**net.state_dict(), **opt.state_dict()}; np.savez(path, **ckpt)   # no pickle
    net = Network.from_state_dict(ckpt); opt = make_optimizer(net, ...); opt.load_state_dict(ckpt)

API (exact signatures):

* ``NetworkConfig(n_inputs=140, hidden=(256,)*4, recurrence=None, kernel_size=5, n_classes=20,
  reset="zero", detach_reset=False, tau=None, gain=None, threshold=1.0, surrogate="arctan",
  surrogate_alpha=None, smooth_forward=False, dropout=0.44, rec_dropout=0.24,
  dropout_mode="step", batchnorm=True, bn_momentum=0.1, bn_eps=1e-5, delay_init=(10, 30),
  readout_tau=1.05, readout_gain="one", loss="sum_softmax", rate_reg=0.0, rate_target=0.0, rate_cost="uniform",
  dtype="float32")`` — frozen, validated; ``to_json()`` / ``NetworkConfig.from_json(text)``.
* ``Network.init(config, seed=0) -> Network``; ``net.params`` / ``net.buffers`` (dicts of arrays)
* ``net.loss_and_grad(x, y, rng=None, sigma=0.0, *, update_stats=True, rate_scale=1.0) -> (loss, grads, stats)``
* ``net.evaluate(x, y=None, *, record_spikes=False, batch_size=128) -> evsim.engine.SimResult``
* ``net.clamp_delays()``; ``net.delay_names``; ``net.weight_names``; ``net.n_params()``
* ``net.export(metadata=None) -> evsim.model.Model``
* ``net.state_dict() -> dict``; ``net.load_state_dict(d)`` (in place);
  ``Network.from_state_dict(d) -> Network``
* ``make_optimizer(net, *, total_steps, lr=1.3e-3, weight_decay=4e-6, delay_lr=2.8e-2,
  delay_weight_decay=0.0, schedule="one_cycle", delay_schedule="cosine",
  betas=(0.9, 0.999), eps=1e-8, learn_delays=True) -> AdamW`` (without delays: they stay
  fixed); ``AdamW(params, groups)`` with
  ``ParamGroup(name, keys, lr, weight_decay, betas, eps, schedule)``;
  ``opt.step(grads) -> {group: lr}``; ``opt.lr(group)``; ``opt.state_dict()`` /
  ``opt.load_state_dict(d)``; schedules ``Constant()``, ``OneCycle(total_steps, pct_start=0.3,
  div_factor=25, final_div_factor=1e4)``, ``Cosine(total_steps, min_factor=0)``
* ``clip_grad_norm(grads, max_norm, keys=None) -> float`` (norm before clipping)
* ``train_step(net, opt, x, y, rng, sigma=0.0, *, clip=None, rate_scale=1.0) -> (loss, stats)``: clips over
  the parameters ``opt`` trains; raises ``DivergedError`` before any update on a non-finite
  loss or gradient
* ``SURROGATES`` (dict by name: arctan, fast_sigmoid, triangle), ``get_surrogate(name)``

Defaults where the published codes disagree (CRSNN's choices; each is an option):
g = 1 for the first layer and the readout, g = 1 - beta for recurrent layers
(``gain``); the reset is *not* detached (``detach_reset=False``); dropout masks are
redrawn every step (``dropout_mode="step"``); recurrent dropout acts on the delayed spikes
z_t before the recurrent weights.  The loss is PyTorch's ``CrossEntropyLoss`` applied to
``sum_t softmax(u_t)`` taken as logits (as DelRec/CRSNN do).  BatchNorm statistics cover
every step of the padded batch.  An optional spike-rate penalty (``rate_reg`` > 0, off by
default) makes the trained network fire sparsely, which is what the event-driven engine's
speed scales with: with r_l the mean spikes per neuron per step of hidden layer l over the
batch, the loss gains ``rate_reg * sum_l r_l`` (``rate_target`` = 0) or
``rate_reg * sum_l max(0, r_l - rate_target)^2``; ``stats["loss"]`` includes it and
``stats["rate_penalty"]`` reports it.  All AdamW "weights" parameters (BatchNorm and biases
included) get weight decay; delays get none.  OneCycle does not cycle Adam's beta1.

Speed: the time-loop kernels and the BatchNorm kernels come in a batch-parallel build
(``prange`` over samples or row chunks) and a serial one, used when a layer has fewer than
``_kernels.PARALLEL_MIN_WORK`` neuron-steps (B * T * n).  The rest of a step runs on numba's
threads too (:mod:`evsim.training._threaded`): the feed-forward products as fixed row
blocks of single-threaded BLAS calls, the dropout masks drawn in blocks of a PCG64 stream
(bit for bit NumPy's draw).  Results do not depend on the thread count.  The row blocks
need NumPy's OpenBLAS on one thread: ``loss_and_grad`` and ``evaluate`` set it to one for
the call and restore the caller's count after (:func:`evsim.training._threaded.one_blas_thread`,
as ``evsim train`` runs with ``OPENBLAS_NUM_THREADS=1``), so a step from Python is as fast
as from the command line (0.036-0.038 s against 0.064 s with 2 OpenBLAS threads on 2 cores) and
gives the same results whatever the caller's BLAS setting
(``benchmarks/bench_train.py`` measures it).
"""

from .config import ConfigError, NetworkConfig
from .network import Network, cross_entropy, delay_tables
from .optim import (AdamW, Constant, Cosine, OneCycle, ParamGroup, clip_grad_norm, make_optimizer,
                    make_schedule, train_step)
from .surrogates import SURROGATES, Surrogate, get_surrogate

__all__ = [
    "NetworkConfig", "ConfigError", "Network", "cross_entropy", "delay_tables",
    "AdamW", "ParamGroup", "Constant", "OneCycle", "Cosine", "clip_grad_norm", "make_optimizer",
    "make_schedule", "train_step", "SURROGATES", "Surrogate", "get_surrogate",
]
