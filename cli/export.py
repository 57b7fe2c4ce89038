"""`evsim export`: a model as a NIR graph (optional extra evsim[nir])."""

from __future__ import annotations

import click

from evsim.errors import EvsimError

from .common import model_path


@click.command()
@click.argument("model_file", metavar="MODEL")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The .nir file to write.")
@click.option("--portable", is_flag=True,
              help="No Delay nodes, conv recurrence as a dense Linear: what other NIR importers accept. The delays are lost.")
def export(model_file, output, portable):
    """Write MODEL (.npz, or a built-in model: default, sparse) as a NIR graph.

    \b
    Faithful (default): Affine -> LIF per layer, the recurrence as LIF -> Delay -> Conv1d|Linear -> LIF,
    readout Affine -> LI; dt, resets, the +1 step of a cycle and the decision in the metadata.
    Read it back with `evsim run --model OUT.nir` or evsim.load_model("OUT.nir").
    """
    from evsim.model import load_model
    from evsim.nir_io import export_nir, nir_node_counts

    if not output.lower().endswith(".nir"):
        raise EvsimError(f"output file {output!r} must end in .nir (that is how evsim recognises NIR files when reading them)")
    graph, warnings = export_nir(load_model(model_path(model_file)), output, portable=portable)
    for w in warnings:
        click.echo(f"Warning: {w}", err=True)
    counts = nir_node_counts(graph)
    click.echo(f"wrote {output}: {sum(counts.values())} NIR nodes ({', '.join(f'{k} {v}' for k, v in counts.items())}), "
               f"{len(graph.edges)} edges{' (portable: no delays)' if portable else ''}")
