"""The surrogate derivatives, re-exported from :mod:`evsim.surrogates` (where they live so
that the cell modules of :mod:`evsim.cells` can use them in their training steps)."""

from evsim.surrogates import (SURROGATES, Surrogate, arctan_grad, arctan_primitive, fast_sigmoid_grad,
                              fast_sigmoid_primitive, get_surrogate, inverse_quadratic_grad,
                              inverse_quadratic_primitive, spike_fn, surrogate_grad, triangle_grad,
                              triangle_primitive)

__all__ = ["Surrogate", "SURROGATES", "get_surrogate", "spike_fn", "surrogate_grad", "arctan_grad",
           "arctan_primitive", "fast_sigmoid_grad", "fast_sigmoid_primitive", "triangle_grad",
           "triangle_primitive", "inverse_quadratic_grad", "inverse_quadratic_primitive"]
