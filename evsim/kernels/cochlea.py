"""Numba kernels of the cochlea's hair-cell and bushy-cell stages (see evsim.audio).

One call advances every channel through a block of membrane samples, sample by sample
with all channels inside (the block is time-major, (T, C), so the channel loop is
contiguous).  All state lives in one float32 array the caller owns (rows
:data:`STATE_ROWS`, one column per channel), so a stream continues exactly where the last
block stopped, and each sample is three short passes over the channels in float32 that
LLVM vectorises 8 wide (AVX2): bushy cells, hair cells, fibres.  (One state array
rather than a dozen: with more than ~8 separate arrays LLVM's run-time alias checks give
up and the loop stays scalar, 5x slower.)  Measured on 1 s of speech, alternating, load
~5: 0.025-0.027 CPU s per second of audio, random numbers included (one fused pass:
0.033-0.038; the version that drew the thresholds with 64-bit SplitMix64 in a separate
pass: 0.047-0.049 in an earlier session; the former float64 kernel of three separate
passes: 0.074 at load ~6).

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
(``(1 - p)^a`` by squaring over the 6 bits of ``a``: multiplications and selects only,
the selected powers multiplied as a tree; a float32 exp2/log2 by bit manipulation
instead was 25 % slower) and fibres
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

The pass is bound by the latency of one channel group's chain of dependent operations
(about 150 of them per 8 channels: the out-of-order window holds less than two groups),
not by the number of operations, so the chains are kept short: the powers of ``1 - p``
are multiplied as a balanced tree rather than one after the other, ``p / (1 - p)`` is
divided before the power is known, and the inversion compares ``target * gap`` with
``cdf * gap`` (``gap = S_t-1 - S_t``, ``u * gap = S_t-1 - U``) so that no division waits
for the survival product (``u`` itself, a division off the chain, is only stored for
the slow path); and the sample is three passes over the channels (bushy cells; hair
cells and ``(1 - p)^a``, stored in a state row; survival and inversion), each with a
shorter chain and fewer operations, so more channel groups overlap.  Measured on the
same 1 s of speech, alternating, load ~5: 0.025-0.027 CPU s against 0.034-0.038 for
the one pass with the sequential product and division; with the same seed 99.99996 %
of the fibre counts are the same (rounding).

Order within a sample: the passes of sample t first run the bushy cell of sample t - 1
(whose fibre count is final by then) and then the hair cell and fibres of t, so that
one call per sample does both.  The bushy step of a block's last sample is
run at the end of the block on a copy of the state (to emit its spikes with the block)
and for real at the start of the next block (its spikes not emitted twice).

Precision: float32 throughout (state, survival, thresholds; the hair cell's quantities
are O(1e-3..1) and the survival product is compared with a threshold, so float32's 6e-8
relative rounding moves a decision only when U lies within ~1e-7 of S).  Against the
former float64 kernel the statistics of the spikes are unchanged, and with the same seed
99.9 % of the spikes are the same ones (measured on speech: ``benchmarks/README.md``);
the float64 reference of the tests still matches count for count.

Random numbers: a fibre event at sample t, channel i takes its next threshold
``U = 1 - channel_uniform(i, key_t)`` with ``key_t = sample_key(seed, t)`` (output
``t + 1`` of the counter-based SplitMix64, once per sample) and :func:`channel_uniform`
two rounds of a 32-bit integer hash of (i, key_t), top 24 bits as float32; the first
threshold of channel i uses ``key = sample_key(seed, 2^63)``.  The 32-bit hash runs inside
the vectorised channel pass, 8 lanes wide (64-bit multiplies have no AVX2 instruction:
the former per-channel SplitMix64, a separate pass writing one state row, cost ~0.013
CPU s per second of audio more).  The numbers depend only on (seed, sample, channel),
not on how samples were split into blocks (streaming = offline, bit for bit).

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
def sample_key(seed, counter):
    """The ``counter + 1``-th output of SplitMix64 started at ``seed`` (uint64): the key of
    one membrane sample's random numbers.  Counter-based, so the numbers of (sample,
    channel) do not depend on the order or the blocks in which samples are processed."""
    z = seed + (counter + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@numba.njit(**FAST)
def uniform(seed, counter):
    """:func:`sample_key` as a float64 in [0, 1) (53 bits)."""
    return float(np.int64(sample_key(seed, counter) >> np.uint64(11))) * (1.0 / 9007199254740992.0)


_U32 = np.uint32


@numba.njit(**_VEC)
def _lowbias32(z):
    """A 32-bit integer finaliser (two multiply-xorshift rounds, constants of the
    "lowbias32" hash): a bijection of uint32 with good avalanche.  Written with explicit
    uint32 casts so LLVM keeps 32-bit lanes (8 per AVX2 vector; 64-bit multiplies have
    no AVX2 instruction)."""
    z = _U32((z ^ (z >> _U32(16))) * _U32(0x21F0AAAD))
    z = _U32((z ^ (z >> _U32(15))) * _U32(0x735A2D97))
    return _U32(z ^ (z >> _U32(15)))


@numba.njit(**_VEC)
def channel_uniform(i, k_lo, k_hi):
    """Uniform number of channel ``i`` under the sample key ``(k_hi << 32) | k_lo``, a
    float32 in [0, 1) with 24 bits: ``h(h(k_lo + (i + 1) G) ^ k_hi) >> 8`` with h =
    :func:`_lowbias32` and G = 0x9E3779B9.  For a fixed key it is a bijection of i (no
    two channels of a sample share a number), and both key halves enter through a
    nonlinear round, so two samples' numbers are unrelated unless their 64-bit keys are
    equal.  Only 32-bit integer operations: it runs inside the vectorised channel loop."""
    z = _lowbias32(_U32(_U32(i + 1) * _U32(0x9E3779B9) + k_lo))
    z = _lowbias32(_U32(z ^ k_hi))
    return np.float32(np.int32(z >> _U32(8))) * np.float32(1.0 / 16777216.0)


@numba.njit(**_VEC)
def uniforms(key, out):
    """out[i] = channel_uniform(i, key) for every i (the first thresholds; tests)."""
    k_lo, k_hi = _U32(key & np.uint64(0xFFFFFFFF)), _U32(key >> np.uint64(32))
    for i in range(out.shape[0]):
        out[i] = channel_uniform(i, k_lo, k_hi)


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
def multiply_band(spec, kern, out):
    """out[i, k] = spec[k] * kern[i, k] for the first kern.shape[1] bins (the band of a
    decimated group; the bins above stay as they are: zeros).  float32 (re, im) pairs:
    spec (n, 2), kern (C, n, 2), out (C, >= n, 2)."""
    n_ch, n_k = kern.shape[0], kern.shape[1]
    for i in range(n_ch):
        for k in range(n_k):
            out[i, k, 0] = spec[k, 0] * kern[i, k, 0] - spec[k, 1] * kern[i, k, 1]
            out[i, k, 1] = spec[k, 0] * kern[i, k, 1] + spec[k, 1] * kern[i, k, 0]


@numba.njit(**_VEC)
def transpose_into(src, dst, row0, col0):
    """dst[row0 + j, col0 + i] = src[i, j] for 2-D float32 arrays (the filter bank's
    channel-major inverse FFTs to the time-major layout of :func:`cochlea_block`), in
    8 x 8 blocks with constant trip counts, which LLVM unrolls into vector loads, shuffles
    and stores: 0.012 CPU s per second of audio, against 0.021 for 64 x 64 tiles of scalar
    copies and 0.047 for NumPy's copy of ``src.T`` (same input, same session)."""
    n0, n1 = src.shape
    m0, m1 = n0 - n0 % 8, n1 - n1 % 8
    for i0 in range(0, m0, 8):
        for j0 in range(0, m1, 8):
            for a in range(8):
                for b in range(8):
                    dst[row0 + j0 + b, col0 + i0 + a] = src[i0 + a, j0 + b]
    for i in range(m0, n0):                    # the edges
        for j in range(n1):
            dst[row0 + j, col0 + i] = src[i, j]
    for i in range(m0):
        for j in range(m1, n1):
            dst[row0 + j, col0 + i] = src[i, j]


