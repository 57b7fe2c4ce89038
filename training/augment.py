"""The two training augmentations of the method (docs/method.md, "Data (SHD)").

Both act on *binned* counts ``x``: shape ``(T, C)`` for one sample or ``(B, T, C)`` for a
batch, where ``T`` is the fixed number of steps and ``C`` the pooled input channels.  A
count moved outside ``[0, T)`` is dropped; the space it leaves is filled with zeros.
Every function is pure (returns a new array) and takes its randomness as a
``numpy.random.Generator``.

Per-channel shift::

    s[b, c] ~ UniformInteger[-S, S]             one draw per sample and channel
    y[b, t, c] = x[b, t - s[b, c], c]           0 where t - s[b, c] is outside [0, T)

    A positive shift delays the channel.  S is in steps: S = 10 at dt = 10 ms by default,
    i.e. 100 ms, the method's S = 100 at 1 ms steps (S = 100 at 10 ms would be 1 s, about
    a whole SHD sample, and would push half of the spikes out of the window).

Same-class blend of ``x`` (the sample) with ``p`` (another sample of the same class)::

    n_t    = sum_c x[t, c]                                       spikes at step t
    com(x) = sum_t t * n_t / sum_t n_t                           centre of mass, in steps
    k      = floor(com(x) - com(p) + 1/2)                        nearest integer, halves up
    p'[t, c] = p[t - k, c]                                       p moved so its centre meets x's
    y      = Binomial(x, keep) + Binomial(p', keep)              keep = 1/2

    The sample ``x`` stays where it is and its partner moves; an empty sample has no centre
    of mass and is not moved (k = 0).  Counts of p pushed out of the window by the alignment
    are dropped before thinning.  Binomial thinning of a count is the same as keeping each
    of its spikes independently with probability ``keep``.

Voice transforms (off by default; ``freq_shift`` F and ``time_stretch`` s of :class:`Augment`),
drawn once per sample and applied to every view of the epoch (the original included), after
the view is made::

    k_b ~ UniformInteger[-F, F]                  frequency shift, in (pooled) input channels
    y[b, t, c] = x[b, t, c - k_b]                0 where c - k_b is outside [0, C)
    r_b ~ Uniform[1 / (1 + s), 1 + s]            time stretch (r > 1: slower speech)
    y[b, t, c] = x[b, floor(t / r_b), c]         0 where floor(t / r_b) >= T

    A speaker's vocal tract scales its formants by a factor; the cochlea's channels are
    spaced about logarithmically in frequency, so a factor is a shift along the channel
    axis (one pooled input is 5 of the 700 cochlea channels).  The stretch resamples whole
    bins (nearest neighbour, about t = 0, where the samples start), so the spikes per step
    stay those of the original: a slower speaker is longer, not sparser.

Frequency masks (off by default; ``freq_mask`` W and ``freq_masks`` M of :class:`Augment`),
drawn per sample after the two transforms above, for every view::

    w_bm ~ UniformInteger[0, W],  a_bm ~ UniformInteger[0, C - w_bm]     m = 1..M
    y[b, t, c] = 0 where a_bm <= c < a_bm + w_bm for some m, else x[b, t, c]

    SpecAugment's frequency masking (Park et al. 2019) on the spike counts.  Whole bands of
    the cochlea go silent, so the network cannot lean on one band alone: a whispered voice,
    for one, has no voicing and leaves the low-frequency channels (the high channel
    numbers) almost empty (README, "The default recipe").

Spike drop (off by default; ``spike_drop`` D of :class:`Augment`), drawn per sample after
the masks, for every view::

    u_b ~ Uniform[0, D]
    y[b, t, c] = Binomial(x[b, t, c], 1 - u_b)      each spike kept with probability 1 - u_b

    Voices differ in how many spikes a word leaves in the cochlea (a whispered word in the
    spoken digits: 2820 spikes against 6726 on average), not only in where they fall; a
    network trained on thinned copies cannot count on a voice's spike density.

The augmented epoch (:func:`evsim.training.data.iterate_batches` given an :class:`Augment`) holds
every training sample three times: as it is, channel-shifted, and blended, mixed in one
shuffled order.  This module imports nothing of ``training.data`` (no import loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsim.errors import EvsimError

__all__ = [
    "Augment",
    "alignment_shift",
    "blend",
    "centre_of_mass",
    "mask_frequency",
    "shift_channels",
    "shift_channels_by",
    "shift_frequency",
    "shift_time",
    "stretch_time",
    "thin",
    "thin_samples",
    "voice_transform",
    "VIEWS",
]

# The views of a sample in an augmented epoch, in a fixed order (codes 0, 1, 2).
VIEWS = ("original", "shift", "blend")


@dataclass(frozen=True)
class Augment:
    """Which augmentations make up an epoch, and their sizes.

    max_shift: S, the largest per-channel shift in steps (>= 0); 10 steps = 100 ms at dt = 10 ms
    shift: include the channel-shifted copy of every sample
    blend: include the same-class blend of every sample
    keep: probability that a spike survives thinning in the blend (method: 0.5)
    freq_shift: F, the largest shift of a whole sample along the input channels (>= 0; 0: off)
    time_stretch: s, the largest relative stretch of a whole sample in time (>= 0; 0: off)
    freq_mask: W, the widest band of inputs silenced per mask (>= 0; 0: off)
    freq_masks: M, how many bands are drawn per sample when ``freq_mask`` > 0 (>= 1)
    spike_drop: D, the largest share of a sample's spikes dropped (in [0, 1); 0: off)
    """

    max_shift: int = 10
    shift: bool = True
    blend: bool = True
    keep: float = 0.5
    freq_shift: int = 0
    time_stretch: float = 0.0
    freq_mask: int = 0
    freq_masks: int = 2
    spike_drop: float = 0.0

    def __post_init__(self):
        if not (isinstance(self.max_shift, (int, np.integer)) and self.max_shift >= 0):
            raise EvsimError(f"augment max_shift: {self.max_shift!r}; expected an integer number of steps >= 0")
        if not (0.0 <= float(self.keep) <= 1.0):
            raise EvsimError(f"augment keep: {self.keep!r}; expected a probability in [0, 1]")
        for name in ("freq_shift", "freq_mask"):
            value = getattr(self, name)
            if not (isinstance(value, (int, np.integer)) and value >= 0):
                raise EvsimError(f"augment {name}: {value!r}; expected an integer number of inputs >= 0")
        if not (np.isfinite(self.time_stretch) and 0.0 <= float(self.time_stretch) <= 1.0):
            raise EvsimError(f"augment time_stretch: {self.time_stretch!r}; expected a fraction in [0, 1]")
        if not (np.isfinite(self.spike_drop) and 0.0 <= float(self.spike_drop) < 1.0):
            raise EvsimError(f"augment spike_drop: {self.spike_drop!r}; expected a fraction in [0, 1)")
        if not (isinstance(self.freq_masks, (int, np.integer)) and self.freq_masks >= 1):
            raise EvsimError(f"augment freq_masks: {self.freq_masks!r}; expected an integer number of bands >= 1")

    @property
    def views(self) -> tuple[int, ...]:
        """Codes (indices into :data:`VIEWS`) of the views in an epoch; 0 is always there."""
        return (0,) + ((1,) if self.shift else ()) + ((2,) if self.blend else ())

    @property
    def factor(self) -> int:
        """How many times longer the augmented epoch is than the plain one (3 by default)."""
        return len(self.views)


def _as_batch(x) -> tuple[np.ndarray, bool]:
    x = np.asarray(x)
    if x.ndim == 2:
        return x[None], True
    if x.ndim != 3:
        raise EvsimError(f"counts must have shape (T, C) or (B, T, C), got {x.shape}")
    return x, False


def shift_channels_by(x, shifts) -> np.ndarray:
    """Move channel ``c`` of sample ``b`` later by ``shifts[b, c]`` steps (negative: earlier).

    x: (T, C) or (B, T, C) counts; shifts: integers broadcastable to (B, C).
    Counts moved outside the window are dropped, vacated steps are zero.  Same dtype as x.
    """
    xb, single = _as_batch(x)
    B, T, C = xb.shape
    s = np.broadcast_to(np.asarray(shifts, dtype=np.int64), (B, C))
    src = np.arange(T)[None, :, None] - s[:, None, :]          # (B, T, C) source step
    valid = (src >= 0) & (src < T)
    out = np.take_along_axis(xb, np.clip(src, 0, T - 1), axis=1)
    out = np.where(valid, out, np.zeros((), dtype=xb.dtype))
    return out[0] if single else out


def shift_channels(x, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Per-channel shift: every (sample, channel) moves by its own integer in [-S, S] steps."""
    xb, single = _as_batch(x)
    s = rng.integers(-int(max_shift), int(max_shift) + 1, size=(xb.shape[0], xb.shape[2]))
    out = shift_channels_by(xb, s)
    return out[0] if single else out


