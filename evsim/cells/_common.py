"""Steps shared by the cells (:mod:`evsim.cells`): the event engine's spikes-and-reset, and
the training helpers for every cell whose membrane follows
``v_t = beta reset(v_{t-1}, s_{t-1}) + ...``.  Not a cell itself (no ``KIND``)."""

from __future__ import annotations

import numpy as np

from .._numba_config import EXACT_CALLEE, TRAIN_CALLEE, LazyGlobal, njit

#: lowest_set_bit(word) -> the index of the lowest set bit of a uint64 word (not zero);
#: defined in evsim.cells._bits, which imports numba, so imported when a kernel needs it
lowest_set_bit = LazyGlobal("evsim.cells._bits", "lowest_set_bit")


@njit(**EXACT_CALLEE)
def spikes_and_reset(v, theta, subtract, spk):
    """The event step's end for any cell: write the indices of the neurons with
    ``v >= theta`` to ``spk`` and return their number, then reset those membranes
    (``v - theta`` or ``0``, the reference's ``reset(v, s)`` applied after the spike)."""
    fired = 0
    for i in range(v.shape[0]):  # a flag per neuron, and their count (a vectorised pass)
        f = v[i] >= theta[i]
        spk[i] = f
        fired += f
    return spikes_from_flags(v, theta, subtract, spk, fired)


@njit(**EXACT_CALLEE)
def spikes_from_flags(v, theta, subtract, spk, fired):
    """:func:`spikes_and_reset` for a cell whose update loop has already written the flags
    ``spk[i] = v[i] >= theta[i]`` (1 or 0) and counted them (``fired``: one pass over the
    neurons less)."""
    # spikes: the flags compacted in place into ascending indices, 64 at a time: the
    # word's flags packed into the bits of an integer (a vectorised pass), then one
    # iteration per spike (its lowest set bit; k <= g + j, and the word's flags are all
    # read before any is overwritten).  No branch per neuron (a spike pattern is not
    # predictable) and no per-neuron store chain (issue 14, branch event25).
    n = v.shape[0]
    if fired == 0:
        return 0
    k = 0
    whole = n - n % 64
    for g in range(0, whole, 64):
        word = np.uint64(0)
        for j in range(64):
            word |= np.uint64(spk[g + j]) << np.uint64(j)
        k = spikes_of_word(word, g, spk, k)
    for i in range(whole, n):      # the last n % 64 flags, one by one (branch-free)
        f = spk[i]
        spk[k] = i
        k += f
    reset_spikes(v, theta, subtract, spk, k)
    return k


@njit(**EXACT_CALLEE)
def spikes_of_word(word, first, spk, k):
    """Append to spk[k:] the index ``first + j`` of each set bit j of ``word`` (uint64),
    in ascending order; returns the new count.  One step per spike: the lowest set bit
    (trailing zeros), then cleared."""
    while word != 0:
        spk[k] = first + np.int64(lowest_set_bit(word))
        k += 1
        word &= word - np.uint64(1)
    return k


@njit(**EXACT_CALLEE)
def reset_spikes(v, theta, subtract, spk, k):
    """reset(v, s) of the k neurons in spk[:k]: ``v - theta`` or ``0``."""
    for e in range(k):
        i = spk[e]
        v[i] = v[i] - theta[i] if subtract else v[i] * 0.0


#: M = theta * REST_BOUND (rounded to the precision's type): the bound below threshold a
#: resting neuron's membrane must stay under (:func:`evsim.cells.lif.event_rests`); 1 - 2^-20
#: is exact in float32 and puts M 2^-20 theta below theta, far more than a rounding in
#: either precision, so M < theta
REST_BOUND = 1.0 - 2.0**-20


@njit(**EXACT_CALLEE)
def never_rests(v, aux, bias, beta, theta, gain, extra, bound):
    """The rest test of a cell that proves nothing (``CellKind.event_rests`` None): False,
    so the event engine runs every step of a layer of it."""
    return False


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
