"""The model file (``.npz``): its array names, writing, reading and validation.

File format (``numpy.savez``; loaded with ``allow_pickle=False``, so no object arrays)::

    schema_version           int64 scalar, currently 2 (version-1 files, LIF only, still load)
    metadata                 unicode scalar: JSON, see ModelMetadata
    layer{l}.weight          (n_l, n_{l-1}) float32   feed-forward, BatchNorm folded
    layer{l}.bias            (n_l,) float32
    layer{l}.beta            (n_l,) float32           per-step decay, in [0, 1]
    layer{l}.threshold       (n_l,) float32           > 0
    layer{l}.gain            (n_l,) float32           input gain g
    layer{l}.recurrent       dense: (n_l, n_l); conv: (k,) with k odd; none: (0,)
    layer{l}.delays          (n_l,) int32 >= 0        axonal delay of each presynaptic neuron
    layer{l}.<param>         (n_l,) float32           schema 2: each extra per-neuron parameter
                                                      of the layer's cell (evsim.cells), e.g. adlif's
    layer{l}.k_rx ... k_zh   (C, C_src, k) float32    a CS-GRU layer (evsim.csgru_layer): its six
    layer{l}.b_r, b_i, b_z   (C,) float32             kernels, three biases and (C, P) int32
    layer{l}.delays          (C, P) int32 >= 0        delays, in place of the arrays above
    readout.weight           (C, n_L) float32
    readout.bias, readout.beta, readout.gain   (C,) float32

Per-layer strings (reset mode, recurrence kind and, from schema 2, the cell) live in the
metadata's ``layers`` list.  A schema-1 file has no cell entry: its layers are LIF.  A
CS-GRU layer's entry has ``"kind": "csgru"`` (see :mod:`evsim.csgru_layer`); an entry
without ``kind`` is a neuron-cell layer.

The array names are defined once, below (:data:`LAYER_ARRAYS`, :data:`READOUT_ARRAYS`,
:func:`layer_key`, :func:`readout_key`); writing, reading and the check that every array
is accounted for by the metadata all use them.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from .cells import CELLS, get_cell
from .errors import ModelFileError
from .model import HiddenLayer, Model, ModelMetadata, Readout

__all__ = ["SCHEMA_VERSION", "READABLE_SCHEMAS", "LAYER_ARRAYS", "READOUT_ARRAYS", "layer_key", "readout_key",
           "model_to_arrays", "save_model", "load_model"]

SCHEMA_VERSION = 2
#: file versions this evsim reads: 1 (LIF only, no cell entry), 2 (any registered cell)
READABLE_SCHEMAS = (1, 2)

#: every hidden layer's arrays (HiddenLayer attributes), beyond its cell's extra parameters
LAYER_ARRAYS = ("weight", "bias", "beta", "threshold", "gain", "recurrent", "delays")
#: the readout's arrays (Readout attributes)
READOUT_ARRAYS = ("weight", "bias", "beta", "gain")
#: the two arrays every file starts with
HEADER_ARRAYS = ("schema_version", "metadata")


def layer_key(i: int, name: str) -> str:
    """The file's name of hidden layer ``i``'s array ``name``: ``layer{i}.{name}``."""
    return f"layer{i}.{name}"


def readout_key(name: str) -> str:
    """The file's name of the readout's array ``name``: ``readout.{name}``."""
    return f"readout.{name}"


def model_to_arrays(model: Model) -> dict[str, np.ndarray]:
    """The arrays of ``model``'s ``.npz`` file (see the module docstring)."""
    meta = {
        "dt_ms": float(model.metadata.dt_ms),
        "input_channels": int(model.metadata.input_channels),
        "pool": int(model.metadata.pool),
        "n_steps": model.metadata.n_steps,
        "class_names": list(model.metadata.class_names),
        "provenance": model.metadata.provenance,
        "layers": [_layer_metadata(layer) for layer in model.layers],
        "readout": {"decision": model.readout.decision},
    }
    arrays = {"schema_version": np.array(SCHEMA_VERSION, np.int64),
              "metadata": np.array(json.dumps(meta, sort_keys=True))}
    for i, layer in enumerate(model.layers):
        for name in _array_names(layer):
            arrays[layer_key(i, name)] = np.asarray(getattr(layer, name))
        for name, arr in getattr(layer, "extra", {}).items():
            arrays[layer_key(i, name)] = np.asarray(arr)
    for name in READOUT_ARRAYS:
        arrays[readout_key(name)] = np.asarray(getattr(model.readout, name))
    return arrays


