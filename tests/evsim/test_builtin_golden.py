"""The built-in models give bit-identical outputs to those recorded before the cell
registry and the grouped kernel arguments (tools/make_builtin_golden.py, at 7df0697):
scores exactly, readout traces and spike rasters by SHA-256 of their bytes."""

import os

import numpy as np

from tools.make_builtin_golden import builtin_outputs

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "builtin_golden.npz")


def test_builtin_models_are_bit_identical():
    want = np.load(GOLDEN)
    got = builtin_outputs()
    assert set(got) == set(want.files)
    for key in want.files:
        if key.endswith("sha256"):
            assert str(got[key]) == str(want[key]), key
        else:
            assert np.array_equal(got[key], want[key]), key
