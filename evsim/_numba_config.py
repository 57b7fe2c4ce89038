"""Numba options in one place, and numba imported only when a kernel is needed.

``FASTMATH`` is STUMPY's flag set rather than ``fastmath=True``: it allows reassociation
and contraction but keeps NaN and infinity semantics (no ``nnan``/``ninf``), so NaN
checks in kernels keep working.  ``cache=True`` writes compiled kernels next to the
sources (or to ``NUMBA_CACHE_DIR``) so that a second ``evsim run`` starts fast.

Importing this module does not import numba (0.4 s of start-up that ``evsim info``, the
model and file code and the dense reference engine never need):

* a kernel module (``evsim/kernels/*.py``, the training kernels) gets numba from
  :func:`import_numba`, which also installs evsim's cache locator
  (:mod:`evsim._numba_cache`: a change to any of evsim's numba sources, or a new cell,
  invalidates every cached evsim kernel) before the module defines its kernels;
* the step functions that only kernels call, defined in modules that the rest of evsim
  imports (the cells' steps in ``evsim/cells/``, the surrogates), are decorated with
  :func:`njit`, which returns a :class:`LazyKernel`: numba is imported and the function
  wrapped by ``numba.njit`` the first time it is called or compiled into a kernel.
"""

from __future__ import annotations

import functools

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: options for serial kernels whose results must be bit-reproducible
#: (summation order matters for the dense/event equivalence): no reassociation.
#: ``forceinline`` (LLVM's alwaysinline on every function compiled with these options and
#: with :data:`EXACT_CALLEE`): the event engine's step loop calls a dozen small kernels
#: per layer and step, each taking several arrays (seven machine words apiece); inlined,
#: the event engine ran 1.09-1.11x faster and a stream step ~10 % (issue 14; bit for bit
#: the same results: inlining changes no floating-point operation), for ~15 % more
#: compile time and ~6 ms more to load the cached kernel.  The training kernels
#: (:data:`FAST`, :data:`PARALLEL_FAST`, ... below) take it too: a CRSNN training step 1.08x
#: faster (``bench_train.py --against``, one thread)
EXACT = {"cache": True, "nogil": True, "forceinline": True}

#: options for serial kernels where reassociation is harmless
FAST = {"cache": True, "nogil": True, "fastmath": FASTMATH, "forceinline": True}

#: parallel (``prange``) kernels where reassociation is harmless (the training kernels; the
#: event engine runs a batch on Python threads instead, :mod:`evsim._shares`)
PARALLEL_FAST = {"cache": True, "nogil": True, "parallel": True, "fastmath": FASTMATH, "forceinline": True}

#: the training kernels and the steps they call: reassociation allowed, and numpy's error
#: model (a division by zero gives inf/nan instead of raising ZeroDivisionError).  Python's
#: error model puts a zero check before every division, a branch out of the loop that
#: keeps LLVM from vectorising it: the surrogate derivatives of the backward pass ran
#: scalar, 8x slower per neuron (their divisors, 1 + y^2 and (1 + alpha |x|)^2, are >= 1)
TRAIN = dict(FAST, error_model="numpy")
PARALLEL_TRAIN = dict(PARALLEL_FAST, error_model="numpy")

#: step functions that only other kernels call (a cell's steps, the surrogates, shared
#: helpers): no cache of their own.  A cached caller holds their compiled code, and
#: evsim's cache locator invalidates the callers when these change, so a cache of their
#: own would only cost import time (numba prepares one per function: about a millisecond
#: each, paid by every ``evsim run``)
EXACT_CALLEE = {"nogil": True, "forceinline": True}
FAST_CALLEE = {"nogil": True, "fastmath": FASTMATH, "forceinline": True}
#: callees of the training kernels (:data:`TRAIN`): the cells' training steps
TRAIN_CALLEE = dict(FAST_CALLEE, error_model="numpy")
#: callees of the training kernels that keep exact arithmetic (the surrogates)
EXACT_TRAIN_CALLEE = dict(EXACT_CALLEE, error_model="numpy")


