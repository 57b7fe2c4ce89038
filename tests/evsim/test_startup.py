"""Start-up: the parts of evsim that run no kernel do not import numba, and the lazily
created step functions behave as numba functions."""

import subprocess
import sys

import pytest

from evsim import _numba_config


def _imports_after(code: str) -> set:
    """Top-level modules imported by a fresh interpreter running ``code``."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
                         check=True, capture_output=True, text=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["evsim.model", "evsim.model_file", "evsim.info", "evsim.reference",
                                    "evsim.run", "evsim.cells", "evsim.surrogates"])
def test_modules_without_kernels_do_not_import_numba(module):
    assert "numba" not in _imports_after(f"import {module}")


def test_the_dense_engine_runs_without_numba():
    code = ("import numpy as np\nfrom evsim.model_file import load_model\nfrom evsim.names import BUILTIN_MODELS, "
            "builtin_path\nfrom evsim.reference import simulate\n"
            "m = load_model(builtin_path(BUILTIN_MODELS['default']))\nsimulate(m, np.ones((3, m.n_inputs)))")
    assert "numba" not in _imports_after(code)


def test_a_lazy_kernel_is_a_numba_function_on_use():
    def twice(x):
        return 2.0 * x

    lazy = _numba_config.njit(**_numba_config.EXACT_CALLEE)(twice)
    assert lazy.py_func is twice and lazy.__name__ == "twice"
    assert lazy(1.5) == 3.0                                   # compiles on the first call
    numba = _numba_config.import_numba()

    @numba.njit
    def caller(x):                                            # a kernel calling it as a global
        return lazy(x) + 1.0

    assert caller(2.0) == 5.0
    assert lazy.dispatcher is lazy.dispatcher and (numba.float64,) in [tuple(sig.args) for sig in lazy.nopython_signatures]


def test_a_lazy_kernel_refuses_a_cache():
    with pytest.raises(ValueError, match="cache=True"):
        _numba_config.njit(**_numba_config.EXACT)(lambda x: x)


def test_cached_kernels_load_without_numbas_registry_refresh():
    """A fresh process loads the (cached) event engine without numba's registry refresh
    and without the modules of numba's array allocation (the kernel allocates nothing:
    evsim.kernels.event.zero_state) or array math, and gets the same results as the
    process that compiled or loaded it normally."""
    import numpy as np

    from evsim import event
    from evsim.model_file import load_model
    from evsim.names import BUILTIN_MODELS, builtin_path

    model = load_model(builtin_path(BUILTIN_MODELS["default"]))
    x = np.random.default_rng(3).poisson(0.3, (20, model.n_inputs)).astype(np.float64)
    here = event.simulate(model, x)                  # compiles, or loads: the cache is filled either way
    code = ("import sys, numpy as np\nfrom evsim import event\nfrom evsim.model_file import load_model\n"
            "from evsim.names import BUILTIN_MODELS, builtin_path\nfrom numba.core.registry import cpu_target\n"
            "m = load_model(builtin_path(BUILTIN_MODELS['default']))\n"
            "x = np.random.default_rng(3).poisson(0.3, (20, m.n_inputs)).astype(np.float64)\n"
            "r = event.simulate(m, x)\n"
            "print(len(cpu_target.target_context._registries), 'numba.typed.typedset' in sys.modules,\n"
            "      'numba.np.arrayobj' in sys.modules, 'numba.np.arraymath' in sys.modules)\n"
            "print(' '.join(repr(float(v)) for v in r.scores.ravel()))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split("\n")
    # nothing registered; numba.typed, numba's array allocation and array math never imported
    assert out[0] == "0 False False False"
    assert np.array_equal(np.array([float(v) for v in out[1].split()]), here.scores.ravel())


def test_a_cell_with_lazy_steps_pickles_by_name():
    import pickle

    from evsim.cells import CELLS
    from evsim.surrogates import SURROGATES

    for kind in CELLS.values():
        again = pickle.loads(pickle.dumps(kind))
        assert again.event_update is kind.event_update and again.bwd_step is kind.bwd_step
    assert pickle.loads(pickle.dumps(SURROGATES))["arctan"].grad is SURROGATES["arctan"].grad
