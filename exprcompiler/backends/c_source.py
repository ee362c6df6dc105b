"""The C backend's one choice, made here only: a trace of scalars becomes the
per-point kernel over a batch (c_backend.generate_c), a trace with vectors or
matrices the loop-nest kernel over exact shapes (c_tensor.generate_c_tensor).
`api._build`, `exprc grad --target c` and `exprc export` all take their source here.
"""

from __future__ import annotations

from typing import NamedTuple

from ..shape_binding import is_tensor_trace
from ..trace.ir import Trace


class CSource(NamedTuple):
    text: str      # the C99 source
    decl: str      # the declarations of its entry points, for cffi and the header
    tensor: bool   # the loop-nest kernel (dims, exact shapes) rather than the per-point one


def generate(trace: Trace, *, func_name: str, description: str = "", columns: bool = False) -> CSource:
    """`columns`: a Jacobian's or Hessian's kernel, which stores each point's entries
    side by side (see c_backend.TILE)."""
    if is_tensor_trace(trace):
        from .c_tensor import generate_c_tensor
        return CSource(*generate_c_tensor(trace, func_name=func_name, description=description), True)
    from .c_backend import generate_c
    return CSource(*generate_c(trace, func_name=func_name, description=description, columns=columns), False)


__all__ = ["CSource", "generate"]
