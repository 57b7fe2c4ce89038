"""kernels._unmanaged.unmanaged: the same array (data, shape, strides, values) without a
memory-info block, so numba counts no references to its views."""

import numba
import numpy as np
import pytest

from evsim.kernels._unmanaged import unmanaged


@numba.njit
def _view_and_write(a):
    view = unmanaged(a)
    view[...] = view * 2 + 1            # writes reach the caller's array
    return view.ctypes.data, view.shape, view.strides


@numba.njit
def _row_sum(a, r):
    return unmanaged(a)[r].sum()


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (0,), (4, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_unmanaged_is_the_same_array(shape, dtype):
    a = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    expected = a * 2 + 1
    data, view_shape, strides = _view_and_write(a)
    assert data == a.ctypes.data and view_shape == a.shape and strides == a.strides
    np.testing.assert_array_equal(a, expected)


def test_unmanaged_keeps_a_slices_strides():
    a = np.arange(60, dtype=np.float64).reshape(6, 10)[1:5, ::3]
    data, shape, strides = _view_and_write(a)
    assert (shape, strides) == (a.shape, a.strides)
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    assert _row_sum(base, 2) == base[2].sum()


def test_unmanaged_refuses_what_is_not_an_array():
    with pytest.raises(numba.core.errors.TypingError):
        numba.njit(lambda x: unmanaged(x))(3.0)
