"""`evsim plot ...` as a user runs it: files written, one-line errors."""

import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib", reason="the optional extra evsim[plot] (matplotlib) is not installed")

from evsim.cli.main import evsim  # noqa: E402
from tests.evsim.test_plot import write_log  # noqa: E402


def invoke(*args):
    return CliRunner().invoke(evsim, [str(a) for a in args], catch_exceptions=False)


def test_each_picture_is_written(tmp_path, model_file, spike_file):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_log(run_dir)
    cases = [("raster", model_file, "--input", spike_file, "--sample", 2),
             ("delays", model_file),
             ("training", run_dir),
             ("confusion", model_file, "--input", spike_file)]
    for i, (kind, *args) in enumerate(cases):
        out = tmp_path / f"{kind}.{'svg' if i % 2 else 'png'}"
        res = invoke("plot", kind, *args, "-o", out)
        assert res.exit_code == 0, res.output
        assert res.stdout == f"{out}\n" and out.stat().st_size > 1000


@pytest.mark.parametrize("args, message", [
    (("training", "{tmp}"), "Error: {tmp}: no log.jsonl; expected the --out directory of `evsim train`"),
    (("delays", "{model}", "-o", "{tmp}/d.pdf"), "Error: picture file '{tmp}/d.pdf': unknown format .pdf; expected one of .png, .svg"),
    (("raster", "{model}", "--input", "{spikes}", "--sample", "99"), "Error: sample 99 out of range: {spikes} has 6 samples (0..5)"),
])
def test_plot_errors(tmp_path, model_file, spike_file, args, message):
    fill = {"tmp": tmp_path, "model": model_file, "spikes": spike_file}
    res = invoke("plot", *[a.format(**fill) for a in args])
    assert res.exit_code == 1
    assert res.stderr.strip() == message.format(**fill)
