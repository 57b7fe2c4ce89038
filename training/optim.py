"""AdamW with parameter groups, learning-rate schedules and global-norm gradient clipping.

AdamW (Loshchilov & Hutter; the PyTorch form), for a parameter p with gradient g at the
t-th step (t = 1, 2, ...) of its group, learning rate lr_t = lr * schedule(t - 1)::

    p <- p - lr_t * weight_decay * p                   decoupled weight decay
    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
    p <- p - lr_t * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Schedules give the factor multiplying a group's ``lr`` at step i = 0, 1, ...:

* :class:`Constant`: 1.
* :class:`OneCycle` (PyTorch ``OneCycleLR``, cosine annealing, two phases, no momentum
  cycling): from 1/div_factor up to 1 over the first ``pct_start`` of ``total_steps``, then
  down to 1/(div_factor * final_div_factor).
* :class:`Cosine` (``CosineAnnealingLR``): (1 + cos(pi i / total_steps)) / 2, floored at
  ``min_factor``; constant after ``total_steps``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from evsim.errors import EvsimError

__all__ = ["Constant", "OneCycle", "Cosine", "ParamGroup", "AdamW", "clip_grad_norm",
           "make_optimizer", "make_schedule", "SCHEDULES", "train_step"]


@dataclass(frozen=True)
class Constant:
    def factor(self, step: int) -> float:
        return 1.0


@dataclass(frozen=True)
class OneCycle:
    """total_steps: optimiser steps of the whole run; pct_start: share of the rising phase."""

    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    def __post_init__(self):
        if not (isinstance(self.total_steps, (int, np.integer)) and self.total_steps >= 2):
            raise EvsimError(f"OneCycle.total_steps: {self.total_steps!r}; expected an integer >= 2")
        if not (0.0 < self.pct_start < 1.0):
            raise EvsimError(f"OneCycle.pct_start: {self.pct_start!r}; expected a share in (0, 1)")

    def factor(self, step: int) -> float:
        start = 1.0 / self.div_factor
        end = start / self.final_div_factor
        up = float(self.pct_start * self.total_steps) - 1.0
        last = float(self.total_steps - 1)
        step = min(step, self.total_steps - 1)
        if step <= up:
            pct, hi, lo = (step / up if up > 0 else 1.0), 1.0, start
            return hi + (lo - hi) / 2.0 * (1.0 + math.cos(math.pi * pct))
        pct = (step - up) / (last - up)
        return end + (1.0 - end) / 2.0 * (1.0 + math.cos(math.pi * pct))


@dataclass(frozen=True)
class Cosine:
    total_steps: int
    min_factor: float = 0.0

    def __post_init__(self):
        if not (isinstance(self.total_steps, (int, np.integer)) and self.total_steps >= 1):
            raise EvsimError(f"Cosine.total_steps: {self.total_steps!r}; expected a positive integer")

    def factor(self, step: int) -> float:
        pct = min(step, self.total_steps) / self.total_steps
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * pct))


SCHEDULES = {"constant": Constant, "one_cycle": OneCycle, "cosine": Cosine}


def make_schedule(name: str, total_steps: int):
    """A schedule by name (``"constant"``, ``"one_cycle"``, ``"cosine"``)."""
    if name not in SCHEDULES:
        raise EvsimError(f"unknown schedule {name!r}; valid schedules: {', '.join(SCHEDULES)}")
    return Constant() if name == "constant" else SCHEDULES[name](int(total_steps))


@dataclass(frozen=True)
class ParamGroup:
    """One optimiser group: the parameter names it updates and its hyper-parameters."""

    name: str
    keys: tuple
    lr: float
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    schedule: object = field(default_factory=Constant)

    def describe(self) -> dict:
        return {"name": self.name, "keys": list(self.keys), "lr": self.lr, "weight_decay": self.weight_decay,
                "betas": list(self.betas), "eps": self.eps, "schedule": type(self.schedule).__name__,
                "schedule_args": asdict(self.schedule)}


class AdamW:
    """AdamW over a dict of parameter arrays, updated in place, one state per group.

    params: the dict the network owns (``Network.params``); groups: disjoint
    :class:`ParamGroup`s covering the parameters to train (others are left alone).
    """

    def __init__(self, params: dict[str, np.ndarray], groups: Sequence[ParamGroup]):
        self.params = params
        self.groups = tuple(groups)
        seen = set()
        for g in self.groups:
            for k in g.keys:
                if k not in params:
                    raise EvsimError(f"optimiser group {g.name!r}: unknown parameter {k!r}")
                if k in seen:
                    raise EvsimError(f"parameter {k!r} is in two optimiser groups")
                seen.add(k)
        #: the parameters this optimiser trains; all others stay exactly as they are
        self.keys = frozenset(seen)
        self.m = {k: np.zeros_like(params[k]) for k in seen}
        self.v = {k: np.zeros_like(params[k]) for k in seen}
        self.steps = {g.name: 0 for g in self.groups}

    def lr(self, group: str) -> float:
        """The learning rate the next step of ``group`` will use."""
        g = next(g for g in self.groups if g.name == group)
        return g.lr * g.schedule.factor(self.steps[group])

    def step(self, grads: dict[str, np.ndarray]) -> dict[str, float]:
        """One update of every group from ``grads`` (keys as ``params``); returns the
        learning rate each group used."""
        used = {}
        for g in self.groups:
            t = self.steps[g.name] + 1
            lr = g.lr * g.schedule.factor(t - 1)
            b1, b2 = g.betas
            c1, c2 = 1.0 - b1 ** t, 1.0 - b2 ** t
            for k in g.keys:
                p, grad = self.params[k], grads[k]
                if grad.shape != p.shape:
                    raise EvsimError(f"gradient {k!r} has shape {grad.shape}, parameter {p.shape}")
                if g.weight_decay:
                    p *= 1.0 - lr * g.weight_decay
                m, v = self.m[k], self.v[k]
                m *= b1
                m += (1.0 - b1) * grad
                v *= b2
                v += (1.0 - b2) * grad * grad
                p -= (lr / c1) * m / (np.sqrt(v / c2) + g.eps)
            self.steps[g.name] = t
            used[g.name] = lr
        return used

    def state_dict(self) -> dict[str, np.ndarray]:
        """Moments and step counts as plain arrays: ``"adamw.m.<name>"``, ``"adamw.v.<name>"``,
        ``"adamw.step.<group>"`` (int64 scalars) and ``"adamw.groups"`` (JSON, checked on load)."""
        out = {"adamw.groups": np.array(json.dumps([g.describe() for g in self.groups], sort_keys=True))}
        out.update({f"adamw.m.{k}": v.copy() for k, v in self.m.items()})
        out.update({f"adamw.v.{k}": v.copy() for k, v in self.v.items()})
        out.update({f"adamw.step.{k}": np.array(v, np.int64) for k, v in self.steps.items()})
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore moments and step counts (the groups must have the same names and keys)."""
        if "adamw.groups" in state:
            saved = json.loads(str(np.asarray(state["adamw.groups"])))
            if [(g["name"], g["keys"]) for g in saved] != [(g.name, list(g.keys)) for g in self.groups]:
                raise EvsimError("optimiser state_dict has different parameter groups")
        for name, target in (("m", self.m), ("v", self.v)):
            for k, arr in target.items():
                key = f"adamw.{name}.{k}"
                if key not in state or np.shape(state[key]) != arr.shape:
                    raise EvsimError(f"optimiser state_dict: missing or misshapen {key!r}")
                np.copyto(arr, state[key], casting="same_kind")
        for g in self.groups:
            self.steps[g.name] = int(state[f"adamw.step.{g.name}"])


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float, keys: Sequence[str] | None = None) -> float:
    """Scale the gradients (of ``keys``, default all) in place so their global L2 norm is
    at most ``max_norm`` (PyTorch ``clip_grad_norm_``); returns the norm before clipping."""
    keys = list(grads) if keys is None else list(keys)
    total = math.sqrt(sum(float(np.dot(grads[k].ravel().astype(np.float64), grads[k].ravel().astype(np.float64))) for k in keys))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for k in keys:
            grads[k] *= coef
    return total