@functools.lru_cache(maxsize=None)
def import_numba():
    """The ``numba`` module, with evsim's cache locator and cache-loading shortcut
    installed (:func:`evsim._numba_cache.install`).  Every module that defines
    ``cache=True`` kernels calls this before defining them.

    Also sets ``OMP_WAIT_POLICY=passive`` unless it is set (read when numba first starts
    its OpenMP threads): otherwise those threads spin after every parallel region, taking
    the cores from the threads a training step runs its BLAS products and dropout masks on
    (:mod:`evsim.training._threaded`); a 2-thread CRSNN step used 0.67 s of CPU time with
    spinning threads and 0.32 s without (loaded machine).

    And ``GOMP_SPINCOUNT=1000`` unless set (GNU OpenMP, numba's "omp" layer, reads it at
    the same time, and it overrides the policy's spin count of 0): a training step runs
    many short parallel regions with BLAS row blocks on Python threads between them; no
    spinning put every region behind a thread wake-up, 300 000 spins (the default without
    the policy) kept the second core from the row blocks.  A CRSNN step on 2 threads took
    45 ms against 36-39 ms with a count of 1000 (61 ms on one thread), an epoch on the
    spoken digits 21.1-21.6 s against 19.7-20.1 s (issue 14).  Set here, where every
    path to numba's threads passes (the engines, training, the workers of
    :mod:`evsim.parallel`), so that it acts before any parallel kernel has run."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")
    from . import _numba_cache

    _numba_cache.install()
    import numba

    return numba


class LazyKernel:
    """``numba.njit(**options)(py_func)``, created (and numba imported) on first use.

    Called from Python it compiles and runs like the numba function.  Used as a global
    inside another kernel it is typed as that numba function (``_numba_type_``), so kernels
    call it exactly as they would call the ``numba.njit`` function.  ``py_func`` is the
    Python function; any other attribute is the numba dispatcher's."""

    def __init__(self, py_func, options: dict):
        functools.update_wrapper(self, py_func)
        self.py_func = py_func
        self._options = dict(options)
        self._dispatcher = None

    @property
    def dispatcher(self):
        """The numba dispatcher (created on first access)."""
        if self._dispatcher is None:
            self._dispatcher = import_numba().njit(**self._options)(self.py_func)
        return self._dispatcher

    @property
    def _numba_type_(self):
        return self.dispatcher._numba_type_

    def __call__(self, *args, **kwargs):
        return self.dispatcher(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_dispatcher", "_options", "py_func"):
            raise AttributeError(name)
        return getattr(self.dispatcher, name)

    def __repr__(self) -> str:
        state = "compiled on use" if self._dispatcher is None else "numba dispatcher created"
        return f"<LazyKernel {self.__module__}.{self.__qualname__} ({state})>"

    def __reduce__(self):
        # pickled by name, as a module-level function is (e.g. inside a pickled CellKind)
        return _named_kernel, (self.__module__, self.__qualname__)


class LazyGlobal:
    """A numba function ``name`` of ``module``, imported only when a kernel that calls it is
    typed (``_numba_type_``): for a module that must import numba at its top (one that
    uses a numba intrinsic), referred to from modules that must not."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    @property
    def _numba_type_(self):
        return _named_kernel(self.module, self.name)._numba_type_

    def __repr__(self) -> str:
        return f"<LazyGlobal {self.module}.{self.name}>"


def _named_kernel(module: str, qualname: str):
    """The object called ``qualname`` in ``module`` (unpickling a :class:`LazyKernel`)."""
    import importlib

    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def njit(**options):
    """Decorator: a :class:`LazyKernel` of the function with numba options ``options``
    (for functions without ``cache``: steps that only kernels call)."""
    if options.get("cache"):
        raise ValueError("njit: a lazily created kernel cannot use cache=True (numba picks the cache locator "
                         "when the kernel is defined); define cached kernels after import_numba()")

    def decorate(py_func):
        return LazyKernel(py_func, options)

    return decorate


def dispatcher(function):
    """The numba dispatcher of ``function``: a :class:`LazyKernel`'s, or ``function`` itself."""
    return function.dispatcher if isinstance(function, LazyKernel) else function
