"""Live classification: the cochlea stream driving an EventStream gives the offline result."""

import numpy as np
import pytest

from evsim.audio.cochlea import encode_waveform
from evsim.audio.live import LiveClassifier
from evsim.data import bin_spikes
from evsim.event import simulate

from .conftest import word_like


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_live_with_a_fixed_gain_equals_offline_without_window(precision):
    from evsim.cli.common import builtin_path
    from evsim.model import load_model

    model = load_model(builtin_path("default_model.npz"))
    x = word_like(0.4, seed=5)
    live = LiveClassifier(model, rng=9, gain=3.0, fft_size=4096, precision=precision)
    rng = np.random.default_rng(0)
    i, seen = 0, []
    while i < x.size:
        k = int(rng.integers(220, 442))                      # 10-20 ms blocks
        live.push(x[i:i + k])
        seen.append(live.decided_s)
        i += k
    live.finish()
    assert seen[-1] > 0 and np.all(np.diff(seen) >= 0)       # decisions advance while it listens
    times, units = encode_waveform(x, rng=9, gain=3.0, window=False, fft_size=4096)
    meta = model.metadata
    counts = bin_spikes(times, units, dt_ms=meta.dt_ms, n_channels=700, pool=meta.pool, n_steps=meta.n_steps,
                        dtype=np.float64)
    offline = simulate(model, counts[None], precision=precision)
    np.testing.assert_allclose(live.scores, offline.scores[0], rtol=1e-9)
    assert live.prediction == int(offline.predictions[0])


def test_a_bad_gain_is_refused():
    import pytest

    from evsim.cli.common import builtin_path
    from evsim.errors import EvsimError
    from evsim.model import load_model

    model = load_model(builtin_path("default_model.npz"))
    for bad in ("loud", -1.0, float("nan")):
        with pytest.raises(EvsimError, match="gain"):
            LiveClassifier(model, gain=bad)
