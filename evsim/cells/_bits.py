"""The index of the lowest set bit of a word (``llvm.cttz``, one instruction), for the
cells' spike compaction (:func:`evsim.cells._common.spikes_of_word`).

This module imports numba; nothing imports it at start-up: kernels reach it through
:data:`evsim.cells._common.lowest_set_bit` (a :class:`evsim._numba_config.LazyGlobal`),
typed when a kernel that calls it is compiled or loaded, so that the dense engine's path
still runs without numba."""

from __future__ import annotations

from .._numba_config import import_numba

numba = import_numba()

from numba.cpython.unsafe.numbers import trailing_zeros  # noqa: E402 (after evsim's numba set-up)


@numba.njit(nogil=True)
def lowest_set_bit(word):
    """The index (0-63) of the lowest set bit of ``word`` (uint64, not zero)."""
    return trailing_zeros(word)