def shift_time(x, shifts) -> np.ndarray:
    """Move whole samples later by ``shifts[b]`` steps (all channels together)."""
    xb, single = _as_batch(x)
    s = np.asarray(shifts, dtype=np.int64).reshape(-1, 1)
    out = shift_channels_by(xb, np.broadcast_to(s, (xb.shape[0], xb.shape[2])))
    return out[0] if single else out


def shift_frequency(x, shifts) -> np.ndarray:
    """Move every channel of sample ``b`` up by ``shifts[b]`` inputs (negative: down).

    x: (T, C) or (B, T, C) counts; shifts: (B,) integers.  Counts moved past either end of
    the channel axis are dropped, vacated channels are zero.  Same dtype as x.
    """
    xb, single = _as_batch(x)
    B, T, C = xb.shape
    k = np.asarray(shifts, dtype=np.int64).reshape(-1)
    src = np.arange(C)[None, :] - k[:, None]                     # (B, C) source channel
    valid = (src >= 0) & (src < C)
    out = np.take_along_axis(xb, np.clip(src, 0, C - 1)[:, None, :], axis=2)
    out = np.where(valid[:, None, :], out, np.zeros((), dtype=xb.dtype))
    return out[0] if single else out


def stretch_time(x, factors) -> np.ndarray:
    """Resample sample ``b`` in time by ``factors[b]`` (> 0): y[t] = x[floor(t / r)].

    r > 1 lengthens the sample (bins repeated, the end cut at T), r < 1 shortens it (bins
    skipped, the end filled with zeros).  Same dtype as x.
    """
    xb, single = _as_batch(x)
    B, T, C = xb.shape
    r = np.asarray(factors, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(r) & (r > 0)):
        raise EvsimError(f"stretch factors must be finite and > 0, got {r}")
    src = np.floor(np.arange(T)[None, :] / r[:, None]).astype(np.int64)     # (B, T) source step
    valid = src < T
    out = np.take_along_axis(xb, np.minimum(src, T - 1)[:, :, None], axis=1)
    out = np.where(valid[:, :, None], out, np.zeros((), dtype=xb.dtype))
    return out[0] if single else out


