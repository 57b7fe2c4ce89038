"""The threaded NumPy parts of a training step (``training/_threaded.py``) and the BatchNorm
kernels: dropout masks bit for bit as their NumPy reference draws them (NumPy's float32 test
with fewer random bits), products and BatchNorm against
plain NumPy, and a whole training step identical on one thread and on two."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from evsim.training import Network, NetworkConfig
from evsim.training import _kernels as K
from evsim.training import _threaded as T


def _numpy_mask(rng, p, shape, dtype):
    mask = (rng.random(shape, dtype=np.float32) >= p).astype(dtype)
    mask *= 1.0 / (1.0 - p)
    return mask


def _reference_mask(rng, p, shape, dtype):
    """The mask of ``T.dropout_mask`` the slow, obvious way: a 24-bit uniform u per entry,
    its top 8 bits the entry's byte of the words drawn first (8 entries per word), its low
    16 bits, for the entries whose top byte ties with the threshold's, the 16-bit pieces of
    the words drawn next, in entry order; kept when u 2^-24 >= float32(p), as
    ``rng.random(float32) >= p`` decides."""
    size = int(np.prod(shape))
    top8 = rng.bit_generator.random_raw((size + 7) // 8).view(np.uint8)[:size].astype(np.int64)
    threshold = int(np.ceil(float(np.float32(p)) * 2**24))
    tie = top8 == threshold >> 16
    low16 = np.zeros(size, np.int64)
    n_ties = int(tie.sum())
    if n_ties:
        low16[tie] = rng.bit_generator.random_raw((n_ties + 3) // 4).view(np.uint16)[:n_ties]
    u = ((top8 << 16) | low16).astype(np.float32) * np.float32(2.0**-24)     # exact in float32
    return _numpy_mask_from_uniform(u, p, dtype).reshape(shape)


def _numpy_mask_from_uniform(u, p, dtype):
    mask = (u >= np.float32(p)).astype(dtype)
    mask *= 1.0 / (1.0 - p)
    return mask


@pytest.fixture
def threads():
    """Run with n numba threads, restored afterwards."""
    old = numba.get_num_threads()
    yield lambda n: numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(old)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("shape, p, dtype", [((8, 40, 32), 0.44, np.float32), ((8, 1, 32), 0.24, np.float32),
                                             ((6, 50, 30), 0.3, np.float64), ((3, 5, 7), 0.5, np.float32),
                                             ((40, 50, 32), 0.5 + 2**-9, np.float32)])
def test_dropout_mask_is_the_reference_draw(monkeypatch, threads, n_threads, shape, p, dtype):
    """Bit for bit the reference, the generator left where the reference leaves it, on one
    thread and on two (several blocks even for small masks); p = 0.5 + 2^-9 has a tie
    byte (128) and a nonzero low threshold, so ties are decided both ways."""
    monkeypatch.setattr(T, "MIN_WORDS_PER_THREAD", 16)
    threads(n_threads)
    ours, theirs = np.random.default_rng(5), np.random.default_rng(5)
    ours.random(3, dtype=np.float32)                           # a buffered half word: not used
    theirs.random(3, dtype=np.float32)
    for _ in range(3):
        got, want = T.dropout_mask(ours, p, shape, dtype), _reference_mask(theirs, p, shape, dtype)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        assert ours.bit_generator.state == theirs.bit_generator.state
    assert set(np.unique(got)) <= {0.0, dtype(1 / (1 - p))}


def test_dropout_mask_decides_as_numpys_float32_draw():
    """Every 24-bit u the mask can meet, for several p: u >= ceil(float32(p) 2^24) (the
    mask's test, byte then low 16 bits) exactly when u 2^-24 >= p in float32, NumPy's test;
    and the keep rate of a large mask is 1 - p within 5 standard deviations."""
    u = np.arange(2**24, dtype=np.int64)
    for p in (0.0, 0.1, 0.24, 0.3, 0.44, 0.5, 0.5 + 2**-9, 0.9, 1 - 2**-20):
        threshold = int(np.ceil(float(np.float32(p)) * 2**24))
        t_hi, t_lo = threshold >> 16, threshold & 0xFFFF
        ours = ((u >> 16) > t_hi) | (((u >> 16) == t_hi) & ((u & 0xFFFF) >= t_lo))
        numpys = u.astype(np.float32) * np.float32(2.0**-24) >= np.float32(p)
        np.testing.assert_array_equal(ours, numpys, err_msg=str(p))
    n, p = 2_000_000, 0.44
    kept = np.count_nonzero(T.dropout_mask(np.random.default_rng(11), p, (n,), np.float32))
    assert abs(kept / n - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)


def test_dropout_mask_of_another_bit_generator_is_numpys_draw():
    ours, theirs = np.random.Generator(np.random.Philox(3)), np.random.Generator(np.random.Philox(3))
    np.testing.assert_array_equal(T.dropout_mask(ours, 0.3, (4, 10, 16), np.float32),
                                  _numpy_mask(theirs, 0.3, (4, 10, 16), np.float32))
    np.testing.assert_array_equal(ours.random(5), theirs.random(5))      # left in the same state


@pytest.mark.parametrize("n_threads", [1, 2])
def test_products_in_row_blocks(monkeypatch, threads, n_threads):
    monkeypatch.setattr(T, "blas_single_threaded", lambda: True)
    monkeypatch.setattr(T, "MIN_BLOCK_ROWS", 16)
    threads(n_threads)
    rng = np.random.default_rng(0)
    a, b, w = rng.standard_normal((203, 17)), rng.standard_normal((203, 11)), rng.standard_normal((13, 17))
    np.testing.assert_allclose(T.matmul(a, w.T), a @ w.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(T.matmul_tn(a, b), a.T @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_products_skip_zeros(monkeypatch, threads, n_threads, dtype):
    """A mostly-zero factor (spikes through dropout) goes through the sparse kernels; they
    equal NumPy's product at rounding level and do not depend on the thread count."""
    monkeypatch.setattr(T, "MIN_BLOCK_ROWS", 16)
    threads(n_threads)
    rng = np.random.default_rng(3)
    spikes = ((rng.random((203, 17)) < 0.08) / 0.7).astype(dtype)       # 8 % non-zero, one value
    counts = rng.poisson(0.2, (203, 17)).astype(dtype)                  # ~18 %: BLAS
    a, w = rng.standard_normal((203, 11)).astype(dtype), rng.standard_normal((13, 17)).astype(dtype)
    assert T.is_sparse(spikes) and not T.is_sparse(counts)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for x in (spikes, counts):
        ref_fwd, ref_tn = x.astype(np.float64) @ w.T.astype(np.float64), a.T.astype(np.float64) @ x.astype(np.float64)
        got_fwd, got_tn = T.matmul(x, w.T), T.matmul_tn(a, x)
        assert got_fwd.dtype == got_tn.dtype == dtype
        np.testing.assert_allclose(got_fwd, ref_fwd, **tol)
        np.testing.assert_allclose(got_tn, ref_tn, **tol)
    results = T.matmul(spikes, w.T), T.matmul_tn(a, spikes)
    threads(1 if n_threads == 2 else 2)
    for got, again in zip(results, (T.matmul(spikes, w.T), T.matmul_tn(a, spikes))):
        np.testing.assert_array_equal(got, again)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_count_nonzero_is_numpys(threads, n_threads, dtype):
    """The threaded count that decides the sparse path equals ``np.count_nonzero`` (row
    counts that are not a multiple of the chunk, -0.0, NaN, all-zero), and strided or
    integer arrays fall back to NumPy."""
    threads(n_threads)
    rng = np.random.default_rng(5)
    for rows in (0, 1, 63, 64, 65, 203):
        a = np.where(rng.random((rows, 17)) < 0.1, rng.standard_normal((rows, 17)), 0.0).astype(dtype)
        if rows > 2:
            a[0, 0], a[1, 1], a[2, 2] = -0.0, np.nan, np.inf
        assert T.count_nonzero(a) == np.count_nonzero(a)
        assert T.count_nonzero(a[:, ::2]) == np.count_nonzero(a[:, ::2])
        assert T.count_nonzero(a.astype(np.int64)) == np.count_nonzero(a.astype(np.int64))
    assert T.count_nonzero(np.zeros((300, 4), dtype)) == 0


def test_blocks_are_cached_and_cover_the_range():
    for total, parts in ((203, 4), (3200, 4), (5, 8), (0, 3)):
        blocks = T._blocks(total, parts)
        assert blocks is T._blocks(total, parts)
        edges = np.linspace(0, total, parts + 1).astype(np.int64)
        assert list(blocks) == [(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def _batchnorm_reference(a, bias, gamma, beta_bn, eps):
    a = a + bias
    mu, var = a.mean(axis=0), a.var(axis=0)
    xhat = (a - mu) / np.sqrt(var + eps)
    return xhat, gamma * xhat + beta_bn, mu, var


@pytest.mark.parametrize("build", ["serial", "parallel"])
def test_batchnorm_kernels_match_numpy(build):
    rng = np.random.default_rng(1)
    rows, n = 150, 9                              # 3 chunks of BN_CHUNK rows, the last one short
    a, bias, gamma, beta_bn = (rng.standard_normal((rows, n)) * 2 + 1, rng.standard_normal(n),
                               rng.uniform(0.5, 2, n), rng.standard_normal(n))
    fwd, bwd = getattr(K, f"batchnorm_fwd_{build}"), getattr(K, f"batchnorm_bwd_{build}")
    xhat, c = np.empty_like(a), np.empty_like(a)
    mu, var, inv_std = fwd(a, bias, gamma, beta_bn, 1e-5, xhat, c)
    want_xhat, want_c, want_mu, want_var = _batchnorm_reference(a, bias, gamma, beta_bn, 1e-5)
    for got, want in ((xhat, want_xhat), (c, want_c), (mu, want_mu), (var, want_var)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    gc = rng.standard_normal((rows, n))
    ga = np.empty_like(gc)
    sum_g, sum_gx, sum_ga = bwd(gc, xhat, gamma, inv_std, ga)
    gx = gc * gamma                                # the textbook batch-statistics backward
    want_ga = inv_std * (gx - gx.mean(axis=0) - xhat * (gx * xhat).mean(axis=0))
    np.testing.assert_allclose(ga, want_ga, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sum_g, gc.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sum_gx, (gc * xhat).sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sum_ga, want_ga.sum(axis=0), atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_step_is_the_same_on_one_and_two_threads(monkeypatch, threads, dtype):
    """Every part that runs on several threads sums in an order fixed by the shapes."""
    monkeypatch.setattr(T, "blas_single_threaded", lambda: True)
    monkeypatch.setattr(T, "MIN_BLOCK_ROWS", 64)
    monkeypatch.setattr(T, "MIN_WORDS_PER_THREAD", 64)
    monkeypatch.setattr(K, "PARALLEL_MIN_WORK", 0)
    cfg = NetworkConfig(n_inputs=12, hidden=(24, 20), kernel_size=5, n_classes=4, dropout=0.3, rec_dropout=0.2,
                        dtype=dtype)
    rng = np.random.default_rng(2)
    x = rng.poisson(0.4, (6, 50, 12)).astype(np.float32)
    y = rng.integers(0, 4, 6)
    runs = []
    for n_threads in (1, 2):
        threads(n_threads)
        net = Network.init(cfg, 0)
        loss, grads, stats = net.loss_and_grad(x, y, np.random.default_rng(9), 1.5)
        runs.append((loss, grads, stats, net.buffers["layer0.bn_mean"].copy()))
    (loss1, g1, st1, bn1), (loss2, g2, st2, bn2) = runs
    assert loss1 == loss2 and st1 == st2
    np.testing.assert_array_equal(bn1, bn2)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k], err_msg=k)


@pytest.mark.parametrize("start", ["import evsim.training",
                                   "import evsim.kernels.event",
                                   "from evsim.parallel import _set_threads; _set_threads(1)"])
def test_every_way_to_numbas_threads_sets_a_short_openmp_spin_unless_the_user_did(start):
    """Importing training or an engine's kernels, or a parallel worker setting its
    threads, lowers GNU OpenMP's spin count before numba's threads start
    (evsim._numba_config.import_numba), and keeps a value the user set."""
    import os
    import subprocess
    import sys

    code = f"import os; {start}; print(os.environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1] == "1000"
    env["GOMP_SPINCOUNT"] = "12345"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1] == "12345"


def _blas_get_set():
    get, set_ = T._openblas_threads()
    if get is None or set_ is None:
        pytest.skip("NumPy's OpenBLAS not found (another BLAS): one_blas_thread does nothing there")
    return get, set_


def test_one_blas_thread_sets_one_inside_and_restores_after_even_on_error():
    get, set_ = _blas_get_set()
    before = int(get())
    set_(2)
    try:
        with T.one_blas_thread():
            assert int(get()) == 1 and T.blas_single_threaded()
            with T.one_blas_thread():            # nested: the outer one restores
                assert int(get()) == 1
            assert int(get()) == 1
        assert int(get()) == 2
        with pytest.raises(RuntimeError):
            with T.one_blas_thread():
                raise RuntimeError("inside")
        assert int(get()) == 2
    finally:
        set_(before)


def test_a_training_step_is_the_same_whatever_blas_threads_the_user_set():
    """loss_and_grad runs its products on one BLAS thread (row blocks over numba's
    threads) whatever the caller's OpenBLAS setting, so the gradients are bit for bit the
    same, and the setting is the caller's again afterwards."""
    get, set_ = _blas_get_set()
    before = int(get())
    cfg = NetworkConfig(n_inputs=12, hidden=(300, 300), recurrence=("none", "conv"), kernel_size=3, n_classes=4)
    net = Network.init(cfg, 0)
    rng = np.random.default_rng(0)
    x = rng.poisson(0.3, (4, 140, 12)).astype(np.float32)   # 560 rows: products in 2 row blocks
    y = rng.integers(0, 4, 4)
    try:
        results = []
        for blas in (1, 2):
            set_(blas)
            results.append(net.loss_and_grad(x, y, 3, 0.5, update_stats=False))
            assert int(get()) == blas
    finally:
        set_(before)
    (l1, g1, _), (l2, g2, _) = results
    assert l1 == l2
    for key in g1:
        np.testing.assert_array_equal(g1[key], g2[key])
