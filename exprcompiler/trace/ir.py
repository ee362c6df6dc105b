"""The evaluation trace: an immutable SSA list of elementary operations, and its builder.

Every front end (string parser, SymPy bridge) and every pass (simplify, forward,
reverse) produces a `Trace` through a `Builder`, which

* hash-conses: an ``(op, args, attrs)`` already built is returned, not rebuilt;
* folds constants and applies a few IEEE-exact identities (``x*1``, ``x + -0.0``,
  ``x - 0.0``, ``x**1``, ``--x``, ``a + -b -> a - b``) — never ``x*0``, which is NaN
  for inf, nor ``x + 0.0``, which is +0.0 for x = -0.0;
* computes each variable's shape from the op's rule (scalars are ``()``).

Variables are plain ints (positions in the instruction list). A `Label` says how
the printer and the code generators should name a variable: the primal ``v_3``,
its tangent ``v̇_3`` or its adjoint ``v̄_3``. Unlabelled variables are temporaries
that printers inline into their single use (or name ``t…`` when shared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from .. import ops as _ops
from .. import shapes as _shapes
from ..errors import ShapeError, TraceError

Var = int


@dataclass(frozen=True)
class Instr:
    op: str
    args: tuple[int, ...] = ()
    attrs: tuple = ()          # (("key", value), ...) — hashable, ordered
    shape: tuple = ()

    def attr(self, key, default=None):
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def value(self) -> float:
        return self.attr("value")

    @property
    def name(self) -> str:
        return self.attr("name")


@dataclass(frozen=True)
class Label:
    """How a variable is named: kind "v" (primal), "dot" (tangent) or "bar" (adjoint)
    of the primal variable numbered `index`; `base` is the user's name for inputs and
    seeds (x1, y); `tag` tells apart several sweeps in one trace (direction x1...)."""
    kind: str
    index: int
    base: Optional[str] = None
    tag: Optional[str] = None


class Trace:
    """An immutable evaluation trace. `str(trace)` prints the Griewank table."""

    __slots__ = ("instrs", "labels", "outputs", "source", "_inputs")

    def __init__(self, instrs: Sequence[Instr], labels: Sequence[Optional[Label]],
                 outputs: Sequence[tuple[str, int]], source: Optional[str] = None):
        object.__setattr__(self, "instrs", tuple(instrs))
        object.__setattr__(self, "labels", tuple(labels))
        object.__setattr__(self, "outputs", tuple((str(n), int(v)) for n, v in outputs))
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "_inputs", tuple((ins.name, i) for i, ins in enumerate(self.instrs)
                                                  if ins.op == "input"))

    def __setattr__(self, key, value):
        raise AttributeError("Trace is immutable")

    def __reduce__(self):
        # rebuilt through __init__ (the default for __slots__ would set attributes)
        return Trace, (self.instrs, self.labels, self.outputs, self.source)

    def __len__(self) -> int:
        return len(self.instrs)

    @property
    def inputs(self) -> tuple[tuple[str, int], ...]:
        return self._inputs

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.outputs)

    @property
    def size(self) -> int:
        """Number of operations: everything but inputs, constants and named copies."""
        return sum(1 for ins in self.instrs if ins.op not in ("input", "const", "copy"))

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ins in self.instrs:
            counts[ins.op] = counts.get(ins.op, 0) + 1
        return counts

    def __str__(self) -> str:
        from .printer import format_trace
        return format_trace(self)

    def __repr__(self) -> str:
        return (f"<Trace: {len(self.inputs)} inputs, {self.size} ops, "
                f"outputs {', '.join(self.output_names)}>")


def result_shape(opname: str, shapes: Sequence[tuple], attrs: dict) -> tuple:
    """The shape an op gives its arguments' shapes: its rule, or broadcasting."""
    op = _ops.OPS[opname]
    if op.shape is None:
        return () if not any(shapes) else _shapes.broadcast(*shapes, op=opname)
    return tuple(op.shape(list(shapes), attrs))


def _signed_zero(value: Optional[float], sign: float) -> bool:
    """Whether a constant is the zero of this sign (1.0: +0.0, -1.0: -0.0)."""
    return value == 0.0 and math.copysign(1.0, value) == sign


