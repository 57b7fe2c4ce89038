"""Helpers the commands share: built-in files, paths, JSON output, a no-op progress bar."""

from __future__ import annotations

import json
import os

import click

from evsim.errors import EvsimError
from evsim.names import BUILTIN_MODELS, builtin_path

__all__ = ["builtin_path", "model_path", "default_path", "kernels_cached", "note_compilation", "display_name", "dumps", "NoBar"]


def model_path(given: str | None) -> str:
    if given in BUILTIN_MODELS and not os.path.exists(given):
        return default_path(None, BUILTIN_MODELS[given], "model")
    return default_path(given, BUILTIN_MODELS["default"], "model")


def default_path(given: str | None, name: str, what: str) -> str:
    if given:
        return given
    path = builtin_path(name)
    if not os.path.exists(path):
        raise EvsimError(f"no {what} given and this installation ships no built-in default ({name}); pass --{what}")
    return path


def kernels_cached(module) -> bool:
    """False when numba has no on-disk cache for any kernel of ``module`` (an imported
    module of ``@njit(cache=True)`` functions): the first run of an installation, or the
    first after an upgrade, which invalidates the cache.  Only some of a module's kernels
    run in a given command (streaming, batch or serial ones), so one cached kernel counts
    as "compiled before".  Uses numba's cache index (a private API): on any surprise it
    answers True, so at worst the note below is not shown."""
    try:
        from numba.core.registry import CPUDispatcher

        kernels = [obj for obj in vars(module).values()
                   if isinstance(obj, CPUDispatcher) and obj._cache is not None and hasattr(obj._cache, "_cache_file")]
        # stops at the first cached kernel (each index read costs a file read and an unpickling)
        return not kernels or any(bool(k._cache._cache_file._load_index()) for k in kernels)
    except Exception:  # noqa: BLE001 - the note is a courtesy, never a failure
        return True


def note_compilation(module, what: str) -> None:
    """On stderr, once: say that ``what``'s kernels are being compiled (only when they are
    not cached yet: the first run of an installation, or after an upgrade)."""
    if not kernels_cached(module):
        click.echo(f"evsim: compiling {what} kernels for this machine (first run only: they are cached by "
                   "numba, next runs start in about a second) ...", err=True)


def display_name(path: str, builtin: dict) -> str:
    """``path``, or ``NAME (built-in)`` for a file shipped with evsim."""
    for name, file_name in builtin.items():
        if os.path.abspath(path) == os.path.abspath(builtin_path(file_name)):
            return f"{name} (built-in)"
    return path


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)


class NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


def training_files(dataset, data_dir, train_file, test_file):
    """(train, test, valid or None) for `evsim train` / `evsim sweep`: the official files
    of ``dataset`` in ``data_dir``, or ``--train``/``--test`` (each as given when it exists,
    else the file of that name in ``data_dir``: ``--data-dir`` / ``$EVSIM_DATA``)."""
    if dataset and (train_file or test_file):
        raise EvsimError("give either DATASET (shd or ssc) or --train/--test, not both")
    if dataset:
        from evsim.datasets import check_dir

        paths = check_dir(dataset, data_dir)
        return paths["train"], paths["test"], paths.get("valid")
    if not (train_file and test_file):
        raise EvsimError("nothing to train on: give DATASET (shd or ssc) with --data-dir, or both --train FILE and --test FILE")
    return _in_data_dir(train_file, data_dir), _in_data_dir(test_file, data_dir), None


def _in_data_dir(path: str, data_dir: str) -> str:
    """``path`` as given when it exists, else the file of that name in ``data_dir``, else
    ``path`` (the trainer then says it is missing)."""
    if os.path.exists(path) or os.path.isabs(path):
        return path
    candidate = os.path.join(data_dir, path)
    return candidate if os.path.exists(candidate) else path


def percent(fraction: float | None) -> str:
    """An accuracy for text output: ``85.20 %``, or ``none`` for a run without validation
    (``val_fraction = 0``)."""
    return "none" if fraction is None else f"{100 * fraction:.2f} %"