def _layer_metadata(layer) -> dict:
    """A layer's entry in ``metadata.layers``: a neuron-cell layer's reset, recurrence and
    cell, or a CS-GRU layer's entry (:func:`evsim.csgru_layer.csgru_metadata`)."""
    if isinstance(layer, HiddenLayer):
        return {"reset": layer.reset, "recurrence": layer.recurrence, "cell": layer.cell}
    from .csgru_layer import csgru_metadata

    return csgru_metadata(layer)


def _array_names(layer) -> tuple:
    """A layer's own arrays (beyond a cell's extra parameters)."""
    if isinstance(layer, HiddenLayer):
        return LAYER_ARRAYS
    from .csgru_layer import CSGRU_ARRAYS

    return CSGRU_ARRAYS


def save_model(model: Model, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` (``.npz``) atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ModelFileError(f"cannot write {path}: directory {directory} does not exist")
    from ._io import atomic_write

    with atomic_write(path) as fh:
        np.savez(fh, **model_to_arrays(model))


#: Largest model file evsim reads: the arrays' total size, as their headers declare it
#: (the built-in models hold about 1 MiB).  A header that claims more is refused before
#: anything is allocated.
MAX_MODEL_BYTES = 1 << 30



def load_model(path: str | os.PathLike) -> Model:
    """Read and validate a model file.  Never unpickles: object arrays are rejected.
    A ``.nir`` file is read as a NIR graph (:mod:`evsim.nir_io`, needs ``evsim[nir]``).

    Before any array is read, every ``.npy`` header is checked (a plain numeric or string
    dtype, a shape whose size matches the member's size in the zip, at most
    :data:`MAX_MODEL_BYTES` in all), so a hostile header cannot make evsim allocate.
    Arrays the metadata does not account for are an error (see :func:`model_from_arrays`).
    """
    path = os.fspath(path)
    if path.lower().endswith(".nir"):
        from .nir_io import read_nir
        return read_nir(path)
    if not os.path.exists(path):
        raise ModelFileError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ModelFileError(f"model path is a directory, not a file: {path}")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:  # permission denied, ...: say so, not "not a model file"
        raise ModelFileError(f"cannot read model file {path}: {(exc.strerror or str(exc)).lower()}") from exc
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not an evsim model (.npz) file")
    try:
        _check_npz_headers(path)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {}
            for key in npz.files:
                try:
                    arrays[key] = npz[key]
                except ValueError as exc:  # object arrays need pickle
                    raise ModelFileError(f"{path}: array {key!r} holds Python objects (pickle), which evsim never loads; store plain numeric arrays") from exc
    except ModelFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc}") from exc
    return model_from_arrays(arrays, path)


def _check_npz_headers(path: str) -> None:
    """Read only the ``.npy`` headers of ``path`` and refuse what would be unsafe to load."""
    from numpy.lib import format as npy

    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise ModelFileError(f"{path}: member {name!r} is not a .npy array; a model file holds only the arrays of the schema")
            total += info.file_size
            if total > MAX_MODEL_BYTES:
                raise ModelFileError(f"{path}: the arrays would take more than {MAX_MODEL_BYTES >> 20} MiB (the limit for a model file); "
                                     "the file is not an evsim model or is corrupt")
            with zf.open(info) as fh:
                try:
                    version = npy.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = npy.read_array_header_1_0(fh)
                    elif version in ((2, 0), (3, 0)):
                        shape, _, dtype = npy.read_array_header_2_0(fh)
                    else:
                        raise ValueError(f"unknown .npy version {version}")
                    header_end = fh.tell()
                except (ValueError, EOFError, SyntaxError, TypeError) as exc:
                    raise ModelFileError(f"{path}: array {name[:-4]!r} has a malformed .npy header ({exc})") from exc
            key = name[:-4]
            if dtype.hasobject:
                raise ModelFileError(f"{path}: array {key!r} holds Python objects (pickle), which evsim never loads; store plain numeric arrays")
            if dtype.kind not in "biufU":
                raise ModelFileError(f"{path}: array {key!r} has dtype {dtype}; expected numbers (or the metadata string)")
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if declared != info.file_size - header_end:
                raise ModelFileError(f"{path}: array {key!r} declares shape {tuple(shape)} of {dtype} ({declared} bytes) "
                                     f"but holds {info.file_size - header_end} bytes; the file is corrupt or not an evsim model")


def model_from_arrays(arrays: dict[str, np.ndarray], source: str = "model") -> Model:
    """Build and validate a :class:`Model` from a file's arrays; ``source`` names the file in errors."""
    def need(key: str) -> np.ndarray:
        if key not in arrays:
            raise ModelFileError(f"{source}: missing array {key!r}")
        return arrays[key]

    version = need("schema_version")
    if version.shape != () or not np.issubdtype(version.dtype, np.integer):
        raise ModelFileError(f"{source}: schema_version must be an integer scalar")
    if int(version) not in READABLE_SCHEMAS:
        raise ModelFileError(f"{source}: unknown schema version {int(version)}; this evsim reads versions "
                             f"{', '.join(map(str, READABLE_SCHEMAS))} (upgrade evsim to read newer files)")
    meta_arr = need("metadata")
    if meta_arr.shape != () or meta_arr.dtype.kind != "U":
        raise ModelFileError(f"{source}: metadata must be a JSON string scalar")
    try:
        meta = json.loads(str(meta_arr))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{source}: metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelFileError(f"{source}: metadata must be a JSON object")
    layer_meta = meta.get("layers")
    if not isinstance(layer_meta, list) or not layer_meta:
        raise ModelFileError(f"{source}: metadata.layers must list at least one hidden layer")
    names = meta.get("class_names", [])
    if not isinstance(names, list):
        raise ModelFileError(f"metadata.class_names: {names!r}; expected a list of strings")
    try:
        metadata = ModelMetadata(
            dt_ms=meta.get("dt_ms", 10.0),
            input_channels=meta.get("input_channels", 700),
            pool=meta.get("pool", 1),
            n_steps=meta.get("n_steps"),
            class_names=tuple(names),
            provenance=meta.get("provenance", {}),
        )
    except TypeError as exc:
        raise ModelFileError(f"{source}: bad metadata ({exc})") from exc
    layers = []
    for i, lm in enumerate(layer_meta):
        if not isinstance(lm, dict):
            raise ModelFileError(f"{source}: metadata.layers[{i}] must be an object")
        if "kind" in lm:       # a layer that is not a neuron-cell layer: a CS-GRU layer
            layers.append(_stack_layer_from_file(lm, arrays, i, int(version), source))
            continue
        kinds = {"reset": lm.get("reset", "zero"), "recurrence": lm.get("recurrence", "none")}
        for what, value in kinds.items():
            if not isinstance(value, str):
                raise ModelFileError(f"{source}: metadata.layers[{i}].{what}: {value!r}; expected a string")
        if int(version) == 1 and "cell" in lm:
            raise ModelFileError(f"{source}: metadata.layers[{i}] names a cell, which schema 1 does not have (schema-1 layers are LIF); write schema_version 2")
        cell_name = lm.get("cell", "lif") if int(version) >= 2 else "lif"
        if int(version) >= 2 and "cell" not in lm:
            raise ModelFileError(f"{source}: metadata.layers[{i}] has no cell; schema 2 names each layer's cell (one of {', '.join(CELLS)})")
        cell = get_cell(cell_name, error=lambda msg: ModelFileError(f"{source}: layer{i}: {msg}"))
        layers.append(HiddenLayer(
            **{name: need(layer_key(i, name)) for name in LAYER_ARRAYS},
            reset=kinds["reset"], recurrence=kinds["recurrence"], cell=cell_name,
            extra={k: need(layer_key(i, k)) for k in cell.param_names}, name=f"layer{i}",
        ))
    expected = set(HEADER_ARRAYS) | {readout_key(name) for name in READOUT_ARRAYS}
    expected |= {layer_key(i, name) for i, layer in enumerate(layers)
                 for name in (*_array_names(layer), *getattr(layer, "extra", {}))}
    extra = sorted(set(arrays) - expected)
    if extra:
        raise ModelFileError(f"{source}: array(s) {', '.join(map(repr, extra[:5]))}{', ...' if len(extra) > 5 else ''} not accounted for "
                             f"by the metadata, which lists {len(layer_meta)} hidden layer(s); the file is inconsistent "
                             "(was metadata.layers edited?)")
    ro = meta.get("readout", {})
    decision = ro.get("decision", "sum_softmax") if isinstance(ro, dict) else "sum_softmax"
    if not isinstance(decision, str):
        raise ModelFileError(f"{source}: metadata.readout.decision: {decision!r}; expected a string")
    readout = Readout(**{name: need(readout_key(name)) for name in READOUT_ARRAYS}, decision=decision)
    return Model(layers=tuple(layers), readout=readout, metadata=metadata)


def _stack_layer_from_file(entry: dict, arrays: dict, i: int, version: int, source: str):
    """Layer ``i`` of kind ``entry["kind"]`` (``"csgru"``, schema 2)."""
    kind = entry["kind"]
    if kind != "csgru":
        raise ModelFileError(f"{source}: metadata.layers[{i}].kind: {kind!r}; expected \"csgru\" "
                             "(or no kind, for a neuron-cell layer)")
    if version < 2:
        raise ModelFileError(f"{source}: metadata.layers[{i}] is a csgru layer, which schema 1 does not have; "
                             "write schema_version 2")
    from .csgru_layer import csgru_from_file

    return csgru_from_file(entry, arrays, i, source)
