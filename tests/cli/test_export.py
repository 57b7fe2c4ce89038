"""`evsim export` and `evsim run --model x.nir` as a user runs them."""

import json

import pytest
from click.testing import CliRunner

nir = pytest.importorskip("nir", reason="the optional extra evsim[nir] (package nir) is not installed")

from evsim.cli.main import evsim  # noqa: E402


def invoke(*args):
    return CliRunner().invoke(evsim, [str(a) for a in args], catch_exceptions=False)


def test_export_then_run_gives_the_same_answers(tmp_path, model_file, spike_file):
    out = tmp_path / "m.nir"
    res = invoke("export", model_file, "-o", out)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"wrote {out}: 10 NIR nodes (Affine 3, Conv1d 1, Delay 1, Input 1, LI 1, LIF 2, Output 1), 10 edges")
    nir.read(out)
    a = json.loads(invoke("run", "--model", model_file, "--input", spike_file, "--json").output)
    b = json.loads(invoke("run", "--model", out, "--input", spike_file, "--json").output)
    assert a["samples"] == b["samples"] and a["accuracy"] == b["accuracy"]


def test_portable_export_warns_that_delays_are_lost(tmp_path, model_file):
    out = tmp_path / "p.nir"
    res = invoke("export", model_file, "-o", out, "--portable")
    assert res.exit_code == 0
    assert res.stderr.startswith("Warning: layer1: ") and "delays" in res.stderr and "lost in the portable graph" in res.stderr
    assert "Delay" not in res.stdout and "(portable: no delays)" in res.stdout


def test_export_needs_the_nir_suffix(tmp_path, model_file):
    res = invoke("export", model_file, "-o", tmp_path / "m.h5")
    assert res.exit_code == 1
    assert res.stderr.startswith("Error: output file ") and "must end in .nir" in res.stderr
    assert not (tmp_path / "m.h5").exists()


def test_run_refuses_a_graph_evsim_cannot_run(tmp_path, spike_file):
    import numpy as np

    g = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([10])}),
                            "thr": nir.Threshold(threshold=np.ones(10)),
                            "out": nir.Output(output_type={"output": np.array([10])})},
                     edges=[("in", "thr"), ("thr", "out")], metadata={"dt": 0.01})
    path = tmp_path / "foreign.nir"
    nir.write(path, g)
    res = invoke("run", "--model", path, "--input", spike_file)
    assert res.exit_code == 1
    assert res.stderr.startswith(f"Error: {path}: node 'thr' is a Threshold, which evsim cannot run")