def make_optimizer(net, *, total_steps: int, lr: float = 1.3e-3, weight_decay: float = 4e-6,
                   delay_lr: float = 2.8e-2, delay_weight_decay: float = 0.0,
                   schedule: str = "one_cycle", delay_schedule: str = "cosine",
                   betas=(0.9, 0.999), eps: float = 1e-8, learn_delays: bool = True) -> AdamW:
    """The method's optimiser for ``net``: AdamW on weights, biases, BatchNorm and recurrent
    parameters (``lr``, ``weight_decay``, one-cycle) and a second group for the delays
    (``delay_lr``, no weight decay, cosine), both over ``total_steps`` optimiser steps.
    ``learn_delays=False`` leaves the delays out: they keep their values (the ablation)."""
    groups = [ParamGroup("weights", tuple(net.weight_names), lr, weight_decay, tuple(betas), eps,
                         make_schedule(schedule, total_steps))]
    if net.delay_names and learn_delays:
        groups.append(ParamGroup("delays", tuple(net.delay_names), delay_lr, delay_weight_decay, tuple(betas), eps,
                                 make_schedule(delay_schedule, total_steps)))
    return AdamW(net.params, groups)


class DivergedError(EvsimError):
    """A training step produced a non-finite loss or gradient; nothing was updated."""

    def __init__(self, loss: float, grad_norm: float):
        what = f"the loss became {loss}" if not math.isfinite(loss) else f"the gradient norm became {grad_norm}"
        super().__init__(what)
        self.loss, self.grad_norm = loss, grad_norm


def train_step(net, optimizer: AdamW, x, y, rng, sigma: float = 0.0, *,
               clip: float | None = None, rate_scale: float = 1.0) -> tuple[float, dict]:
    """loss_and_grad -> (optional) global-norm clipping -> AdamW step -> clamp delays (and
    learned cell parameters into their bounds).

    ``rate_scale`` multiplies the spike-rate penalty's weight for this step.
    The gradient norm (and clipping) covers the parameters ``optimizer`` trains.  Raises :class:`DivergedError` before touching parameters or optimiser moments when the
    loss or the gradient norm is not finite.  Returns ``(loss, stats)``; ``stats`` adds
    ``"grad_norm"`` (before clipping) and ``"lr"`` (the learning rate each optimiser
    group used) to those of :meth:`training.network.Network.loss_and_grad`.
    """
    loss, grads, stats = net.loss_and_grad(x, y, rng, sigma, rate_scale=rate_scale)
    trained = [k for k in grads if k in optimizer.keys]
    stats["grad_norm"] = clip_grad_norm(grads, clip if clip else math.inf, keys=trained)
    if not (math.isfinite(loss) and math.isfinite(stats["grad_norm"])):
        raise DivergedError(loss, stats["grad_norm"])
    stats["lr"] = optimizer.step(grads)
    net.clamp_parameters()
    return loss, stats
