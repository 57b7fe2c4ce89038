"""`evsim data convert`: other spike data sets into the SHD layout."""

from __future__ import annotations

import click


@click.group()
def convert():
    """Convert another data set's files into the SHD layout that evsim reads."""


@convert.command("ntidigits")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Directory for ntidigits_train.h5 and ntidigits_test.h5.")
def convert_ntidigits_command(src, out_dir):
    """Convert N-TIDIGITS (SRC = n-tidigits.hdf5, 64 cochlea channels) into the SHD
    layout: the isolated digits, 11 classes, speakers kept for validation splits."""
    from evsim.ntidigits import convert_ntidigits

    for split, res in convert_ntidigits(src, out_dir).items():
        click.echo(f"{split}: {res.path} ({res.n_samples} samples, {res.n_skipped} digit sequences skipped)")