def mask_frequency(x, starts, widths) -> np.ndarray:
    """Silence inputs ``starts[b, m] <= c < starts[b, m] + widths[b, m]`` of sample ``b``.

    x: (T, C) or (B, T, C) counts; starts, widths: (B, M) integers >= 0 (a band may run past
    the last input; the part inside is silenced).  Same dtype as x.
    """
    xb, single = _as_batch(x)
    a = np.asarray(starts, dtype=np.int64).reshape(xb.shape[0], -1)
    w = np.asarray(widths, dtype=np.int64).reshape(a.shape)
    c = np.arange(xb.shape[2])[None, None, :]
    silenced = ((c >= a[:, :, None]) & (c < (a + w)[:, :, None])).any(axis=1)      # (B, C)
    out = np.where(silenced[:, None, :], np.zeros((), dtype=xb.dtype), xb)
    return out[0] if single else out


def _draw_masks(n_samples: int, n_inputs: int, widest: int, count: int, rng: np.random.Generator):
    widths = rng.integers(0, min(int(widest), n_inputs) + 1, size=(n_samples, int(count)))
    starts = rng.integers(0, n_inputs - widths + 1)
    return starts, widths


def voice_transform(x, freq_shift: int, time_stretch: float, rng: np.random.Generator,
                    freq_mask: int = 0, freq_masks: int = 2, spike_drop: float = 0.0) -> np.ndarray:
    """The voice transforms, frequency masks and spike drop of the module docstring, one draw
    per sample; x unchanged when all are 0 (no random numbers drawn then)."""
    xb, single = _as_batch(x)
    if freq_shift:
        xb = shift_frequency(xb, rng.integers(-int(freq_shift), int(freq_shift) + 1, size=xb.shape[0]))
    if time_stretch:
        xb = stretch_time(xb, rng.uniform(1.0 / (1.0 + time_stretch), 1.0 + time_stretch, size=xb.shape[0]))
    if freq_mask:
        xb = mask_frequency(xb, *_draw_masks(xb.shape[0], xb.shape[2], freq_mask, freq_masks, rng))
    if spike_drop:
        xb = thin_samples(xb, 1.0 - rng.uniform(0.0, float(spike_drop), size=xb.shape[0]), rng)
    return xb[0] if single else xb


