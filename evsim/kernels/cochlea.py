"""Numba kernels of the cochlea's hair-cell and bushy-cell stages (see evsim.audio).

One call advances every channel through a block of membrane samples, sample by sample
with all channels inside (the block is time-major, (T, C), so the channel loop is
contiguous).  All state lives in one float32 array the caller owns (rows
:data:`STATE_ROWS`, one column per channel), so a stream continues exactly where the last
block stopped, and the per-sample loop is one pass over the channels in float32 that
LLVM vectorises 8 wide (AVX2): hair cell, fibres and bushy cell fused.  (One state array
rather than a dozen: with more than ~8 separate arrays LLVM's run-time alias checks give
up and the loop stays scalar, 5x slower.)  Measured on the same speech in one session
(load ~6, minimum of 5): 0.058 CPU s per second of audio, random numbers included,
against 0.074 for the former float64 kernel of three separate passes.

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
(``(1 - p)^a`` by squaring over the 6 bits of ``a``: multiplications only) and fibres
fire when ``S < U``; then ``n_spk`` is drawn from Binomial(a, p) conditioned on
``n_spk >= 1`` by inverting its CDF on ``[(1 - p)^a, 1)`` with the uniform number
``(S_t-1 - U) / (S_t-1 - S_t)`` (where U fell in the last step: uniform and independent
of the past, so no new number is needed), ``S = 1`` and a fresh ``U`` is drawn.  Given
everything before, the sample fires with probability ``1 - (1 - p)^a`` exactly
(``P(U <= S_t | U <= S_t-1) = S_t / S_t-1``) and its count then has the conditional law,
so ``n_spk`` is Binomial(a, p): the random numbers are only spent differently (tested:
the kernel against a literal float64 reference using SciPy's CDF; the conditional draw
and the counts of a steady drive against SciPy).  The first three steps of the inversion
are branch-free in the vector loop; the rare counts of four or more (0.06 % of
channel-samples in speech) finish in float64 (:func:`binomial_at_least_one`) afterwards.

Order within a sample: the vector pass of sample t first runs the bushy cell of sample
t - 1 (whose fibre count is final by then) and then the hair cell and fibres of t, so
that one pass over the channels does both.  The bushy step of a block's last sample is
run at the end of the block on a copy of the state (to emit its spikes with the block)
and for real at the start of the next block (its spikes not emitted twice).

Precision: float32 throughout (state, survival, thresholds; the hair cell's quantities
are O(1e-3..1) and the survival product is compared with a threshold, so float32's 6e-8
relative rounding moves a decision only when U lies within ~1e-7 of S).  Against the
former float64 kernel the statistics of the spikes are unchanged, and with the same seed
99.9 % of the spikes are the same ones (measured on speech: ``benchmarks/README.md``);
the float64 reference of the tests still matches count for count.

Random numbers: a fibre event at sample t, channel i takes its next threshold
``U = 1 - uniform(seed, t C + i)`` (the top 24 bits of output ``t C + i + 1`` of the
counter-based SplitMix64 below, as float32); the first threshold of channel i is
``1 - uniform(seed, 2^63 + i)``.  The numbers for every channel of a sample are
computed in one vectorised pass (:func:`uniforms`), so they do not depend on how samples
were split into blocks (streaming = offline, bit for bit).

This is the bushy cell of lauscher 1.0.1 written without its one-step delay: there a
crossing at sample s is noticed at s + 1 and recorded at s; here it is recorded at s
directly, and the cell is silent for the following ``ceil(ref_steps)`` samples as there.
"""

from __future__ import annotations

import numpy as np

from .._numba_config import FAST, import_numba

numba = import_numba()   # before any kernel is defined: installs evsim's cache locator


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
    """dst = src.T for 2-D float32 arrays (the filter bank's channel-major output to the
    time-major layout of :func:`cochlea_block`), in 8 x 8 blocks with constant trip
    counts, which LLVM unrolls into vector loads, shuffles and stores: 0.012 CPU s per
    second of audio, against 0.021 for 64 x 64 tiles of scalar copies and 0.047 for
    NumPy's copy of ``src.T`` (same input, same session)."""
    n0, n1 = src.shape
    m0, m1 = n0 - n0 % 8, n1 - n1 % 8
    for i0 in range(0, m0, 8):
        for j0 in range(0, m1, 8):
            for a in range(8):
                for b in range(8):
                    dst[j0 + b, i0 + a] = src[i0 + a, j0 + b]
    for i in range(m0, n0):                    # the edges
        for j in range(n1):
            dst[j, i] = src[i, j]
    for i in range(m0):
        for j in range(m1, n1):
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



