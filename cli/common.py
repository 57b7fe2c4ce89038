"""Helpers the commands share: built-in files, paths, JSON output, a no-op progress bar."""

from __future__ import annotations

import json
import os

from evsim.errors import EvsimError

def builtin_path(name: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__import__("evsim").__file__)), "_builtin", name)


#: Models shipped with the package, by the name `--model NAME` takes (a file of that name wins).
BUILTIN_MODELS = {"default": "default_model.npz", "sparse": "sparse_model.npz"}


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


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)


class NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass

