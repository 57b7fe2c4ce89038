"""Numba kernels of the cochlea's hair-cell and bushy-cell stages (see evsim.audio).

One call advances every channel through a block of membrane samples, sample by sample
with all channels inside (the block is time-major, (T, C), so the channel loops are
contiguous and vectorise; the former channel-outer loop with one Binomial draw per
channel per sample took 0.095 CPU s per second of a word, this one ~0.067 on the same
input in the same session, plus 0.017 for :func:`transpose`).  State
lives in arrays the caller owns, so a stream continues exactly where the last block
stopped.

Per sample, per channel (Meddis 1986/1988 hair cell; ``dt = 1 / out_rate``)::

    # hair cell: transmitter in the free pool q, the cleft c, the reprocessing store w
    k   = g dt max(v + A, 0) / (max(v + A, 0) + B)          permeability
    q'  = max(q + y dt max(M - q, 0) - k q + x dt w, 0)
    c'  = max(c + k q - (l + r) dt c, 0)
    w'  = max(w + r dt c - x dt w, 0)
    p   = min(h dt c', 1)                                    release probability

    # fibres: each of the n_fibres not refractory spikes with probability p; a fibre that
    # spiked is refractory for the next `fibre_block` samples.
    n_spk ~ Binomial(a, p),   a = n_fibres - spikes in the last fibre_block samples

    # bushy cell: leaky integrate-and-fire, threshold 1
    isyn = isyn e_syn + n_spk
    refractory (ref > 0):  vm = 0, ref -= 1
    otherwise:             vm = vm e_mem + w_syn dt isyn;  vm >= 1 -> spike, ref = ref_steps

How the Binomial is drawn (one random number per fibre *event*, not per sample).  Per
channel the kernel keeps a survival product ``S`` (since the last sample in which any
fibre fired) and a threshold ``U`` uniform in (0, 1]; each sample ``S *= (1 - p)^a``
(``(1 - p)^a`` by squaring: multiplications only) and fibres fire when ``S < U``; then
``n_spk`` is drawn from Binomial(a, p) conditioned on ``n_spk >= 1`` by inverting its CDF
on ``[(1 - p)^a, 1)`` with the uniform number ``(S_t-1 - U) / (S_t-1 - S_t)`` (where U
fell in the last step: uniform and independent of the past, so no new number is
needed), ``S = 1`` and a fresh ``U`` is drawn.  Given everything before, the sample fires
with probability ``1 - (1 - p)^a`` exactly (``P(U <= S_t | U <= S_t-1) = S_t / S_t-1``)
and its count then has the conditional law, so ``n_spk`` is Binomial(a, p) as before:
the same process, the random numbers are only spent differently (tested: the kernel
against a literal reference using SciPy's CDF; the conditional draw and the counts of a
steady drive against SciPy).  Most samples cost a few multiplications and a compare.

Random numbers: a fibre event at sample t, channel i draws its next threshold
``U = 1 - uniform(seed, t C + i)`` (output ``t C + i + 1`` of the counter-based SplitMix64
below); the first threshold of channel i is ``1 - uniform(seed, 2^63 + i)``.  So the numbers
do not depend on how samples were split into blocks (streaming = offline, bit for bit).

This is the bushy cell of lauscher 1.0.1 written without its one-step delay: there a
crossing at sample s is noticed at s + 1 and recorded at s; here it is recorded at s
directly, and the cell is silent for the following ``ceil(ref_steps)`` samples as there.
"""

from __future__ import annotations


import numba
import numpy as np

from .._numba_config import FAST