@numba.njit(**_VEC)
def upsample(low, taps, factor, out, col0, row0=0):
    """Polyphase interpolation of time-major low-rate rows to the full rate, 8 taps:
    out[r, col0 + c] = sum_k taps[s % factor, k] low[s // factor + k, c] with s = row0 + r,
    for every row r of out (the caller aligns ``low`` so that row s // factor + 3 is the
    sample at or before s / factor; row0: the full-rate row that out's first row is).
    Vectorised along the channels, the 8 taps summed in registers (one store per output;
    a loop over the taps that added into ``out`` was 2.5x slower)."""
    n_c = low.shape[1]
    for r in range(out.shape[0]):
        j, b = (row0 + r) % factor, (row0 + r) // factor
        w0, w1, w2, w3 = taps[j, 0], taps[j, 1], taps[j, 2], taps[j, 3]
        w4, w5, w6, w7 = taps[j, 4], taps[j, 5], taps[j, 6], taps[j, 7]
        for c in range(n_c):
            out[r, col0 + c] = (w0 * low[b, c] + w1 * low[b + 1, c] + w2 * low[b + 2, c] + w3 * low[b + 3, c]
                                + w4 * low[b + 4, c] + w5 * low[b + 5, c] + w6 * low[b + 6, c]
                                + w7 * low[b + 7, c])


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
#: threshold U; fibres refractory now; bushy isyn and vm (vm < 0: refractory, -vm = the
#: refractory samples left: the counter and the potential in one row); the fibre count of
#: the last sample (``-1 - u`` for four or more, to be finished with the inversion's uniform
#: number u: one more row written in the vector loop makes LLVM's run-time alias checks give
#: up, 5x slower); ``(1 - p)^a`` of this sample (from the second pass to the third); then R
#: rows of past fibre counts, row HIST + (t % R) = sample t.
STATE_ROWS = ("q", "c", "w", "survival", "threshold", "blocked", "isyn", "vm", "fired", "none")
Q, CLEFT, STORE, SURV, THR, BLOCKED, ISYN, VM, FIRED, NONE = range(10)
HIST = 10


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
def _sample(row, hc, bushy, st, prev, k_lo, k_hi):
    """One membrane sample of every channel, in three passes over the channels: the bushy
    cell of the previous sample (its fibre counts in st[FIRED], past counts row HIST +
    prev); the hair cell and (1 - p)^a (st[NONE]); the survival test and the first three
    inversion steps.  Returns (fibre events needing the rest of the inversion, bushy
    spikes), as float32 counts."""
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
        vm = st[VM, i]                                    # < 0: refractory, -(samples left)
        refractory = vm < zero
        v_new = vm * e_mem + wdt * isyn
        cross = (not refractory) and v_new >= one
        st[VM, i] = min(vm + one, zero) if refractory else (-ref_steps if cross else v_new)
        n_spk += np.float32(cross)
        st[BLOCKED, i] = blocked
    for i in range(st.shape[1]):
        blocked = st[BLOCKED, i]
        # hair cell
        q, c, w = st[Q, i], st[CLEFT, i], st[STORE, i]
        drive = max(row[i] + a_off, zero)
        eject = gdt * drive / (drive + b_sat) * q
        reprocess = xdt * w
        c_new = max(c + eject - lrdt * c, zero)
        st[Q, i] = max(q + ydt * max(m_max - q, zero) - eject + reprocess, zero)
        st[CLEFT, i] = c_new
        st[STORE, i] = max(w + rdt * c - reprocess, zero)
        # fibres: P(no available fibre fires) = (1 - p)^a (no pow: a select per bit of a,
        # the selected powers multiplied as a tree), for the third pass
        p = min(c_new * hdt, one)
        a = n_fibres - blocked
        base = one - p
        bits = np.int32(a)
        b1 = base * base
        b2 = b1 * b1
        b3 = b2 * b2
        b4 = b3 * b3
        b5 = b4 * b4
        f0 = base if (bits & np.int32(1)) != np.int32(0) else one
        f1 = b1 if (bits & np.int32(2)) != np.int32(0) else one
        f2 = b2 if (bits & np.int32(4)) != np.int32(0) else one
        f3 = b3 if (bits & np.int32(8)) != np.int32(0) else one
        f4 = b4 if (bits & np.int32(16)) != np.int32(0) else one
        f5 = b5 if (bits & np.int32(32)) != np.int32(0) else one
        st[NONE, i] = ((f0 * f1) * (f2 * f3)) * (f4 * f5)
    for i in range(st.shape[1]):
        p = min(st[CLEFT, i] * hdt, one)
        a = n_fibres - st[BLOCKED, i]
        none = st[NONE, i]
        ratio = p / max(one - p, np.float32(1e-30))       # off the survival's chain
        s_old = st[SURV, i]
        s_new = s_old * none
        thr = st[THR, i]
        hit = s_new < thr
        gap = s_old - s_new
        gap = gap if gap > zero else one
        # scaled by gap: target * gap = none * gap + u * gap * (1 - none), u * gap = s_old - thr
        above = max(s_old - thr, zero)
        scaled = none * gap + above * (one - none)
        pmf = none * a * ratio
        cdf = none + pmf
        count = one + np.float32(scaled >= cdf * gap)
        pmf *= (a - one) * np.float32(0.5) * ratio
        cdf += pmf
        count += np.float32(scaled >= cdf * gap)
        pmf *= (a - np.float32(2.0)) * np.float32(1.0 / 3.0) * ratio
        cdf += pmf
        last = scaled >= cdf * gap
        slow = hit and last and a > np.float32(3.0)
        u = min(above / gap, one)
        count = min(count + np.float32(last), a)
        n_slow += np.float32(slow)
        st[FIRED, i] = (-one - u if slow else count) if hit else zero       # slow: -1 - u, see below
        st[THR, i] = one - channel_uniform(i, k_lo, k_hi) if hit else thr
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
    """Append the channels whose bushy cell just spiked (vm = -ref_steps) at sample t."""
    found = 0
    vm = st[VM]
    for i in range(vm.shape[0]):
        if vm[i] == -ref_steps:
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

    v: (T, C) float32 membrane velocity, sample t0 + j in row j (the filter bank's time-major rows);
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
        key = sample_key(seed, np.uint64(t))
        k_lo, k_hi = _U32(key & np.uint64(0xFFFFFFFF)), _U32(key >> np.uint64(32))
        n_slow, n_spk = _sample(v[j], hc, bushy, st, (t - 1) % span, k_lo, k_hi)
        if n_spk > 0 and j > 0:                 # j = 0: emitted with the previous block
            n_out = _emit(st, ref_steps, int(n_spk), t - 1, out_t, out_c, n_out)
        if n_slow > 0:
            _finish_counts(st, int(n_slow), hc[8], n_fibres)
        if fibres_out.shape[0]:
            fibres_out[j, :] = st[FIRED]
    # the bushy step of the last sample, on a copy: its spikes go out with this block
    scratch = st.copy()
    t = t0 + n_rows
    _, n_spk = _sample(v[n_rows - 1], hc, bushy, scratch, (t - 1) % span, _U32(0), _U32(0))
    if n_spk > 0:
        n_out = _emit(scratch, ref_steps, int(n_spk), t - 1, out_t, out_c, n_out)
    return n_out
