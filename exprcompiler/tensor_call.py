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


# Ops whose NumPy result may be a view of their first argument (no copy).
_VIEWS = frozenset(("copy", "transpose", "reshape", "index", "broadcast_to"))


class TensorCall:
    """Runs a compiled tensor function: shapes bound and checked, results fitted.
    What does not change between calls is worked out once: the declared shapes, which
    outputs can be views of an input, and (for the last few input shapes seen) the
    named dimensions' sizes and the outputs' shapes: an optimizer calls with the same
    shapes every time, and a gradient of a 500×100 least squares takes ~12 µs."""

    def __init__(self, trace: Trace, names, fn):
        self.trace, self.names, self.fn = trace, tuple(names), fn
        self.declared = [trace.instrs[v].shape for _, v in trace.inputs]
        viewish = [False] * len(trace.instrs)
        for i, ins in enumerate(trace.instrs):
            viewish[i] = ins.op == "input" or (ins.op in _VIEWS and viewish[ins.args[0]])
        self.may_alias = [viewish[v] for _, v in trace.outputs]
        self._bound: dict = {}   # input shapes -> (dims, output shapes), a few kept

    def bind(self, arrays) -> tuple[dict, list]:
        key = tuple(a.shape for a in arrays)
        hit = self._bound.get(key)
        if hit is None:  # (mini-batch training alternates two: full batches and the last one)
            dims = bind_shapes(self.trace, self.names, arrays)
            shapes = [concrete(self.trace.instrs[v].shape, dims) for _, v in self.trace.outputs]
            if len(self._bound) >= 8:
                self._bound.pop(next(iter(self._bound)))
            hit = self._bound[key] = (dims, shapes)
        return hit

    def __call__(self, arrays) -> list:
        dims, shapes = self.bind(arrays)
        try:
            with np.errstate(all="ignore"):
                results = self.fn(*arrays)
        except ValueError as err:  # NumPy's: max/min/logsumexp over an empty dimension
            empty = [f"{d} = 0" for d, n in dims.items() if n == 0] or \
                [f"{name} has shape {a.shape}" for name, a in zip(self.names, arrays) if a.size == 0]
            raise ShapeError(f"cannot evaluate with an empty dimension ({', '.join(empty)}): {err}"
                             if empty else f"cannot evaluate at these shapes: {err}") from None
        out = []
        for k, r in enumerate(_flat_results(results)):
            shape = shapes[k]
            if shape == ():
                out.append(float(r))
                continue
            if type(r) is not np.ndarray or r.shape != shape or not r.flags.writeable \
                    or (self.may_alias[k] and any(np.may_share_memory(r, a) for a in arrays)):
                r = _fit_one(self.trace.outputs[k][0], r, shape, arrays)
            out.append(r)
        return out


def _flat_results(results):
    if not isinstance(results, tuple):
        return (results,)
    out = []
    for r in results:
        out.extend(r if isinstance(r, tuple) else (r,))
    return out


def _fit_one(name, r, shape, arrays):
    arr = np.asarray(r, dtype=np.float64)
    if arr.shape != shape:
        try:
            return np.array(np.broadcast_to(arr, shape))
        except ValueError:
            raise ShapeError(f"output {name!r}: computed shape {arr.shape}, declared "
                             f"{_s.show(shape)}") from None
    return arr.copy() if not arr.flags.writeable or any(np.may_share_memory(arr, a) for a in arrays) \
        else arr


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


def layout(declared: dict, names, data) -> list[tuple[str, tuple]]:
    """(name, shape) of each of `names`, their named dimensions bound by the shapes of
    the `data` inputs: how a flat vector of those variables is cut (see `split`)."""
    dims: dict = {}
    for k, v in data.items():
        _s.bind(declared[k], np.shape(v), k, dims)
    sizes = {d: n for d, (n, _) in dims.items()}
    return [(k, concrete_or_fail(declared[k], sizes, k)) for k in names]


def split(vector, parts: list, what: str = "x") -> dict:
    """A flat vector cut into the variables of `parts` ((name, shape) pairs, C order,
    concatenated): name -> array, or float for a scalar."""
    arr = np.asarray(vector, dtype=np.float64).reshape(-1)
    total = sum(int(np.prod(shape)) for _, shape in parts)
    if total != arr.size:
        raise ValueError(f"at(): {what} has {arr.size} numbers; the variables "
                         f"{', '.join(k for k, _ in parts)} hold {total}")
    out, start = {}, 0
    for name, shape in parts:
        size = int(np.prod(shape))
        out[name] = float(arr[start]) if shape == () else arr[start:start + size].reshape(shape)
        start += size
    return out


def flat(parts) -> np.ndarray:
    """The inverse of `split`: arrays and numbers flattened and concatenated."""
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts]) \
        if len(parts) else np.zeros(0)


class TensorPackedCall:
    """`Compiled.at` for tensor traces: the `wrt` tensors flattened (C order) and
    concatenated into one vector x, data inputs by name; results flattened the same
    way — the calling convention of optimizers and SciPy, for any parameter shapes.

        value, grad = g.at(x, X=X, y=y)          grad: (N,), N = total size of wrt
        value, grad, hv = hvp.at(x, v, X=X, y=y)
    """

    def __init__(self, compiled):
        self.c = compiled
        self.kind = compiled.kind
        self.wrt = tuple(compiled.wrt) if compiled.kind != "value" else tuple(compiled.primal.input_names)
        self.declared = {name: compiled.trace.instrs[v].shape for name, v in compiled.trace.inputs}
        self.seeds = [n for n in compiled.inputs if n.endswith("_dot") and n[:-4] in self.wrt
                      and n not in compiled.primal.input_names]

    def __call__(self, x, seed=None, /, **data):
        unknown = [k for k in data if k not in self.declared or k in self.wrt]
        if unknown:
            raise TypeError(f"at(): unexpected input {unknown[0]!r} (data inputs: "
                            f"{', '.join(n for n in self.declared if n not in self.wrt and '.' not in n)})")
        parts = layout(self.declared, self.wrt, data)
        args = {**data, **split(x, parts, "x")}
        if self.seeds:
            if seed is None:
                raise TypeError("at(): missing the direction v")
            args.update({f"{k}_dot": v for k, v in split(seed, parts, "v").items()})
        result = self.c(**args)
        if self.kind == "value":
            return result
        if self.kind == "grad":
            value, grads = result
            return value, flat(grads)
        if self.kind == "hvp":
            value, grads, hv = result
            return value, flat(grads), flat(hv)
        raise TypeError(f"at() on a tensor {self.kind} is not available")


def concrete_or_fail(shape, dims, name):
    try:
        return concrete(shape, dims)
    except KeyError as err:
        raise ShapeError(f"at(): the size of dimension {err.args[0]!r} of {name!r} is not known; "
                         f"pass a data input that has it") from None
