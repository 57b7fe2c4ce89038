"""`evsim listen`: classify a recording while streaming it, block by block, as if live."""

from __future__ import annotations

import click

from evsim.precision import CLI_DEFAULT_PRECISION, CLI_PRECISIONS, resolve_precision

from .common import model_path


@click.command()
@click.argument("audio", metavar="FILE.wav")
@click.option("--model", "model_file", metavar="PATH", default=None,
              help="Model file (.npz) or built-in name (default, sparse). Default: default.")
@click.option("--block-ms", type=click.FloatRange(1, 1000), default=20.0, show_default=True,
              help="Audio per block, as a sound card would deliver it.")
@click.option("--gain", default="file", show_default=True,
              help="file: the whole file's RMS normalisation (as offline); running: RMS of what was "
                   "heard so far (causal); or a number.")
@click.option("--causal", is_flag=True, help="Causal membrane (no 90 ms lookahead; spike times shift).")
@click.option("--realtime", is_flag=True, help="Wait between blocks so the file plays at its real pace.")
@click.option("--every-ms", type=click.FloatRange(1, 10000), default=100.0, show_default=True,
              help="Print the running prediction this often (audio time).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--precision", type=click.Choice(CLI_PRECISIONS), default=CLI_DEFAULT_PRECISION, show_default=True,
              help="The network's arithmetic, as in evsim run.")
def listen(audio, model_file, block_ms, gain, causal, realtime, every_ms, seed, precision):
    """Stream FILE.wav through the cochlea and the network, printing the running prediction."""
    from evsim.audio import listen as run_listen
    from evsim.errors import EvsimError
    from evsim.model import load_model

    if gain not in ("file", "running"):
        try:
            gain = float(gain)
        except ValueError:
            raise EvsimError(f"--gain {gain!r}; expected file, running or a number") from None
    model = load_model(model_path(model_file))
    precision = resolve_precision(precision, model)
    state = {"next": every_ms / 1000}

    def show(r):
        if r.audio_s + 1e-9 >= state["next"]:
            state["next"] += every_ms / 1000
            click.echo(f"{r.audio_s:6.2f} s heard, {r.decided_s:5.2f} s decided: {r.class_name} (score {r.score:.2f})")

    live, reports = run_listen(model, audio, block_ms=block_ms, gain=gain, seed=seed, causal=causal,
                               realtime=realtime, on_block=show, precision=precision)
    compute = [r.compute_s for r in reports[:-1]] or [0.0]
    name = model.class_names[live.prediction]
    click.echo(f"final: {name} (score {float(live.scores[live.prediction]):.2f})")
    click.echo(f"per {block_ms:g} ms block: {1000 * sum(compute) / len(compute):.2f} ms mean, "
               f"{1000 * max(compute):.2f} ms max compute; latency of the cochlea "
               f"{1000 * live.cochlea.latency_s:.0f} ms + one block")
