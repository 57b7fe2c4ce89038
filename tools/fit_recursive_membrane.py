"""Fit the recursive (IIR) basal membrane channels of the default cochlea and write the
coefficients evsim ships (``evsim/_builtin/membrane-iir-*.npz``; see
:mod:`evsim.audio.recursive`).  Run again after any change to the membrane kernels or to
the fit (bump ``FIT_VERSION``): ``python tools/fit_recursive_membrane.py`` (~4 CPU minutes)."""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    from evsim.audio.basilar import FilterBank
    from evsim.audio.params import CochleaParams
    from evsim.audio.recursive import _file_name, fit_basal, write_coefficients

    params = CochleaParams()
    channels = FilterBank(params).decimations[0][1]      # the full-rate group
    start = time.process_time()
    fit = fit_basal(params, channels, note=lambda msg: print(msg, file=sys.stderr, flush=True))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "evsim", "_builtin", _file_name(params, channels))
    write_coefficients(path, fit)
    print(f"wrote {path} ({channels} channels, {time.process_time() - start:.0f} CPU s)")


if __name__ == "__main__":
    main()