_VEC = dict(FAST, error_model="numpy")     # no ZeroDivisionError branch: the loops vectorise

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@numba.njit(**FAST)
def uniform(seed, counter):
    """The ``counter + 1``-th output of SplitMix64 started at ``seed``, as a float64 in
    [0, 1): a counter-based generator, so the number for (sample, channel) does not depend
    on the order or the blocks in which samples are processed."""
    z = seed + (counter + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return float(np.int64(z >> np.uint64(11))) * (1.0 / 9007199254740992.0)   # int64 -> float: one instruction


@numba.njit(**_VEC)
def multiply_fold(spec_fwd, spec_rev, kern_fwd, kern_rev, out):
    """Per channel i, the product ``P = S * K_i`` of a block's spectrum and the kernel's,
    folded onto the spectrum of its even samples: ``out[i, k] = P_k + conj(P_{B/2 - k})``
    for k = 0..B/4, so ``irfft(out, B/2)`` is the even samples of ``irfft(P, B)`` times 2
    (the 1/2 is in the kernels).  All arrays are float32 (re, im) pairs so the loop is
    plain vector arithmetic: spec_fwd/kern_fwd hold bins 0..B/4, spec_rev/kern_rev bins
    B/2 down to B/4, each (n, B/4 + 1, 2)."""
    n_ch, n_k = kern_fwd.shape[0], kern_fwd.shape[1]
    for i in range(n_ch):
        for k in range(n_k):
            ar = spec_fwd[k, 0] * kern_fwd[i, k, 0] - spec_fwd[k, 1] * kern_fwd[i, k, 1]
            ai = spec_fwd[k, 0] * kern_fwd[i, k, 1] + spec_fwd[k, 1] * kern_fwd[i, k, 0]
            br = spec_rev[k, 0] * kern_rev[i, k, 0] - spec_rev[k, 1] * kern_rev[i, k, 1]
            bi = spec_rev[k, 0] * kern_rev[i, k, 1] + spec_rev[k, 1] * kern_rev[i, k, 0]
            out[i, k, 0] = ar + br
            out[i, k, 1] = ai - bi


@numba.njit(**_VEC)
def transpose(src, dst):
    """dst = src.T for 2-D float32 arrays, in 64 x 64 tiles (the filter bank's channel-major
    output to the time-major layout of :func:`cochlea_block`; 3x faster than NumPy's copy
    of ``src.T`` here)."""
    n0, n1 = src.shape
    for i0 in range(0, n0, 64):
        for j0 in range(0, n1, 64):
            for i in range(i0, min(i0 + 64, n0)):
                for j in range(j0, min(j0 + 64, n1)):
                    dst[j, i] = src[i, j]


@numba.njit(**FAST)
def binomial_at_least_one(n, p, f, u):
    """Smallest k >= 1 with f + u (1 - f) < P(Binomial(n, p) <= k), for u uniform in
    [0, 1) and f = (1 - p)^n = P(k = 0): a draw of Binomial(n, p) conditioned on k >= 1
    (inversion of the CDF restricted to [f, 1))."""
    if p >= 1.0:
        return n
    target = f + u * (1.0 - f)
    ratio = p / (1.0 - p)
    pmf = f
    cdf = f
    k = 0
    while True:
        pmf *= (n - k) / (k + 1.0) * ratio
        k += 1
        cdf += pmf
        if target < cdf or k >= n:
            return k


     # no ZeroDivisionError branch: the loops vectorise


@numba.njit(**_VEC)
def _hair_and_survival(row, hc, n_fibres, q, c, w, blocked, prob, none, surv, before, thr, flags):
    """One sample of every hair cell (prob = release probability min(h dt c, 1)), the
    probability that no available fibre fires (none = (1 - prob)^(n_fibres - blocked), by
    squaring over the 6 bits of a count < 64), and the survival product: surv *= none,
    flags = it fell below the threshold.  Returns how many channels are flagged."""
    a_off, b_sat, m_max, gdt, ydt, xdt, rdt, lrdt, hdt = hc
    n_hit = 0
    for i in range(row.shape[0]):
        qi, ci, wi = q[i], c[i], w[i]
        drive = max(row[i] + a_off, 0.0)
        eject = gdt * drive / (drive + b_sat) * qi
        reprocess = xdt * wi
        q_new = qi + ydt * max(m_max - qi, 0.0) - eject + reprocess
        c_new = max(ci + eject - lrdt * ci, 0.0)
        w[i] = max(wi + rdt * ci - reprocess, 0.0)
        q[i] = max(q_new, 0.0)
        c[i] = c_new
        p = min(c_new * hdt, 1.0)
        prob[i] = p
        avail = np.int32(n_fibres - blocked[i])
        base = 1.0 - p
        f = 1.0
        for b in range(6):
            f *= base if (avail >> b) & 1 else 1.0
            base *= base
        none[i] = f
        s_old = surv[i]
        before[i] = s_old
        s_new = s_old * f
        surv[i] = s_new
        hit = s_new < thr[i]
        flags[i] = hit
        n_hit += hit
    return n_hit


@numba.njit(**FAST)
def _flagged(flags, n, events):
    """The indices of the n non-zero flags, into events (branch-free compaction)."""
    j = 0
    for i in range(flags.shape[0]):
        events[j] = i
        j += flags[i] != 0
        if j == n:
            break
    return n


@numba.njit(**_VEC)
def _fire(flags, surv, before, thr, prob, none, blocked, n_fibres, fired, draw):
    """The fibre counts of the flagged channels (others 0): Binomial(a, p) given >= 1 by
    inversion (:func:`binomial_at_least_one`, its first three steps here, branch-free, so
    the loop vectorises) with the uniform number ``(S_t-1 - U) / (S_t-1 - S_t)`` (where
    the threshold fell: uniform, independent of the past), kept in draw; their survival
    back to 1.  flags: 2 where more than three steps are needed, 1 other hits, 0 none."""
    for i in range(flags.shape[0]):
        hit = flags[i] != 0
        s_i = surv[i]
        gap = before[i] - s_i
        gap = gap if gap > 0.0 else 1.0
        p = prob[i]
        q = max(1.0 - p, 1e-300)
        inv = 1.0 / (gap * q)                      # one division for u and p / q
        u = 1.0 - min((thr[i] - s_i) * q * inv, 1.0)
        ratio = p * gap * inv
        f = none[i]
        draw[i] = u
        target = f + u * (1.0 - f)
        a = n_fibres - blocked[i]
        pmf = f * a * ratio
        cdf = f + pmf
        k = 1.0 + (target >= cdf)
        pmf *= (a - 1.0) / 2.0 * ratio
        cdf += pmf
        k += target >= cdf
        pmf *= (a - 2.0) / 3.0 * ratio
        cdf += pmf
        slow = hit and (target >= cdf) and a > 3.0
        k = min(k + (target >= cdf), a)
        flags[i] = hit + slow
        fired[i] = k if hit else 0.0
        surv[i] = 1.0 if hit else s_i


@numba.njit(**_VEC)
def _bushy_cells(fired, hist_row, blocked, isyn, vm, ref, e_syn, e_mem, wdt, ref_steps, flags):
    """Refractory fibres and one sample of every bushy cell; flags = spiked; returns how many."""
    n_spk = 0
    for i in range(fired.shape[0]):
        k = fired[i]
        blocked[i] += k - hist_row[i]
        hist_row[i] = k
        fired[i] = 0.0
        s_i = isyn[i] * e_syn + k
        isyn[i] = s_i
        r_i = ref[i]
        refr = r_i > 0.0
        v_new = vm[i] * e_mem + wdt * s_i
        cross = (not refr) and v_new >= 1.0
        vm[i] = 0.0 if refr else v_new
        ref[i] = r_i - 1.0 if refr else (ref_steps if cross else r_i)
        flags[i] = cross
        n_spk += cross
    return n_spk


@numba.njit(**FAST)
def cochlea_block(v, hc, bushy, seed, t0, state, hist, out_t, out_c, fibres_out):
    """Hair cells and bushy cells over a block of membrane samples, all channels per
    sample (the channel loops vectorise; tiles of 64-256 channels that keep the state in
    the L1 cache measured 10-50 % slower: the per-sample overhead of the calls wins).

    v: (T, C) float32 membrane velocity, sample t0 + j in row j (see :func:`transpose`);
    hc = (A, B, M, g dt,
    y dt, x dt, r dt, (l + r) dt, h dt); bushy = (n_fibres, e_syn, e_mem, w_syn dt,
    ref_steps); seed: uint64 of the recording; state: (9, C) float64 rows q, c, w,
    survival S, threshold U, blocked fibres, isyn, vm, ref; hist: (R, C) float64 fibre
    spikes of the last R samples, row (t % R).  Spikes go to out_t (global sample) and
    out_c (channel) in time order; returns their number.  out_* need room for
    T * C / 2 + C.  fibres_out: (T, C) float64 to receive the fibre spike counts (tests),
    or shape (0, 0) for none.
    """
    return _tile_block(v, hc, bushy, seed, t0, v.shape[1], 0, state, hist, out_t, out_c, 0, fibres_out)


@numba.njit(**FAST)
def _tile_block(v, hc, bushy, seed, t0, n_ch_all, lo, state, hist, out_t, out_c, n_out, fibres_out):
    """:func:`cochlea_block` for channels lo .. lo + v.shape[1] - 1 of n_ch_all (the arrays
    are those channels' columns), spikes appended to out_* from n_out on."""
    n_fibres, e_syn, e_mem, wdt, ref_steps = bushy
    n_rows, n_ch = v.shape
    span = hist.shape[0]
    q, c, w, surv, thr, blocked, isyn, vm, ref = (state[0], state[1], state[2], state[3], state[4], state[5],
                                                  state[6], state[7], state[8])
    prob = np.empty(n_ch)
    none = np.empty(n_ch)          # P(no fibre fires at this sample) = (1 - p)^available
    before = np.empty(n_ch)        # survival before this sample
    draw = np.empty(n_ch)          # the uniform number of a channel's fibre count
    events = np.empty(n_ch, np.int64)
    flags = np.empty(n_ch, np.uint8)
    fired = np.zeros(n_ch)
    for j in range(n_rows):
        t = t0 + j
        n_hit = _hair_and_survival(v[j], hc, n_fibres, q, c, w, blocked, prob, none, surv, before, thr, flags)
        if n_hit:
            _fire(flags, surv, before, thr, prob, none, blocked, n_fibres, fired, draw)
            for e in range(_flagged(flags, n_hit, events)):
                i = events[e]
                if flags[i] == 2:                   # four or more: the rest of the inversion
                    fired[i] = binomial_at_least_one(int(n_fibres - blocked[i]), prob[i], none[i], draw[i])
                thr[i] = 1.0 - uniform(seed, np.uint64(t * n_ch_all + lo + i))
        if fibres_out.shape[0]:
            fibres_out[j, :] = fired
        n_spk = _bushy_cells(fired, hist[t % span], blocked, isyn, vm, ref, e_syn, e_mem, wdt, ref_steps, flags)
        n_spk = _flagged(flags, n_spk, events)
        for e in range(n_spk):
            out_t[n_out] = t
            out_c[n_out] = lo + events[e]
            n_out += 1
    return n_out