def centre_of_mass(x) -> np.ndarray | float:
    """Centre of mass in time, in steps: sum_t t n_t / sum_t n_t; NaN for an empty sample.

    Returns a float for one (T, C) sample, a (B,) float64 array for a batch.
    """
    xb, single = _as_batch(x)
    n_t = xb.sum(axis=2, dtype=np.float64)                       # (B, T)
    total = n_t.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        com = (n_t @ np.arange(xb.shape[1], dtype=np.float64)) / total
    com = np.where(total > 0, com, np.nan)
    return float(com[0]) if single else com


def alignment_shift(x, partner) -> np.ndarray | int:
    """Steps k that move ``partner``'s centre of mass onto ``x``'s: floor(com(x) - com(p) + 1/2).

    0 where either sample is empty.
    """
    d = np.asarray(centre_of_mass(x)) - np.asarray(centre_of_mass(partner))
    k = np.where(np.isfinite(d), np.floor(d + 0.5), 0.0).astype(np.int64)
    return int(k) if k.ndim == 0 else k


def thin(x, rng: np.random.Generator, keep: float = 0.5) -> np.ndarray:
    """Binomial(count, keep) of every count; same dtype as x (counts must be whole numbers >= 0)."""
    x = np.asarray(x)
    out = np.zeros_like(x)
    nz = x > 0                                                   # binned input is mostly empty
    out[nz] = rng.binomial(x[nz].astype(np.int64), keep)
    return out


def thin_samples(x, keeps, rng: np.random.Generator) -> np.ndarray:
    """Binomial(count, keeps[b]) of every count of sample ``b``: x (B, T, C), keeps (B,) in [0, 1]."""
    x = np.asarray(x)
    p = np.broadcast_to(np.asarray(keeps, dtype=np.float64).reshape(-1, 1, 1), x.shape)
    out = np.zeros_like(x)
    nz = x > 0
    out[nz] = rng.binomial(x[nz].astype(np.int64), p[nz])
    return out


def blend(x, partner, rng: np.random.Generator, keep: float = 0.5) -> np.ndarray:
    """Same-class blend: partner aligned on x's centre of mass, both thinned, then added.

    x, partner: (T, C) or (B, T, C) counts of the same shape.  See the module docstring.
    """
    x = np.asarray(x)
    partner = np.asarray(partner)
    if x.shape != partner.shape:
        raise EvsimError(f"blend: sample shape {x.shape} and partner shape {partner.shape} differ")
    moved = shift_time(partner, np.atleast_1d(alignment_shift(x, partner)))
    return thin(x, rng, keep) + thin(moved, rng, keep)
