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


def fit_outputs(trace: Trace, results, dims: dict, arrays=()) -> list:
    """Each result as a float (scalar outputs) or an array of its output's shape: a
    derivative that is structurally zero comes back from the code as a plain 0.0.
    A result that is a read-only view (a broadcast) or shares memory with an input
    (the gradient of x·y with respect to x is y itself) is copied: results are the
    caller's to modify."""
    out = []
    for (name, v), r in zip(trace.outputs, results):
        shape = concrete(trace.instrs[v].shape, dims)
        arr = np.asarray(r, dtype=np.float64)
        if arr.shape == shape and shape != () and (
                not arr.flags.writeable or any(np.may_share_memory(arr, a) for a in arrays)):
            arr = arr.copy()
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


class TensorPackedCall:
    """`Compiled.at` for tensor traces: the `wrt` tensors flattened (C order) and
    concatenated into one vector x, data inputs by name; results flattened the same
    way — the calling convention of optimizers and SciPy, for any parameter shapes.

        value, grad = g.at(x, X=X, y=y)          grad: (N,), N = total size of wrt
        value, grad, hv = hvp.at(x, v, X=X, y=y)
    """

    def __init__(self, compiled):
        self.c = compiled
        trace = compiled.trace
        self.kind = compiled.kind
        self.wrt = tuple(compiled.wrt) if compiled.kind != "value" else tuple(compiled.primal.input_names)
        self.declared = {name: trace.instrs[v].shape for name, v in trace.inputs}
        self.seeds = [n for n in compiled.inputs if n.endswith("_dot") and n[:-4] in self.wrt
                      and n not in compiled.primal.input_names]

    def _split(self, vector, dims, what):
        arr = np.asarray(vector, dtype=np.float64).reshape(-1)
        shapes = [concrete_or_fail(self.declared[name], dims, name) for name in self.wrt]
        sizes = [int(np.prod(s)) for s in shapes]
        if sum(sizes) != arr.size:
            raise ValueError(f"at(): {what} has {arr.size} numbers; the variables "
                             f"{', '.join(self.wrt)} hold {sum(sizes)}")
        parts, start = {}, 0
        for name, shape, size in zip(self.wrt, shapes, sizes):
            parts[name] = arr[start:start + size].reshape(shape)
            start += size
        return parts

    def __call__(self, x, seed=None, /, **data):
        dims: dict = {}
        for name, value in data.items():
            if name not in self.declared or name in self.wrt:
                raise TypeError(f"at(): unexpected input {name!r} (data inputs: "
                                f"{', '.join(n for n in self.declared if n not in self.wrt and '.' not in n)})")
            _s.bind(self.declared[name], np.shape(value), name, dims)
        sizes = {d: n for d, (n, _) in dims.items()}
        args = dict(data)
        args.update(self._split(x, sizes, "x"))
        if self.seeds:
            if seed is None:
                raise TypeError("at(): missing the direction v")
            args.update({f"{k}_dot": v for k, v in self._split(seed, sizes, "v").items()})
        result = self.c(**args)
        if self.kind == "value":
            return result
        if self.kind == "grad":
            value, grads = result
            return value, _flat(grads)
        if self.kind == "hvp":
            value, grads, hv = result
            return value, _flat(grads), _flat(hv)
        raise TypeError(f"at() on a tensor {self.kind} is not available")


def concrete_or_fail(shape, dims, name):
    try:
        return concrete(shape, dims)
    except KeyError as err:
        raise ShapeError(f"at(): the size of dimension {err.args[0]!r} of {name!r} is not known; "
                         f"pass a data input that has it") from None


def _flat(parts) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1) for p in parts]) \
        if parts else np.zeros(0)
