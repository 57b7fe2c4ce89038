"""The cochlea encoder: a waveform in, spikes in the SHD layout out, offline or streaming.

``CochleaStream`` is the one implementation: it takes blocks of samples (already scaled
by the normalisation gain), runs them through the membrane filter bank
(:mod:`evsim.audio.basilar`), the hair cells and the bushy cells
(:mod:`evsim.kernels.cochlea`), and returns the spikes of every sample that is complete.
:func:`encode_waveform` (offline) normalises the whole recording's RMS, applies the
onset/offset window, and pushes the result through a stream in one-second pieces (so
memory stays bounded by one second of 700 channels, whatever the length).

Randomness comes from the ``numpy.random.Generator`` (or seed) passed in: each recording
(each :meth:`CochleaStream.reset`) draws one 64-bit key from it; the fibres of a channel
spend one uniform number per sample in which some of them fire: for a firing at
membrane sample n, channel i, a 32-bit hash of (i, output ``n + 1`` of SplitMix64 started
at that key), top 24 bits (output ``2^63 + 1`` for the channels' first thresholds; see
:mod:`evsim.kernels.cochlea`).  A counter-based generator: no stored array of random
numbers, and the numbers do not depend on how the samples were split into blocks.  A
stream fed the same scaled samples in any split, with the same generator state, gives
exactly the spikes of one push (tested).  Live versus offline: a live stream cannot know
the recording's RMS or its length, so it uses a fixed ``gain`` (see
:func:`evsim.audio.live`) and no window.

Spike times are ``n / out_rate`` seconds for membrane sample ``n`` (out_rate = 11025 Hz
at 22.05 kHz), channel 0 = the base (highest frequencies), as lauscher and SHD.
"""

from __future__ import annotations

import math

import numpy as np

from .params import CochleaParams

__all__ = ["CochleaStream", "encode_waveform", "rms_gain", "hann_ramps", "OFFLINE_MEMBRANE"]

#: the membrane bank of :func:`encode_waveform` by default (streams: "fast")
OFFLINE_MEMBRANE = "fast"


def _as_generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def rms_gain(x: np.ndarray, level: float) -> float:
    """The factor that brings ``x`` to RMS ``level`` (lauscher ``RmsNormalizer``)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if rms == 0.0:
        from .io import AudioFileError

        raise AudioFileError("the recording is silent (RMS 0): it cannot be RMS-normalised")
    return level / rms


def hann_ramps(n: int, ramp: int | None) -> np.ndarray:
    """Onset/offset window of ``n`` samples: rising half of a Hann window of length
    ``2 * ramp`` over the first ``ramp`` samples, its mirror over the last ``ramp``.
    ``ramp=None``: ``n // 2`` (one Hann window over the whole recording, lauscher 1.0.1)."""
    ramp = n // 2 if ramp is None else min(int(ramp), n // 2)
    window = np.ones(n)
    if ramp > 0:
        k = np.arange(ramp)
        rise = 0.5 - 0.5 * np.cos(2 * np.pi * k / (2 * ramp - 1)) if ramp > 1 else np.zeros(1)
        window[:ramp] = rise
        window[n - ramp:] = rise[::-1]
    return window


