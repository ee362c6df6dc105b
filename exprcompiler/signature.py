"""One compiled function's signature: the names, shapes and packing of its calls.

Where it sits: between the compiled object (api.Compiled, which owns one) and its
kernel. A Signature holds what the trace says about calling it —

    inputs    the argument names in call order (the user's; seeds x_dot, y_bar)
    seeds     the inputs that are seeds of a derivative (tangents, cotangents)
    outputs   the trace's output names; `wrt` the differentiation variables
    declared  each input's declared shape ("n" a named dimension, "n-1" derived)

— binds the named dimensions of a call's arrays (`bind`: checked by
shape_binding.ShapeBinder, kept per tuple of input shapes in one thread-safe cache
that the kernel's own wrapper shares, so a call binds once), and cuts a packed
vector into the `wrt` variables for `.at()` and `.scipy()` (`layout`, `split`,
`flat`; a named dimension that only the packed vector has is read off its length).
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple, Optional

import numpy as np

from . import shapes as _s
from .call_args import _public_names, not_real
from .errors import ShapeError
from .shape_binding import ShapeBinder, ShapeCache, concrete, is_tensor_trace
from .trace.ir import Trace


class Binding(NamedTuple):
    """What one tuple of input shapes decides."""
    dims: dict     # named dimension -> size
    shapes: list   # each output's shape
    memo: dict     # what a kernel derives from the sizes, kept with them (C: its dims array)


class Signature:
    def __init__(self, trace: Trace, primal: Trace, wrt=(), inputs=None):
        self.trace = trace
        # interned: a call by name with these strings as its keys (dict(zip(g.inputs, ...)))
        # finds the call plan's keyword parameters by identity (call_plan._compiled)
        self.inputs = tuple(map(sys.intern, inputs if inputs is not None else
                                _public_names(trace.input_names, primal.input_names)))
        self.wrt = tuple(wrt)
        self.outputs = tuple(name for name, _ in trace.outputs)
        user = set(primal.input_names)
        self.seeds = tuple(n for n, (t, _) in zip(self.inputs, trace.inputs) if t not in user)
        self.declared = {n: trace.instrs[v].shape for n, (_, v) in zip(self.inputs, trace.inputs)}
        self.tensor = is_tensor_trace(trace)
        self._binder: Optional[ShapeBinder] = None
        self._bound = ShapeCache()
        self.bound = self._bound.peek  # bound(shapes) -> the Binding kept for them, or None

    def __repr__(self) -> str:
        def shown(names, shapes):
            return ", ".join(f"{n}: {_s.show(s)}" for n, s in zip(names, shapes))
        outs = [self.trace.instrs[v].shape for _, v in self.trace.outputs]
        return (f"({shown(self.inputs, self.declared.values())}) -> ({shown(self.outputs, outs)})"
                + ("" if self.tensor else "  [elementwise: arrays broadcast over a batch of points]"))

    def bind(self, arrays, key: Optional[tuple] = None) -> Binding:
        """The named dimensions' sizes and the outputs' shapes for these arrays (in
        `inputs` order), checked before any is kept: a ShapeError names the input,
        the dimension and both sizes. `key`: the tuple of the arrays' shapes, when the
        caller has made it already."""
        if key is None:
            key = tuple([a.shape for a in arrays])
        return self._bound.get(key, self._new_binding, arrays)

    def _new_binding(self, arrays) -> Binding:
        if self._binder is None:  # two threads may both make one: equal, and either is kept
            self._binder = ShapeBinder(self.trace, self.inputs)
        dims = self._binder.bind(arrays)
        return Binding(dims, [concrete(self.trace.instrs[v].shape, dims) for _, v in self.trace.outputs], {})

    def needs(self) -> list[str]:
        """What the trace needs of the sizes, one line each ("x[5] needs n >= 6")."""
        if self._binder is None:
            self._binder = ShapeBinder(self.trace, self.inputs)
        return self._binder.describe()

    def layout(self, names, data: dict, length: Optional[int] = None) -> list[tuple[str, tuple]]:
        """(name, shape) of each of `names` for a call with these `data` inputs: how a
        packed vector of `length` numbers is cut (see the module function `layout`)."""
        return layout(self.declared, names, data, length)


def layout(declared: dict, names, data, length: Optional[int] = None) -> list[tuple[str, tuple]]:
    """(name, shape) of each of `names`, their named dimensions bound by the shapes of
    the `data` inputs, or else read off `length`, the size of the packed vector (one
    unknown dimension at most: sum(x**2) over x of shape (n,) at a vector of 5 has
    n = 5): how a flat vector of those variables is cut (see `split`)."""
    dims: dict = {}
    for k, v in data.items():
        _s.bind(declared[k], np.shape(v), k, dims)
    sizes = {d: n for d, (n, _) in dims.items()}
    unknown = sorted({_s.parse_dim(d)[0] for k in names for d in declared[k] if isinstance(d, str)} - set(sizes))
    if unknown and length is not None:
        sizes.update(_size_from_length(declared, names, sizes, unknown, length))
    return [(k, concrete_or_fail(declared[k], sizes, k)) for k in names]


def _size_from_length(declared: dict, names, sizes: dict, unknown: list, length: int) -> dict:
    """The one unknown named dimension whose value makes the variables hold `length`
    numbers: their total grows with it, so a bisection finds it."""
    if len(unknown) > 1:
        raise ShapeError(f"at(): the sizes of dimensions {', '.join(map(repr, unknown))} cannot be read off "
                         f"one vector of {length} numbers; pass a data input that has them")
    (name,) = unknown
    least = max((_s.parse_dim(d)[1] for k in names for d in declared[k]
                 if isinstance(d, str) and _s.parse_dim(d)[0] == name), default=0)

    def total(n: int) -> int:
        trial = {**sizes, name: n}
        return sum(math.prod(concrete(declared[k], trial)) for k in names)
    lo, hi = least, least + length  # every variable holding `name` holds at least n - least
    while lo < hi:
        mid = (lo + hi) // 2
        if total(mid) < length:
            lo = mid + 1
        else:
            hi = mid
    if total(lo) != length:
        raise ShapeError(f"at(): a vector of {length} numbers does not fit {', '.join(names)} for any "
                         f"size of {name!r} ({name} = {lo} gives {total(lo)})")
    return {name: lo}


def split(vector, parts: list, what: str = "x") -> dict:
    """A flat vector cut into the variables of `parts` ((name, shape) pairs, C order,
    concatenated): name -> array, or float for a scalar. As the scalar at() does
    (packed._vector), a 2-D `vector` is refused, even of the right size."""
    why = not_real(vector)
    if why:
        raise TypeError(f"at(): {what}: {why}")
    arr = np.asarray(vector, dtype=np.float64)
    total = sum(int(np.prod(shape)) for _, shape in parts)
    if arr.ndim > 1:  # (a batch of points, or a point given as a row, is not flattened into one)
        raise ValueError(f"at(): {what} must be a vector of the {total} numbers of "
                         f"{', '.join(k for k, _ in parts)}; got shape {arr.shape}")
    arr = arr.reshape(-1)
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


def concrete_or_fail(shape, dims, name):
    try:
        return concrete(shape, dims)
    except KeyError as err:
        raise ShapeError(f"at(): the size of dimension {err.args[0]!r} of {name!r} is not known; "
                         f"pass a data input that has it") from None


__all__ = ["Binding", "Signature", "layout", "split", "flat"]
