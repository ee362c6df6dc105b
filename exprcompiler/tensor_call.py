"""Calling a compiled tensor trace: arguments checked against the declared shapes.

A trace whose variables are all scalars is evaluated elementwise over a batch of
points (api.Compiled broadcasts its arguments). A trace with tensor inputs or ops is
called with exactly the declared shapes instead: named dimensions ("n") are bound by
the first argument that has them and checked for every other, so a mismatch is a
`ShapeError` naming the input, the dimension and both sizes, raised before any
generated code runs — never a NumPy traceback from inside it. The same binding
checks what the trace's constant indices, slices and reductions need of the sizes
(`ShapeBinder`): both backends refuse `x[5]` at n = 3 with one message, and no C
kernel ever reads out of range or allocates a negative size.
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple, Optional

import numpy as np

from . import ops as _ops
from . import shapes as _s
from . import tensor_rules as _rules
from .errors import ShapeError
from .ops import PREC_ATOM
from .trace.ir import Trace, ancestors
from .trace.printer import table_spelling
from .trace.render import const_prec, format_op


def is_tensor_trace(trace: Trace) -> bool:
    return any(ins.shape != () for ins in trace.instrs)


class Need(NamedTuple):
    """Dimension `dim` of variable `instr` has at least `least` elements: for a named
    dimension, `name` >= `total` (n-3 >= 1: n >= 4); for a number, never (`name` None)."""
    name: Optional[str]
    total: int
    instr: int
    dim: object
    least: int
    shown: object   # what the message shows: argument k indexed by the op's key (an int),
    #                 the op itself (None), or the variable whose size it is ("size")


class ShapeBinder:
    """Binds a trace's named dimensions from its arguments' shapes and checks what the
    trace needs of them. The needs ("x[5] needs n >= 6") are listed once, from each op's
    `bounds` rule (in the op table) and the derived dimensions ("n-3": n >= 3), in
    trace order, each kept only if stronger than the ones before on its name: a new
    binding costs a few compares, and the first need to fail is the first in the trace."""

    def __init__(self, trace: Trace, names):
        self.trace, self.names = trace, tuple(names)
        self.declared = [trace.instrs[v].shape for _, v in trace.inputs]
        self.needs: list[Need] = []
        strongest: dict = {}
        for i, ins in enumerate(trace.instrs):
            rule = _ops.OPS[ins.op].bounds
            found = rule([trace.instrs[a].shape for a in ins.args], dict(ins.attrs)) if rule else []
            if ins.op != "input":   # an input's own shape binds its names (n-2: n = size + 2)
                found += [(d, 0, "size") for d in ins.shape if isinstance(d, str)]
            for dim, least, shown in found:
                if isinstance(dim, int):
                    if dim < least:   # a number: the trace can never run (max of x[3:], x (3,))
                        self.needs.append(Need(None, least, i, dim, least, shown))
                    continue
                name, minus = _s.parse_dim(dim)
                if least + minus > strongest.get(name, 0):
                    strongest[name] = least + minus
                    self.needs.append(Need(name, least + minus, i, dim, least, shown))

    def bind(self, arrays) -> dict:
        """Every argument checked against its declared shape, every need against the
        sizes: the named dimensions' sizes, or a ShapeError."""
        if len(arrays) != len(self.declared):
            raise TypeError(f"expected {len(self.declared)} arrays ({', '.join(self.names)}), got {len(arrays)}")
        dims: dict = {}
        for declared, name, a in zip(self.declared, self.names, arrays):
            _s.bind(declared, a.shape, name, dims)
        for need in self.needs:
            if need.name is None or dims[need.name][0] < need.total:
                raise ShapeError(self._message(need, dims, arrays))
        return {d: size for d, (size, _) in dims.items()}

    def describe(self) -> list[str]:
        """The needs, one line each: "x[5] needs n >= 6"."""
        return [f"{self._subject(need)} needs "
                + (f"{need.name} >= {need.total}" if need.name else f"{need.least} element along a dimension "
                   f"of size {need.dim}") for need in self.needs]

    def _subject(self, need: Need) -> str:
        ins = self.trace.instrs[need.instr]
        if isinstance(need.shown, int):   # x[key], as the user wrote it
            return _rules.fmt_index(None, [_shown(self.trace, ins.args[need.shown], self.names)],
                                    dict(ins.attrs), "table")[0]
        return _shown(self.trace, need.instr, self.names)[0]

    def _message(self, need: Need, dims, arrays) -> str:
        subject, op = self._subject(need), self.trace.instrs[need.instr].op
        if need.name is None:
            return f"{subject}: a {op} over an empty dimension (of size {need.dim}) is undefined"
        size, who = dims[need.name]
        dim_size = size - (need.total - need.least)
        text = (f"{subject} needs {need.name} >= {need.total}, but {need.name} = {size} "
                f"(input {who!r} has shape {_s.show(arrays[self.names.index(who)].shape)})")
        if need.shown is None:
            text += f": a {op} over an empty dimension ({need.dim} = {dim_size}) is undefined"
        elif need.shown == "size":
            text += f": its dimension {need.dim} would be {dim_size}"
        return text


def _shown(trace: Trace, var: int, names, width: int = 60) -> tuple[str, int]:
    """Variable `var` written out as an expression of the inputs, for a message: the
    table's ASCII spelling, inputs by their call names, long subexpressions cut."""
    spell = table_spelling(ascii=True)
    inputs = {v: name for (_, v), name in zip(trace.inputs, names)}
    texts: dict[int, tuple[str, int]] = {}
    for j in sorted(ancestors(trace.instrs, var)):
        ins = trace.instrs[j]
        if ins.op == "input":
            texts[j] = (inputs[j], PREC_ATOM)
        elif ins.op == "const":
            text = spell.const(ins.value)
            texts[j] = (text, const_prec(text))
        else:
            text, prec = format_op(_ops.OPS[ins.op], [texts[a] for a in ins.args], spell, ins.attrs)
            texts[j] = (text, prec) if len(text) <= width else ("(" + text[:width - 5] + "...)", PREC_ATOM)
    return texts[var]


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


class ShapeCache:
    """What a call's input shapes decide, kept for the last few shape tuples (an
    optimizer calls with one shape tuple; mini-batch training alternates two: full
    batches and the last one). Shared by the threads that call one compiled function:
    lookups take no lock, and every change happens under one, so a lookup never sees a
    half-made entry and eviction never iterates a dict that another thread changes."""

    def __init__(self, size: int = 8):
        self._entries: dict = {}
        self._lock = threading.Lock()
        self._size = size

    def get(self, key, make, *args):
        hit = self._entries.get(key)
        if hit is None:
            hit = make(*args)  # outside the lock: it may raise, and may take a while
            with self._lock:
                while len(self._entries) >= self._size:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[key] = hit
        return hit


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
        self.binder = ShapeBinder(trace, self.names)
        self._bound = ShapeCache()   # input shapes -> (dims, output shapes)

    def bind(self, arrays) -> tuple[dict, list]:
        return self._bound.get(tuple(a.shape for a in arrays), self._new_binding, arrays)

    def _new_binding(self, arrays) -> tuple[dict, list]:
        dims = self.binder.bind(arrays)  # raises before a binding is kept
        return dims, [concrete(self.trace.instrs[v].shape, dims) for _, v in self.trace.outputs]

    def __call__(self, arrays) -> list:
        dims, shapes = self.bind(arrays)
        with np.errstate(all="ignore"):
            results = self.fn(*arrays)
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
        parts = layout(self.declared, self.wrt, data, np.size(x))
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