#: rows of the state array (float32, (HIST + R, C)): hair cell q, c, w; survival S and
#: threshold U; fibres refractory now; bushy isyn, vm, ref; the fibre count of the last
#: sample (``-1 - u`` for four or more, to be finished with the inversion's uniform number
#: u: one more row written in the vector loop makes LLVM's run-time alias checks give up,
#: 5x slower); this sample's uniform numbers; then R rows of past fibre counts, row
#: HIST + (t % R) = sample t.
STATE_ROWS = ("q", "c", "w", "survival", "threshold", "blocked", "isyn", "vm", "ref", "fired", "rand")
Q, CLEFT, STORE, SURV, THR, BLOCKED, ISYN, VM, REF, FIRED, RAND = range(11)
HIST = 11


@numba.njit(**_VEC)
def uniforms(seed, counter0, out):
    """out[i] = uniform(seed, counter0 + i) to 24 bits, float32 in [0, 1): the top 24 bits of
    SplitMix64 output ``counter0 + i + 1`` (the loop vectorises; int32 -> float32 is one
    instruction where int64 -> float64 is not, on AVX2)."""
    for i in range(out.shape[0]):
        z = seed + (counter0 + np.uint64(i) + np.uint64(1)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
        out[i] = np.float32(np.int32(z >> np.uint64(40))) * np.float32(1.0 / 16777216.0)


@numba.njit(**_VEC)
def _power_bits(base, a):
    """base^a for a whole a in [0, 63], float32, by squaring over a's bits (no pow)."""
    one = np.float32(1.0)
    f = one
    for _ in range(6):
        half = np.floor(a * np.float32(0.5))
        bit = a - half - half
        f *= one + bit * (base - one)
        a = half
        base *= base
    return f


@numba.njit(**_VEC)
def _sample(row, hc, bushy, st, prev):
    """One membrane sample of every channel: the bushy cell of the previous sample (its
    fibre counts in st[FIRED], past counts row HIST + prev), then the hair cell, the
    survival test and the first three inversion steps of this one.  Returns (fibre events
    needing the rest of the inversion, bushy spikes), as float32 counts."""
    a_off, b_sat, m_max, gdt, ydt, xdt, rdt, lrdt, hdt = hc
    n_fibres, e_syn, e_mem, wdt, ref_steps = bushy
    zero, one = np.float32(0.0), np.float32(1.0)
    n_slow, n_spk = zero, zero
    old = HIST + prev
    for i in range(st.shape[1]):
        # bushy cell of the previous sample; its fibres become refractory
        k = st[FIRED, i]
        blocked = st[BLOCKED, i] + k - st[old, i]
        st[old, i] = k
        isyn = st[ISYN, i] * e_syn + k
        st[ISYN, i] = isyn
        ref = st[REF, i]
        refractory = ref > zero
        v_new = st[VM, i] * e_mem + wdt * isyn
        cross = (not refractory) and v_new >= one
        st[VM, i] = zero if refractory else v_new
        st[REF, i] = ref - one if refractory else (ref_steps if cross else ref)
        n_spk += np.float32(cross)
        st[BLOCKED, i] = blocked
        # hair cell
        q, c, w = st[Q, i], st[CLEFT, i], st[STORE, i]
        drive = max(row[i] + a_off, zero)
        eject = gdt * drive / (drive + b_sat) * q
        reprocess = xdt * w
        c_new = max(c + eject - lrdt * c, zero)
        st[Q, i] = max(q + ydt * max(m_max - q, zero) - eject + reprocess, zero)
        st[CLEFT, i] = c_new
        st[STORE, i] = max(w + rdt * c - reprocess, zero)
        # fibres: survival against the threshold, then the count by inversion
        p = min(c_new * hdt, one)
        a = n_fibres - blocked
        none, base, rest = one, one - p, a                # P(no available fibre fires) = (1 - p)^a,
        for _ in range(6):                                # by squaring over a's 6 bits (no pow)
            half = np.floor(rest * np.float32(0.5))
            none *= one + (rest - half - half) * (base - one)
            rest = half
            base *= base
        s_old = st[SURV, i]
        s_new = s_old * none
        thr = st[THR, i]
        hit = s_new < thr
        gap = s_old - s_new
        gap = gap if gap > zero else one
        miss = max(one - p, np.float32(1e-30))
        inv = one / (gap * miss)                          # one division for u and p / (1 - p)
        u = one - min((thr - s_new) * miss * inv, one)
        ratio = p * gap * inv
        target = none + u * (one - none)
        pmf = none * a * ratio
        cdf = none + pmf
        count = one + np.float32(target >= cdf)
        pmf *= (a - one) * np.float32(0.5) * ratio
        cdf += pmf
        count += np.float32(target >= cdf)
        pmf *= (a - np.float32(2.0)) * np.float32(1.0 / 3.0) * ratio
        cdf += pmf
        slow = hit and target >= cdf and a > np.float32(3.0)
        count = min(count + np.float32(target >= cdf), a)
        n_slow += np.float32(slow)
        st[FIRED, i] = (-one - u if slow else count) if hit else zero       # slow: -1 - u, see below
        st[THR, i] = one - st[RAND, i] if hit else thr
        st[SURV, i] = one if hit else s_new
    return n_slow, n_spk


@numba.njit(**FAST)
def _finish_counts(st, n_slow, hdt, n_fibres):
    """The counts of four or more (st[FIRED] = -1 - u): the rest of the inversion, float64."""
    fired = st[FIRED]
    done = 0
    for i in range(fired.shape[0]):
        if fired[i] < 0.0:
            p = min(st[CLEFT, i] * hdt, np.float32(1.0))
            a = n_fibres - st[BLOCKED, i]
            none = _power_bits(np.float32(1.0) - p, a)
            fired[i] = binomial_at_least_one(int(a), float(p), float(none), -1.0 - float(fired[i]))
            done += 1
            if done == n_slow:
                break


@numba.njit(**FAST)
def _emit(st, ref_steps, n_spk, t, out_t, out_c, n_out):
    """Append the channels whose bushy cell just spiked (ref = ref_steps) at sample t."""
    found = 0
    ref = st[REF]
    for i in range(ref.shape[0]):
        if ref[i] == ref_steps:
            out_t[n_out] = t
            out_c[n_out] = i
            n_out += 1
            found += 1
            if found == n_spk:
                break
    return n_out


@numba.njit(**FAST)
def cochlea_block(v, hc, bushy, seed, t0, st, out_t, out_c, fibres_out):
    """Hair cells and bushy cells over a block of membrane samples.

    v: (T, C) float32 membrane velocity, sample t0 + j in row j (see :func:`transpose`);
    hc = (A, B, M, g dt, y dt, x dt, r dt, (l + r) dt, h dt) and bushy = (n_fibres, e_syn,
    e_mem, w_syn dt, ref_steps), float32 tuples; seed: uint64 of the recording; st: the
    state (see :data:`STATE_ROWS`).  Spikes go to out_t (global sample) and out_c
    (channel), in time then channel order; returns their number.  out_* need room for
    T * C / 2 + C.  fibres_out: (T, C) float32 to receive the fibre counts (tests), or
    shape (0, 0) for none.
    """
    n_rows, n_ch = v.shape
    if n_rows == 0:
        return 0
    n_fibres, ref_steps = bushy[0], bushy[4]
    span = st.shape[0] - HIST
    n_out = 0
    for j in range(n_rows):
        t = t0 + j
        uniforms(seed, np.uint64(t * n_ch), st[RAND])
        n_slow, n_spk = _sample(v[j], hc, bushy, st, (t - 1) % span)
        if n_spk > 0 and j > 0:                 # j = 0: emitted with the previous block
            n_out = _emit(st, ref_steps, int(n_spk), t - 1, out_t, out_c, n_out)
        if n_slow > 0:
            _finish_counts(st, int(n_slow), hc[8], n_fibres)
        if fibres_out.shape[0]:
            fibres_out[j, :] = st[FIRED]
    # the bushy step of the last sample, on a copy: its spikes go out with this block
    scratch = st.copy()
    t = t0 + n_rows
    _, n_spk = _sample(v[n_rows - 1], hc, bushy, scratch, (t - 1) % span)
    if n_spk > 0:
        n_out = _emit(scratch, ref_steps, int(n_spk), t - 1, out_t, out_c, n_out)
    return n_out
