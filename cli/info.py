"""`evsim info`: what a model file holds."""

from __future__ import annotations

import click

from .common import dumps, model_path


@click.command()
@click.argument("model_file", metavar="[MODEL]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def info(model_file, as_json):
    """Architecture, parameter counts and delay distribution of MODEL: a model file (.npz)
    or a built-in model (default, sparse).  Without MODEL: the built-in default."""
    from evsim.info import describe, format_description
    from evsim.model import load_model

    model_file = model_path(model_file)
    d = describe(load_model(model_file))
    click.echo(dumps(d) if as_json else format_description(d, model_file))
