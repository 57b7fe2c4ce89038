"""Numba kernels of the CS-GRU layer for training: forward (recording what the backward
pass needs) and backward through time.  Equations: :mod:`evsim.cells.csgru`; wrapper and
checks: :mod:`evsim.training.csgru`.

Arrays are channel-major as in the reference: states (B, T, C, P), input (B, T, Cin, P),
kernels (C_out, C_src, k).  ``p`` is a :class:`evsim.cells.csgru.CSGRUParams` with real
delays.  The delay spread is given as the window tables of
:func:`evsim.training.network.delay_tables`, reshaped per unit: ``klo`` (C, P), ``mtab`` and
``dmtab`` (C, P, nq), so ``shat_t[c, p] = sum_q mtab[c, p, q] s_{t - klo[c, p] - q}[c, p]``.

Backward (hand-derived; ``gs_t`` is dL/ds_t from outside plus from later steps)::

    dv    = z_{t+1} dv_{t+1} + gs_t H'(v_t - theta)
    da_z  = dv (v_{t-1} - i_t) z_t (1 - z_t)
    di    = r_{t+1} di_{t+1} + dv (1 - z_t) [+ K_zi^T * da_z, gate "current"]
    da_r  = di i_{t-1} r_t (1 - r_t)
    gshat = K_rh^T * da_r + K_ih^T * di + K_zh^T * da_z
            -> gs_{t-k} += M(k) gshat;  g_d += gshat s_{t-k} dM(k)/dd
    gs_{t-1} -= theta dv                                (unless the reset is detached)
    gx_t  = K_rx^T * da_r + K_ix^T * di [+ K_zx^T * da_z, gate "input"]
    dK_ab += corr(da_a, b_t); db_a += sum over positions of da_a
"""

from __future__ import annotations

import math

import numpy as np

from evsim._numba_config import FAST, PARALLEL_FAST, import_numba

from .surrogates import spike_fn, surrogate_grad

numba = import_numba()   # before any kernel is defined: installs evsim's cache locator
prange = numba.prange

GATE_CURRENT, GATE_INPUT = 0, 1     # evsim.cells.csgru.GATES


@numba.njit(**FAST)
def conv_acc(kern, src, out):
    """out[c, p] += sum_{c', m} K[c, c', m] src[c', p + m - k//2]."""
    c_out, c_src, k = kern.shape
    n_p = src.shape[1]
    half = k // 2
    for c in range(c_out):
        for cs in range(c_src):
            for m in range(k):
                w = kern[c, cs, m]
                off = m - half
                for p in range(max(0, -off), min(n_p, n_p - off)):
                    out[c, p] += w * src[cs, p + off]


@numba.njit(**FAST)
def conv_t_acc(kern, g, out):
    """The transpose: out[c', q] += sum_{c, m} K[c, c', m] g[c, q - m + k//2]."""
    c_out, c_src, k = kern.shape
    n_p = g.shape[1]
    half = k // 2
    for c in range(c_out):
        for cs in range(c_src):
            for m in range(k):
                w = kern[c, cs, m]
                off = m - half
                for p in range(max(0, -off), min(n_p, n_p - off)):
                    out[cs, p + off] += w * g[c, p]


@numba.njit(**FAST)
def corr_acc(g, src, dk):
    """dK[c, c', m] += sum_p g[c, p] src[c', p + m - k//2]."""
    c_out, c_src, k = dk.shape
    n_p = g.shape[1]
    half = k // 2
    for c in range(c_out):
        for cs in range(c_src):
            for m in range(k):
                off = m - half
                acc = 0.0
                for p in range(max(0, -off), min(n_p, n_p - off)):
                    acc += g[c, p] * src[cs, p + off]
                dk[c, cs, m] += acc


@numba.njit(**FAST)
def _sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


