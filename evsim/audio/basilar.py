"""Sieroka basilar membrane as a bank of FIR filters, run block by block (overlap-save).

Transfer function (Sieroka, Dosch & Rupp 2006, "Semirealistic models of the cochlea",
JASA 120(1) 297; the form and constants of lauscher 1.0.1).  At place ``x`` (cm from the
base) and angular frequency ``w``, with the parameters of :class:`CochleaParams`::

    s(x)   = c0 exp(-alpha x) - a                 stiffness
    r(x)   = de sqrt(c0 m) exp(-alpha x / 2)      damping
    xi     = s(x) - m w^2 - i w r(x)              local membrane impedance
    k(x)   = w sqrt(rho / (h xi))                 local wave number
    q      = sqrt(a + m w^2),  J(x) = 2 q^2 + i w r(x),  U(x) = i J(x) / (2 q) - sqrt(xi(x))
    G(x)   = 2 k(0) / alpha - (2 i sqrt(2) w / (alpha sqrt(2 h) q)) log(exp(-alpha x / 2) U(0) / U(x))
    P(x)   = sqrt(G / k(x)) H0(G)                 H0 = Hankel function of the first kind, order 0
    Z      = sqrt(2 c0 / h) (i J0(b) + Y0(b)) / (J1(b) - i Y1(b)),   b = (2 w / alpha) sqrt(2 / (h c0))
    V(w,x) = (2 w / xi(x)) (P(x) / P(0)) Z        membrane velocity per unit of input

Places: ``channels`` values of x evenly spaced in [0, length]; channel 0 is the base
(highest best frequency, about 22.5 kHz with the defaults), channel 699 the apex (about
100 Hz).

How lauscher applies it, and what evsim does instead.  lauscher multiplies the first
``N // 2 + 1`` bins of the FFT of the whole recording (N samples at rate fs) by V and
takes the real part of their inverse FFT, which it labels as a signal at rate ``fs // 2``.
That equals filtering the recording with the real kernel
``kappa(d) = Re (2 / fs) int_0^{fs/2} V(2 pi f) exp(2 pi i f d / fs) df`` and keeping every
second sample (no anti-alias filter), except that the FFT makes the filter circular.
V follows the physicists' ``exp(-i w t)`` convention, so under numpy's ``exp(+i w t)`` the
kernel is *anti-causal*: an output sample depends on the next ~90 ms of input, not the
past.  evsim computes ``kappa`` once per parameter set (inverse FFT of V on a 2.7 Hz grid,
cached on disk), keeps lags ``-lookahead .. length - lookahead - 1`` (2048 taps at
22.05 kHz, 1984 of them in the future: 99.9 % of every channel's energy except the
channels whose best frequency lies above the Nyquist rate, whose band-edge ringing
loses up to 0.6 %), and convolves linearly (zeros beyond the ends instead of
wrapping round).  Since only even samples are kept, each block's spectrum is folded onto
half the length before the inverse FFT (the aliasing of lauscher's decimation, done in
the frequency domain), which halves that cost.

The fast bank (the default; ``exact=True`` is the bank above for every channel).  The
kernels of the apical half of the membrane are band-limited: channel 450 (best frequency
690 Hz) has less than 1e-6 of its energy above 1 kHz.  For such a channel the product
spectrum ``S K_i`` is zero above its band, so every D-th output sample is the inverse FFT
of its first ``B / (4 D) + 1`` bins at length ``B / (2 D)`` (scaled by ``1 / (2 D)``),
exactly, and the channel costs 1/D of the inverse FFT and a fraction of the product.
Per channel: ``bins_i`` = the number of bins of the B-point kernel spectrum holding all
but ``BAND_TOL = 1e-6`` of its energy (the rest is dropped: a relative rms error of at
most ``sqrt(1e-6) = 1e-3`` for white input, less for speech, whose spectrum falls with
frequency); D_i = the largest of 2, 4, 8 with the band at most a quarter of the reduced
rate (``bins_i <= B / (8 D)``), else 1; the channels are grouped by D (contiguous:
D never decreases towards the apex).  With the defaults: channels 0-405 at the full
rate, 406-498 at 1/2, 499-592 at 1/4, 593-699 at 1/8: 0.67 of the inverse-FFT points
and a third of the product's bins.  Each decimated group is brought back to the full
rate by an 8-tap polyphase interpolator (:func:`interpolation_taps`: per phase j / D,
the least-squares fit of that delay over the band [0, 1/4] of the reduced rate; error
at most 1.2e-3 of the amplitude at the band edge, 3e-4 at half of it; phase 0 is the
sample itself).  The interpolator needs 4 low-rate samples ahead, so the bank's output
is ``delay = 4 D_max = 32`` output samples (2.9 ms) late, i.e. its latency grows by
that.  Measured against the exact bank (per channel, rms difference / rms): at most
1.5e-3 on a word, 1.2e-3 on white noise, 0 on the full-rate group (bit for bit the same
computation); tested below 2e-3.

The filter is linear and finite, so it runs block by block: output sample ``n`` (time
``n / (fs / 2)``) needs input up to ``2 n + lookahead``; a stream therefore has a fixed
latency of ``lookahead`` samples (90 ms) plus the block it waits for, and produces
exactly the offline output.  The grid of blocks starts ``lookahead - 64`` input samples
into the recording (the first block takes that much more input), so that its first
outputs are the first samples of the recording: the outputs before them (the
lookahead, 992 rows at 22.05 kHz) are not computed, except the 32 the interpolator
reaches back to.  On the test words (0.5 s on average) that is 13 % fewer inverse-FFT
points than a grid from sample 0.  The last block of a recording (:meth:`FilterBank.finish`,
zeros after the end) is shorter when that covers the rows left: its hop is the smallest
``hop k / FINAL_PARTS`` (k = 1 .. 5; a multiple of 16 input samples so that every group's
decimation divides it, an FFT length with no prime factor above 7) with enough outputs,
i.e. FFT lengths 3072, 4096, 5120, 6144 or 7168 instead of 8192 with the defaults; the
groups are the same (a decimated group keeps its band's frequency, its bins rounded up
at the shorter length) and their state (the full-rate group's last ``delay`` outputs, a
decimated group's low-rate history) is carried over, so the output is the same linear
convolution (the exact bank to rounding; tested against the direct convolution).  On the
1000 test words that is 1.49 full-rate inverse-FFT points per useful output instead of
1.71.  Live streams never call finish, so they run only full blocks.
Each block's inverse FFTs stay channel-major; the
time-major rows the hair cells read are written (transposed, interpolated) into one
reused buffer of ``SLAB_ROWS`` rows just before they are handed out
(:meth:`FilterBank.stream`), so they are read from the cache: writing each block's
3072 x 700 rows to memory first cost about as much as the inverse FFTs under load.
The recursive bank (``membrane="recursive"``, offline only) is the fast bank with its
full-rate group computed by the fitted recursive filters of :mod:`.recursive` over the
whole recording, given to :meth:`FilterBank.prepare` before its blocks (the recursion
runs from the recording's end); the decimated groups run their FFT blocks as before,
and the full-rate rows are copied into the pieces handed out.  Per basal channel it
differs from the exact bank by the fit's error (~1e-3, tested below 2e-3; 5e-3 above the
Nyquist rate).  Memory: the group's rows of the whole recording, 406 x 4 bytes per
output sample (18 MB per second of audio).
``causal=True`` mirrors the kernel in time (the physically
causal reading of V: same magnitude response, so the same channels respond as strongly,
but each channel's ringing follows the input instead of preceding it): no lookahead, but
spike times then lag lauscher's by each channel's group delay (up to ~10 ms at the apex).
"""

