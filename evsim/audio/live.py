"""Classifying sound while it arrives: the cochlea stream drives an ``EventStream``.

Each block of samples (10-20 ms from a microphone, or read from a file as if live) goes
through :class:`~evsim.audio.cochlea.CochleaStream`; the spikes of every membrane sample
that is complete go to :meth:`evsim.EventStream.push` with ``until`` = the time up to
which the cochlea is final, so the network runs every 10 ms step as soon as its input
is known, and the running prediction is available after every block.

What differs from the offline encoding (``evsim encode`` / ``evsim run --input``):

* gain: offline, the recording is scaled to RMS 0.3, which needs the whole recording.
  Live, the gain is either fixed (``gain=<number>``, e.g. a calibrated microphone level),
  ``"file"`` (the whole file's offline gain: for replaying a file, the one non-causal
  input), or ``"running"`` (``0.3 / RMS of everything heard so far``, updated every
  block: causal, but louder than offline early in a recording);
* no onset/offset window (the end of the recording is not known in advance);
* latency: the membrane needs ``lookahead`` samples of the future (90 ms) and processes
  hops of ``fft_size - 2048`` samples (93 ms with the default 4096), and the fast
  membrane's interpolation delays its output by 2.9 ms, so a sample's spikes come out at
  most ~186 ms after it arrived; ``causal=True`` drops the lookahead (96 ms) at the price
  of spike times that lag lauscher's by the channels' group delays.

With a fixed gain and no window, the spikes equal the offline encoder's
(``encode_waveform(x, gain=g, window=False)``) bit for bit, however the audio is split
(tested).
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple

import numpy as np

from ..errors import EvsimError
from ..precision import DEFAULT_PRECISION
from .cochlea import CochleaStream, rms_gain
from .params import CochleaParams

__all__ = ["LiveClassifier", "listen", "BlockReport"]


class BlockReport(NamedTuple):
    audio_s: float          # audio received so far
    decided_s: float        # time up to which the network has run
    prediction: int
    class_name: str
    score: float
    compute_s: float        # time this block took to process


class LiveClassifier:
    """A model listening to one recording at a time.

    gain: a number, or "running" (see the module docstring).
    precision: the network's arithmetic, as :class:`evsim.event.EventStream` takes it
        ("float64" or "float32"; CS-GRU models run in float64 only)
    warm_up: run a throwaway stream of silence through the cochlea and the network when
        constructed (loads the compiled kernels and the membrane's spectra: otherwise the
        first block of audio pays for them, ~0.1-0.3 s).  It uses its own random key, so
        the spikes of the real stream are the same with or without it.
    """

    def __init__(self, model, params: CochleaParams | None = None, rng=0, gain="running",
                 fft_size: int = 4096, causal: bool = False, warm_up: bool = True,
                 precision: str = DEFAULT_PRECISION):
        from ..event import EventStream

        self.model = model
        self.params = params or CochleaParams()
        if warm_up:
            warm = CochleaStream(self.params, rng=0, gain=1.0, fft_size=fft_size, causal=causal)
            net = EventStream(model, precision=precision)
            times, units = warm.push(np.zeros(2 * fft_size))
            net.push(times, units, until=warm.time_done)
            warm.reset()                                 # its work arrays back to the pool
        self.cochlea = CochleaStream(self.params, rng=rng, gain=1.0, fft_size=fft_size, causal=causal)
        self.network = EventStream(model, precision=precision)
        if gain != "running":
            try:
                gain = float(gain)
            except (TypeError, ValueError):
                raise EvsimError(f"gain {gain!r}; expected 'running' or a number") from None
            if not (np.isfinite(gain) and gain > 0):
                raise EvsimError(f"gain {gain!r}; expected a positive number")
        self.gain_mode = gain
        self.reset()

    def reset(self) -> None:
        self.cochlea.reset()
        self.network.reset()
        self._sum_sq = 0.0
        self._n = 0

    def _update_gain(self, x: np.ndarray) -> None:
        if self.gain_mode == "running":
            self._sum_sq += float(np.dot(x, x))
            self._n += x.size
            if self._sum_sq > 0:
                self.cochlea.gain = self.params.rms_level / np.sqrt(self._sum_sq / self._n)
        else:
            self.cochlea.gain = self.gain_mode

    def push(self, samples) -> None:
        x = np.asarray(samples, np.float64).ravel()
        self._update_gain(x)
        times, units = self.cochlea.push(x)
        self.network.push(times, units, until=self.cochlea.time_done)

    def finish(self) -> None:
        times, units = self.cochlea.finish()
        self.network.push(times, units)
        self.network.finish()

    @property
    def decided_s(self) -> float:
        return self.network.n_steps * self.model.metadata.dt_ms / 1000.0

    @property
    def prediction(self) -> int:
        return int(self.network.prediction)

    @property
    def scores(self) -> np.ndarray:
        return self.network.scores


def listen(model, path: str, block_ms: float = 20.0, gain="file", seed=0, fft_size: int = 4096,
           causal: bool = False, realtime: bool = False,
           on_block: Callable[[BlockReport], None] | None = None,
           precision: str = DEFAULT_PRECISION) -> tuple[LiveClassifier, list]:
    """Replay a recording as if live, ``block_ms`` of audio at a time; call ``on_block``
    after every block with the running prediction.  gain: "file" (the offline gain of
    the whole recording), "running", or a number.  Returns the classifier (its final
    prediction and scores) and the per-block reports."""
    from .io import read_audio

    params = CochleaParams()
    rec = read_audio(path, sample_rate=params.sample_rate)
    if gain == "file":
        gain = rms_gain(rec.samples, params.rms_level)
    live = LiveClassifier(model, params, rng=seed, gain=gain, fft_size=fft_size, causal=causal, precision=precision)
    block = max(1, int(round(block_ms / 1000 * params.sample_rate)))
    reports = []
    start_wall = time.perf_counter()
    names = model.class_names
    for start in range(0, rec.samples.size + block, block):
        piece = rec.samples[start:start + block]
        t0 = time.perf_counter()
        if piece.size:
            live.push(piece)
        else:
            live.finish()
        spent = time.perf_counter() - t0
        audio_s = min(start + block, rec.samples.size) / params.sample_rate
        p = live.prediction
        report = BlockReport(audio_s, live.decided_s, p, names[p], float(live.scores[p]), spent)
        reports.append(report)
        if on_block is not None:
            on_block(report)
        if realtime and piece.size:
            wait = start_wall + audio_s - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
    return live, reports
