"""The names the library's registries hold and the command line offers, in one place.

Pure Python (no numpy, numba or h5py), so the ``click.Choice`` lists of ``evsim --help``
come from here without slowing its start-up.  Each registry is built from these names or
checked against them, and ``tests/evsim/test_names.py`` checks that they agree, so the command
line cannot drift from the library:

* :data:`ENGINES` -- ``evsim.run.ENGINES`` (the engines that simulate); :data:`RUN_ENGINES`
  adds ``auto`` (``classify_file`` and ``evsim run``: see :mod:`evsim.engine_choice`);
* :data:`DATASETS` -- the keys of ``evsim.datasets.FILES`` (what ``evsim data`` fetches);
* :data:`BUILTIN_MODELS` / :data:`BUILTIN_SAMPLES` -- the files in ``evsim/_builtin/``;
* :data:`TRAINING_PRESETS` -- the keys of ``training.presets.PRESETS``;
* :data:`COCHLEA_PRESETS` -- the keys of ``evsim.audio.PRESETS``;
* :data:`MEMBRANES` -- ``evsim.audio.basilar.MEMBRANES`` (the membrane banks).
"""

from __future__ import annotations

import os

__all__ = ["ENGINES", "RUN_ENGINES", "DATASETS", "BUILTIN_MODELS", "BUILTIN_SAMPLES", "TRAINING_PRESETS", "COCHLEA_PRESETS",
           "MEMBRANES", "builtin_path"]

ENGINES = ("event", "dense")
#: what ``evsim run --engine`` takes: ``auto`` picks one of ENGINES by the size of the job
RUN_ENGINES = ("auto",) + ENGINES
DATASETS = ("shd", "ssc")
#: models shipped with the package, by the name ``--model NAME`` takes -> file in evsim/_builtin/
BUILTIN_MODELS = {"default": "default_model.npz", "sparse": "sparse_model.npz"}
#: the spike file of spoken digits shipped with the package (the default input)
BUILTIN_SAMPLES = "samples.h5"
TRAINING_PRESETS = ("default", "crsnn", "delrec", "adlif", "tiny", "csgru", "csgru-lif")
COCHLEA_PRESETS = ("lauscher-1.0.1", "shd-paper")
#: the cochlea's membrane banks (``evsim encode --membrane``; see evsim.audio.basilar)
MEMBRANES = ("fast", "exact", "recursive")


def builtin_path(name: str) -> str:
    """The path of file ``name`` shipped in ``evsim/_builtin/``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_builtin", name)
