"""Numba kernels of the cochlea's hair-cell and bushy-cell stages (see evsim.audio).

One call advances every channel through a block of membrane samples, channel by channel
(the block is channel-major as the filter bank produces it; a time-outer variant that
lets the compiler vectorise the hair cells across channels measured 25 % slower, so it
was dropped).  State lives in arrays the caller owns, so a stream continues exactly where
the last block stopped.

Per sample, per channel (Meddis 1986/1988 hair cell; ``dt = 1 / out_rate``)::

    # hair cell: transmitter in the free pool q, the cleft c, the reprocessing store w
    k   = g dt max(v + A, 0) / (max(v + A, 0) + B)          permeability
    q'  = max(q + y dt max(M - q, 0) - k q + x dt w, 0)
    c'  = max(c + k q - (l + r) dt c, 0)
    w'  = max(w + r dt c - x dt w, 0)
    p   = h dt c'                                            release probability

    # fibres: each of the n_fibres not refractory spikes with probability p; a fibre that
    # spiked is refractory for the next `fibre_block` samples.  Fibres are exchangeable,
    # so the number that spike is Binomial(available, p), drawn by inverting its CDF
    # with one uniform number (same distribution as one Bernoulli draw per fibre).
    n_spk ~ Binomial(n_fibres - spikes in the last fibre_block samples, p)

    # bushy cell: leaky integrate-and-fire, threshold 1
    isyn = isyn e_syn + n_spk
    refractory (ref > 0):  vm = 0, ref -= 1
    otherwise:             vm = vm e_mem + w_syn dt isyn;  vm >= 1 -> spike, ref = ref_steps

This is the bushy cell of lauscher 1.0.1 written without its one-step delay: there a
crossing at sample s is noticed at s + 1 and recorded at s; here it is recorded at s
directly, and the cell is silent for the following ``ceil(ref_steps)`` samples as there.
"""

from __future__ import annotations


import numba
import numpy as np

from .._numba_config import FAST


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


@numba.njit(**FAST)
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


@numba.njit(**FAST)
def binomial_inverse(n, p, u):
    """Smallest k with u < P(Binomial(n, p) <= k), for u uniform in [0, 1)."""
    if n <= 0 or p <= 0.0:
        return 0
    # Bounds decide most draws without the CDF (Bonferroni): 1 - n p <= P(k = 0) <=
    # 1 - n p + C(n, 2) p^2 and P(k <= 1) >= 1 - C(n, 2) p^2.
    np_ = n * p
    if u < 1.0 - np_:
        return 0
    pairs = 0.5 * n * (n - 1) * p * p
    if 1.0 - np_ + pairs <= u < 1.0 - pairs:
        return 1
    if p >= 1.0:
        return n
    q = 1.0 - p
    pmf = 1.0                     # q^n by squaring: a few multiplications, no exp/log
    base = q
    e = n
    while e:
        if e & 1:
            pmf *= base
        base *= base
        e >>= 1
    cdf = pmf
    k = 0
    ratio = p / q
    while u >= cdf and k < n:
        pmf *= (n - k) / (k + 1.0) * ratio
        k += 1
        cdf += pmf
    return k


@numba.njit(**FAST)
def cochlea_block(v, hc, bushy, seed, t0, q, c, w, hist, blocked, isyn, vm, ref, out_t, out_c):
    """Hair cells and bushy cells over a block of membrane samples.

    v: (C, T) float32 membrane velocity, sample t0 + j in column j; hc = (A, B, M, g dt,
    y dt, x dt, r dt, (l + r) dt, h dt); bushy = (n_fibres, e_syn, e_mem, w_syn dt,
    ref_steps); seed: uint64 of the recording; q, c, w, isyn, vm, ref: (C,) float64 state;
    hist: (C, R) int32 fibre spikes of the last R samples (R = samples a fibre stays
    refractory), slot (t % R); blocked: (C,) int32 their sum.  Spikes go to out_t (global
    sample) and out_c (channel), channel by channel; returns their number.  out_* need
    room for T * C / 2 + C.
    """
    a_off, b_sat, m_max, gdt, ydt, xdt, rdt, lrdt, hdt = hc
    n_fibres, e_syn, e_mem, wdt, ref_steps = bushy
    n_ch, n_rows = v.shape
    span = hist.shape[1]
    n_out = 0
    for i in range(n_ch):
        qi, ci, wi = q[i], c[i], w[i]
        s_i, v_i, r_i, b_i = isyn[i], vm[i], ref[i], blocked[i]
        slot = t0 % span
        for t in range(n_rows):
            # hair cell
            drive = max(v[i, t] + a_off, 0.0)
            eject = gdt * drive / (drive + b_sat) * qi
            reprocess = xdt * wi
            q_new = qi + ydt * max(m_max - qi, 0.0) - eject + reprocess
            c_new = ci + eject - lrdt * ci
            wi = max(wi + rdt * ci - reprocess, 0.0)
            qi = max(q_new, 0.0)
            ci = max(c_new, 0.0)
            # fibres
            u = uniform(seed, np.uint64((t0 + t) * n_ch + i))
            k = binomial_inverse(int(n_fibres) - b_i, ci * hdt, u)
            b_i += k - hist[i, slot]
            hist[i, slot] = k
            slot += 1
            if slot == span:
                slot = 0
            # bushy cell
            s_i = s_i * e_syn + k
            if r_i > 0.0:
                v_i = 0.0
                r_i -= 1.0
            else:
                v_i = v_i * e_mem + wdt * s_i
                if v_i >= 1.0:
                    out_t[n_out] = t0 + t
                    out_c[n_out] = i
                    n_out += 1
                    r_i = ref_steps
        q[i], c[i], w[i] = qi, ci, wi
        isyn[i], vm[i], ref[i], blocked[i] = s_i, v_i, r_i, b_i
    return n_out

