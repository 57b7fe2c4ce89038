"""Record the built-in models' outputs on the built-in samples (both engines), so a test
can check that a change of the engines leaves them bit for bit unchanged.

    python tools/make_builtin_golden.py tests/evsim/data/builtin_golden.npz
    python tools/make_builtin_golden.py tests/evsim/data/builtin_golden_float32.npz --precision float32

Run it only from a commit whose outputs are the reference (float64: made at 7df0697;
float32, the precision ``evsim run`` runs the built-in models in by default: at the
commit that added the file, whose float32 outputs were those of main b66d109).
"""

import hashlib
import os

import numpy as np


def builtin_outputs(precision: str = "float64") -> dict[str, np.ndarray]:
    """Each built-in model's scores and SHA-256 digests of its readout trace and spike
    rasters, both engines in ``precision``, on every built-in sample."""
    import evsim
    from evsim import event, reference
    from evsim.data import SpikeFile
    from evsim.model import load_model
    from evsim.run import pad_batch

    here = os.path.join(os.path.dirname(evsim.__file__), "_builtin")
    out = {}
    for name in ("default", "sparse"):
        model = load_model(os.path.join(here, f"{name}_model.npz"))
        meta = model.metadata
        with SpikeFile(os.path.join(here, "samples.h5"), n_channels=meta.input_channels) as f:
            samples = [f.binned(i, dt_ms=meta.dt_ms, pool=meta.pool, n_steps=meta.n_steps, dtype=np.float64)
                       for i in range(len(f))]
        x, lengths = pad_batch(samples)
        for engine, sim in (("event", event.simulate), ("dense", reference.simulate)):
            res = sim(model, x, lengths, record_spikes=True, precision=precision)
            out[f"{name}.{engine}.readout_sha256"] = np.array(hashlib.sha256(res.readout.tobytes()).hexdigest())
            out[f"{name}.{engine}.scores"] = res.scores
            digest = hashlib.sha256(b"".join(np.ascontiguousarray(s).tobytes() for s in res.spikes)).hexdigest()
            out[f"{name}.{engine}.spikes_sha256"] = np.array(digest)
    return out


def numpy_exp_is_avx512() -> bool:
    """Whether NumPy's float64 ``exp`` takes its AVX-512F path on this machine: that path
    rounds some results differently in the last bit from the AVX2 / scalar one, so the
    dense engine's scores (NumPy's softmax of the readout trace) depend on it.  Recorded
    with the golden outputs (``numpy_exp_avx512``) so a test knows which path made them."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        return False
    return bool(__cpu_features__.get("AVX512F"))


def golden_keys(outputs: dict, precision: str) -> dict:
    """The outputs a golden file of ``precision`` pins: all of them in float64; in float32
    all but the dense engine's readout trace and scores.  Those are sums of float32
    products formed by BLAS (``sgemm``), whose order of addition depends on the CPU kernel
    OpenBLAS picks: three core types (SkylakeX, Haswell, Sandybridge) gave three different
    float32 traces, with the same spikes.  (In float64 the sums of float32 weights are exact
    whatever the order.)  The dense engine's float32 spikes are pinned; its trace equals
    the event engine's within float32 rounding (tests/evsim/test_event.py)."""
    if precision == "float64":
        return dict(outputs)
    return {k: v for k, v in outputs.items() if not (".dense.readout" in k or k.endswith(".dense.scores"))}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("output", help="the .npz file to write")
    ap.add_argument("--precision", default="float64", choices=("float64", "float32"))
    args = ap.parse_args()
    np.savez_compressed(args.output, **golden_keys(builtin_outputs(args.precision), args.precision),
                        numpy_exp_avx512=np.array(numpy_exp_is_avx512()))
