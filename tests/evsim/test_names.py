"""The command line's choices (evsim.names) agree with the library's registries, and the
CLI modules take them from there (so `evsim --help` cannot offer a name the library lacks)."""

import os
import subprocess
import sys

import click

import evsim.names as names


def test_engines_are_the_librarys():
    import evsim.run

    assert evsim.run.ENGINES == names.ENGINES


def test_datasets_are_the_ones_evsim_data_can_fetch():
    import evsim.datasets

    assert tuple(evsim.datasets.FILES) == names.DATASETS


def test_training_presets_are_the_librarys():
    from evsim.training.presets import PRESETS

    assert tuple(PRESETS) == names.TRAINING_PRESETS


def test_cochlea_presets_are_the_librarys():
    from evsim.audio import PRESETS

    assert tuple(PRESETS) == names.COCHLEA_PRESETS


def test_builtin_files_exist():
    for file_name in (*names.BUILTIN_MODELS.values(), names.BUILTIN_SAMPLES):
        assert os.path.isfile(names.builtin_path(file_name)), file_name


def _choices(command, param_name):
    (param,) = [p for p in command.params if p.name == param_name]
    assert isinstance(param.type, click.Choice)
    return tuple(param.type.choices)


def test_cli_choices_come_from_the_names():
    from evsim.cli.batch import batch
    from evsim.cli.data import data_check, data_download
    from evsim.cli.encode import encode
    from evsim.cli.run import run
    from evsim.cli.sweep import sweep
    from evsim.cli.train import train

    assert _choices(batch, "engine") == names.ENGINES
    assert _choices(run, "engine") == names.RUN_ENGINES == ("auto", *names.ENGINES)
    for command, param in ((data_download, "name"), (data_check, "name"), (sweep, "dataset"), (train, "dataset")):
        assert _choices(command, param) == names.DATASETS, command.name
    assert _choices(encode, "preset") == names.COCHLEA_PRESETS
    assert _choices(encode, "membrane") == names.MEMBRANES


def test_preset_help_names_every_training_preset():
    from evsim.cli.sweep import sweep
    from evsim.cli.train import train

    for command in (train, sweep):
        (param,) = [p for p in command.params if p.name == "preset"]
        assert all(name in param.help for name in names.TRAINING_PRESETS), command.name


def test_cli_start_up_imports_no_numpy():
    code = "import sys, evsim.cli.main; print(sorted(m for m in ('numpy', 'numba', 'h5py', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
