"""A recursive (IIR) approximation of the membrane kernels of the basal channels.

Not yet wired into :class:`~evsim.audio.basilar.FilterBank` (see benchmarks/README.md,
"sixth pass"): this module holds the fit and a NumPy/SciPy reference of the filter it
defines, tested against the exact FIR bank.

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

import numpy as np

__all__ = ["fit_channel", "tail_basis", "apply_reference", "N_PAIRS", "TAIL_RANK"]

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
    w = _frequencies()
    response = np.exp(-1j * np.outer(w, np.arange(g.size))) @ g
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
