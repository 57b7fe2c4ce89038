"""Steps shared by the cells (:mod:`evsim.cells`): the event engine's spikes-and-reset, and
the training helpers for every cell whose membrane follows
``v_t = beta reset(v_{t-1}, s_{t-1}) + ...``.  Not a cell itself (no ``KIND``)."""

from __future__ import annotations

from .._numba_config import EXACT_CALLEE, TRAIN_CALLEE, njit


@njit(**EXACT_CALLEE)
def spikes_and_reset(v, theta, subtract, spk):
    """The event step's end for any cell: write the indices of the neurons with
    ``v >= theta`` to ``spk`` and return their number, then reset those membranes
    (``v - theta`` or ``0``, the reference's ``reset(v, s)`` applied after the spike)."""
    # spikes, compacted without a branch (a spike pattern is not predictable)
    k = 0
    for i in range(v.shape[0]):
        spk[k] = i
        k += v[i] >= theta[i]
    # reset
    for e in range(k):
        i = spk[e]
        v[i] = v[i] - theta[i] if subtract else v[i] * 0.0
    return k


@njit(**TRAIN_CALLEE)
def reset_value(v, s, theta, reset_sub):
    """reset(v, s): ``v - theta s`` (subtract) or ``v (1 - s)`` (zero)."""
    return v - theta * s if reset_sub else v * (1.0 - s)


@njit(**TRAIN_CALLEE)
def membrane_grad(g, gvn, v_t, s_t, sg, beta, theta, reset_sub, detach):
    """dL/dv_t of one neuron from ``g`` (dL/ds_t from above and the cell's other paths),
    ``gvn`` (dL/dv_{t+1}) and ``sg`` = sg(v_t - theta), the surrogate derivative (a cell's
    ``bwd_step`` computes a row of them first, :func:`evsim.surrogates.surrogate_grad_row`,
    so that this loop has no branch and vectorises): the reset's path (unless detached),
    the surrogate, the leak::

        dL/ds_t (total) = g - [not detach] gvn * beta * (v_t | theta)
        dL/dv_t = dL/ds_t * sg(v_t - theta) + gvn * (beta (1 - s_t) | beta)
    """
    if not detach:
        g -= gvn * beta * (theta if reset_sub else v_t)
    hold = beta if reset_sub else beta * (1.0 - s_t)
    return g * sg + gvn * hold
