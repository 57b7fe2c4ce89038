"""`evsim encode`: recordings -> one SHD-layout spike file (the Heidelberg cochlea)."""

from __future__ import annotations

import sys

import click

from evsim.names import COCHLEA_PRESETS, MEMBRANES

from .common import NoBar


@click.command()
@click.argument("audio", nargs=-1, required=True, metavar="AUDIO...")
@click.option("-o", "--out", "out", required=True, metavar="OUT.h5", help="Spike file to write (SHD layout).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random fibres: same seed, same spikes.")
@click.option("--preset", type=click.Choice(COCHLEA_PRESETS), default=COCHLEA_PRESETS[0], show_default=True,
              help="Cochlea parameters: lauscher 1.0.1's defaults (what SHD-style files and the built-in "
                   "models use) or the fork matching the SHD paper's table.")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Refuse recordings longer than this.")
@click.option("--exact-membrane", is_flag=True,
              help="Compute every membrane channel at the full rate (the reference FIR bank) instead of the "
                   "fast bank, which computes the band-limited apical channels at a reduced rate and "
                   "interpolates them (relative error below 2e-3; ~20 % less CPU for the membrane).")
@click.option("--membrane", type=click.Choice(MEMBRANES), default=None,
              help="Membrane bank: 'fast' (FFT blocks, band-limited channels at a reduced rate; the default), "
                   "'exact' (as --exact-membrane) or 'recursive' (the basal channels as fitted IIR filters "
                   "run over the whole recording; relative error ~1e-3 per channel).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes.")
def encode(audio, out, seed, preset, max_seconds, exact_membrane, membrane, quiet):
    """Encode recordings (WAV files, folders of them, or a labels.csv) into spikes.

    \b
    Labels come from a labels.csv (columns file,label[,word,speaker]) in a folder or
    given directly, or from the names of first-level subfolders (one per class).
    """
    from evsim.audio import find_recordings, preset as get_preset, write_encoded

    items = find_recordings(audio)
    show_bar = not quiet and sys.stderr.isatty()
    notes = None if quiet else (lambda msg: click.echo(f"note: {msg}", err=True))
    with click.progressbar(length=len(items), label="encoding", file=sys.stderr) if show_bar else NoBar() as bar:
        info = write_encoded(out, items, get_preset(preset), seed=seed, max_seconds=max_seconds,
                             progress=bar.update, notes=notes, exact=exact_membrane, membrane=membrane)
    labels = "with labels" if info["labelled"] else "no labels"
    classes = f", {len(info['class_names'])} classes" if info["class_names"] else ""
    click.echo(f"wrote {out}: {info['samples']} samples, {info['spikes']} spikes, {labels}{classes}")
