"""One joblib pool of 2 processes for the tests of the parallel back ends (starting one
costs seconds: processes, imports, cached kernels)."""

import pytest


@pytest.fixture(scope="session")
def joblib_pool():
    pytest.importorskip("joblib", reason="the joblib back end needs the extra evsim[parallel]")
    from evsim.parallel import Executor

    with Executor(jobs=2, threads=1) as ex:
        yield ex