def _const_key(value: float) -> str:
    return repr(float(value))  # tells 0.0 from -0.0; NaN keys compare equal as strings


class Builder:
    """Appends instructions with hash-consing and local simplification.

    Ops are methods: ``b.sin(x)``, ``b.add(x, 2.0)`` (floats become constants).
    """

    def __init__(self, *, pull_negations: bool = False):
        # Derivative passes set pull_negations: (-a)·b -> -(a·b) lets rules' signs
        # cancel (no "-(-x)"); front ends keep the user's grouping as written.
        self.pull_negations = pull_negations
        self.instrs: list[Instr] = []
        self.labels: list[Optional[Label]] = []
        self._memo: dict = {}
        self._inputs: dict[str, int] = {}
        self._source: list[int] = []   # what each variable names, through copies

    # -- leaves -------------------------------------------------------------------
    def input(self, name: str, shape: tuple = ()) -> Var:
        if name in self._inputs:
            var = self._inputs[name]
            if self.instrs[var].shape != tuple(shape):
                raise ShapeError(f"input {name!r} declared with shapes "
                                 f"{self.instrs[var].shape} and {tuple(shape)}")
            return var
        var = self._append(Instr("input", (), (("name", name),), tuple(shape)))
        self._inputs[name] = var
        return var

    def const(self, value: float, shape: tuple = ()) -> Var:
        value = float(value)
        key = ("const", _const_key(value), tuple(shape))
        var = self._memo.get(key)
        if var is None:
            var = self._append(Instr("const", (), (("value", value),), tuple(shape)))
            self._memo[key] = var
        return var

    # -- naming -------------------------------------------------------------------
    def mark(self) -> int:
        """Position before a rule runs; `name(var, label, since=mark)` relabels only
        variables the rule created itself."""
        return len(self.instrs)

    def name(self, var: Var, label: Optional[Label], since: Optional[int] = None) -> Var:
        """Give `var` the name `label`: in place when it is a fresh unnamed temporary,
        otherwise through a `copy` instruction (free in every backend)."""
        if label is None:
            return var
        ins = self.instrs[var]
        fresh = since is not None and var >= since
        if fresh and self.labels[var] is None and ins.op not in ("input", "const", "copy"):
            self.labels[var] = label
            return var
        return self._append(Instr("copy", (var,), (), ins.shape), label)

    # -- operations ---------------------------------------------------------------
    def __getattr__(self, opname: str):
        if opname.startswith("_") or opname not in _ops.OPS:
            raise AttributeError(opname)
        return lambda *args, **attrs: self.apply(opname, *args, **attrs)

    def source_of(self, var: Var) -> Var:
        """Follow named copies back to the value they name."""
        return self._source[var]

    def const_value(self, var: Var) -> Optional[float]:
        ins = self.instrs[self.source_of(var)]
        return ins.value if ins.op == "const" else None

    def apply(self, opname: str, *args, **attrs) -> Var:
        op = _ops.OPS.get(opname)
        if op is None or op.is_leaf:
            raise TraceError(f"unknown operation {opname!r}")
        if not op.takes(len(args)):
            raise TraceError(f"{opname} takes {op.arity} arguments ({len(args)} given)")
        args = tuple(a if isinstance(a, int) and not isinstance(a, bool) else self.const(a)
                     for a in args)
        for a in args:
            if not 0 <= a < len(self.instrs):
                raise TraceError(f"{opname}: argument v{a} is not defined")
        shapes = [self.instrs[a].shape for a in args]
        attrs = {k: v for k, v in attrs.items() if v is not None}  # None: the default
        if op.prepare is not None:
            attrs = op.prepare(shapes, attrs)
        shape = result_shape(opname, shapes, attrs)
        if op.elementwise and opname != "copy":
            args = self._unbroadcast(opname, args, shape)
            src = self.instrs[self.source_of(args[0])]
            if len(args) == 1 and src.op == "broadcast_to" and not src.attrs:
                # f(broadcast(a)) = broadcast(f(a)): -v̄ of a mean's adjoint stays a scalar
                return self.broadcast_to(self.apply(opname, src.args[0], **attrs), src.args[1])
        attr_t = tuple(sorted(attrs.items()))
        if opname == "copy":
            return self._append(Instr("copy", args, attr_t, shape))
        simplified = self._simplify(opname, args, shape, attr_t)
        if simplified is not None:
            return simplified
        key = (opname, tuple(self.source_of(a) for a in args), attr_t)
        var = self._memo.get(key)
        if var is None:
            var = self._append(Instr(opname, args, attr_t, shape))
            self._memo[key] = var
        return var

    def _unbroadcast(self, opname, args, shape) -> tuple:
        """An elementwise op broadcasts by itself: an argument that is only a value
        broadcast to a shape (an adjoint of sum(x), say) is used as the value, so no
        full-size array of copies is made when the result has that shape anyway."""
        out = list(args)
        for k, a in enumerate(args):
            src = self.instrs[self.source_of(a)]
            if src.op == "broadcast_to" and not src.attrs:
                trial = out[:k] + [src.args[0]] + out[k + 1:]
                if result_shape(opname, [self.instrs[t].shape for t in trial], {}) == shape:
                    out = trial
        return tuple(out)

    def shape(self, var: Var) -> tuple:
        return self.instrs[var].shape

    def _simplify(self, opname, args, shape, attrs) -> Optional[Var]:
        consts = [self.const_value(a) for a in args]
        # fold scalar constants only: a constant may stand for a whole array (simplify's
        # substituted inputs), whose sum or size_ratio is not the scalar's
        if all(c is not None for c in consts) and shape == () and all(self.shape(a) == () for a in args):
            with np.errstate(all="ignore"):
                value = _ops.OPS[opname].evaluate(*[np.float64(c) for c in consts], **dict(attrs))
            return self.const(float(value))
        if opname in ("broadcast_to", "sum_to", "reshape") and self.shape(args[0]) == shape \
                and not dict(attrs).get("axis"):
            return args[0]   # nothing to broadcast, sum or reshape
        if opname == "transpose" and len(shape) < 2:
            return args[0]   # x.T of a scalar or a vector is x, as in NumPy
        src = [self.instrs[self.source_of(a)] for a in args]

        def keep(i):  # an identity may drop the other operand only if shapes agree
            return args[i] if self.instrs[args[i]].shape == shape else None

        def is_neg(i):
            return src[i].op == "neg"

        def unnamed_neg(i):  # -(a)·b -> -(a·b) is exact; named lines (v̄_3 = −v̄_4) stay
            return self.pull_negations and is_neg(i) and self.labels[self.source_of(args[i])] is None \
                and src[i].shape == self.instrs[args[i]].shape

        # Zeros drop out only where IEEE agrees for both signs of x: x + (-0.0) and
        # x - 0.0 are x, and -0.0 - x is -x; but x + 0.0 is +0.0 at x = -0.0, and
        # 0.0 - x is +0.0 at x = 0.0, where -x is -0.0 (1/(x + 0) must stay +inf).
        if opname == "add":
            if _signed_zero(consts[1], -1.0):
                return keep(0)
            if _signed_zero(consts[0], -1.0):
                return keep(1)
            if is_neg(1):
                return self.apply("sub", args[0], src[1].args[0])
            if is_neg(0):
                return self.apply("sub", args[1], src[0].args[0])
        elif opname == "sub":
            if _signed_zero(consts[1], 1.0):
                return keep(0)
            if _signed_zero(consts[0], -1.0) and shape == self.instrs[args[1]].shape:
                return self.apply("neg", args[1])
            if is_neg(1):
                return self.apply("add", args[0], src[1].args[0])
        elif opname == "mul":
            for i, j in ((0, 1), (1, 0)):
                if consts[i] == 1.0:
                    return keep(j)
                if consts[i] == -1.0 and shape == self.instrs[args[j]].shape:
                    return self.apply("neg", args[j])
        elif opname == "div":
            if consts[1] == 1.0:
                return keep(0)
        elif opname == "pow":
            if consts[1] == 1.0:
                return keep(0)
        elif opname == "neg":
            if is_neg(0) and src[0].shape == shape:
                return src[0].args[0]
        if opname in ("mul", "div"):
            for i in (0, 1):
                if unnamed_neg(i):
                    inner = [src[i].args[0] if k == i else args[k] for k in (0, 1)]
                    return self.apply("neg", self.apply(opname, *inner))
        return None

    def _append(self, ins: Instr, label: Optional[Label] = None) -> Var:
        var = len(self.instrs)
        self.instrs.append(ins)
        self.labels.append(label)
        self._source.append(self._source[ins.args[0]] if ins.op == "copy" else var)
        return var

    # -- finishing ----------------------------------------------------------------
    def finish(self, outputs: Iterable[tuple[str, Var]], *, input_order: Optional[Sequence[str]] = None,
               number: bool = False, source: Optional[str] = None) -> Trace:
        """Dead-code eliminate, put inputs first (in `input_order`, default the order
        they were declared), renumber, and optionally give primal Griewank labels."""
        outputs = list(outputs)
        n = len(self.instrs)
        live = bytearray(n)
        for _, v in outputs:
            live[v] = 1
        for i in range(n - 1, -1, -1):
            if live[i]:
                for a in self.instrs[i].args:
                    live[a] = 1
        names = list(self._inputs)
        if input_order is not None:
            input_order = list(input_order)
            ordered = set(input_order)
            missing = [nm for nm in names if nm not in ordered]
            if missing:
                raise TraceError(f"input order misses {missing}")
            names = [nm for nm in input_order if nm in self._inputs]
        order = [self._inputs[nm] for nm in names]
        order += [i for i in range(n) if live[i] and self.instrs[i].op != "input"]
        new_index = {old: new for new, old in enumerate(order)}
        instrs, labels = [], []
        for old in order:
            ins = self.instrs[old]
            if ins.args:
                ins = Instr(ins.op, tuple(new_index[a] for a in ins.args), ins.attrs, ins.shape)
            instrs.append(ins)
            labels.append(self.labels[old])
        if number:
            labels = primal_labels(instrs)
        return Trace(instrs, labels, [(nm, new_index[v]) for nm, v in outputs], source)


