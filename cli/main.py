"""The ``evsim`` command line: one click group, thin commands.

Each command parses its options, calls one library function and formats the answer.
Library errors (:class:`evsim.errors.EvsimError`) become a one-line ``Error: ...`` and
exit status 1 in one place, :class:`EvsimGroup`; heavy modules (numba, h5py) are imported
inside commands so ``evsim --help`` answers at once, and a command's module is imported
only when that command runs (or ``--help`` lists the commands): ``evsim run`` does not
import the modules of ``train``, ``sweep``, ``plot``, ... (about 15 ms).
"""

from __future__ import annotations

import os
import sys

import click

from evsim.errors import EvsimError


class EvsimGroup(click.Group):
    """Turns library errors into click errors: no tracebacks for bad input.  Commands are
    registered by name (:func:`_register`) and imported when first asked for."""

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(_LAZY))

    def get_command(self, ctx, name):
        if name not in self.commands and name in _LAZY:
            self.add_command(_load(name), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            _check_environment()
            return super().invoke(ctx)
        except EvsimError as exc:
            raise click.ClickException(str(exc)) from exc
        except BrokenPipeError:
            raise  # the reader went away (`evsim run | head -1`): click exits 1 without a message
        except OSError as exc:  # disk full, permissions, ... while writing output
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from exc


def _check_environment() -> None:
    """What would otherwise fail deep inside numba, or silently: checked before any command."""
    threads = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if threads and not (threads.isdigit() and int(threads) >= 1):
        raise EvsimError(f"NUMBA_NUM_THREADS={threads}: expected a whole number of threads >= 1 (or leave it unset "
                         "to use every core)")
    out = sys.stdout
    try:
        closed = out is None or out.closed or (out.fileno() >= 0 and not _fd_open(out.fileno()))
    except (AttributeError, ValueError, OSError):
        closed = False   # not a real file (a test runner's buffer): nothing to check
    if closed:
        raise EvsimError("standard output is closed; evsim writes its results there: redirect it to a file "
                         "or to /dev/null instead of closing it")


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


@click.group(cls=EvsimGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="evsim", prog_name="evsim")
def evsim():
    """evsim: spiking networks with learnable axonal delays and convolutional
    recurrences, trained with hand-written BPTT and run by a sparse event-driven engine.

    \b
    Classify the built-in spoken-digit samples with the built-in model:
        evsim run
    Your own files (SHD HDF5 layout):
        evsim run --model model.npz --input shd_test.h5
    """


#: command name -> (module of this package, the click command's name in it)
_LAZY: dict = {}


def _register() -> None:
    """One entry per command: its name, module (``cli/<module>.py``) and function."""
    for name, module, attr in (("run", "run", "run"), ("info", "info", "info"), ("train", "train", "train"),
                               ("data", "data", "data"), ("batch", "batch", "batch"), ("sweep", "sweep", "sweep"),
                               ("export", "export", "export"), ("plot", "plot", "plot"),
                               ("encode", "encode", "encode"), ("listen", "listen", "listen")):
        _LAZY[name] = (module, attr)


def _load(name: str) -> click.Command:
    """Import command ``name``'s module and return its click command (``data`` with its
    ``convert`` subcommand)."""
    import importlib

    module, attr = _LAZY[name]
    command = getattr(importlib.import_module(f".{module}", __package__), attr)
    if name == "data":
        from . import convert

        if "convert" not in command.commands:
            command.add_command(convert.convert)
    return command


_register()


def main():
    # numba's prange threads do evsim's parallel work; BLAS threads on top of them wait on
    # each other (a training step measured 3x slower with 2 OpenBLAS threads on 2 cores).
    # Set before numpy is first imported; an explicit setting by the user wins.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    evsim(prog_name="evsim")


if __name__ == "__main__":
    main()
