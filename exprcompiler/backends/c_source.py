"""The C backend's one choice, made here only: a trace of scalars becomes the
per-point kernel over a batch (c_backend.generate_c), a trace with vectors or
matrices the loop-nest kernel over exact shapes (c_tensor.generate_c_tensor); in
float32 either one rewritten to float (dtypes.c_source_float). `api._build`, `exprc
grad --target c` and `exprc export` all take their source here.
"""

from __future__ import annotations

from typing import NamedTuple

from ..dtypes import c_source_float
from ..shape_binding import is_tensor_trace
from ..trace.ir import Trace


class CSource(NamedTuple):
    text: str      # the C99 source
    decl: str      # the declarations of its entry points, for cffi and the header
    tensor: bool   # the loop-nest kernel (dims, exact shapes) rather than the per-point one


def generate(trace: Trace, *, func_name: str, description: str = "", columns: bool = False,
             dtype=None) -> CSource:
    """`columns`: a Jacobian's or Hessian's kernel, which stores each point's entries
    side by side (see c_backend.TILE); `dtype`: None for float64, or dtypes.F32 (the
    same program in float, see dtypes.py)."""
    if is_tensor_trace(trace):
        from .c_tensor import generate_c_tensor
        generated = CSource(*generate_c_tensor(trace, func_name=func_name, description=description), True)
    else:
        from .c_backend import generate_c
        generated = CSource(*generate_c(trace, func_name=func_name, description=description, columns=columns),
                            False)
    if dtype is None:
        return generated
    return generated._replace(text=c_source_float(generated.text), decl=c_source_float(generated.decl))


__all__ = ["CSource", "generate"]
