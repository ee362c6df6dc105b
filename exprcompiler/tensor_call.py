"""Calling a compiled tensor trace: arguments checked against the declared shapes.

A trace whose variables are all scalars is evaluated elementwise over a batch of
points (api.Compiled broadcasts its arguments). A trace with tensor inputs or ops is
called with exactly the declared shapes instead: named dimensions ("n") are bound by
the first argument that has them and checked for every other, so a mismatch is a
`ShapeError` naming the input, the dimension and both sizes, raised before any
generated code runs — never a NumPy traceback from inside it.
"""

from __future__ import annotations

import numpy as np

from . import shapes as _s
from .errors import ShapeError
from .trace.ir import Trace


def is_tensor_trace(trace: Trace) -> bool:
    return any(ins.shape != () for ins in trace.instrs)


def bind_shapes(trace: Trace, names, arrays) -> dict:
    """Check every argument against its declared shape; the named dimensions' sizes."""
    dims: dict = {}
    for (_, v), name, a in zip(trace.inputs, names, arrays):
        _s.bind(trace.instrs[v].shape, a.shape, name, dims)
    return {d: size for d, (size, _) in dims.items()}


def concrete(shape: tuple, dims: dict) -> tuple:
    """A declared shape with its named (and derived, 'n-1') dimensions resolved."""
    out = []
    for d in shape:
        if isinstance(d, int):
            out.append(d)
            continue
        name, _, minus = d.partition("-")
        out.append(dims[name] - int(minus or 0))
    return tuple(out)


def fit_outputs(trace: Trace, results, dims: dict) -> list:
    """Each result as a float (scalar outputs) or an array of its output's shape: a
    derivative that is structurally zero comes back from the code as a plain 0.0."""
    out = []
    for (name, v), r in zip(trace.outputs, results):
        shape = concrete(trace.instrs[v].shape, dims)
        arr = np.asarray(r, dtype=np.float64)
        if arr.shape != shape:
            try:
                arr = np.array(np.broadcast_to(arr, shape))
            except ValueError:
                raise ShapeError(f"output {name!r}: computed shape {arr.shape}, declared "
                                 f"{_s.show(shape)}") from None
        out.append(float(arr) if shape == () else arr)
    return out


def copy_into(outs: list, results: list) -> list:
    """`out=` for tensor traces: each result copied into the caller's array."""
    if len(outs) != len(results):
        raise ValueError(f"out=: expected {len(results)} arrays (one per result), got {len(outs)}")
    for k, (o, r) in enumerate(zip(outs, results)):
        if not isinstance(o, np.ndarray) or o.dtype != np.float64 or o.shape != np.shape(r):
            raise ValueError(f"out= array {k}: expected float64 of shape {np.shape(r)}, got "
                             f"{getattr(o, 'dtype', type(o).__name__)} of shape {getattr(o, 'shape', '?')}")
        o[...] = r
    return outs
