"""`evsim data convert ntidigits` through CliRunner."""

from click.testing import CliRunner

from evsim.cli.main import evsim
from tests.evsim.test_ntidigits import make_source


def invoke(*args):
    return CliRunner().invoke(evsim, [str(a) for a in args], catch_exceptions=False)


def test_convert_ntidigits(tmp_path):
    make_source(tmp_path / "n-tidigits.hdf5")
    res = invoke("data", "convert", "ntidigits", tmp_path / "n-tidigits.hdf5", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        f"train: {tmp_path / 'out' / 'ntidigits_train.h5'} (4 samples, 1 digit sequences skipped)",
        f"test: {tmp_path / 'out' / 'ntidigits_test.h5'} (1 samples, 1 digit sequences skipped)"]


def test_convert_ntidigits_bad_file(tmp_path):
    res = invoke("data", "convert", "ntidigits", tmp_path / "absent.hdf5", "-o", tmp_path / "out")
    assert res.exit_code == 1
    assert res.output == f"Error: N-TIDIGITS file not found: {tmp_path / 'absent.hdf5'}\n"
