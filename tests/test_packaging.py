"""Packaging: training/ and cli/ install inside the evsim namespace, every package folder
is listed in pyproject.toml, and ``python -m evsim`` is the command."""

import pathlib
import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FOLDERS = {"evsim": "evsim", "training": "evsim.training", "cli": "evsim.cli"}


def package_folders() -> set[str]:
    names = set()
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            names.add(".".join([package, *init.parent.relative_to(ROOT / folder).parts]))
    return names


@pytest.mark.skipif(tomllib is None, reason="tomllib needs Python 3.11")
def test_every_package_folder_is_installed_inside_the_evsim_namespace():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(setup["packages"]) == package_folders()
    assert setup["package-dir"] == {"evsim.training": "training", "evsim.cli": "cli"}
    assert all(p == "evsim" or p.startswith("evsim.") for p in setup["packages"])


def test_source_checkout_maps_the_folders_like_an_installation():
    import evsim.cli.main
    import evsim.training.trainer

    assert pathlib.Path(evsim.training.trainer.__file__).parent == ROOT / "training"
    assert pathlib.Path(evsim.cli.main.__file__).parent == ROOT / "cli"


def test_python_dash_m_evsim_runs_the_command():
    out = subprocess.run([sys.executable, "-m", "evsim", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("evsim, version ")
