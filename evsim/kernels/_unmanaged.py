"""Array views that numba does not reference-count: the step loop's arrays.

numba counts references to every array view it makes (a slice, a row) with a call that
increments, and one that decrements, the count in the array's memory-info block, unless
that block is null.  The event step loop makes about fifteen views per layer and step;
those calls made the serial kernel 1.3-1.6x slower than the same loop inside a parallel
region, whose arrays numba builds without a memory-info block (benchmarks/README.md,
"Aligned arrays and reference counts").  :func:`unmanaged` gives the same array without
one, so the loop counts nothing.  The caller keeps the original arrays alive for the call.
"""

from __future__ import annotations

from .._numba_config import import_numba

numba = import_numba()

from numba.core import cgutils  # noqa: E402 (after evsim's numba set-up)
from numba.core.extending import intrinsic  # noqa: E402


@intrinsic
def unmanaged(typingctx, array):
    """``array`` (any numba array) as a view without a memory-info block or parent: the same
    data, shape and strides, never reference-counted."""
    if not isinstance(array, numba.types.Array):
        return None

    def codegen(context, builder, signature, args):
        source = context.make_array(signature.args[0])(context, builder, args[0])
        view = context.make_array(signature.return_type)(context, builder)
        for field in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(view, field, getattr(source, field))
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return array(array), codegen
