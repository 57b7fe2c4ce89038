"""Numba options in one place.

``FASTMATH`` is STUMPY's flag set rather than ``fastmath=True``: it allows reassociation
and contraction but keeps NaN and infinity semantics (no ``nnan``/``ninf``), so NaN
checks in kernels keep working.  ``cache=True`` writes compiled kernels next to the
sources (or to ``NUMBA_CACHE_DIR``) so that a second ``evsim run`` starts in well under a
second.  Importing this module also installs evsim's cache locator
(:mod:`evsim._numba_cache`): a change to any of evsim's numba sources, or a new cell,
invalidates every cached evsim kernel, not only those whose own file changed.
"""

from . import _numba_cache

_numba_cache.install()

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: options for serial kernels whose results must be bit-reproducible
#: (summation order matters for the dense/event equivalence): no reassociation.
EXACT = {"cache": True, "nogil": True}

#: options for serial kernels where reassociation is harmless
FAST = {"cache": True, "nogil": True, "fastmath": FASTMATH}

#: options for kernels that run samples of a batch in parallel with ``prange``
PARALLEL = {"cache": True, "nogil": True, "parallel": True}

#: parallel kernels where reassociation is harmless (the training kernels)
PARALLEL_FAST = {"cache": True, "nogil": True, "parallel": True, "fastmath": FASTMATH}

#: step functions that only other kernels call (a cell's steps, the surrogates, shared
#: helpers): no cache of their own.  A cached caller holds their compiled code, and
#: evsim's cache locator invalidates the callers when these change, so a cache of their
#: own would only cost import time (numba prepares one per function: about a millisecond
#: each, paid by every ``evsim run``)
EXACT_CALLEE = {"nogil": True}
FAST_CALLEE = {"nogil": True, "fastmath": FASTMATH}
