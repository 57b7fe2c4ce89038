"""A recursive (IIR) approximation of the membrane kernels of the basal channels.

Used by :class:`~evsim.audio.basilar.FilterBank` with ``membrane="recursive"`` (offline
only: the recursion runs from the recording's end) for its full-rate group, channels
0-405 with the defaults.  This module holds the fit, a NumPy/SciPy reference of the filter
it defines (:func:`apply_reference`), the coefficients' store
(:func:`basal_coefficients`) and :func:`basal_rows`, which runs the Numba kernel
(:mod:`evsim.kernels.recursive`) over a whole recording.

Coefficients.  Fitting takes ~0.2 CPU s per channel (~36 CPU s for 406 channels),
so the coefficients of the default membrane (``CochleaParams()``: both presets share it;
406 channels, 137 kB) ship with evsim (``evsim/_builtin/membrane-iir-*.npz``, written by
``tools/fit_recursive_membrane.py``: float64 arrays, no pickle); for other parameters they
are fitted on first use (a note on stderr says so) and kept in ``$EVSIM_CACHE_DIR`` like
the kernels.  Shipped rather than fitted once per machine because the fit is slow and
its result depends on the LAPACK build at the rounding level: the shipped file makes
every machine run the same filter.

Model.  Channel i's kernel ``kappa_i(lag)`` (lags ``-lookahead .. 63``; negative = the
future, see :mod:`.basilar`) is split at lag 0::

    y_i[t] = sum_{m >= 0} g_i(m) x[t + m]  +  sum_{lag = 1}^{63} kappa_i(lag) x[t - lag]
             (anti-causal part, g_i(m) = kappa_i(-m))   (the short causal tail)

* The anti-causal part is causal in reversed time: run over ``x`` reversed, it is
  ``G_i(z) = d_i + sum_{k=1}^{P} (b1_ik z^-1 + b2_ik z^-2) / (1 + a1_ik z^-1 + a2_ik z^-2)``,
  P second-order sections in parallel (one complex pole pair each) plus a direct term.
  Offline the whole recording is known, so the recursion runs from its end backwards
  (zeros after the end: exact, since the kernel's support ends there).
* The tail (lags 1..63: a slow, non-oscillating part of the kernel, which matters for
  speech because it sets the basal channels' low-frequency response) is low-rank across
  channels: ``tail_i(lag) ~ sum_{r<R} c_ir v_r(lag)`` (SVD, R = :data:`TAIL_RANK`), so it
  costs R shared 63-tap FIR filters plus R multiply-adds per channel and output sample.

Fit (per channel, once per parameter set): vector fitting (Gustavsen & Semlyen 1999,
z-domain) of the anti-causal part's frequency response on 4096 frequencies in
(0, pi), weighted by ``1 / max(|G|, FLOOR max|G|)^2`` (relative error, so that the
low-frequency flank, where speech has its energy and a basal channel's gain is small,
is fitted as well as the peak); poles are relocated ``VF_ITERATIONS`` times (unstable ones
reflected into the unit circle), then the residues and direct term are the weighted
least-squares solution for those poles.

Measured with P = 8, R = 8, FLOOR = 1e-5 (default parameters, channels 0-405, every one of
them, float64 reference, relative rms error against the exact FIR bank at the full rate):
white noise at most ~1e-3 (channels 0, 50, 116, 200, 300, 405: 4.4e-4, 3.8e-4, 1.0e-3,
1.1e-4, 2.8e-4, 2.5e-4), a recorded test word (test_0364_seven) at most ~8e-4; the
synthetic vowel of the tests (150 Hz harmonics) 4.0e-3 on channel 0, below 1e-3 on the
others; largest pole modulus 0.999 (channels 0-116), 0.90-0.98 (200-405).  Tested: below
2e-3 on channels 116-405, 5e-3 on 0-115 (best frequencies above the Nyquist rate, whose
small low-frequency response makes the relative error on a vowel larger).  A fit to the
time-domain kernel alone (Steiglitz-McBride, orders 12-16, no split) left 1-6e-2 on a
word: the tail and the low-frequency flank are what it missed.
"""

from __future__ import annotations

import os
import sys

import numpy as np

__all__ = ["fit_channel", "tail_basis", "apply_reference", "state_space", "basal_coefficients", "basal_rows",
           "N_PAIRS", "TAIL_RANK"]

N_PAIRS = 8
TAIL_RANK = 8
FLOOR = 1e-5
VF_ITERATIONS = 10
_GRID = 4096


def _frequencies() -> np.ndarray:
    return np.pi * (np.arange(_GRID) + 0.5) / _GRID


