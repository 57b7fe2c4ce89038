"""The training kernels refuse kinds they do not know (recurrence, surrogate) with an
error instead of falling through to another kind."""

import numpy as np
import pytest

from evsim.training import _kernels as K
from evsim.training.surrogates import spike_fn, surrogate_grad

BAD = 97


@pytest.mark.parametrize("fn", [surrogate_grad, lambda x, c, a: spike_fn(x, c, a, True)])
def test_unknown_surrogate_codes_raise(fn):
    fn(0.1, 2, 1.0)
    with pytest.raises(ValueError, match="unknown surrogate"):
        fn(0.1, BAD, 1.0)


def _layer_args(rec_kind, cell=0, n_b=2, n_t=4, n=3):
    f = np.float64
    c = np.ones((n_b, n_t, n), f)
    one = np.ones(n, f)
    cur, v, s, z = (np.empty_like(c) for _ in range(4))
    a = np.empty((n_b, n_t, 0, n), f)
    return (c, cell, one * 0.5, one, one, np.zeros((0, n), f), False, rec_kind, np.zeros((n, n)), np.ones(3),
            np.ones(n, np.int64), np.ones((n, 1), f), np.ones((1, 1, 1)), 0, 0, 5.0, False,
            np.ones((1, 1, 1), f), False, cur, v, s, a, z, np.empty_like(c), np.empty((n_b, 2)))


@pytest.mark.parametrize("fwd", [K.layer_fwd_serial, K.layer_fwd_parallel])
def test_unknown_recurrence_and_cell_codes_raise(fwd):
    fwd(*_layer_args(2))
    with pytest.raises(ValueError, match="unknown recurrence"):
        fwd(*_layer_args(BAD))
    with pytest.raises(ValueError, match="unknown cell"):
        fwd(*_layer_args(2, cell=BAD))
