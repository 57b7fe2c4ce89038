"""evsim: spiking networks with learnable axonal delays and convolutional recurrences.

The public API is imported lazily so that ``import evsim`` (and so ``evsim run``) stays
fast: numba and h5py load only when a function that needs them is first used.
"""

from .errors import EvsimError, InputFileError, ModelFileError

__version__ = "0.1.0"


def _map_source_folders() -> None:
    """In a source checkout the top-level folders ``training/`` and ``cli/`` are the
    subpackages ``evsim.training`` and ``evsim.cli``, as an installation lays them out
    (pyproject's ``package-dir``): the checkout's root joins this package's search path.
    An installed evsim holds both folders itself and is left alone."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    checkout = os.path.dirname(here)
    if not os.path.isdir(os.path.join(here, "training")) and os.path.isfile(os.path.join(checkout, "training", "__init__.py")):
        __path__.append(checkout)


_map_source_folders()

_LAZY = {
    "Model": "model", "HiddenLayer": "model", "Readout": "model", "ModelMetadata": "model",
    "load_model": "model_file", "save_model": "model_file", "build_model": "model",
    "SpikeFile": "data", "bin_spikes": "data", "open_input": "inputs",
    "simulate": "reference", "SimResult": "engine",
    "EventStream": "event",
    "bin_structured": "structured",
}

__all__ = ["EvsimError", "InputFileError", "ModelFileError", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'evsim' has no attribute {name!r}")
