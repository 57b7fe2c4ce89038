"""The finite-difference stencil every hand-written gradient is checked with."""

import numpy as np

EPS = 1e-5      # with the 4th-order stencil: truncation ~EPS^4, round-off ~1e-16 / EPS


def fd_gradient(flat: np.ndarray, loss) -> np.ndarray:
    """dL/d(flat[j]) for every j by 4th-order central differences, where ``loss()``
    evaluates L reading ``flat`` (a writable view of the parameter); every entry is
    restored after its differences."""
    fd = np.zeros(flat.size)
    for j in range(flat.size):
        old = flat[j]
        f = []
        for step in (2 * EPS, EPS, -EPS, -2 * EPS):
            flat[j] = old + step
            f.append(loss())
        flat[j] = old
        fd[j] = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * EPS)
    return fd
