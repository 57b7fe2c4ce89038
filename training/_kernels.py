"""Numba kernels of the training forward pass and its backward pass through time.

Only arrays and scalars go in; validation, allocation and the matrix products (through
BLAS) live in :mod:`evsim.training.network`.  Each layer kernel runs the samples of a batch in
parallel (``prange`` over b; every thread writes only its own sample's rows).

A hidden layer is two parts, each with a paired forward and backward step:

* **delivery** (:func:`deliver_fwd` / :func:`deliver_bwd`): the delayed, spread spikes and
  the recurrence, the same for every cell;
* **the cell** (:func:`evsim.training.cells.cell_fwd` / :func:`evsim.training.cells.cell_bwd`): the
  membrane update and the spike, per registered cell.

Notation (one hidden layer, n neurons, per sample b)::

    c_t     feed-forward drive after BatchNorm, (T, n)        -- computed outside
    z_t[j]  = zm_t[j] * sum_k M[j, k] s_{t-k}[j]              delayed, spread spikes
    R_t     = W_rec z_t  |  R_t[i] = sum_m K[m] z_t[i+m-h]    recurrent input (h = k//2)
    I_t     = c_t + R_t            (mask on the spikes: "spikes", evsim's first placement)
    I_t     = c_t + rm_t * R_t     (mask on the recurrent input: "input", DelRec/CRSNN codes)
    then the cell: v_t, s_t (and its extra state) from I_t

The delay mask is stored as a table over each neuron's window only: neuron j's nonzero
``M[j, k]`` lie at ``k = klo[j] + q`` for ``q = 0 .. nq-1``; ``mtab[j, q] = M[j, klo[j]+q]``
and ``dmtab[j, q] = dM[j, klo[j]+q] / dd_j`` (zero past the window's end).  The spread
costs O(B T n nq) with nq ~ 2 w, not O(B T n L).

``rec_kind``: ``evsim.model.RECURRENCE_CODE`` of the layer's recurrence: 0 none, 1 dense
(``w_rec_t`` is W_rec transposed, (n, n), row = source), 2 conv (``kernel``, (k,)).
``mask_at``: where the recurrent dropout mask ``dmask`` (B, T, n) acts: 0 nowhere (no
recurrent dropout; ``dmask`` may be a (1, 1, 1) stand-in), 1 on z (``MASK_SPIKES``), 2 on R
(``MASK_INPUT``).
"""

from __future__ import annotations

import numpy as np

from evsim._numba_config import PARALLEL_TRAIN, TRAIN, import_numba
from evsim.model import RECURRENCE_CODE

from .cells import cell_bwd, cell_fwd

numba = import_numba()   # before any kernel is defined: installs evsim's cache locator
prange = numba.prange

REC_NONE, REC_DENSE, REC_CONV = RECURRENCE_CODE["none"], RECURRENCE_CODE["dense"], RECURRENCE_CODE["conv"]
MASK_NONE, MASK_SPIKES, MASK_INPUT = 0, 1, 2