def ancestors(instrs: Sequence[Instr], var: Var) -> set:
    """`var` and every variable it is computed from, in a trace's or a builder's
    instruction list (no recursion)."""
    seen, stack = {var}, [var]
    while stack:
        for a in instrs[stack.pop()].args:
            if a not in seen:
                seen.add(a)
                stack.append(a)
    return seen


def primal_labels(instrs: Sequence[Instr]) -> list[Optional[Label]]:
    """Griewank numbering: inputs v_{1-n}..v_0, then v_1, v_2, ... for operations."""
    n_in = sum(1 for ins in instrs if ins.op == "input")
    labels: list[Optional[Label]] = []
    k_in, k = 1 - n_in, 0
    for ins in instrs:
        if ins.op == "input":
            labels.append(Label("v", k_in, base=ins.name))
            k_in += 1
        elif ins.op == "const":
            labels.append(None)
        else:
            k += 1
            labels.append(Label("v", k))
    return labels


def natural_key(name: str):
    """x2 before x10: split digit runs and compare them as numbers."""
    import re
    # A run is compared by its length and digits (without leading zeros), not through
    # int(): a name may hold 5000 digits (Python's int() refuses more than 4300) or
    # digits int() does not read ('²' is a digit to str.isdigit, not a decimal).
    key = []
    for t in re.split(r"([0-9]+)", name):
        if t:
            digits = t.lstrip("0") if t.isdigit() else None
            key.append((0, len(digits), digits, t) if digits is not None else (1, 0, t))
    return key


# Output names, in order of preference; the first that no input takes wins.
OUTPUT_NAMES = ("y", "f", "out")


def output_names(count: int, taken) -> list[str]:
    """Names for `count` outputs that no input has: y (else f, out, out1, ...) for
    one; y1, y2, ... (else f1, f2, ...) for several."""
    def fits(names):
        return not any(n in taken for n in names)
    for base in OUTPUT_NAMES:
        names = [base] if count == 1 else [f"{base}{k + 1}" for k in range(count)]
        if fits(names):
            return names
    k = 1
    while True:
        names = [f"out{k}"] if count == 1 else [f"out{k}_{j + 1}" for j in range(count)]
        if fits(names):
            return names
        k += 1


def trace_from_builder(b: Builder, outputs, *, source=None, input_order=None) -> Trace:
    """Front-end finish: inputs in natural order (unless given), primal numbering."""
    if input_order is None:
        input_order = sorted(b._inputs, key=natural_key)
    return b.finish(outputs, input_order=input_order, number=True, source=source)