def csgru_fwd(x, p, klo, mtab, sur, alpha, smooth, s_reset, use_s_reset, r, i, z, v, s, shat):
    """Run the layer over x (B, T, Cin, P); fill r, i, z, v, s, shat (B, T, C, P).

    use_s_reset: the soft reset subtracts the fixed train ``s_reset`` (B, T, C, P) in
    place of the layer's own spikes (gradient checks of the detached reset only)."""
    if p.gate != GATE_CURRENT and p.gate != GATE_INPUT:
        raise ValueError("unknown CS-GRU gate code")
    n_b, n_t, c, n_p = v.shape
    nq = mtab.shape[2]
    for b in prange(n_b):
        a_r = np.empty((c, n_p))
        a_i = np.empty((c, n_p))
        a_z = np.empty((c, n_p))
        for t in range(n_t):
            # delayed, spread recurrent spikes arriving now
            for cc in range(c):
                for pp in range(n_p):
                    acc = 0.0
                    for q in range(nq):
                        k = klo[cc, pp] + q
                        if k > t:
                            break
                        acc += mtab[cc, pp, q] * s[b, t - k, cc, pp]
                    shat[b, t, cc, pp] = acc
            # gates and current
            for cc in range(c):
                for pp in range(n_p):
                    a_r[cc, pp] = p.b_r[cc]
                    a_i[cc, pp] = p.b_i[cc]
                    a_z[cc, pp] = p.b_z[cc]
            conv_acc(p.k_rx, x[b, t], a_r)
            conv_acc(p.k_rh, shat[b, t], a_r)
            conv_acc(p.k_ix, x[b, t], a_i)
            conv_acc(p.k_ih, shat[b, t], a_i)
            for cc in range(c):
                for pp in range(n_p):
                    rr = _sigmoid(a_r[cc, pp])
                    r[b, t, cc, pp] = rr
                    i_prev = i[b, t - 1, cc, pp] if t > 0 else 0.0
                    i[b, t, cc, pp] = rr * i_prev + a_i[cc, pp]
            if p.gate == GATE_CURRENT:
                conv_acc(p.k_zin, i[b, t], a_z)
            else:
                conv_acc(p.k_zin, x[b, t], a_z)
            conv_acc(p.k_zh, shat[b, t], a_z)
            # membrane with the soft reset of s_{t-1}, then spikes
            for cc in range(c):
                for pp in range(n_p):
                    zz = _sigmoid(a_z[cc, pp])
                    z[b, t, cc, pp] = zz
                    v_prev = v[b, t - 1, cc, pp] if t > 0 else 0.0
                    s_prev = 0.0
                    if t > 0:
                        s_prev = s_reset[b, t - 1, cc, pp] if use_s_reset else s[b, t - 1, cc, pp]
                    vv = zz * v_prev + (1.0 - zz) * i[b, t, cc, pp] - p.theta * s_prev
                    v[b, t, cc, pp] = vv
                    s[b, t, cc, pp] = spike_fn(vv - p.theta, sur, alpha, smooth)


