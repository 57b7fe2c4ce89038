"""Checkpoints as plain ``.npz`` files (no pickle), written atomically.

A checkpoint is a flat ``dict[str, numpy.ndarray]``: the network's and optimiser's
``state_dict()`` under prefixes, the random generator's state, the epoch counter and the
JSON of the run's configuration.  It is written to a temporary file in the same folder and
renamed over the old one, so a crash or Ctrl-C during the write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from evsim.errors import EvsimError

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "rng_from_state", "CheckpointError"]


class CheckpointError(EvsimError):
    """A checkpoint that cannot be read or does not belong to this run."""


def save_checkpoint(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (temporary file, fsync, rename)."""
    from evsim._io import atomic_write

    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise CheckpointError(f"checkpoint entry {key!r} is an object array; only numeric and string arrays are stored")
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)


def load_checkpoint(path: str | os.PathLike, keys=None) -> dict[str, np.ndarray]:
    """The arrays of the checkpoint at ``path`` (only those named in ``keys``, when given,
    that it holds: an entry is read from the file only when asked for)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not an evsim checkpoint (.npz)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files if keys is None or k in keys}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """The generator's full state as a JSON string array (restorable exactly)."""
    return np.array(json.dumps(rng.bit_generator.state))


def rng_from_state(state: np.ndarray) -> np.random.Generator:
    data = json.loads(str(state))
    name = data["bit_generator"]
    bit_gen = getattr(np.random, name)()
    bit_gen.state = data
    return np.random.Generator(bit_gen)