from __future__ import annotations

import functools
import os
import threading

import numpy as np

from .. import names as _names
from ..errors import EvsimError
from .params import CochleaParams

__all__ = ["transfer_function", "membrane_kernels", "FilterBank", "KERNEL_TAPS", "LOOKAHEAD", "MEMBRANES",
           "membrane_kind"]

#: kernel length and the number of its taps that lie in the future, at 22.05 kHz
#: (scaled with the sample rate; both even)
KERNEL_TAPS = 2048
LOOKAHEAD = 1984
_GRID = 4            # the kernel is computed on an FFT grid this many times its length


def _even(v: float) -> int:
    return max(2, 2 * int(round(v / 2)))


def kernel_geometry(params: CochleaParams) -> tuple[int, int]:
    """(taps, lookahead) of the membrane kernels at ``params.sample_rate``."""
    scale = params.sample_rate / 22050
    return _even(KERNEL_TAPS * scale), _even(LOOKAHEAD * scale)


def transfer_function(params: CochleaParams, omega: np.ndarray, places: np.ndarray) -> np.ndarray:
    """V(w, x): membrane velocity response, (len(places), len(omega)) complex128.

    omega: angular frequencies [rad/s], > 0; places: positions x [cm] from the base.
    """
    from scipy import special

    p = params
    w = np.asarray(omega, np.float64)[None, :]
    xs = np.asarray(places, np.float64)[:, None]
    r0 = p.de * np.sqrt(p.c0 * p.m)
    q = np.sqrt(p.a + p.m * w ** 2)

    def xi(x):
        return p.c0 * np.exp(-p.alpha * x) - p.a - p.m * w ** 2 - 1j * w * r0 * np.exp(-p.alpha * x / 2)

    def wave_number(xi_x):
        return w * np.sqrt(p.rho / (p.h * xi_x))

    def u_term(x, xi_x):
        return 1j * (2 * q ** 2 + 1j * w * r0 * np.exp(-p.alpha * x / 2)) / (2 * q) - np.sqrt(xi_x)

    xi0 = xi(0.0)
    k0 = wave_number(xi0)
    u0 = u_term(0.0, xi0)
    coef = 2j * np.sqrt(2.0) * w / (p.alpha * np.sqrt(2 * p.h) * q)

    def pressure(x, xi_x):
        big_g = 2 * k0 / p.alpha - coef * np.log(np.exp(-p.alpha * x / 2) * u0 / u_term(x, xi_x))
        return np.sqrt(big_g / wave_number(xi_x)) * special.hankel1(0, big_g)

    b = 2 * w / p.alpha * np.sqrt(2 / (p.h * p.c0))
    z = np.sqrt(2 * p.c0 / p.h) * (1j * special.j0(b) + special.y0(b)) / (special.j1(b) - 1j * special.y1(b))
    p0 = pressure(0.0, xi0)
    out = np.empty((xs.shape[0], w.shape[1]), np.complex128)
    for i in range(xs.shape[0]):          # one place at a time: bounded memory
        xi_x = xi(xs[i:i + 1])
        out[i] = (2 * w / xi_x * pressure(xs[i:i + 1], xi_x) / p0 * z)[0]
    return out


