"""``evsim run --engine auto``: the dense NumPy engine for small jobs, the event engine otherwise.

Both engines give the same results (the hypothesis tests check event = dense), so the
choice is only about time.  The event engine is much faster per sample (about 5x at batch
64, 20x at batch 1, on the built-in models), but a fresh process pays a fixed cost before
its first sample: importing numba and loading the cached compiled kernels (0.6-0.8 CPU
s on the shared test machine), which the dense engine (plain NumPy, :mod:`evsim.reference`) never pays.  So for a
few samples the dense engine finishes first.

The choice compares two estimates of the seconds a job takes, from the model's size and
the number of samples (the constants were measured with ``benchmarks/bench_auto.py``,
fresh processes, one thread, the built-in ``default`` model at 106 steps; see the
README's ``evsim run`` section and ``benchmarks/README.md``)::

    dense = sum over batches of  T * (DENSE_LAYER_STEP_S * (L + 1) + DENSE_WEIGHT_S * B * W)
    event = EVENT_START_S (or EVENT_LOAD_S when numba is imported already) + n * T * EVENT_WEIGHT_S * W

with ``T`` the steps per sample (the model's fixed ``n_steps``; without one, an assumed
second of input, ``1000 / dt_ms`` steps), ``L`` the hidden layers, ``B`` the samples of a
batch, ``n`` the samples and ``W`` the multiply-adds of one sample-step (feed-forward and
recurrent weights, conv taps times neurons, the readout).  The dense engine is picked when
its estimate is not larger.  The event engine's true cost follows the spikes, not ``W``:
the estimate is the built-in models' (10-20 % firing); a wrong guess costs time, never a
different result.  Models with CS-GRU layers always get the event engine: their dense
reference runs about 100x slower per sample.
"""

from __future__ import annotations

import math
import sys

from .errors import EvsimError
from .names import ENGINES, RUN_ENGINES

__all__ = ["choose_engine", "resolve_engine", "dense_seconds", "event_seconds", "sample_steps", "step_work"]

#: dense engine: Python and NumPy call overhead per hidden layer (and readout) per step of a batch, s
DENSE_LAYER_STEP_S = 6e-5
#: dense engine: per multiply-add of one sample-step (float64 BLAS, one thread), s
DENSE_WEIGHT_S = 3.2e-10
#: event engine: importing numba and loading the cached kernels, s
EVENT_START_S = 0.8
#: event engine: loading the cached kernels when numba is imported already (recordings: the cochlea uses it), s
EVENT_LOAD_S = 0.25
#: event engine: per multiply-add of one sample-step (at the built-in models' firing), s
EVENT_WEIGHT_S = 7e-11


def step_work(model) -> int:
    """W: the multiply-adds of one sample-step of ``model`` on the dense engine."""
    work = model.readout.weight.size
    for layer in model.layers:
        work += layer.weight.size
        if layer.recurrence == "dense":
            work += layer.recurrent.size
        elif layer.recurrence == "conv":
            work += layer.recurrent.size * layer.n
    return int(work)


def sample_steps(model) -> int:
    """T: the steps one sample runs (the model's fixed ``n_steps``, else ``1000 / dt_ms``)."""
    meta = model.metadata
    return int(meta.n_steps) if meta.n_steps is not None else max(1, int(round(1000.0 / meta.dt_ms)))


def dense_seconds(model, n_samples: int, batch_size: int = 64) -> float:
    """The dense engine's estimated seconds for ``n_samples`` samples (module docstring)."""
    steps, work, per_step = sample_steps(model), step_work(model), DENSE_LAYER_STEP_S * (len(model.layers) + 1)
    full, rest = divmod(int(n_samples), int(batch_size))
    batches = [batch_size] * full + ([rest] if rest else [])
    return sum(steps * (per_step + DENSE_WEIGHT_S * b * work) for b in batches)


def event_seconds(model, n_samples: int, numba_loaded: bool = False) -> float:
    """The event engine's estimated seconds for ``n_samples`` samples, start-up included."""
    start = EVENT_LOAD_S if numba_loaded else EVENT_START_S
    return start + int(n_samples) * sample_steps(model) * EVENT_WEIGHT_S * step_work(model)


def choose_engine(model, n_samples: int, batch_size: int = 64, numba_loaded: bool | None = None) -> str:
    """``"dense"`` when the dense engine's estimate is not larger than the event engine's
    (module docstring), else ``"event"``.  ``numba_loaded``: whether numba is imported
    already (default: whether it is, now)."""
    from .model import has_stack_layers

    if has_stack_layers(model):
        return "event"        # CS-GRU layers: the dense reference is ~100x slower per sample
    if numba_loaded is None:
        numba_loaded = "numba" in sys.modules
    dense = dense_seconds(model, n_samples, batch_size)
    event = event_seconds(model, n_samples, numba_loaded)
    return "dense" if math.isfinite(dense) and dense <= event else "event"


def resolve_engine(engine: str, model, n_samples: int, batch_size: int = 64,
                   numba_loaded: bool | None = None) -> str:
    """The engine that will run: ``engine`` itself for ``"event"`` or ``"dense"``, the
    choice of :func:`choose_engine` for ``"auto"``; an unknown name raises."""
    if engine == "auto":
        return choose_engine(model, n_samples, batch_size, numba_loaded)
    if engine in ENGINES:
        return engine
    raise EvsimError(f"unknown engine {engine!r}; expected one of: {', '.join(RUN_ENGINES)}")
