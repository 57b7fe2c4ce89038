"""evsim's numba cache locator: a change to any evsim numba source, or a new cell, changes
the source stamp of every cached evsim kernel (numba alone looks at the kernel's own file)."""

import numba
import pytest

from evsim import _numba_cache as nc


def test_evsim_kernels_use_the_evsim_locator():
    from evsim.kernels import event
    from evsim.training import _kernels

    for kernel in (event.step_loop, event.run_batch_serial, _kernels.layer_fwd_serial):
        assert isinstance(kernel._cache._impl.locator, nc.EvsimLocator)


def test_other_code_keeps_numbas_locator():
    @numba.njit(cache=True)
    def elsewhere(x):
        return x + 1

    locator = elsewhere._cache._impl.locator
    assert not isinstance(locator, nc.EvsimLocator)
    assert elsewhere(1) == 2


def test_the_stamp_holds_the_sources_digest():
    from evsim.kernels import event

    inner = event.step_loop._cache._impl.locator._inner
    a = nc.EvsimLocator(inner, digest=lambda: "digest-a").get_source_stamp()
    b = nc.EvsimLocator(inner, digest=lambda: "digest-b").get_source_stamp()
    assert a != b and a[0] == b[0] == inner.get_source_stamp()
    real = event.step_loop._cache._impl.locator.get_source_stamp()
    assert real == (inner.get_source_stamp(), "evsim-sources", nc.sources_digest())
    assert nc.remembered_digest(inner.get_cache_path()) == nc.sources_digest()


def test_the_digest_follows_numba_sources_and_ignores_the_rest(tmp_path):
    root = tmp_path / "evsim"
    (root / "cells").mkdir(parents=True)
    (root / "cells" / "lif.py").write_text("import numba\n")
    (root / "model.py").write_text("RECURRENCE_CODE = {}\n")
    start = nc.sources_digest([str(root)])
    assert nc.sources_digest([str(root)]) == start
    (root / "notes.py").write_text("x = 1\n")                     # no numba, no codes: ignored
    assert nc.sources_digest([str(root)]) == start
    (root / "cells" / "newcell.py").write_text("import numba\nKIND = None\n")   # a new cell
    added = nc.sources_digest([str(root)])
    assert added != start
    (root / "model.py").write_text("RECURRENCE_CODE = {'none': 1}\n")         # kind codes changed
    assert nc.sources_digest([str(root)]) != added


def test_every_cell_module_is_in_the_digest():
    """So adding or editing a cell changes the stamp of every cached evsim kernel."""
    import inspect

    from evsim.cells import CELLS

    roots = nc.source_roots()
    for kind in CELLS.values():
        path = inspect.getfile(kind.event_update.py_func)
        assert nc._is_evsim_file(path)
        with open(path, "rb") as fh:
            assert nc._is_numba_source(fh.read())
    assert any(r.endswith("evsim") for r in roots)


def test_the_remembered_digest_is_recomputed_when_a_file_changes(tmp_path):
    import os

    root = tmp_path / "evsim"
    root.mkdir()
    (root / "k.py").write_text("import numba\n")
    memo = tmp_path / "cache"
    memo.mkdir()
    first = nc.remembered_digest(str(memo), [str(root)])
    assert first == nc.sources_digest([str(root)]) and len(os.listdir(memo)) == 1
    assert nc.remembered_digest(str(memo), [str(root)]) == first          # read back
    (root / "k.py").write_text("import numba  # edited\n")
    second = nc.remembered_digest(str(memo), [str(root)])
    assert second != first and second == nc.sources_digest([str(root)])
    assert nc.remembered_digest(str(tmp_path / "missing"), [str(root)]) == second   # unwritable: computed