class CochleaStream:
    """Spikes from blocks of samples, as they arrive.

    >>> stream = CochleaStream(CochleaParams(), rng=0, gain=g)    # doctest: +SKIP
    >>> for block in microphone():                 # 10-20 ms of samples at 22.05 kHz
    ...     times, units = stream.push(block)      # spikes of every complete sample
    ...     event_stream.push(times, units, until=stream.time_done)
    >>> times, units = stream.finish()             # the last samples (zeros after the end)

    gain: factor applied to every sample (offline: ``rms_level / RMS`` of the recording).
    fft_size: block FFT length of the membrane (8192: hop 6144 samples = 279 ms; 4096:
        hop 2048 = 93 ms, lower latency, ~1.5x the work).  Streams compare bit for bit
        with offline encodings that used the same fft_size.
    causal: mirror the membrane kernels in time (no lookahead; see :mod:`.basilar`).
    exact: the membrane's FIR filters at the full rate for every channel (the reference);
        the default computes band-limited channels at a reduced rate and interpolates them
        (:class:`~evsim.audio.basilar.FilterBank`; relative error below 1e-3).
    membrane: the bank by name (:data:`~evsim.audio.basilar.MEMBRANES`; None: by
        ``exact``).  "recursive" is offline only: :meth:`prepare` takes the whole
        recording before it is pushed.
    """

    def __init__(self, params: CochleaParams | None = None, rng=None, gain: float = 1.0,
                 fft_size: int = 8192, causal: bool = False, exact: bool = False, membrane: str | None = None):
        from .basilar import FilterBank

        self.params = params or CochleaParams()
        self.gain = float(gain)
        self.rng = _as_generator(rng)
        self.bank = FilterBank(self.params, fft_size=fft_size, causal=causal, exact=exact, membrane=membrane)
        p = self.params
        dt = 1.0 / p.out_rate
        f32 = lambda *values: tuple(np.float32(v) for v in values)  # noqa: E731  (the kernel runs in float32)
        self._hc = f32(p.A, p.B, p.M, p.g * dt, p.y * dt, p.x * dt, p.r * dt, (p.l + p.r) * dt, p.hc_h * dt)
        ref_steps = p.tau_refrac * p.out_rate
        self._bushy = f32(p.n_fibres, math.exp(-dt / p.tau_syn), math.exp(-dt / p.tau_mem),
                          p.weight / p.n_fibres * dt, ref_steps)
        self._fibre_block = max(1, math.ceil(ref_steps) - 1)   # samples a fibre stays silent
        self.reset()

    def reset(self) -> None:
        """Start a new recording.  Its random key is drawn from the generator when its
        first spikes are computed, so a reset that is not followed by input draws nothing."""
        from ..kernels.cochlea import CLEFT, HIST, Q, STORE, SURV

        p = self.params
        n = p.channels
        self.bank.reset()
        k0 = p.g * p.A / (p.A + p.B)                 # hair cell at rest (spontaneous state)
        c0 = p.M * p.y * k0 / (p.l * k0 + p.y * (p.l + p.r))
        # one float32 array: rows evsim.kernels.cochlea.STATE_ROWS, then the fibre history
        self._state = np.zeros((HIST + self._fibre_block, n), np.float32)
        self._state[Q], self._state[CLEFT], self._state[STORE] = c0 * (p.l + p.r) / k0, c0, c0 * p.r / p.x
        self._state[SURV] = 1.0
        self.rows_done = 0
        self._seed = None         # this recording's key, drawn from rng when first needed

    @property
    def time_done(self) -> float:
        """Seconds of output that are final: every spike before this time has been returned."""
        return self.rows_done / self.params.out_rate

    @property
    def latency_s(self) -> float:
        """Worst-case delay between a sample arriving and its spikes coming out."""
        return self.bank.latency_samples / self.params.sample_rate

    def prepare(self, samples) -> None:
        """The whole recording, before it is pushed (the recursive membrane; other banks
        ignore it): the same samples :meth:`push` will receive."""
        self.bank.prepare(np.asarray(samples, np.float64).ravel() * self.gain)

    def push(self, samples) -> tuple[np.ndarray, np.ndarray]:
        """Feed samples (at ``params.sample_rate``); return (times s float64, units int64)."""
        x = np.asarray(samples, np.float64).ravel() * self.gain
        return self._spikes(self.bank.stream(x))

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The remaining spikes, up to sample ``n_input // 2``; then :meth:`reset`."""
        return self._spikes(self.bank.stream_finish())

    def _spikes(self, pieces, fibres: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Spikes of membrane pieces (an iterable of time-major (T_j, C) float32 arrays in
        time order, each used before the next is requested).  fibres: a list that receives
        each piece's (T_j, C) fibre spike counts (tests)."""
        from ..kernels.cochlea import THR, cochlea_block, sample_key, uniforms
        from .basilar import release, scratch

        times, units = [np.zeros(0)], [np.zeros(0, np.int64)]
        n_ch, most = self.params.channels, self.bank.hop // 2        # pieces come at most one hop long
        work = [scratch((most * n_ch // 2 + n_ch,), np.int64), scratch((most * n_ch // 2 + n_ch,), np.int64)]
        try:
            for rows in pieces:
                n_rows = rows.shape[0]
                if self._seed is None:                        # this recording's key, at its first piece
                    self._seed = np.uint64(self.rng.integers(0, 2 ** 63))
                    uniforms(np.uint64(sample_key(self._seed, np.uint64(2 ** 63))), self._state[THR])  # first thresholds
                    self._state[THR] = 1.0 - self._state[THR]
                if n_rows * n_ch // 2 + n_ch > work[0].size:
                    work = [np.empty(n_rows * n_ch // 2 + n_ch, np.int64), np.empty(n_rows * n_ch // 2 + n_ch, np.int64)]
                out_t, out_c = work
                record = np.zeros((n_rows, n_ch) if fibres is not None else (0, 0), np.float32)
                n = cochlea_block(rows, self._hc, self._bushy, self._seed, self.rows_done, self._state,
                                  out_t, out_c, record)
                if fibres is not None:
                    fibres.append(record)
                self.rows_done += n_rows
                times.append(out_t[:n] / float(self.params.out_rate))    # in time, then channel order
                units.append(out_c[:n].copy())
        finally:
            release(*work)
        return np.concatenate(times), np.concatenate(units)


def encode_waveform(x: np.ndarray, params: CochleaParams | None = None, rng=None, gain: float | None = None,
                    window: bool = True, fft_size: int = 8192, causal: bool = False,
                    piece_s: float = 1.0, exact: bool = False,
                    membrane: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spikes of one recording (mono, at ``params.sample_rate``): (times s, units).

    gain: None = RMS normalisation to ``params.rms_level`` (offline); a number = that
    fixed factor (what a live stream uses).  window: apply the onset/offset window.
    membrane: the bank (:data:`~evsim.audio.basilar.MEMBRANES`); None: "exact" if
    ``exact``, else :data:`OFFLINE_MEMBRANE` ("fast" when ``causal``).
    """
    from .basilar import membrane_kind

    params = params or CochleaParams()
    x = np.asarray(x, np.float64)
    if gain is None:
        gain = rms_gain(x, params.rms_level)
    if window:
        ramp = None if params.window_ramp_s is None else int(round(params.window_ramp_s * params.sample_rate))
        x = x * hann_ramps(x.size, ramp)
    membrane = membrane_kind(membrane, exact, causal, default=OFFLINE_MEMBRANE)
    stream = CochleaStream(params, rng=rng, gain=gain, fft_size=fft_size, causal=causal, exact=exact,
                           membrane=membrane)
    stream.prepare(x)
    piece = max(1, int(piece_s * params.sample_rate))
    times, units = [], []
    for start in range(0, x.size, piece):
        t, u = stream.push(x[start:start + piece])
        times.append(t), units.append(u)
    t, u = stream.finish()
    times.append(t), units.append(u)
    return np.concatenate(times), np.concatenate(units)
