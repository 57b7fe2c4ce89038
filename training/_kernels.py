"""Numba kernels of the training forward pass and its backward pass through time.

Only arrays and scalars go in; validation, allocation and the matrix products (through
BLAS) live in :mod:`training.network`.  Each kernel runs the samples of a batch in
parallel (``prange`` over b; every thread writes only its own sample's rows).

Notation (one hidden layer, n neurons, per sample b)::

    c_t     feed-forward drive after BatchNorm, (T, n)        -- computed outside
    z_t[j]  = zm_t[j] * sum_k M[j, k] s_{t-k}[j]              delayed, spread spikes
    R_t     = W_rec z_t  |  R_t[i] = sum_m K[m] z_t[i+m-h]    recurrent input (h = k//2)
    I_t     = c_t + R_t
    v_t     = beta * reset(v_{t-1}, s_{t-1}) + g * I_t
    s_t     = H(v_t - theta)   (or the surrogate's primitive when ``smooth``)

The delay mask is stored as a table over each neuron's window only: neuron j's nonzero
``M[j, k]`` lie at ``k = klo[j] + q`` for ``q = 0 .. nq-1``; ``mtab[j, q] = M[j, klo[j]+q]``
and ``dmtab[j, q] = dM[j, klo[j]+q] / dd_j`` (zero past the window's end).  The spread
costs O(B T n nq) with nq ~ 2 w, not O(B T n L).

``rec_kind``: ``evsim.model.RECURRENCE_CODE`` of the layer's recurrence: 0 none, 1 dense
(``w_rec_t`` is W_rec transposed, (n, n), row = source), 2 conv (``kernel``, (k,)).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from evsim._numba_config import FAST, PARALLEL_FAST
from evsim.model import RECURRENCE_CODE

from .surrogates import spike_fn, surrogate_grad

REC_NONE, REC_DENSE, REC_CONV = RECURRENCE_CODE["none"], RECURRENCE_CODE["dense"], RECURRENCE_CODE["conv"]


def lif_fwd(c, beta, gain, theta, reset_sub, rec_kind, w_rec_t, kernel, klo, mtab, zmask,
            use_zmask, sur, alpha, smooth, v, s, z):
    """Run one LIF layer over time; fill v, s (B, T, n) and, if recurrent, z (B, T, n)."""
    n_b, n_t, n = c.shape
    nq = mtab.shape[1]
    half = kernel.shape[0] // 2
    for b in prange(n_b):
        r = np.zeros_like(beta)
        v_prev = np.zeros_like(beta)
        s_prev = np.zeros_like(beta)
        for t in range(n_t):
            if rec_kind != REC_NONE:
                # delayed, spread presynaptic spikes arriving now
                for j in range(n):
                    acc = 0.0
                    for q in range(nq):
                        k = klo[j] + q
                        if k > t:
                            break
                        acc += mtab[j, q] * s[b, t - k, j]
                    if use_zmask:
                        acc *= zmask[b, t, j]
                    z[b, t, j] = acc
                # recurrent input
                r[:] = 0.0
                if rec_kind == REC_DENSE:
                    for j in range(n):
                        zj = z[b, t, j]
                        if zj != 0.0:
                            for i in range(n):
                                r[i] += w_rec_t[j, i] * zj
                elif rec_kind == REC_CONV:
                    for i in range(n):
                        acc = 0.0
                        for m in range(kernel.shape[0]):
                            src = i + m - half
                            if 0 <= src < n:
                                acc += kernel[m] * z[b, t, src]
                        r[i] = acc
                else:
                    raise ValueError("unknown recurrence code (expected 0 none, 1 dense or 2 conv)")
            # membrane update with the reset of the previous step's spikes, then spikes
            for i in range(n):
                current = c[b, t, i] + r[i]
                if reset_sub:
                    vv = beta[i] * (v_prev[i] - theta[i] * s_prev[i]) + gain[i] * current
                else:
                    vv = beta[i] * v_prev[i] * (1.0 - s_prev[i]) + gain[i] * current
                ss = spike_fn(vv - theta[i], sur, alpha, smooth)
                v[b, t, i] = vv
                s[b, t, i] = ss
                v_prev[i] = vv
                s_prev[i] = ss


def lif_bwd(gs_ext, v, s, z, beta, gain, theta, reset_sub, detach, rec_kind, w_rec_t, kernel,
            klo, mtab, dmtab, zmask, use_zmask, sur, alpha, g_cur, g_delay, g_kernel):
    """Backward through time of :func:`lif_fwd`.

    gs_ext: dL/ds_t from outside the layer (next layer, readout), (B, T, n)
    g_cur:  out, dL/dI_t (= dL/dc_t = dL/dR_t), (B, T, n)
    g_delay: out, per-sample dL/dd_j, (B, n) (summed over the batch by the caller)
    g_kernel: out, per-sample dL/dK (conv), (B, k); dense dL/dW_rec is one BLAS product
        of g_cur and z, done by the caller
    """
    n_b, n_t, n = v.shape
    nq = mtab.shape[1]
    half = kernel.shape[0] // 2
    for b in prange(n_b):
        gs_rec = np.zeros_like(v[0])          # dL/ds_t arriving through later steps' z
        gv_next = np.zeros_like(beta)         # dL/dv_{t+1}
        gz = np.zeros_like(beta)
        for j in range(n):
            g_delay[b, j] = 0.0
        for m in range(g_kernel.shape[1]):
            g_kernel[b, m] = 0.0
        for t in range(n_t - 1, -1, -1):
            # membrane: dL/dv_t from s_t and from v_{t+1}
            for i in range(n):
                gs = gs_ext[b, t, i] + gs_rec[t, i]
                gvn = gv_next[i]
                if not detach:
                    if reset_sub:
                        gs -= gvn * beta[i] * theta[i]
                    else:
                        gs -= gvn * beta[i] * v[b, t, i]
                carry = beta[i] if reset_sub else beta[i] * (1.0 - s[b, t, i])
                gv = gs * surrogate_grad(v[b, t, i] - theta[i], sur, alpha) + gvn * carry
                gv_next[i] = gv
                g_cur[b, t, i] = gain[i] * gv
            if rec_kind == REC_NONE:
                continue
            # recurrent input: dL/dz_t
            if rec_kind == REC_DENSE:
                for j in range(n):
                    acc = 0.0
                    for i in range(n):
                        acc += w_rec_t[j, i] * g_cur[b, t, i]
                    gz[j] = acc
            elif rec_kind != REC_CONV:
                raise ValueError("unknown recurrence code (expected 0 none, 1 dense or 2 conv)")
            else:
                for j in range(n):
                    acc = 0.0
                    for m in range(kernel.shape[0]):
                        i = j - m + half
                        if 0 <= i < n:
                            acc += kernel[m] * g_cur[b, t, i]
                    gz[j] = acc
                # conv kernel: dL/dK[m] += sum_i dL/dI_t[i] z_t[i + m - h]
                for m in range(kernel.shape[0]):
                    off = m - half
                    acc = 0.0
                    for i in range(max(0, -off), min(n, n - off)):
                        acc += g_cur[b, t, i] * z[b, t, i + off]
                    g_kernel[b, m] += acc
            # delayed spikes: to earlier spikes through M, to the delays through dM/dd
            for j in range(n):
                gzj = gz[j] * zmask[b, t, j] if use_zmask else gz[j]
                if gzj == 0.0:
                    continue
                gd = 0.0
                for q in range(nq):
                    k = klo[j] + q
                    if k > t:
                        break
                    gs_rec[t - k, j] += mtab[j, q] * gzj
                    gd += s[b, t - k, j] * dmtab[j, q]
                g_delay[b, j] += gzj * gd


# Each time-loop kernel in two builds: batch-parallel, and serial for small batches (the
# gradient checks, single samples), where starting threads costs more than it saves and
# a shared, loaded machine makes every parallel region wait for a descheduled thread.
lif_fwd_parallel = numba.njit(**PARALLEL_FAST)(lif_fwd)
lif_bwd_parallel = numba.njit(**PARALLEL_FAST)(lif_bwd)
lif_fwd_serial = numba.njit(**FAST)(lif_fwd)
lif_bwd_serial = numba.njit(**FAST)(lif_bwd)

#: below this many neuron-steps (B * T * n) per layer the serial build is used
PARALLEL_MIN_WORK = 100_000


@numba.njit(**FAST)
def leaky_fwd(a, beta, gain):
    """Readout membrane u_t = beta u_{t-1} + g a_t for a (B, T, C)."""
    n_b, n_t, n_c = a.shape
    u = np.empty_like(a)
    for b in range(n_b):
        for c in range(n_c):
            acc = 0.0
            for t in range(n_t):
                acc = beta[c] * acc + gain[c] * a[b, t, c]
                u[b, t, c] = acc
    return u


@numba.njit(**FAST)
def leaky_bwd(gu, beta, gain):
    """dL/da_t from dL/du_t for :func:`leaky_fwd`."""
    n_b, n_t, n_c = gu.shape
    ga = np.empty_like(gu)
    for b in range(n_b):
        for c in range(n_c):
            acc = 0.0
            for t in range(n_t - 1, -1, -1):
                acc = gu[b, t, c] + beta[c] * acc
                ga[b, t, c] = gain[c] * acc
    return ga
