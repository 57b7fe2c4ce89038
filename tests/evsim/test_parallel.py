"""The back ends' contract: order, bounded submission, per-task errors."""

import pytest

from evsim.parallel import Executor, default_threads, thread_env


def square_or_fail(x):
    if x == 3:
        raise ValueError("three")
    return x * x


def test_thread_settings():
    assert default_threads(1) >= 1 and default_threads(10 ** 6) == 1
    assert thread_env(3) == {"NUMBA_NUM_THREADS": "3", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                             "MKL_NUM_THREADS": "1"}


@pytest.mark.parametrize("backend", ["serial", "joblib"])
def test_unordered_reports_each_failure_and_keeps_the_others(backend, request):
    def run(ex):
        return sorted(ex.map_unordered(square_or_fail, range(6)), key=lambda o: o.item)

    if backend == "serial":
        with Executor(jobs=1, threads=1) as ex:
            outcomes = run(ex)
    else:
        outcomes = run(request.getfixturevalue("joblib_pool"))
    assert [o.value for o in outcomes] == [0, 1, 4, None, 16, 25]
    assert [type(o.error).__name__ if o.error else None for o in outcomes] == [None] * 3 + ["ValueError"] + [None] * 2


def test_ordered_keeps_order_and_submits_at_most_the_window():
    pulled = []

    def items():
        for i in range(10):
            pulled.append(i)
            yield i

    with Executor(jobs=1) as ex:
        out = ex.map_ordered(square_or_fail, items(), window=1)
        assert next(out) == 0 and len(pulled) <= 2
        assert [next(out), next(out)] == [1, 4]
        with pytest.raises(ValueError, match="three"):
            next(out)