def _basis(z: np.ndarray, poles: list) -> np.ndarray:
    """Real-parametrised partial fractions 1 / (z - p): two columns per complex pair
    (residue r' + i r'' and its conjugate), one per real pole."""
    cols = []
    for p, pair in poles:
        if pair:
            a, b = 1 / (z - p), 1 / (z - np.conj(p))
            cols += [a + b, 1j * (a - b)]
        else:
            cols.append(1 / (z - p))
    return np.stack(cols, 1)


def _as_poles(eigs: np.ndarray) -> list:
    """Eigenvalues -> [(pole, is_pair)], each conjugate pair once (upper half plane)."""
    out, used = [], np.zeros(len(eigs), bool)
    for k, e in enumerate(eigs):
        if used[k]:
            continue
        used[k] = True
        if abs(e.imag) < 1e-12 * max(1.0, abs(e)):
            out.append((complex(e.real, 0.0), False))
            continue
        for m in range(len(eigs)):
            if not used[m] and abs(eigs[m] - np.conj(e)) < 1e-8 * max(1.0, abs(e)):
                used[m] = True
                break
        out.append((complex(e.real, abs(e.imag)), True))
    return out


def _weighted_lstsq(columns: np.ndarray, target: np.ndarray, sw: np.ndarray) -> np.ndarray:
    m = columns * sw[:, None]
    r = target * sw
    return np.linalg.lstsq(np.vstack([m.real, m.imag]), np.r_[r.real, r.imag], rcond=None)[0]


def _vector_fit(response: np.ndarray, n_pairs: int, weight: np.ndarray) -> tuple[list, np.ndarray]:
    """Poles and [residues..., direct term] of ``response`` ~ d + sum r / (z - p)."""
    w = _frequencies()
    z = np.exp(1j * w)
    poles = [(0.98 * np.exp(1j * a), True) for a in np.linspace(w[0] + 0.01, w[-1] - 0.01, n_pairs)]
    sw = np.sqrt(weight)
    for _ in range(VF_ITERATIONS):
        basis = _basis(z, poles)
        n = basis.shape[1]
        sol = _weighted_lstsq(np.hstack([basis, np.ones((z.size, 1)), -response[:, None] * basis]), response, sw)
        sigma = sol[-n:]
        # sigma(z) = 1 + sum sigma_k / (z - p_k) in real state-space form; its zeros are the new poles
        a, b, k = np.zeros((n, n)), np.zeros(n), 0
        for p, pair in poles:
            if pair:
                a[k:k + 2, k:k + 2] = [[p.real, p.imag], [-p.imag, p.real]]
                b[k:k + 2] = [2.0, 0.0]
                k += 2
            else:
                a[k, k], b[k] = p.real, 1.0
                k += 1
        eigs = np.linalg.eigvals(a - np.outer(b, sigma))
        eigs = np.where(np.abs(eigs) >= 1, 1 / np.conj(eigs), eigs)       # reflect unstable poles
        poles = _as_poles(eigs)
    basis = _basis(z, poles)
    return poles, _weighted_lstsq(np.hstack([basis, np.ones((z.size, 1))]), response, sw)


def fit_channel(kernel: np.ndarray, lookahead: int, n_pairs: int = N_PAIRS, floor: float = FLOOR):
    """The anti-causal part of one kernel (float64, column j = lag j - lookahead) as
    ``(d, sections)``: direct term and (P, 4) rows ``(b1, b2, a1, a2)`` (see the module
    docstring), to be run over the reversed signal."""
    g = np.asarray(kernel, np.float64)[:lookahead + 1][::-1]          # g(m) = kappa(-m), m >= 0
    m = np.arange(g.size)
    if g.size <= 2 * _GRID:     # at w_k = pi (k + 1/2) / GRID: an FFT of g modulated by half a bin
        response = np.fft.fft(g * np.exp(-1j * np.pi * m / (2 * _GRID)), n=2 * _GRID)[:_GRID]
    else:
        response = np.exp(-1j * np.outer(_frequencies(), m)) @ g
    mag = np.abs(response)
    weight = 1.0 / np.maximum(mag, floor * mag.max()) ** 2
    poles, sol = _vector_fit(response, n_pairs, weight)
    sections, k = [], 0
    for p, pair in poles:
        if pair:       # r / (z - p) + conj = (2 Re r z^-1 - 2 Re(r conj p) z^-2) / (1 - 2 Re p z^-1 + |p|^2 z^-2)
            r = sol[k] + 1j * sol[k + 1]
            sections.append((2 * r.real, -2 * (r * np.conj(p)).real, -2 * p.real, abs(p) ** 2))
            k += 2
        else:
            sections.append((sol[k], 0.0, -p.real, 0.0))
            k += 1
    return float(sol[k]), np.array(sections, np.float64).reshape(-1, 4)


