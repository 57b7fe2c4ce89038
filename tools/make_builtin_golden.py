"""Record the built-in models' outputs on the built-in samples (both engines), so a test
can check that a change of the engines leaves them bit for bit unchanged.

    python tools/make_builtin_golden.py tests/evsim/data/builtin_golden.npz

Run it only from a commit whose outputs are the reference (it was made at 7df0697).
"""

import hashlib
import os
import sys

import numpy as np


def builtin_outputs() -> dict[str, np.ndarray]:
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
            res = sim(model, x, lengths, record_spikes=True)
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


if __name__ == "__main__":
    np.savez_compressed(sys.argv[1], **builtin_outputs(), numpy_exp_avx512=np.array(numpy_exp_is_avx512()))
