"""The built-in models give bit-identical outputs to those recorded before the cell
registry and the grouped kernel arguments (tools/make_builtin_golden.py, at 7df0697):
scores exactly, readout traces and spike rasters by SHA-256 of their bytes; in float32
(what `evsim run` runs them in by default) those recorded when it became the default.  One
exception, by platform: NumPy's float64 exp has an AVX-512 code path that rounds some
results differently in the last bit, so where this machine's path is not the one that
recorded the file (``numpy_exp_avx512`` in it; seen: 3.6e-15), the dense engine's scores
(NumPy's softmax of the bit-checked trace) are checked to 4 ulp; everything else, and
those scores on a machine like the recording one, bit for bit."""

import os

import numpy as np

from tools.make_builtin_golden import builtin_outputs, golden_keys, numpy_exp_is_avx512

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "builtin_golden.npz")
#: float32, the precision `evsim run` runs the built-in models in (precision "auto"):
#: the event engine's scores, trace and spikes, the dense engine's spikes (golden_keys)
GOLDEN_FLOAT32 = os.path.join(os.path.dirname(__file__), "data", "builtin_golden_float32.npz")


def test_builtin_models_are_bit_identical():
    want = np.load(GOLDEN)
    got = builtin_outputs()
    # which exp made the recorded dense scores (files from before the flag: the AVX2 path)
    recorded_avx512 = bool(want["numpy_exp_avx512"]) if "numpy_exp_avx512" in want.files else False
    same_exp = recorded_avx512 == numpy_exp_is_avx512()
    assert set(got) == set(want.files) - {"numpy_exp_avx512"}
    for key in got:
        if key.endswith("sha256"):
            assert str(got[key]) == str(want[key]), key
        elif key.endswith(".dense.scores") and not same_exp:
            # the dense engine's scores are NumPy's softmax of the (bit-checked) readout
            # trace summed over steps: its exp's last-bit rounding depends on the CPU
            np.testing.assert_array_max_ulp(got[key], want[key], maxulp=4)
        else:
            assert np.array_equal(got[key], want[key]), key


def test_builtin_models_are_bit_identical_in_float32():
    """The outputs ``evsim run`` gives by default (float32) are pinned bit for bit too:
    recorded at the commit that added the file (tools/make_builtin_golden.py)."""
    want = np.load(GOLDEN_FLOAT32)
    got = golden_keys(builtin_outputs("float32"), "float32")
    assert set(got) == set(want.files) - {"numpy_exp_avx512"} and any(k.startswith("default.event.") for k in got)
    for key in got:
        if key.endswith("sha256"):
            assert str(got[key]) == str(want[key]), key
        else:
            assert np.array_equal(got[key], want[key]), key


def test_builtin_models_predict_the_same_in_float32():
    """The command line's default precision (``auto``) runs the built-in models in float32
    on the ground that their predictions are float64's: checked here on the built-in
    samples (the whole test file is in benchmarks/README.md, "Precision")."""
    from evsim import event
    from evsim.data import SpikeFile
    from evsim.model import load_model
    from evsim.names import BUILTIN_MODELS, BUILTIN_SAMPLES, builtin_path
    from evsim.precision import resolve_precision
    from evsim.run import pad_batch

    for name in ("default", "sparse"):
        model = load_model(builtin_path(BUILTIN_MODELS[name]))
        assert resolve_precision("auto", model) == "float32"
        meta = model.metadata
        with SpikeFile(builtin_path(BUILTIN_SAMPLES), n_channels=meta.input_channels) as f:
            x, lengths = pad_batch([f.binned(i, dt_ms=meta.dt_ms, pool=meta.pool, n_steps=meta.n_steps,
                                             dtype=np.float64) for i in range(len(f))])
        f64 = event.simulate(model, x, lengths, precision="float64")
        f32 = event.simulate(model, x, lengths, precision="float32")
        assert np.array_equal(f32.predictions, f64.predictions), name
        assert np.allclose(f32.scores, f64.scores, rtol=1e-3, atol=1e-3), name
