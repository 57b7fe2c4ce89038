"""`evsim data`: fetch and check the official SHD and SSC files."""

from __future__ import annotations

import sys

import click

from evsim.names import DATASETS


@click.group()
def data():
    """Fetch and check the official SHD and SSC files."""


@data.command("download")
@click.argument("name", type=click.Choice(DATASETS))
@click.option("--dir", "dest_dir", type=click.Path(file_okay=False), default="data", show_default=True, envvar="EVSIM_DATA",
              help="Directory to put the .h5 files in. Default: $EVSIM_DATA, else ./data.")
@click.option("--timeout", type=float, default=15.0, show_default=True, help="Seconds to wait for the server.")
def data_download(name, dest_dir, timeout):
    """Download the official NAME files, verify their checksums and unpack them.

    Offline, fails at once and says which files to put in --dir by hand.
    """
    import warnings

    from evsim.datasets import UnverifiedDownloadWarning, download

    bars: dict = {}

    def progress(file_name, done, total):
        if not sys.stderr.isatty():
            return
        bar = bars.get(file_name)
        if bar is None:
            bar = bars[file_name] = click.progressbar(length=total or 0, label=file_name, file=sys.stderr)
            bar.__enter__()
            bar.last = 0
        bar.update(done - bar.last)
        bar.last = done

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnverifiedDownloadWarning)
        try:
            paths = download(name, dest_dir, progress=progress, timeout=timeout)
        finally:
            for bar in bars.values():
                bar.__exit__(None, None, None)
    for w in caught:
        click.echo(f"Warning: {w.message}", err=True)
    for p in paths:
        click.echo(p)


@data.command("check")
@click.argument("name", type=click.Choice(DATASETS))
@click.option("--dir", "data_dir", type=click.Path(file_okay=False), default="data", show_default=True, envvar="EVSIM_DATA",
              help="Directory holding the .h5 files. Default: $EVSIM_DATA, else ./data.")
def data_check(name, data_dir):
    """Check that --dir holds the NAME files that `evsim train NAME` expects."""
    from evsim.datasets import check_dir

    for split, path in check_dir(name, data_dir).items():
        click.echo(f"{split}: {path}")
