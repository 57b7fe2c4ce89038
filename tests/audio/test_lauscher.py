"""evsim's cochlea against lauscher 1.0.1 itself (slow: lauscher takes about a minute per
second of audio).  lauscher is an optional benchmark extra (``pip install 'evsim[bench]'``),
never a dependency of evsim."""

import numpy as np
import pytest

from evsim.audio.cochlea import encode_waveform

from .conftest import FS, word_like


def profile(times, units, n):
    return np.bincount(units, minlength=700), np.bincount((times / 0.01).astype(int), minlength=n)


@pytest.mark.slow
def test_spikes_match_lauscher_statistically():
    pytest.importorskip("lauscher", reason="lauscher 1.0.1 is the optional 'bench' extra: pip install 'evsim[bench]'")
    from lauscher.audiowaves import MonoAudioWave
    from lauscher.helpers import CommandLineArguments
    from lauscher.transformations.wave2spike import Wave2Spike

    CommandLineArguments().num_concurrent_jobs = 1
    x = word_like(0.3, seed=4)
    theirs = MonoAudioWave(x.copy(), FS).transform(Wave2Spike(num_channels=700))
    lt, lu = np.asarray(theirs.spike_times, float), np.asarray(theirs.spike_labels).astype(int)
    et, eu = encode_waveform(x, rng=0)
    e2t, e2u = encode_waveform(x, rng=1)
    n = int(0.3 / 0.01) + 1
    (lc, lp), (ec, ep), (e2c, e2p) = profile(lt, lu, n), profile(et, eu, n), profile(e2t, e2u, n)
    ceiling_channels = np.corrcoef(ec, e2c)[0, 1]            # two draws of evsim's own randomness
    assert np.corrcoef(ec, lc)[0, 1] > ceiling_channels - 0.03
    assert np.corrcoef(ep, lp)[0, 1] > 0.97
    assert et.size == pytest.approx(lt.size, rel=0.05)