def _compute_kernels(params: CochleaParams) -> np.ndarray:
    """The truncated real kernels, (channels, taps) float64; column j is lag j - lookahead."""
    taps, look = kernel_geometry(params)
    n = _GRID * taps
    fs = params.sample_rate
    freqs = np.arange(n // 2 + 1) * fs / n
    places = np.linspace(0.0, params.length, params.channels)
    spectrum = np.zeros((params.channels, n // 2 + 1), np.complex128)
    spectrum[:, 1:] = transfer_function(params, 2 * np.pi * freqs[1:], places)
    # kappa(d) = Re (1/M) sum_{k<M} V_k exp(2 pi i k d / n): the one-sided inverse FFT
    full = np.zeros((params.channels, n), np.complex128)
    full[:, :n // 2 + 1] = spectrum
    kappa = np.real(np.fft.ifft(full, axis=1)) * (n / (n // 2 + 1))
    lags = np.arange(taps) - look
    return kappa[:, lags % n] * _taper(taps, look)


def _taper(taps: int, look: int) -> np.ndarray:
    """Raised-cosine ends for the truncated kernel: over the farthest quarter of the
    lookahead and the last 32 causal taps.  A hard cut leaks the apex channels' sharp
    resonance into the frequencies above it (-43 dB at 150 Hz for the 100 Hz channel);
    the taper brings that to about -60 dB."""
    window = np.ones(taps)
    far = look // 4
    window[:far] = 0.5 - 0.5 * np.cos(np.pi * np.arange(far) / far)
    tail = min(32, taps - look)
    window[taps - tail:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, tail + 1) / tail)
    return window


def _cache_dir() -> str:
    base = os.environ.get("EVSIM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "evsim")
    return base


def membrane_kernels(params: CochleaParams, cache: bool = True) -> np.ndarray:
    """The membrane FIR kernels for ``params``, (channels, taps) float64, lag = column -
    lookahead.  Computing them takes a few seconds for 700 channels (Hankel functions of
    complex arguments); they are kept in memory and in ``$EVSIM_CACHE_DIR`` (default
    ``~/.cache/evsim``), keyed by the membrane parameters, written atomically."""
    key = params.membrane_key()
    if key in _MEMORY:
        return _MEMORY[key]
    path = os.path.join(_cache_dir(), f"membrane-{key}.npy")
    kernels = None
    if cache and os.path.exists(path):
        try:
            kernels = np.load(path, allow_pickle=False)
            if kernels.shape != (params.channels, kernel_geometry(params)[0]):
                kernels = None
        except (OSError, ValueError):
            kernels = None
    if kernels is None:
        kernels = _compute_kernels(params)
        if cache:
            try:
                from .._io import atomic_write

                os.makedirs(os.path.dirname(path), exist_ok=True)
                with atomic_write(path) as fh:
                    np.save(fh, kernels)
            except OSError:
                pass                         # a read-only home: compute again next time
    _MEMORY[key] = kernels
    return kernels


_MEMORY: dict = {}

#: NumPy >= 2: float32 FFTs with ``out=`` (pocketfft C++, the same results as SciPy's here)
_IRFFT_OUT = int(np.__version__.split(".")[0]) >= 2

_POOL = threading.local()


def scratch(shape: tuple, dtype) -> np.ndarray:
    """A work array from this thread's pool (or a new one); hand it back with
    :func:`release` when done.  The encoder needs ~50 MB of work arrays per recording;
    fresh ones cost their page faults on first touch, ~0.02 CPU s (system time) per second
    of audio when every recording allocated its own.  The pool keeps at most two arrays
    per shape (about 60 MB for a thread that encoded with the default fft_size)."""
    free = getattr(_POOL, "free", None)
    if free is None:
        free = _POOL.free = {}
    key = (tuple(shape), np.dtype(dtype).str)
    stack = free.get(key)
    return stack.pop() if stack else np.empty(shape, dtype)


def release(*arrays) -> None:
    """Return work arrays from :func:`scratch` to this thread's pool (at most 2 per shape)."""
    free = getattr(_POOL, "free", None)
    if free is None:
        free = _POOL.free = {}
    for a in arrays:
        if a is not None:
            stack = free.setdefault((a.shape, a.dtype.str), [])
            if len(stack) < 2 and all(b is not a for b in stack):
                stack.append(a)


def _pairs(z: np.ndarray) -> np.ndarray:
    """Complex array -> contiguous float32 array of (re, im) pairs, shape + (2,)."""
    return np.ascontiguousarray(z, np.complex64).view(np.float32).reshape(z.shape + (2,))


#: the fast bank: a channel's kernel is cut where less than BAND_TOL of its energy lies
#: above (relative rms error <= sqrt(BAND_TOL) for white input), and computed at 1/D of the
#: output rate when that band is at most BAND_FRACTION of the reduced rate
BAND_TOL = 1e-6
BAND_FRACTION = 0.25
MAX_DECIMATION = 8
INTERP_TAPS = 8

#: the last block of a recording (:meth:`FilterBank.finish`) may be shorter: its hop is the
#: smallest ``hop * k / FINAL_PARTS`` (k < FINAL_PARTS, a multiple of 16 input samples, FFT
#: length 7-smooth) whose outputs cover what is left; with the defaults FFT lengths 3072,
#: 4096, 5120, 6144 or 7168 instead of 8192
FINAL_PARTS = 6

#: rows per piece of :meth:`FilterBank.stream` (256 x 700 float32 = 0.7 MB: the rows are
#: still in the cache when the cells read them)
SLAB_ROWS = 256


def band_bins(kernels: np.ndarray, fft_size: int, tol: float = BAND_TOL) -> np.ndarray:
    """Per kernel, the number of bins of its ``fft_size``-point spectrum that hold all but
    ``tol`` of its energy: the smallest k such that bins >= k hold less than tol."""
    power = np.abs(np.fft.rfft(kernels, n=fft_size, axis=1)) ** 2
    above = np.cumsum(power[:, ::-1], axis=1)[:, ::-1] / power.sum(axis=1, keepdims=True)
    below_tol = above < tol
    return np.where(below_tol.any(axis=1), np.argmax(below_tol, axis=1), power.shape[1])


def decimations(bins: np.ndarray, fft_size: int, hop: int, most: int = MAX_DECIMATION,
                fraction: float = BAND_FRACTION) -> np.ndarray:
    """Per channel, the largest power of two D <= most such that its band (``bins``) is at
    most ``fraction`` of the rate out_rate / D (bins <= fraction fft_size / (2 D)) and D
    divides the hop's output samples; non-decreasing along the channels (base to apex), so
    that the groups are contiguous: each channel takes the smallest D allowed at or after it."""
    allowed = np.ones(bins.size, np.int64)
    d = 2
    while d <= most and (hop // 2) % d == 0:
        allowed[bins <= fraction * fft_size / (2 * d)] = d
        d *= 2
    return np.minimum.accumulate(allowed[::-1])[::-1]


@functools.lru_cache(maxsize=32)
def interpolation_taps(decimation: int, taps: int, fraction: float = BAND_FRACTION) -> np.ndarray:
    """Polyphase interpolator from rate f / D to f: (D, taps) float64, phase j (output
    sample D n + j) = sum_k h[j, k] y[n + k - (taps - 1) // 2].  Each phase is the least-squares
    fit of a delay by j / D over the band [0, fraction] of the low rate (a dense grid); phase
    0 is the identity.  taps = 8, fraction 0.25: largest error 1.2e-3 of the amplitude at the
    band edge, 3e-4 at half of it.  Cached (read-only: do not modify the result)."""
    half = (taps - 1) // 2
    w = np.linspace(0, 2 * np.pi * fraction, 512)
    lags = np.arange(taps) - half
    design = np.exp(1j * np.outer(w, lags))
    design = np.vstack([design.real, design.imag])
    out = np.zeros((decimation, taps))
    out[0, half] = 1.0
    for j in range(1, decimation):
        target = np.exp(1j * w * j / decimation)
        out[j] = np.linalg.lstsq(design, np.concatenate([target.real, target.imag]), rcond=None)[0]
    return out


class _Group:
    """Channels ``lo .. hi - 1`` computed at 1/decimation of the output rate: their kernels'
    spectra (the first ``bins`` bins, scaled for the shorter inverse FFT), and the
    low-rate history (time-major) the interpolator reads.  The work arrays (the product
    spectrum, the inverse FFT's output) come from this thread's pool while a recording
    runs (:meth:`acquire`, :meth:`release`): fresh ones per recording cost page faults."""

    def __init__(self, lo, hi, decimation, bins, spectra, fft_size, hop, delay, taps):
        if decimation > 1 and taps != 8:
            raise EvsimError(f"interpolator of {taps} taps; the upsample kernel has 8")
        self.lo, self.hi, self.decimation, self.bins = lo, hi, decimation, bins
        self.n_fft = fft_size // (2 * decimation)                 # inverse FFT length
        self.n_new = hop // (2 * decimation)                      # new low-rate samples per block
        self.taps = interpolation_taps(decimation, taps).astype(np.float32)
        self.keep = delay // decimation + (taps - 1) // 2         # history rows kept across blocks
        self.delay = delay
        self.product = self.low = None
        self.loaded = False          # low holds a block whose state advance() has not carried over
        if decimation == 1:
            self.fwd, self.rev = spectra
        else:
            self.kern = spectra
        self.reset()

    def reset(self):
        self.release()
        self.loaded = False
        if self.decimation == 1:          # the last `delay` outputs of the block before, channel-major
            self.tail = np.zeros((self.hi - self.lo, self.delay), np.float32)
        else:
            self.history = np.zeros((self.keep + self.n_new, self.hi - self.lo), np.float32)

    def acquire(self):
        if self.product is None:
            self.product = scratch((self.hi - self.lo, self.n_fft // 2 + 1), np.complex64)
            self.product[:, self.bins:] = 0.0                     # decimated: nothing above the band
            self.low = scratch((self.hi - self.lo, self.n_fft), np.float32)

    def release(self):
        release(self.product, self.low)
        self.product = self.low = None
        self.loaded = False

    def advance(self) -> None:
        """Carry the state of the block whose rows were emitted last over to the next one
        (before this block's inverse FFT overwrites ``low``): the full-rate group keeps its
        last ``delay`` outputs, a decimated one shifts its low-rate history."""
        if not self.loaded:
            return
        if self.decimation == 1:
            if self.delay:
                self.tail[:] = self.low[:, self.n_fft - self.delay:]
        else:
            self.history[:self.keep] = self.history[self.n_new:]
        self.loaded = False

    def load(self) -> None:
        """This block's inverse FFT is in ``low``: a decimated group puts its new low-rate
        samples into the (time-major, small) history the interpolator reads."""
        from ..kernels.cochlea import transpose_into

        if self.decimation > 1:
            transpose_into(self.low[:, self.n_fft - self.n_new:], self.history, self.keep, 0)
        self.loaded = True

    def render(self, r0: int, r1: int, dst: np.ndarray, drow: int) -> None:
        """Rows ``r0 .. r1 - 1`` of the current block (time-major, ``delay`` rows late,
        interpolated to the full rate) into rows ``drow ..`` of ``dst``, columns lo .. hi - 1."""
        from ..kernels.cochlea import transpose_into, upsample

        if self.decimation > 1:
            upsample(self.history, self.taps, self.decimation, dst[drow:drow + r1 - r0], self.lo, r0)
            return
        if r0 < self.delay:                          # the previous block's last outputs
            upto = min(r1, self.delay)
            transpose_into(self.tail[:, r0:upto], dst, drow, self.lo)
            drow, r0 = drow + upto - r0, upto
        if r1 > r0:
            first = self.n_fft - self.n_new - self.delay
            transpose_into(self.low[:, first + r0:first + r1], dst, drow, self.lo)


def _kernel_spectra(params: CochleaParams, fft_size: int, causal: bool, groups: tuple):
    """Each group's kernel spectra as the multiply kernels read them, kept in memory per
    (membrane parameters, fft_size, causal, groups): computing them (700 FFTs) cost
    ~0.1 CPU s, which every recording paid before (a third of the encoding time of a
    0.5 s word).  groups: ((lo, hi, decimation, bins), ...)."""
    key = (params.membrane_key(), fft_size, causal, groups)
    if key not in _SPECTRA:
        out = _group_spectra(np.fft.rfft(_bank_kernels(params, causal), n=fft_size, axis=1), groups, fft_size)
        if len(_SPECTRA) >= 4:                                           # bounded: ~23 MB each
            _SPECTRA.pop(next(iter(_SPECTRA)))
        _SPECTRA[key] = out
    return _SPECTRA[key]


def _bank_kernels(params: CochleaParams, causal: bool) -> np.ndarray:
    """The membrane kernels the bank convolves with: mirrored in time when ``causal``."""
    kernels = membrane_kernels(params)
    return kernels[:, ::-1] if causal else kernels


def fold_slices(size: int) -> tuple[slice, slice]:
    """``(fwd, rev)``: the bins of a ``size``-point spectrum that the fold onto the even
    samples adds (bins 0 .. size/4, and size/2 down to size/4)."""
    quarter = size // 4
    return slice(0, quarter + 1), slice(2 * quarter, quarter - 1, -1)


def _group_spectra(spectra: np.ndarray, groups: tuple, size: int) -> list:
    """The multiply kernels' operands from the kernels' ``size``-point rfft ``spectra``
    (channels, bins)."""
    fwd, rev = fold_slices(size)
    out = []
    for lo, hi, d, bins in groups:
        if d == 1:       # folded onto the even samples: the fold's 1/2
            out.append((_pairs(0.5 * spectra[lo:hi, fwd]), _pairs(0.5 * spectra[lo:hi, rev])))
        else:            # every 2D-th sample of the band-limited product: 1 / (2 D)
            out.append(_pairs(spectra[lo:hi, :bins] / (2 * d)))
    return out


def _final_spectra(params: CochleaParams, fft_size: int, causal: bool, layouts: dict) -> dict:
    """The kernel spectra of every shorter last block at once ({size: per-group spectra}
    for ``layouts`` = {size: groups}), kept in memory like :func:`_kernel_spectra`: computing
    them (~0.2 CPU s for the five sizes, 700 channels) is a one-off cost per process, paid
    by the first recording that ends (so a warm-up encoding pays it, not every length).
    Memory: 3.1 times the main spectra (44 MB for the default fast bank)."""
    key = (params.membrane_key(), fft_size, causal, tuple(sorted(layouts.items())))
    if key not in _FINAL:
        import scipy.fft

        kernels = _bank_kernels(params, causal)
        out = {}
        for size, groups in layouts.items():
            out[size] = _group_spectra(scipy.fft.rfft(kernels, n=size, axis=1, workers=1), groups, size)
        if len(_FINAL) >= 4:             # bounded: 44 MB each for the fast bank, 72 MB for the exact
            _FINAL.pop(next(iter(_FINAL)))
        _FINAL[key] = out
    return _FINAL[key]


def membrane_groups(params: CochleaParams, fft_size: int, hop: int, causal: bool, exact: bool) -> tuple:
    """((lo, hi, decimation, bins), ...): one full-rate group (exact), or the channels
    grouped by the decimation their band allows (fast); cached with the spectra."""
    key = (params.membrane_key(), fft_size, causal, exact)
    if key not in _GROUPS:
        n = params.channels
        if exact:
            groups = ((0, n, 1, fft_size // 2 + 1),)
        else:
            kernels = membrane_kernels(params)
            bins = band_bins(kernels[:, ::-1] if causal else kernels, fft_size)
            dec = decimations(bins, fft_size, hop)
            groups = []
            for d in np.unique(dec):
                idx = np.flatnonzero(dec == d)
                lo, hi = int(idx[0]), int(idx[-1]) + 1
                groups.append((lo, hi, int(d), int(bins[lo:hi].max()) if d > 1 else fft_size // 2 + 1))
            groups = tuple(groups)
        _GROUPS[key] = groups
    return _GROUPS[key]


_SPECTRA: dict = {}
_GROUPS: dict = {}
_FINAL: dict = {}


#: the membrane banks: every channel's FIR at the full rate; band-limited channels at a
#: reduced rate (the default for streams); and the fast bank with its full-rate (basal)
#: group run as the recursive filters of :mod:`.recursive` (offline only)
MEMBRANES = _names.MEMBRANES


def membrane_kind(membrane: str | None, exact: bool = False, causal: bool = False, default: str = "fast") -> str:
    """The bank to run: ``membrane`` if given (one of :data:`MEMBRANES`), else "exact" if
    ``exact``, else ``default`` ("fast" when ``causal``).  Raises on an unknown kind, on
    ``exact`` with another kind, and on the recursive bank with ``causal`` (its recursion
    runs from the recording's end)."""
    if membrane is None:
        membrane = "exact" if exact else "fast" if causal else default
    if membrane not in MEMBRANES:
        raise EvsimError(f"unknown membrane bank {membrane!r}; expected one of {', '.join(MEMBRANES)}")
    if exact and membrane != "exact":
        raise EvsimError(f"exact=True contradicts membrane={membrane!r}")
    if causal and membrane == "recursive":
        raise EvsimError("the recursive membrane runs backwards from the recording's end: it cannot be causal "
                         "(use membrane='fast' for a causal stream)")
    return membrane


class _RecursiveGroup:
    """The full-rate channels ``lo .. hi - 1`` computed by the recursive filters
    (:func:`.recursive.basal_rows`) over the whole recording before its blocks
    (:meth:`FilterBank.prepare`): ``rows`` holds every membrane sample of the recording,
    time-major; :meth:`render` copies the ones a block hands out.  Same interface as
    :class:`_Group` (its block methods do nothing)."""

    decimation = 1

    def __init__(self, lo, hi, operands):
        self.lo, self.hi, self.operands = lo, hi, operands
        self.rows = None          # (samples, hi - lo) float32, from the pool; None until prepared
        self._store = None
        self.first = 0            # sample of the current block's row 0

    def prepare(self, x: np.ndarray) -> None:
        from .recursive import basal_rows

        self.release()
        n_rows = x.size // 2 + 1
        # the pool keeps arrays per shape: rounded up, so recordings of similar length share one
        self._store = scratch((-(-n_rows // 4096) * 4096, self.hi - self.lo), np.float32)
        self.rows = basal_rows(x, self.operands, self._store[:n_rows])

    def reset(self):
        self.release()

    def release(self):
        release(self._store)
        self._store = self.rows = None

    def acquire(self):
        pass

    def advance(self):
        pass

    def load(self):
        pass

    def render(self, r0: int, r1: int, dst: np.ndarray, drow: int) -> None:
        dst[drow:drow + r1 - r0, self.lo:self.hi] = self.rows[self.first + r0:self.first + r1]


def _smooth(n: int) -> bool:
    """n has no prime factor above 7 (pocketfft's own radices: no slow Bluestein path)."""
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


class FilterBank:
    """Overlap-save filtering of a waveform by every channel's kernel, decimated by 2.

    Feed waveform samples (at ``params.sample_rate``) with :meth:`push`; it returns the
    membrane output samples that are complete, as a list of (n_j, channels) float32
    pieces in time order (time-major, as the hair-cell kernel reads them; one new array
    per block, while :meth:`stream` hands out pieces of one reused buffer): output sample ``n`` (time ``n / out_rate``) is the n-th row counted over
    everything returned so far.  :meth:`finish` flushes the end (zeros after the last
    sample).  Blocks are processed on a fixed grid of ``hop`` input samples (the first
    block ``lookahead - 64`` more; see the module docstring), so the output does not depend on how the input was split: a stream equals the whole
    recording pushed at once, bit for bit.

    fft_size: FFT length per block (power of two > taps); the hop is ``fft_size - taps``.
    membrane: one of :data:`MEMBRANES` (None: "exact" if ``exact`` else "fast").
        "recursive" (offline only): the fast bank with its full-rate group computed by
        the recursive filters of :mod:`.recursive` (relative error ~1e-3 per channel)
        over the whole recording, which :meth:`prepare` must be given before its first
        sample is pushed.
    exact: every channel at the full output rate (the FIR filters as they are).  The
        default (fast) computes each channel whose kernel is band-limited at a rate
        reduced by D = 2, 4 or 8 (its spectrum cut where less than ``BAND_TOL`` of the
        energy lies above, at most a quarter of the reduced rate) and interpolates it back
        with an 8-tap polyphase filter; the output is then ``delay`` samples later (32 at
        22.05 kHz: 2.9 ms more latency).  See the module docstring for its error.
    """

    def __init__(self, params: CochleaParams, fft_size: int = 8192, causal: bool = False, exact: bool = False,
                 membrane: str | None = None):
        import scipy.fft  # noqa: F401  (imported here: the heavy part of the stage)

        membrane = membrane_kind(membrane, exact, causal)
        exact = membrane == "exact"

        taps, look = kernel_geometry(params)
        if fft_size <= taps or fft_size % 4:
            raise EvsimError(f"fft_size {fft_size} must be a multiple of 4 and larger than the kernel ({taps} taps)")
        if causal:                       # mirrored in time: lags 0 .. taps-1, nothing ahead
            look = 0
        self.params, self.taps, self.lookahead, self.fft_size = params, taps, look, fft_size
        self.hop = fft_size - taps
        self.exact, self._causal, self.membrane = exact, causal, membrane
        layout = membrane_groups(params, fft_size, self.hop, causal, exact)
        spectra = _kernel_spectra(params, fft_size, causal, layout)
        interp = 1 if exact else INTERP_TAPS
        most = max(d for _, _, d, _ in layout)
        self.delay = 0 if most == 1 else most * (interp - 1 - (interp - 1) // 2)
        self._layout, self._interp = layout, interp
        self._main = [self._make_group(lo, hi, d, bins, spec, fft_size)
                      for (lo, hi, d, bins), spec in zip(layout, spectra)]
        self._prepared = None             # recursive: samples of the recording given to prepare()
        self._groups = self._main       # the current block's groups, FFT length and hop: reset's _use
        # the grid's offset: the lookahead less the interpolator's reach back (the same
        # for the exact bank, so that its full-rate outputs are those of the fast one)
        reach = MAX_DECIMATION * (INTERP_TAPS - 1 - (INTERP_TAPS - 1) // 2)
        self._skip = max(0, look - 2 * reach)
        self._slab = None                               # the rows stream() hands out
        self.reset()

    def _make_group(self, lo, hi, d, bins, spec, size):
        if self.membrane == "recursive" and d == 1:
            from .recursive import kernel_operands

            if lo != 0:
                raise EvsimError(f"the recursive membrane fits channels from 0; the full-rate group starts at {lo}")
            return _RecursiveGroup(lo, hi, kernel_operands(self.params, hi))
        return _Group(lo, hi, d, bins, spec, size, size - self.taps, self.delay, self._interp)

    def prepare(self, samples: np.ndarray) -> None:
        """Recursive bank only: the whole recording (the very samples that will be pushed,
        as the bank receives them), before its first push; its full-rate group is computed
        here, from the end backwards.  Any other bank ignores it."""
        if self.membrane != "recursive":
            return
        if self._n_input:
            raise EvsimError("prepare() comes before the recording's first samples are pushed (reset() first)")
        x = np.asarray(samples, np.float32).ravel()
        for g in self._main:
            if isinstance(g, _RecursiveGroup):
                g.prepare(x)
        self._prepared = x.size

    @property
    def decimations(self) -> list:
        """(first channel, last channel + 1, decimation) of each group."""
        return [(g.lo, g.hi, g.decimation) for g in self._groups]

    def reset(self) -> None:
        release(self._slab)
        self._slab = None
        if self._groups is not self._main:          # the last block was a shorter one
            for g in self._groups:
                g.release()
        self._use(self._main, self.fft_size)
        for g in self._groups:
            g.reset()
        self._prepared = None
        # the block grid starts `skip` input samples late, so that the lookahead rows
        # before the recording (sample n is convolution output 2 n + lookahead) are not
        # computed, except the few the interpolator reaches back to
        self._buffer = np.zeros(self.taps - self._skip, np.float32)
        self._pending = np.zeros(0, np.float32)          # input not yet in a full block
        self._even_done = self._skip // 2    # even-position convolution outputs computed (the first: skip / 2)
        self._rows_out = 0        # membrane rows returned so far
        self._n_input = 0

    @property
    def latency_samples(self) -> int:
        """Input samples that must arrive after a sample before its output row exists."""
        return self.lookahead + self.hop + 2 * self.delay

    def push(self, samples: np.ndarray) -> list:
        return list(self._blocks(samples, reuse=False))

    def finish(self) -> list:
        """Flush with zeros after the last sample: every row up to ``n_input // 2``
        (lauscher's ``N // 2 + 1`` rows), in a shorter last block when that covers them
        (module docstring).  The bank must be :meth:`reset` before reuse."""
        return list(self._flush(reuse=False))

    def stream(self, samples: np.ndarray):
        """:meth:`push` as a generator of pieces of at most :data:`SLAB_ROWS` rows, each
        valid only until the next one is requested: the rows are written (transposed and
        interpolated from the blocks' channel-major inverse FFTs) into one small buffer
        just before they are handed out, so that the consumer reads them from the cache
        (:class:`~evsim.audio.cochlea.CochleaStream` uses each piece at once)."""
        return self._blocks(samples, reuse=True)

    def stream_finish(self):
        """:meth:`finish` as a generator, with the same condition as :meth:`stream`."""
        return self._flush(reuse=True)

    def _need(self) -> int:
        """Input samples the next block takes (the first one also its lookahead)."""
        return self._size - self._buffer.size

    def _use(self, groups: list, size: int) -> None:
        """Make ``groups`` (FFT length ``size``) the ones the next blocks run."""
        self._groups, self._size, self._block_hop = groups, size, size - self.taps
        self._fwd, self._rev = fold_slices(size)

    def _final_sizes(self) -> list:
        """The FFT lengths a last block may have, shortest first: ``taps + hop k /
        FINAL_PARTS`` (see :data:`FINAL_PARTS`)."""
        step = 2 * MAX_DECIMATION
        sizes = [self.taps + self.hop * k // FINAL_PARTS for k in range(1, FINAL_PARTS)
                 if (self.hop * k) % (FINAL_PARTS * step) == 0]
        return [n for n in sizes if n % 4 == 0 and _smooth(n)]

    def _final_size(self, rows: int) -> int:
        """FFT length of a last block that must add ``rows`` even outputs: the shortest
        of :meth:`_final_sizes` that does, else fft_size."""
        for size in self._final_sizes():
            if (size - self.taps) // 2 >= rows:
                return size
        return self.fft_size

    def _final_layout(self, size: int) -> tuple:
        """The groups at FFT length ``size``: the same channels and decimations; a
        decimated group's band the same frequency, its bins rounded up (one more)."""
        return tuple((lo, hi, d, size // 2 + 1 if d == 1 else min(-(-bins * size // self.fft_size) + 1, size // (4 * d) + 1))
                     for lo, hi, d, bins in self._layout)

    def _shorten(self, size: int) -> None:
        """Switch to blocks of FFT length ``size`` < fft_size for the end of the recording:
        the same groups (channels, decimations; a decimated group's band the same
        frequency, its bins rounded up), their state carried over from the last block."""
        hop = size - self.taps
        layouts = {n: self._final_layout(n) for n in self._final_sizes()}
        layout, spectra = layouts[size], _final_spectra(self.params, self.fft_size, self._causal, layouts)[size]
        short = [old if isinstance(old, _RecursiveGroup) else self._make_group(lo, hi, d, bins, spec, size)
                 for old, (lo, hi, d, bins), spec in zip(self._groups, layout, spectra)]
        for old, new in zip(self._groups, short):
            if new is old:                 # the recursive group: its rows are the recording's
                continue
            old.advance()                  # the last full block's rows are all out by now
            if old.decimation == 1:
                new.tail[:] = old.tail
            else:
                new.history[:new.keep] = old.history[:old.keep]
            old.release()
        self._use(short, size)

    def _blocks(self, samples, reuse: bool):
        samples = np.asarray(samples, np.float32).ravel()
        self._n_input += samples.size
        if self.membrane == "recursive" and (self._prepared is None or self._n_input > self._prepared):
            raise EvsimError("the recursive membrane needs the whole recording first: prepare(samples) before "
                             f"pushing them ({self._n_input} samples pushed, "
                             f"{'none' if self._prepared is None else self._prepared} prepared)")
        self._pending = np.concatenate([self._pending, samples])
        while self._pending.size >= self._need():
            need = self._need()
            block, self._pending = self._pending[:need], self._pending[need:]
            yield from self._emit(self._run_block(block), final=False, reuse=reuse)

    def _flush(self, reuse: bool):
        if self.membrane == "recursive" and self._prepared != self._n_input:
            raise EvsimError(f"the recursive membrane was prepared with {self._prepared} samples, "
                             f"{self._n_input} were pushed")
        while self._even_done - self.delay < self._n_input // 2 + self.lookahead // 2 + 1:
            rows = self._n_input // 2 + self.lookahead // 2 + 1 + self.delay - self._even_done
            size = self._final_size(rows)
            if size < self._size:
                self._shorten(size)
            block = np.zeros(self._need(), np.float32)
            take = min(block.size, self._pending.size)
            block[:take], self._pending = self._pending[:take], self._pending[take:]
            yield from self._emit(self._run_block(block), final=True, reuse=reuse)
        if reuse:                    # the recording is complete: its work arrays go back
            release(self._slab)
            self._slab = None
            for g in self._groups:
                g.release()

    def _run_block(self, block: np.ndarray) -> int:
        """Even-position outputs of the linear convolution for one hop, kept channel-major
        in each group (rendered to time-major rows by :meth:`_emit`, ``delay`` rows late);
        returns the global even index of the block's row 0."""
        import scipy.fft

        from ..kernels.cochlea import multiply_band, multiply_fold

        buf = np.concatenate([self._buffer, block])
        self._buffer = buf[-self.taps:]
        spectrum = scipy.fft.rfft(buf, workers=1)
        start = self._even_done - self.delay
        for g in self._groups:
            if isinstance(g, _RecursiveGroup):        # rows computed by prepare(): sample of row 0
                g.first = start - self.lookahead // 2
                continue
            g.advance()                      # the last block's rows are all out by now
            g.acquire()
            pairs = g.product.view(np.float32).reshape(g.product.shape + (2,))
            if g.decimation == 1:
                multiply_fold(_pairs(spectrum[self._fwd]), _pairs(spectrum[self._rev]), g.fwd, g.rev, pairs)
            else:
                multiply_band(_pairs(spectrum[:g.bins]), g.kern, pairs)
            # every D-th even sample of a length-B signal = inverse of its spectrum folded onto B / (2 D)
            if _IRFFT_OUT:                   # into the pool's buffer: no page faults per block
                np.fft.irfft(g.product, n=g.n_fft, axis=1, out=g.low)
            else:
                g.low[:] = scipy.fft.irfft(g.product, n=g.n_fft, axis=1, workers=1)
            g.load()
        self._even_done += self._block_hop // 2
        return start

    def _emit(self, start: int, final: bool, reuse: bool):
        """The membrane samples of the block just computed that are ready to go out
        (sample n = even convolution output n + lookahead / 2), time-major, in time order:
        reuse, pieces of at most SLAB_ROWS rows in one reused buffer; else one new array.
        Every row of a block goes out before the next block is computed (a block adds
        hop / 2 outputs, all complete), except past the end of the recording (final)."""
        end = self._even_done - self.delay - self.lookahead // 2          # samples computed so far
        if final:
            end = min(end, self._n_input // 2 + 1)
        lo = self._rows_out + self.lookahead // 2 - start
        hi = min(self._block_hop // 2, end + self.lookahead // 2 - start)
        if hi <= lo:
            return
        step = SLAB_ROWS if reuse else hi - lo
        for r0 in range(lo, hi, step):
            r1 = min(hi, r0 + step)
            if reuse:
                if self._slab is None:
                    self._slab = scratch((SLAB_ROWS, self.params.channels), np.float32)
                rows = self._slab[:r1 - r0]
            else:
                rows = np.empty((r1 - r0, self.params.channels), np.float32)
            for g in self._groups:
                g.render(r0, r1, rows, 0)
            self._rows_out += r1 - r0
            yield rows
