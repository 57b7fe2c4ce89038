"""64-byte aligned arrays (evsim._memory): the helpers, and every array the event kernels
read and write (packed model, NumPy and kernel states, the stream's flat buffers)."""

from __future__ import annotations

import numpy as np
import pytest

from evsim import event
from evsim._memory import ALIGN, aligned_copy, aligned_empty, aligned_zeros, is_aligned
from evsim.precision import PRECISIONS
from tests.strategies import random_case


@pytest.mark.parametrize("shape", [0, 1, 3, 17, 256, (2, 5), (0, 7), (3, 0), (4, 33)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8])
def test_aligned_arrays_start_on_64_bytes(shape, dtype):
    for _ in range(4):                      # several allocations: not aligned by luck
        a = aligned_zeros(shape, dtype)
        assert a.shape == ((shape,) if np.ndim(shape) == 0 else shape) and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable and not a.any()
        assert a.size == 0 or is_aligned(a)
        a[...] = 1                            # the whole array is usable
        assert aligned_empty(shape, dtype).shape == a.shape


def test_aligned_copy_is_an_aligned_equal_copy():
    rng = np.random.default_rng(0)
    for offset in range(4):                  # sources at every 16-byte misalignment
        base = rng.normal(size=300)
        source = base[offset * 2:offset * 2 + 256].reshape(16, 16)
        copy = aligned_copy(source)
        assert is_aligned(copy) and np.array_equal(copy, source) and copy.dtype == source.dtype
        assert not np.shares_memory(copy, source)


def test_is_aligned_sees_a_misaligned_view():
    a = aligned_zeros(32, np.float32)
    assert is_aligned(a) and not is_aligned(a[1:]) and is_aligned(a[ALIGN // 4:])


def _leaves(tree):
    if isinstance(tree, np.ndarray):
        yield tree
    else:
        for sub in tree:
            yield from _leaves(sub)


def _misaligned(tree) -> list:
    return [a.shape for a in _leaves(tree) if a.size and not is_aligned(a)]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_kernel_array_starts_on_64_bytes(precision):
    """The packed model, the NumPy state (one-thread batches), the kernel's own state
    (parallel shares) and the stream's flat buffers and their views."""
    from evsim.kernels import event as k

    for seed in range(4):
        model, _, _ = random_case(seed)
        params, params_t = event._packed(model, precision)
        assert _misaligned(params_t) == []
        assert _misaligned(k.zero_state(params)) == []
        assert _misaligned(k.new_state(params)) == []
        real = params.cells.beta.dtype
        for tree, spec, roles in ((params, k.PARAMS_SPEC, k.PARAMS_ROLES),
                                  (k.new_state(params), k.STATE_SPEC, k.STATE_ROLES)):
            buffers, views = k.flatten(tree, spec, roles, real)
            assert _misaligned(buffers) == [] and _misaligned(views) == []

