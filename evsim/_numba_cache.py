"""Numba's on-disk cache for evsim's kernels, invalidated by any change to evsim's numba code.

Numba keys a cached kernel on its own source file only: a kernel whose file is unchanged
is loaded from the cache even when a function it calls, in another file, has changed (a
cell's step, a kernel helper) or when the generated dispatchers on the cell code
(:func:`evsim.cells.generate_dispatch`) would now hold another cell.  The cached kernel
would go on running the old code.

:class:`EvsimLocator` closes that gap for evsim's own files: it wraps the locator numba
would have chosen (same folder, same file names) and adds to its source stamp a digest of
evsim's *numba sources*: every ``.py`` file of the evsim package (and, in a source
checkout, of ``training/``, which is ``evsim.training``) that mentions ``numba`` or holds
kind codes (``_CODE``, e.g. ``RECURRENCE_CODE`` in ``model.py``, which kernels read as
constants).  A cell module is such a file, so the digest covers the cell registry.  Any
edit to one of these files, or a new cell, makes numba recompile every cached evsim
kernel once; other packages' kernels are left to numba's own locators.

Numba takes a kernel's stamp when the kernel is defined, so the digest is part of
importing evsim's kernels; to keep that fast it is computed once per process and
remembered on disk, next to the cached kernels, under a key made of the files' sizes and
modification times (a stat of each file, not a read, while nothing changed).
:func:`install` is called by :mod:`evsim._numba_config`, which every kernel module imports
before defining its kernels.
"""

from __future__ import annotations

import functools
import hashlib
import os

from numba.core import caching

__all__ = ["EvsimLocator", "install", "source_roots", "sources_digest", "remembered_digest"]


@functools.lru_cache(maxsize=1)
def source_roots() -> tuple:
    """The folders of evsim's code: the package, and a checkout's top-level ``training/``
    (mapped to ``evsim.training`` by ``evsim/__init__.py``) when the package has none."""
    here = os.path.dirname(os.path.abspath(__file__))
    roots = [here]
    checkout_training = os.path.join(os.path.dirname(here), "training")
    if not os.path.isdir(os.path.join(here, "training")) and os.path.isdir(checkout_training):
        roots.append(checkout_training)
    return tuple(roots)


def _is_numba_source(text: bytes) -> bool:
    return b"numba" in text or b"_CODE" in text


def _python_files(roots):
    """(path, name relative to the root's parent) of every ``.py`` file under ``roots``,
    in a fixed order."""
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for name in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(folder, name)
                yield path, os.path.relpath(path, os.path.dirname(root)).replace(os.sep, "/")


def sources_digest(roots=None) -> str:
    """SHA-256 over the relative path and content of every numba source under ``roots``
    (default :func:`source_roots`), in a fixed order."""
    digest = hashlib.sha256()
    for path, rel in _python_files(source_roots() if roots is None else roots):
        with open(path, "rb") as fh:
            text = fh.read()
        if _is_numba_source(text):
            digest.update(rel.encode() + b"\0" + hashlib.sha256(text).digest())
    return digest.hexdigest()


def _stat_key(roots) -> str:
    """A key that changes whenever a file under ``roots`` may have changed: the name, size
    and modification time of every ``.py`` file."""
    key = hashlib.sha256()
    for path, rel in _python_files(roots):
        st = os.stat(path)
        key.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return key.hexdigest()[:24]


def remembered_digest(folder: str, roots=None) -> str:
    """:func:`sources_digest`, remembered in ``folder`` under :func:`_stat_key`: read back
    while no file changed, computed (and written, atomically) otherwise.  A folder that
    cannot be written only costs the computation."""
    roots = source_roots() if roots is None else roots
    memo = os.path.join(folder, f"evsim-sources-{_stat_key(roots)}.digest")
    try:
        with open(memo) as fh:
            text = fh.read().strip()
        if len(text) == 64:
            return text
    except OSError:
        pass
    digest = sources_digest(roots)
    try:
        tmp = f"{memo}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(digest)
        os.replace(tmp, memo)
    except OSError:
        pass
    return digest


_DIGESTS: dict = {}


def _digest(folder: str) -> str:
    """The digest for kernels cached in ``folder``, once per process."""
    if folder not in _DIGESTS:
        _DIGESTS[folder] = remembered_digest(folder)
    return _DIGESTS[folder]


def _is_evsim_file(py_file: str) -> bool:
    path = os.path.abspath(py_file)
    return any(path.startswith(root + os.sep) for root in source_roots())


class EvsimLocator(caching._CacheLocator):
    """Numba's usual locator for an evsim source file, with :func:`sources_digest` added to
    its source stamp (see the module docstring)."""

    def __init__(self, inner, digest=None):
        self._inner = inner
        self._digest = digest or (lambda: _digest(inner.get_cache_path()))

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    def get_source_stamp(self):
        return (self._inner.get_source_stamp(), "evsim-sources", self._digest())

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _is_evsim_file(py_file):
            return None
        for other in _impl_class()._locator_classes:
            if other is not cls:
                inner = _inner_locator(other, py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


_WRITABLE: set = set()


def _inner_locator(other, py_func, py_file):
    """``other.from_function(py_func, py_file)``, without numba's write test of the cache
    folder (a temporary file per kernel) once that folder has passed it in this process."""
    if issubclass(other, (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator)):
        if other is caching.UserProvidedCacheLocator and not caching.config.CACHE_DIR:
            return None
        if os.path.exists(py_file):
            inner = other(py_func, py_file)
            if inner.get_cache_path() in _WRITABLE:
                return inner
    inner = other.from_function(py_func, py_file)
    if inner is not None and isinstance(inner, (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator)):
        _WRITABLE.add(inner.get_cache_path())
    return inner


def _impl_class():
    # numba >= 0.60 names it CacheImpl; older releases _CacheImpl
    return getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")


def install() -> None:
    """Put :class:`EvsimLocator` first in numba's list of cache locators, and let evsim's
    kernels load from the cache without numba's registry refresh (:func:`load_overload`);
    once per process."""
    classes = _impl_class()._locator_classes
    if EvsimLocator not in classes:
        classes.insert(0, EvsimLocator)
    if caching.Cache.load_overload is not load_overload:
        global _NUMBA_LOAD_OVERLOAD
        _NUMBA_LOAD_OVERLOAD = caching.Cache.load_overload
        caching.Cache.load_overload = load_overload


_NUMBA_LOAD_OVERLOAD = None


def load_overload(self, sig, target_context):
    """``numba.core.caching.Cache.load_overload`` for evsim's kernels, without the
    ``target_context.refresh()`` numba does first.

    That refresh imports and registers all of numba's typing and lowering tables (about
    0.5 s, the largest part of a one-sample ``evsim run``).  Loading a cached kernel does
    not use them: the cached object code is linked, its environments rebuilt and numba's
    runtime (NRT, the one thing the refresh sets up that loaded code calls) initialised
    here.  Compiling does need the tables, and numba's compiler refreshes the context
    itself, so a cache miss compiles exactly as before.  Kernels of other packages go
    through numba's own method unchanged."""
    if not isinstance(getattr(self._impl, "locator", None), EvsimLocator):
        return _NUMBA_LOAD_OVERLOAD(self, sig, target_context)
    from numba.core.runtime import nrt

    nrt.rtsys.initialize(target_context)
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)