def tail_basis(kernels: np.ndarray, lookahead: int, rank: int = TAIL_RANK):
    """The causal tails (lags 1 .. taps - lookahead - 1) of ``kernels`` as ``(coef, basis)``:
    (channels, rank) and (rank, tail taps), tail_i ~ coef_i @ basis (truncated SVD)."""
    tails = np.asarray(kernels, np.float64)[:, lookahead + 1:]
    u, s, vt = np.linalg.svd(tails, full_matrices=False)
    return u[:, :rank] * s[:rank], vt[:rank]


def apply_reference(x: np.ndarray, d: float, sections: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """The approximated channel on ``x`` at the input rate (float64, SciPy): ``y[t]`` for
    t = 0 .. len(x) - 1, zeros outside the recording.  tail: the channel's causal tail
    (lags 1 ..), exact or from :func:`tail_basis`."""
    from scipy import signal

    x = np.asarray(x, np.float64)
    xr = x[::-1]
    yr = d * xr
    for b1, b2, a1, a2 in sections:
        yr = yr + signal.lfilter([0.0, b1, b2], [1.0, a1, a2], xr)
    y = yr[::-1].copy()
    y += np.convolve(x, np.r_[0.0, tail])[:x.size]
    return y


def state_space(sections: np.ndarray) -> np.ndarray:
    """The sections of :func:`fit_channel` as the units the kernel runs
    (:mod:`evsim.kernels.recursive`): (U, 6) float64 rows ``(a11, a12, a21, a22, c1, c2)``,
    U = pole pairs + ceil(real poles / 2).

    A complex pair (pole p = -a1 / 2 + i sqrt(a2 - a1^2 / 4), residue r with
    ``b1 = 2 Re r``, ``b2 = -2 Re(r conj p)``) becomes the coupled form of the complex
    one-pole ``V[t] = p V[t+1] + x[t]`` on ``(Re V, Im V)``, output ``2 Re(r V)``:
    ``A = [[Re p, -Im p], [Im p, Re p]]``, ``c = (2 Re r, -2 Im r)``.  Two real poles
    (sections ``(r, 0, -p, 0)``) share a unit: states ``(V1, V2 - V1)``,
    ``A = [[p1, 0], [p2 - p1, p2]]``, ``c = (r1 + r2, r2)`` (both take the input in the
    first state only); an odd one out is paired with a pole at 0 and residue 0; all-zero rows (the padding
    of a stored fit) are skipped.  Why this
    form and not the sections' direct form: in float32 the direct form's rounding at
    ``|p| = 0.999`` near z = +-1 is amplified by ~1 / (1 - |p|)^2, the coupled form's by
    ~1 / sqrt(1 - |p|^2) (measured in ``benchmarks/README.md``, seventh pass)."""
    units, reals = [], []
    for b1, b2, a1, a2 in np.asarray(sections, np.float64):
        if b1 == b2 == a1 == a2 == 0.0:                   # padding (a stored fit's rows past its sections)
            continue
        if a2 == 0.0 and b2 == 0.0:                       # one real pole p = -a1, residue b1
            reals.append((-a1, b1))
            continue
        pr, pi = -a1 / 2, np.sqrt(max(a2 - a1 * a1 / 4, 0.0))
        rr = b1 / 2
        ri = (-b2 / 2 - rr * pr) / pi if pi > 0 else 0.0
        units.append((pr, -pi, pi, pr, 2 * rr, -2 * ri))
    if len(reals) % 2:
        reals.append((0.0, 0.0))
    for (p1, r1), (p2, r2) in zip(reals[0::2], reals[1::2]):
        units.append((p1, 0.0, p2 - p1, p2, r1 + r2, r2))
    return np.array(units, np.float64).reshape(-1, 6)


#: bump when the fit or the stored layout changes (part of the coefficients' file name)
FIT_VERSION = 1


def _file_name(params, channels: int) -> str:
    return f"membrane-iir-{params.membrane_key()}-{channels}-v{FIT_VERSION}.npz"


def fit_basal(params, channels: int, note=None) -> dict:
    """Fit channels ``0 .. channels - 1`` of ``params``' membrane: a dict of float64 arrays
    ``d`` (C,), ``sections`` (C, S, 4) (rows past a channel's own sections are zeros: a pole
    at 0 with residue 0), ``coef`` (C, R), ``basis`` (R, L)."""
    from .basilar import kernel_geometry, membrane_kernels

    kernels = membrane_kernels(params)[:channels]
    look = kernel_geometry(params)[1]
    fits = []
    for i in range(channels):
        fits.append(fit_channel(kernels[i], look))
        if note is not None and i % 50 == 49:
            note(f"{i + 1} of {channels} channels fitted")
    width = max(sec.shape[0] for _, sec in fits)
    sections = np.zeros((channels, width, 4))
    for i, (_, sec) in enumerate(fits):
        sections[i, :sec.shape[0]] = sec
    coef, basis = tail_basis(kernels, look)
    return {"d": np.array([d for d, _ in fits]), "sections": sections, "coef": coef, "basis": basis}


def _load(path: str, channels: int):
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {k: f[k] for k in ("d", "sections", "coef", "basis")}
    except (OSError, ValueError, KeyError):
        return None
    return out if out["d"].shape == (channels,) else None


def basal_coefficients(params, channels: int, cache: bool = True) -> dict:
    """The fit of channels ``0 .. channels - 1`` (see :func:`fit_basal`): from memory, the
    file shipped with evsim, ``$EVSIM_CACHE_DIR``, or fitted now (with a note on stderr,
    then cached on disk, written atomically)."""
    from ..names import builtin_path
    from .basilar import _cache_dir

    name = _file_name(params, channels)
    if name in _MEMORY:
        return _MEMORY[name]
    shipped = builtin_path(name)
    cached = os.path.join(_cache_dir(), name)
    out = _load(shipped, channels) if os.path.exists(shipped) else None
    if out is None and cache and os.path.exists(cached):
        out = _load(cached, channels)
    if out is None:
        def note(msg):
            sys.stderr.write(f"evsim: recursive membrane: {msg}\n")

        note(f"fitting {channels} channels for these cochlea parameters (about {0.2 * channels:.0f} CPU s, "
             f"once; cached in {_cache_dir()})")
        out = fit_basal(params, channels, note)
        if cache:
            write_coefficients(cached, out)
    _MEMORY[name] = out
    return out


def write_coefficients(path: str, fit: dict) -> None:
    """Write a fit (:func:`fit_basal`) as an .npz of float64 arrays, atomically (a
    read-only folder is skipped silently: fitted again next time)."""
    from .._io import atomic_write

    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_write(path) as fh:
            np.savez_compressed(fh, **fit)
    except OSError:
        pass


_MEMORY: dict = {}
_OPERANDS: dict = {}


def kernel_operands(params, channels: int) -> tuple:
    """(units (U, 6, C), direct (C,), mix (R, C), basis (R, L)) float32, contiguous: the fit
    of channels ``0 .. channels - 1`` as :func:`evsim.kernels.recursive.recursive_rows`
    reads it (cached in memory)."""
    key = _file_name(params, channels)
    if key not in _OPERANDS:
        fit = basal_coefficients(params, channels)
        per_channel = [state_space(sec) for sec in fit["sections"]]
        n_units = max(u.shape[0] for u in per_channel)
        units = np.zeros((n_units, 6, channels), np.float32)      # missing units: A = 0, c = 0
        for c, u in enumerate(per_channel):
            units[:u.shape[0], :, c] = u
        _OPERANDS[key] = (units, fit["d"].astype(np.float32), np.ascontiguousarray(fit["coef"].T, np.float32),
                          np.ascontiguousarray(fit["basis"], np.float32))
    return _OPERANDS[key]


def basal_rows(x: np.ndarray, operands: tuple, out: np.ndarray) -> np.ndarray:
    """The recursive channels' membrane rows of the whole recording ``x`` (float32, already
    scaled): ``out[n, c]`` = channel c at input sample 2 n, n = 0 .. len(out) - 1 (zeros
    after the end of x), time-major.  Returns out."""
    from ..kernels.recursive import recursive_rows, tail_filters
    from .basilar import release, scratch

    units, direct, mix, basis = operands
    if mix.shape[0] % 4:                        # the kernel mixes the tails four at a time
        pad = 4 - mix.shape[0] % 4
        mix = np.concatenate([mix, np.zeros((pad, mix.shape[1]), mix.dtype)])
        basis = np.concatenate([basis, np.zeros((pad, basis.shape[1]), basis.dtype)])
    x = np.ascontiguousarray(x, np.float32)
    rows, taps = out.shape[0], basis.shape[1]
    padded = np.zeros(taps + max(x.size, 2 * rows), np.float32)
    padded[taps:taps + x.size] = x
    tails = scratch((basis.shape[0], rows), np.float32)
    state = scratch((units.shape[0], 2, units.shape[2]), np.float32)
    acc = scratch((units.shape[2],), np.float32)
    try:
        tail_filters(padded, basis, tails)
        recursive_rows(x, units, direct, mix, tails, state, acc, out)
    finally:
        release(tails, state, acc)
    return out