def csgru_bwd(gs_ext, x, p, klo, mtab, dmtab, detach, sur, alpha, r, i, z, v, s, shat,
              gx, g_krx, g_kix, g_kzin, g_krh, g_kih, g_kzh, g_bias, g_delay):
    """Backward through time of :func:`csgru_fwd`.

    gs_ext: dL/ds_t from outside the layer, (B, T, C, P).  Outputs, per sample (the caller
    sums over b): gx (B, T, Cin, P); g_k** (B, <kernel shape>); g_bias (B, 3, C) for
    b_r, b_i, b_z; g_delay (B, C, P).  Every output is overwritten.
    """
    if p.gate != GATE_CURRENT and p.gate != GATE_INPUT:
        raise ValueError("unknown CS-GRU gate code")
    n_b, n_t, c, n_p = v.shape
    nq = mtab.shape[2]
    for b in prange(n_b):
        for arr in (g_krx[b], g_kix[b], g_kzin[b], g_krh[b], g_kih[b], g_kzh[b]):
            arr[:] = 0.0
        g_bias[b] = 0.0
        g_delay[b] = 0.0
        gx[b] = 0.0
        gs_rec = np.zeros((n_t, c, n_p))        # dL/ds_t through later steps (delays, reset)
        gv_carry = np.zeros((c, n_p))           # z_{t+1} dv_{t+1}
        gi_carry = np.zeros((c, n_p))           # r_{t+1} di_{t+1}
        dv = np.empty((c, n_p))
        da_z = np.empty((c, n_p))
        di = np.empty((c, n_p))
        da_r = np.empty((c, n_p))
        gshat = np.empty((c, n_p))
        zeros = np.zeros((c, n_p))
        for t in range(n_t - 1, -1, -1):
            i_prev = i[b, t - 1] if t > 0 else zeros
            v_prev = v[b, t - 1] if t > 0 else zeros
            # membrane and update gate
            for cc in range(c):
                for pp in range(n_p):
                    gs = gs_ext[b, t, cc, pp] + gs_rec[t, cc, pp]
                    d = gv_carry[cc, pp] + gs * surrogate_grad(v[b, t, cc, pp] - p.theta, sur, alpha)
                    dv[cc, pp] = d
                    zz = z[b, t, cc, pp]
                    da_z[cc, pp] = d * (v_prev[cc, pp] - i[b, t, cc, pp]) * zz * (1.0 - zz)
                    di[cc, pp] = gi_carry[cc, pp] + d * (1.0 - zz)
            if p.gate == GATE_CURRENT:
                conv_t_acc(p.k_zin, da_z, di)
                corr_acc(da_z, i[b, t], g_kzin[b])
            else:
                conv_t_acc(p.k_zin, da_z, gx[b, t])
                corr_acc(da_z, x[b, t], g_kzin[b])
            # reset-like gate
            for cc in range(c):
                for pp in range(n_p):
                    rr = r[b, t, cc, pp]
                    da_r[cc, pp] = di[cc, pp] * i_prev[cc, pp] * rr * (1.0 - rr)
                    g_bias[b, 0, cc] += da_r[cc, pp]
                    g_bias[b, 1, cc] += di[cc, pp]
                    g_bias[b, 2, cc] += da_z[cc, pp]
                    gv_carry[cc, pp] = z[b, t, cc, pp] * dv[cc, pp]
                    gi_carry[cc, pp] = rr * di[cc, pp]
                    if t > 0 and not detach:
                        gs_rec[t - 1, cc, pp] -= p.theta * dv[cc, pp]
            # input side
            conv_t_acc(p.k_rx, da_r, gx[b, t])
            conv_t_acc(p.k_ix, di, gx[b, t])
            corr_acc(da_r, x[b, t], g_krx[b])
            corr_acc(di, x[b, t], g_kix[b])
            # recurrent side: kernels, then back through the delay spread
            corr_acc(da_r, shat[b, t], g_krh[b])
            corr_acc(di, shat[b, t], g_kih[b])
            corr_acc(da_z, shat[b, t], g_kzh[b])
            gshat[:] = 0.0
            conv_t_acc(p.k_rh, da_r, gshat)
            conv_t_acc(p.k_ih, di, gshat)
            conv_t_acc(p.k_zh, da_z, gshat)
            for cc in range(c):
                for pp in range(n_p):
                    g = gshat[cc, pp]
                    gd = 0.0
                    for q in range(nq):
                        k = klo[cc, pp] + q
                        if k > t:
                            break
                        gs_rec[t - k, cc, pp] += mtab[cc, pp, q] * g
                        gd += s[b, t - k, cc, pp] * dmtab[cc, pp, q]
                    g_delay[b, cc, pp] += g * gd


# Two builds of each, as in training/_kernels.py: batch-parallel, and serial for small work.
csgru_fwd_parallel = numba.njit(**PARALLEL_FAST)(csgru_fwd)
csgru_bwd_parallel = numba.njit(**PARALLEL_FAST)(csgru_bwd)
csgru_fwd_serial = numba.njit(**FAST)(csgru_fwd)
csgru_bwd_serial = numba.njit(**FAST)(csgru_bwd)

#: below this many unit-steps (B * T * C * P) the serial build is used
PARALLEL_MIN_WORK = 100_000