@numba.njit(**TRAIN)
def copy_row(src, dst):
    """dst[:] = src for rows (n,), as a plain loop: numba's ``dst[:] = src`` checks the two
    for overlap and copies through a temporary (~0.5 us for 256 floats, 30x the loop)."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@numba.njit(**TRAIN)
def shift_in(shifted_b, t, klo, s_bt):
    """Record the spikes ``s_bt`` (n,) of step t where the delivery reads them:
    ``shifted_b[t + klo[j], j] = s_t[j]`` (steps past the sample's end are dropped), so that
    ``shifted_b[u, j] = s_{u - klo[j]}[j]`` (0 before the first spike can arrive)."""
    n_t = shifted_b.shape[0]
    for j in range(s_bt.shape[0]):
        u = t + klo[j]
        if u < n_t:
            shifted_b[u, j] = s_bt[j]


@numba.njit(**TRAIN)
def shifted_spikes(s_b, klo, shifted_b):
    """``shifted_b`` (T, n) = the spikes ``s_b`` (T, n) of every step put in by :func:`shift_in`."""
    shifted_b[:] = 0.0
    for t in range(s_b.shape[0]):
        shift_in(shifted_b, t, klo, s_b[t])


@numba.njit(**TRAIN)
def spread(shifted_b, t, mtab_t, acc):
    """acc (n,) float64 = sum_q mtab[j, q] s_{t-klo[j]-q}[j] = sum_q mtab_t[q, j] shifted_b[t-q, j]
    over the window steps that exist (q <= t; a step before the first arrival holds 0), in q
    order: each product and sum as the one-neuron-at-a-time loop formed them, but as
    contiguous row passes that vectorise (``mtab_t``: the table transposed, (nq, n))."""
    acc[:] = 0.0
    for q in range(min(mtab_t.shape[0], t + 1)):
        m_q = mtab_t[q]
        row = shifted_b[t - q]
        for j in range(acc.shape[0]):
            acc[j] += m_q[j] * row[j]


@numba.njit(**TRAIN)
def deliver_fwd(shifted_b, t, mtab_t, mask_bt, mask_at, rec_kind, w_rec_t, kernel, z_bt, r, acc):
    """Delivery at step t of one sample: z_t into ``z_bt`` (n,) from the spikes arrived so
    far (``shifted_b``, :func:`shift_in`), and R_t into ``r`` (n,), masked where ``mask_at``
    says; ``acc`` (n,) float64 workspace."""
    n = r.shape[0]
    # delayed, spread presynaptic spikes arriving now
    spread(shifted_b, t, mtab_t, acc)
    if mask_at == MASK_SPIKES:
        for j in range(n):
            z_bt[j] = acc[j] * mask_bt[j]
    else:
        for j in range(n):
            z_bt[j] = acc[j]
    # recurrent input
    if rec_kind == REC_DENSE:
        r[:] = 0.0
        for j in range(n):
            zj = z_bt[j]
            if zj != 0.0:
                w_j = w_rec_t[j]
                for i in range(n):
                    r[i] += w_j[i] * zj
    elif rec_kind == REC_CONV:
        conv_same(kernel, z_bt, r, False)
    else:
        raise ValueError("unknown recurrence code (expected 1 dense or 2 conv)")
    if mask_at == MASK_INPUT:
        for i in range(n):
            r[i] *= mask_bt[i]


@numba.njit(**TRAIN)
def conv_same(kernel, x, out, flip):
    """out[i] = sum_m K[m] x[i + m - h] (``flip``: sum_m K[m] x[i - m + h]), zeros past the
    edges, h = k // 2: summed in ``out``'s dtype in m order, one shifted vector pass per tap
    over slices (an index ``i + off`` that may be negative makes numba test it for Python's
    wrap-around in the loop, which kept LLVM from vectorising: 7x slower)."""
    n = x.shape[0]
    half = kernel.shape[0] // 2
    out[:] = 0.0
    for m in range(kernel.shape[0]):
        off = half - m if flip else m - half
        km = kernel[m]
        lo, hi = max(0, -off), min(n, n - off)
        dst = out[lo:hi]
        src = x[lo + off:hi + off]
        for i in range(hi - lo):
            dst[i] += km * src[i]


@numba.njit(**TRAIN)
def kernel_grad(gr, z_bt, g_kernel_b):
    """dL/dK[m] += sum_i dL/dR_t[i] z_t[i + m - h] (each sum in float64, over slices as in
    :func:`conv_same`)."""
    n = gr.shape[0]
    half = g_kernel_b.shape[0] // 2
    for m in range(g_kernel_b.shape[0]):
        off = m - half
        lo, hi = max(0, -off), min(n, n - off)
        g = gr[lo:hi]
        zs = z_bt[lo + off:hi + off]
        acc = 0.0
        for i in range(hi - lo):
            acc += g[i] * zs[i]
        g_kernel_b[m] += acc


@numba.njit(**TRAIN)
def deliver_bwd(g_cur_bt, shifted_b, t, z_bt, mtab_t, dmtab_t, mask_bt, mask_at, rec_kind, w_rec_t, kernel,
                gr, gz, back_b, g_delay_b, g_kernel_b, acc):
    """Backward of :func:`deliver_fwd` at step t: from dL/dI_t (``g_cur_bt``, (n,)) add
    dL/dz_t spread back over the window to ``back_b`` (T, n): ``back_b[u, j] += mtab[j, q]
    dL/dz_{u+q}[j]``, so that dL/ds_{t'}[j] through the recurrence is ``back_b[t' + klo[j],
    j]`` once every later step is done; add dL/dd to ``g_delay_b`` (n,) and dL/dK to
    ``g_kernel_b`` (k,); ``gr``, ``gz`` (n,) workspace (dL/dR_t, dL/dz_t), ``acc`` (n,)
    float64 workspace.  The sums are those of a loop over neurons and window steps, in the
    same order (``back_b`` rows in decreasing t), as contiguous row passes."""
    n = gr.shape[0]
    if mask_at == MASK_INPUT:
        for i in range(n):
            gr[i] = g_cur_bt[i] * mask_bt[i]
    else:
        copy_row(g_cur_bt, gr)
    # recurrent input: dL/dz_t
    if rec_kind == REC_DENSE:
        for j in range(n):
            w_j = w_rec_t[j]
            acc_j = 0.0
            for i in range(n):
                acc_j += w_j[i] * gr[i]
            gz[j] = acc_j
    elif rec_kind != REC_CONV:
        raise ValueError("unknown recurrence code (expected 1 dense or 2 conv)")
    else:
        conv_same(kernel, gr, gz, True)
        kernel_grad(gr, z_bt, g_kernel_b)
    if mask_at == MASK_SPIKES:
        for j in range(n):
            gz[j] *= mask_bt[j]
    # delayed spikes: to earlier spikes through M, to the delays through dM/dd
    nq = min(mtab_t.shape[0], t + 1)
    for q in range(nq):
        m_q = mtab_t[q]
        row = back_b[t - q]
        for j in range(n):
            row[j] += m_q[j] * gz[j]
    spread(shifted_b, t, dmtab_t, acc)      # sum_q dM[j, k]/dd_j s_{t-k}[j]
    for j in range(n):
        g_delay_b[j] += gz[j] * acc[j]


def layer_fwd(c, cell, beta, gain, theta, extra, reset_sub, rec_kind, w_rec_t, kernel, klo, mtab, dmask,
              mask_at, sur, alpha, smooth, fmask, has_fmask, cur, v, s, a, z, out, counts):
    """Run one hidden layer over time: fill I_t into ``cur``, v, s (B, T, n), the cell's
    extra state a (B, T, S, n) and, if recurrent, z (B, T, n); with ``has_fmask`` the
    layer's output s * fm (``fmask`` (B, T, n), or (B, 1, n) for one mask per sequence)
    into ``out`` (without: ``out`` is ``s``); each sample's spike count (the sum of s) into
    ``counts[b, 0]`` and the non-zeros of its output into ``counts[b, 1]`` ((B, 2) float64:
    what routes the next layer's products, :func:`evsim.training._threaded.matmul`, without
    counting them again)."""
    n_b, n_t, n = c.shape
    mtab_t = np.ascontiguousarray(mtab.T)
    for b in prange(n_b):
        r = np.zeros_like(beta)
        v_prev = np.zeros_like(beta)
        s_prev = np.zeros_like(beta)
        a_prev = np.zeros((a.shape[2], n), beta.dtype)
        acc = np.zeros(n)
        shifted_b = np.zeros((n_t if rec_kind != REC_NONE else 0, n), beta.dtype)
        count = 0.0
        nonzero = 0
        for t in range(n_t):
            if rec_kind != REC_NONE:
                deliver_fwd(shifted_b, t, mtab_t, dmask[b, t] if mask_at != MASK_NONE else dmask[0, 0],
                            mask_at, rec_kind, w_rec_t, kernel, z[b, t], r, acc)
            # membrane update with the reset of the previous step's spikes, then spikes
            c_bt, cur_bt = c[b, t], cur[b, t]
            for i in range(n):
                cur_bt[i] = c_bt[i] + r[i]
            cell_fwd(cell, v_prev, s_prev, a_prev, cur_bt, beta, gain, theta, extra, reset_sub, sur, alpha,
                     smooth, v[b, t], s[b, t], a[b, t])
            copy_row(v[b, t], v_prev)
            copy_row(s[b, t], s_prev)
            for k in range(a_prev.shape[0]):
                copy_row(a[b, t, k], a_prev[k])
            if rec_kind != REC_NONE:
                shift_in(shifted_b, t, klo, s_prev)
            # the layer's output through the feed-forward dropout mask; spikes counted
            out_bt = out[b, t]
            if has_fmask:
                fm = fmask[b, t if fmask.shape[1] == n_t else 0]
                for i in range(n):
                    out_bt[i] = s_prev[i] * fm[i]
            for i in range(n):
                count += s_prev[i]
                nonzero += out_bt[i] != 0.0
        counts[b, 0] = count
        counts[b, 1] = nonzero


def layer_bwd(g_out, fmask, has_fmask, g_pen, v, s, a, z, cur, cell, n_carry, beta, gain, theta, extra,
              reset_sub, detach, rec_kind, w_rec_t, kernel, klo, mtab, dmtab, dmask, mask_at, sur, alpha, learn,
              g_cur, g_delay, g_kernel, g_cell):
    """Backward through time of :func:`layer_fwd`.

    g_out: dL/d(the layer's output) from the next layer or the readout, (B, T, n); the
        spikes get dL/ds_t = g_out fm (``has_fmask``) + g_pen (the rate penalty's constant
        slope, in the arrays' dtype) + what the recurrence sends back (:func:`deliver_bwd`)
    g_cur:  out, dL/dI_t (= dL/dc_t), (B, T, n)
    g_delay: out, per-sample dL/dd_j, (B, n) (summed over the batch by the caller)
    g_kernel: out, per-sample dL/dK (conv), (B, k); dense dL/dW_rec is one BLAS product
        of dL/dR_t and z, done by the caller
    g_cell: out, per-sample cell parameter gradients (B, 2 + P, n) when ``learn``
    """
    n_b, n_t, n = v.shape
    mtab_t = np.ascontiguousarray(mtab.T)
    dmtab_t = np.ascontiguousarray(dmtab.T)
    recurrent = rec_kind != REC_NONE
    for b in prange(n_b):
        rows = n_t if recurrent else 0
        back_b = np.zeros((rows, n), v.dtype)        # dL/dz spread back, see deliver_bwd
        shifted_b = np.empty((rows, n), v.dtype)
        if recurrent:
            shifted_spikes(s[b], klo, shifted_b)
        carry = np.zeros((n_carry, n), v.dtype)
        gs = np.zeros_like(beta)
        gr = np.zeros_like(beta)
        gz = np.zeros_like(beta)
        acc = np.zeros(n)
        g_delay[b, :] = 0.0
        g_kernel[b, :] = 0.0
        g_cell[b, :, :] = 0.0
        for t in range(n_t - 1, -1, -1):
            g_out_bt = g_out[b, t]
            if has_fmask:
                fm = fmask[b, t if fmask.shape[1] == n_t else 0]
                for i in range(n):
                    gs[i] = g_out_bt[i] * fm[i] + g_pen
            else:
                for i in range(n):
                    gs[i] = g_out_bt[i] + g_pen
            if recurrent:   # dL/ds_t arriving through later steps' z
                for i in range(n):
                    u = t + klo[i]
                    if u < n_t:
                        gs[i] += back_b[u, i]
            cell_bwd(cell, t, v[b], s[b], a[b], cur[b], beta, gain, theta, extra, reset_sub, detach, sur, alpha,
                     gs, carry, learn, g_cur[b, t], g_cell[b])
            if recurrent:
                deliver_bwd(g_cur[b, t], shifted_b, t, z[b, t], mtab_t, dmtab_t,
                            dmask[b, t] if mask_at != MASK_NONE else dmask[0, 0], mask_at, rec_kind, w_rec_t,
                            kernel, gr, gz, back_b, g_delay[b], g_kernel[b], acc)


# Each time-loop kernel in two builds: batch-parallel, and serial for small batches (the
# gradient checks, single samples), where starting threads costs more than it saves and
# a shared, loaded machine makes every parallel region wait for a descheduled thread.
layer_fwd_parallel = numba.njit(**PARALLEL_TRAIN)(layer_fwd)
layer_bwd_parallel = numba.njit(**PARALLEL_TRAIN)(layer_bwd)
layer_fwd_serial = numba.njit(**TRAIN)(layer_fwd)
layer_bwd_serial = numba.njit(**TRAIN)(layer_bwd)

#: below this many neuron-steps (B * T * n) per layer the serial build is used
PARALLEL_MIN_WORK = 100_000


def build(module, name: str, work: int):
    """Kernel ``name`` of ``module`` (this one, or another with the same two builds) for
    ``work`` items: ``name_parallel`` from ``module.PARALLEL_MIN_WORK`` on, else ``name_serial``."""
    return getattr(module, f"{name}_parallel" if work >= module.PARALLEL_MIN_WORK else f"{name}_serial")


#: rows per partial sum of the BatchNorm kernels: fixed, so that the sums (and every
#: result) do not depend on the thread count
BN_CHUNK = 64


def batchnorm_fwd(a, bias, gamma, beta_bn, eps, xhat, c):
    """Training BatchNorm of the rows ``a + bias`` (rows, n): writes xhat = (a + b - mu) /
    sqrt(var + eps) and c = gamma xhat + beta_bn, and returns (mu, var) (float64, var
    biased) and inv_std (a's dtype).  Three passes over row chunks of :data:`BN_CHUNK`
    rows (sums in float64, per chunk then in chunk order), the bias added on the fly."""
    rows, n = a.shape
    n_chunks = (rows + BN_CHUNK - 1) // BN_CHUNK
    part = np.zeros((n_chunks, n))
    # column sums -> mean
    for k in prange(n_chunks):
        for r in range(k * BN_CHUNK, min(rows, (k + 1) * BN_CHUNK)):
            for i in range(n):
                part[k, i] += a[r, i] + bias[i]
    mu = _chunk_sum(part) / rows
    mu_d = mu.astype(a.dtype)
    # squared deviations -> biased variance
    part[:] = 0.0
    for k in prange(n_chunks):
        for r in range(k * BN_CHUNK, min(rows, (k + 1) * BN_CHUNK)):
            for i in range(n):
                dev = (a[r, i] + bias[i]) - mu[i]
                part[k, i] += dev * dev
    var = _chunk_sum(part) / rows
    inv_std = (1.0 / np.sqrt(var + eps)).astype(a.dtype)
    # normalise, scale, shift
    for k in prange(n_chunks):
        for r in range(k * BN_CHUNK, min(rows, (k + 1) * BN_CHUNK)):
            for i in range(n):
                xh = ((a[r, i] + bias[i]) - mu_d[i]) * inv_std[i]
                xhat[r, i] = xh
                c[r, i] = xh * gamma[i] + beta_bn[i]
    return mu, var, inv_std


def batchnorm_bwd(gc, xhat, gamma, inv_std, ga):
    """Backward of :func:`batchnorm_fwd` from dL/dc (``gc``, rows, n): writes dL/da into
    ``ga`` = inv_std gamma (gc - mean(gc) - xhat mean(gc xhat)) and returns the float64
    sums (dL/dbeta_bn = sum gc, dL/dgamma = sum gc xhat, dL/db = sum ga) over the rows."""
    rows, n = gc.shape
    n_chunks = (rows + BN_CHUNK - 1) // BN_CHUNK
    part_g = np.zeros((n_chunks, n))
    part_gx = np.zeros((n_chunks, n))
    for k in prange(n_chunks):
        for r in range(k * BN_CHUNK, min(rows, (k + 1) * BN_CHUNK)):
            for i in range(n):
                part_g[k, i] += gc[r, i]
                part_gx[k, i] += gc[r, i] * xhat[r, i]
    sum_g = _chunk_sum(part_g)
    sum_gx = _chunk_sum(part_gx)
    mean_g = (sum_g / rows).astype(gc.dtype)
    mean_gx = (sum_gx / rows).astype(gc.dtype)
    scale = inv_std * gamma
    part_g[:] = 0.0
    for k in prange(n_chunks):
        for r in range(k * BN_CHUNK, min(rows, (k + 1) * BN_CHUNK)):
            for i in range(n):
                g = scale[i] * (gc[r, i] - mean_g[i] - xhat[r, i] * mean_gx[i])
                ga[r, i] = g
                part_g[k, i] += g
    return sum_g, sum_gx, _chunk_sum(part_g)


@numba.njit(**TRAIN)
def _chunk_sum(part):
    """Column sums of ``part`` (chunks, n), chunk by chunk in order."""
    total = np.zeros(part.shape[1])
    for k in range(part.shape[0]):
        for i in range(part.shape[1]):
            total[i] += part[k, i]
    return total


batchnorm_fwd_parallel = numba.njit(**PARALLEL_TRAIN)(batchnorm_fwd)
batchnorm_bwd_parallel = numba.njit(**PARALLEL_TRAIN)(batchnorm_bwd)
batchnorm_fwd_serial = numba.njit(**TRAIN)(batchnorm_fwd)
batchnorm_bwd_serial = numba.njit(**TRAIN)(batchnorm_bwd)


@numba.njit(**TRAIN)
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


@numba.njit(**TRAIN)
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
