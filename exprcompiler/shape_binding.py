"""Binding a tensor trace's named dimensions to the shapes of its arguments, and
checking them: the checks that stand between a call and any generated code.

Where it sits: under signature.py (which keeps one ShapeBinder and one ShapeCache per
compiled function) and the C tensor wrapper. Named dimensions ("n") are bound by the
first argument that has them and checked for every other, so a mismatch is a
`ShapeError` naming the input, the dimension and both sizes, raised before any
generated code runs — never a NumPy traceback from inside it. The same binding
checks what the trace's constant indices, slices and reductions need of the sizes
(`ShapeBinder`): both backends refuse `x[5]` at n = 3 with one message, and no C
kernel ever reads out of range or allocates a negative size.
"""

from __future__ import annotations

import threading
from typing import NamedTuple, Optional

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
        self.peek = self._entries.get  # what a key holds, or None: no lock, no new entry

    def get(self, key, make, *args):
        hit = self._entries.get(key)
        if hit is None:
            hit = make(*args)  # outside the lock: it may raise, and may take a while
            with self._lock:
                while len(self._entries) >= self._size:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[key] = hit
        return hit
