"""The training kernels refuse kinds they do not know (recurrence, surrogate) with an
error instead of falling through to another kind."""

import numpy as np
import pytest

from training import _kernels as K
from training.surrogates import spike_fn, surrogate_grad

BAD = 97


@pytest.mark.parametrize("fn", [surrogate_grad, lambda x, c, a: spike_fn(x, c, a, True)])
def test_unknown_surrogate_codes_raise(fn):
    fn(0.1, 2, 1.0)
    with pytest.raises(ValueError, match="unknown surrogate"):
        fn(0.1, BAD, 1.0)


def _lif_args(n_b=2, n_t=4, n=3):
    f = np.float64
    c = np.ones((n_b, n_t, n), f)
    one = np.ones(n, f)
    klo, mtab = np.ones(n, np.int64), np.ones((n, 1), f)
    return c, one, klo, mtab


@pytest.mark.parametrize("fwd", [K.lif_fwd_serial, K.lif_fwd_parallel])
def test_unknown_recurrence_codes_raise(fwd):
    c, one, klo, mtab = _lif_args()
    v, s, z = (np.empty_like(c) for _ in range(3))
    args = (c, one * 0.5, one, one, False)
    tail = (np.zeros((3, 3)), np.ones(3), klo, mtab, np.ones((1, 1, 1)), False, 0, 5.0, False, v, s, z)
    fwd(*args, 2, *tail)
    with pytest.raises(ValueError, match="unknown recurrence"):
        fwd(*args, BAD, *tail)
