"""The SymPy converter's builder for scalar expressions: instructions kept as columns.

Where it sits: inside the SymPy front end (parse/from_sympy.py), in place of the
trace `Builder` (trace/builder.py) and its finish (trace/finish.py). The converter
calls the same methods on it (b.add, b.mul, b.const, b.input, op_call, apply...);
it keeps each instruction as an op code and its argument ints, and makes the
`Trace` once at the end: dead code, inputs first in natural order, renumbering and
the trace's columns with NumPy over the whole trace. The trace holds its
instructions as those columns (trace/column_instrs.ColumnInstrs), their `Instr`
tuples made only if a reader asks for trace.instrs: share_sums, the bulk reverse
sweep, generate and load read the columns and single items. (The Builder makes a
tuple per instruction, and its finish, whose inputs a SymPy expression never
declares first, makes every one again renumbered: 0.9 µs an operation at 10^5;
made here once, they cost 0.3-0.4.) Below SMALL instructions the same trace is made
in Python, its instructions as tuples (`_small_trace`): NumPy's fixed cost, here and
in the readers that would make the tuples of the columns, is most of it there.

It builds exactly what the Builder builds, variable for variable: its op methods
are the Builder's fast path (builder_ops.fast_path, the same text compiled with
appends to the columns): the operation as written, hash-consed with the Builder's
keys, a fold of constants by Builder._fold and the identities (where
identities.FIRES_ON says they may fire), both called on this builder; `where`
(Piecewise) as the Builder's general path builds it on scalars.
Wherever the Builder would go to its general path (an op without a scalar method;
shapes, options; the input-size limit or the hash keys' radix reached) a method
raises `Declined`, having changed nothing the Builder would not have; the
converter then takes `builder()`, a Builder in the same state (same variables,
tables and keys), and retries the declined node on it and goes on with it: a
decline costs a tuple per instruction built so far, not a second conversion.
"""

from __future__ import annotations

from array import array
from itertools import compress, repeat
from types import MappingProxyType
from typing import Optional

import numpy as np

from .. import ops as _ops
from ..trace.builder import Builder
from ..trace.builder_load import AS_WRITTEN
from ..trace.builder_ops import _FAST_METHODS, KEY_RADIX, fast_path, op_key
from ..trace.column_instrs import ColumnInstrs
from ..trace.columns import CODE, INPUT, OP_NAMES, frozen
from ..trace.identities import CONST, FIRES_ON, IDENTITIES, Fires
from ..trace.ir_trace import Instr, Trace, _new_tuple, natural_key
from ..trace.labels import numbered


class Declined(Exception):
    """Only the Builder builds this (shapes, options, the limits...): raised before
    the ColumnBuilder has built anything the Builder would not have."""


# The Builder's fast path (builder_ops.fast_path), appending to the columns: the same
# fold, identities (called on this builder), hash-consing keys and limits; where the
# Builder's general path would go on, a decline (ColumnBuilder._apply). An identity
# is asked only where identities.FIRES_ON says it may fire (as for a front end, which
# does not pull negations: the rule returns None elsewhere), a test on the values
# and flags at hand rather than a call (a third of the operations, x**2, 3*x, have a
# constant argument); no variable is a copy; the arguments are variables it made.
_scalar_method = fast_path(
    "ColumnBuilder", {"CODE": CODE, "FIRES_ON": FIRES_ON, "_NEVER": Fires((), (), (), False)},
    SETUP="opcode = CODE[opname]; rule = FIRES_ON.get(opname, _NEVER); "
          "at_0, at_1 = (rule.constants if k in rule.const_at else () for k in (0, 1)); "
          "neg_0, neg_1 = (NEG if k in rule.negated_at else 0 for k in (0, 1))",
    APPEND2="b.codes.append(opcode); b.first.append(x); b.second.append(y)",
    APPEND1="b.codes.append(opcode); b.first.append(x); b.second.append(-1)",
    FIRES2="(cx is not None and cx in at_0 or cy is not None and cy in at_1 "
           "or flags[x] & neg_0 or flags[y] & neg_1)",
    FIRES1="flags[x] & neg_0",
    SOURCES2="sx, sy = x, y",
    SOURCE1="x",
    GUARD2="n >= b._keyroom",   # (arguments: the converter's own variables)
    GUARD1="type(x) is not int or n >= b._keyroom")


def _general_method(opname: str, op):
    """The method of an op of three arguments or more, elementwise without options
    (`where`: Piecewise), as the Builder's general path (Builder._apply) builds it on
    scalars: numbers made constants in order, a fold where all are constants, else
    hash-consed on a tuple key (builder_ops.op_key). Its arguments past the second
    are kept in `b.more`, {variable: (third, ...)}: such ops are few."""
    opcode, arity = CODE[opname], op.arity

    def call(b, *args):
        if len(args) != arity or _ops.OPS.get(opname) is not op:   # (the table changed under the method)
            raise Declined
        if not all(type(a) is int for a in args):
            args = tuple(a if type(a) is int else b.operand(a) for a in args)
        consts = list(map(b._consts.get, args))
        if None not in consts:
            with np.errstate(all="ignore"):
                value = op.evaluate(*[np.float64(c) for c in consts])
            return b.const(float(value))
        flags = b._flags
        n = len(flags)
        if n >= b._keyroom:
            raise Declined
        var = b._memo.setdefault(op_key(opname, args), n)
        if var == n:
            b.codes.append(opcode)
            b.first.append(args[0])
            b.second.append(args[1])
            b.more[n] = args[2:]
            flags.append(0)
        return var
    call.__name__ = call.__qualname__ = opname
    call.arity = arity
    return call


def _declining(opname: str):
    def call(b, *args, **attrs):
        raise Declined
    call.__name__ = call.__qualname__ = opname
    return call


_METHODS: dict = {}


def _method(opname: str):
    """opname's ColumnBuilder method (made on first use, as the Builder's fast methods)."""
    method = _METHODS.get(opname)
    if method is None:
        op = _ops.OPS[opname]
        if opname not in CODE:   # (an op registered later has no code)
            method = _declining(opname)
        elif _FAST_METHODS[opname] is not None and (opname in FIRES_ON or opname not in IDENTITIES):
            method = _scalar_method(opname, op, op.arity)
            method.__name__ = method.__qualname__ = opname
            method.arity = op.arity
        elif op.arity > 2 and op.shape is None and op.prepare is None and not op.keywords \
                and opname not in IDENTITIES and opname != "copy":
            method = _general_method(opname, op)
        else:
            method = _declining(opname)
        _METHODS[opname] = method
    return method


class _Instrs:
    """b.instrs[v] of a ColumnBuilder, made from its columns: what the identities read
    of an argument (its op, arguments and shape)."""

    __slots__ = ("b",)

    def __init__(self, b):
        self.b = b

    def __getitem__(self, v: int) -> Instr:
        b = self.b
        attrs = b.leaves.get(v)
        if attrs is not None:
            return Instr(OP_NAMES[b.codes[v]], (), attrs, ())
        p, q = b.first[v], b.second[v]
        return Instr(OP_NAMES[b.codes[v]], (p, q) + b.more.get(v, ()) if q >= 0 else (p,), (), ())


class ColumnBuilder:
    """What from_sympy's converter reads of a Builder, for scalars; `trace` is its finish."""

    __slots__ = ("max_ops", "_keyroom", "_memo", "_flags", "codes", "first", "second", "more", "_consts",
                 "scalar_consts", "const_keys", "_folds", "leaves", "_inputs")

    def __init__(self, *, max_ops: int):
        self.max_ops = max_ops
        self._keyroom = min(max_ops, KEY_RADIX)   # (past either: the Builder's general path, declined)
        self._memo: dict = {}                 # hash-consing: keys as the Builder's fast methods make them
        self._flags = bytearray()             # identities.CONST / NEG per variable
        self.codes = bytearray()              # columns.CODE of each instruction's op
        self.first = array("i")               # its first argument, -1 for none
        self.second = array("i")              # its second argument, -1 for none
        self.more: dict = {}                  # variable -> its arguments past the second (`where`'s third)
        self._consts: dict[int, float] = {}   # variable -> its constant's value
        self.scalar_consts: dict = {}         # nonzero value -> its variable (Builder._scalar_consts)
        self.const_keys: dict = {}            # repr(value) -> its variable (the Builder's const keys)
        self._folds: dict = {}                # Builder._fold's cache, which it keeps here
        self.leaves: dict = {}                # variable -> its attrs (an input's name, a constant's value)
        self._inputs: dict[str, int] = {}     # (the Builder's name: from_sympy reads it)

    # -- leaves -------------------------------------------------------------------
    def _leaf(self, opcode: int, attrs: tuple, flag: int) -> int:
        var = len(self._flags)
        if var >= self._keyroom:
            raise Declined
        self.codes.append(opcode)
        self.first.append(-1)
        self.second.append(-1)
        self._flags.append(flag)
        self.leaves[var] = attrs
        return var

    def input(self, name: str, shape: tuple = ()) -> int:
        if shape:
            raise Declined
        var = self._inputs.get(name)
        if var is None:
            var = self._inputs[name] = self._leaf(INPUT, (("name", name),), 0)
        return var

    def const(self, value: float, shape: tuple = ()) -> int:
        if shape:
            raise Declined
        if type(value) is float and value:
            var = self.scalar_consts.get(value)
            if var is not None:
                return var
        value = float(value)
        key = repr(value)   # (as the Builder's key: 0.0 and -0.0 apart, every NaN one)
        var = self.const_keys.get(key)
        if var is None:
            var = self.const_keys[key] = self._leaf(CODE["const"], (("value", value),), CONST)
            self._consts[var] = value
        if value:
            self.scalar_consts[value] = var
        return var

    def operand(self, x) -> int:
        """A float argument as its constant (as the Builder's fast path); anything else declined."""
        if type(x) is float:
            return self.const(x)
        raise Declined

    # -- what the fast path and the identities read (builder_ops.fast_path, identities.py) --
    pull_negations = False   # (a front end's: the user's grouping as written)
    _copies = MappingProxyType({})   # (none: the converter names nothing)
    _fold = Builder._fold   # (its `_folds` cache and `const`, this builder's)

    def _apply(self, opname: str, args: tuple, attrs: dict) -> int:
        """Where the Builder's fast path goes to its general path: a float argument
        made a constant, as the Builder's would, and the method again; else declined."""
        if attrs or all(type(a) is int for a in args):
            raise Declined
        return _method(opname)(self, *[a if type(a) is int else self.operand(a) for a in args])

    @property
    def instrs(self) -> "_Instrs":
        return _Instrs(self)

    def source_of(self, var: int) -> int:
        return var

    # -- what the converter reads -----------------------------------------------------
    def const_value(self, var: int) -> Optional[float]:
        return self._consts.get(var)

    def shape(self, var: int) -> tuple:
        return ()

    def apply(self, opname: str, *args, **attrs) -> int:
        method = _method(opname)
        if attrs or len(args) != getattr(method, "arity", -1):
            raise Declined
        return method(self, *args)

    @staticmethod
    def op_call(opname: str):
        return _method(opname)

    def release(self) -> None:
        self._memo = {}

    # -- on a decline ---------------------------------------------------------------
    def builder(self) -> Builder:
        """A Builder in this one's state: the same instructions as tuples, under the
        same numbers, and the same tables (hash-consing keys, constants, flags, folds),
        so it goes on as the Builder that built them would. Takes the tables over:
        this builder is spent."""
        n = len(self._flags)
        args = [(p, q) if q >= 0 else (p,) if p >= 0 else () for p, q in zip(self.first, self.second)]
        for v, rest in self.more.items():
            args[v] += rest
        instrs = list(map(_new_tuple, repeat(Instr), zip(map(OP_NAMES.__getitem__, self.codes), args,
                                                          repeat(()), repeat(()))))
        del args
        for v, attrs in self.leaves.items():
            instrs[v] = _new_tuple(Instr, (instrs[v][0], (), attrs, ()))
        memo = self._memo
        memo.update({("const", key, ()): v for key, v in self.const_keys.items()})   # (builder._const_key)
        b = Builder(max_ops=self.max_ops)
        b.instrs, b.labels, b._flags, b._memo = instrs, [None] * n, self._flags, memo
        b._inputs, b._consts, b._scalar_consts, b._folds = self._inputs, self._consts, self.scalar_consts, self._folds
        self._memo = self._flags = self._consts = None   # (spent: not appended to again)
        return b

    # -- finishing ----------------------------------------------------------------
    def trace(self, outputs: list, source: Optional[str] = None) -> Trace:
        """What trace_from_builder makes of a Builder that built these instructions
        (Builder.finish): no dead code, the inputs first in natural order, the rest
        in the order built, Griewank labels, the trace's columns (columns.py)."""
        n = len(self._flags)
        if n < SMALL:
            return self._small_trace(outputs, source)
        first, second = np.frombuffer(self.first, np.int32), np.frombuffer(self.second, np.int32)
        more = self.more
        extra = []   # (the arguments past the second, a column each: only where there are some)
        for j in range(max(map(len, more.values()), default=0)):
            column = np.full(n, -1, np.int32)
            at = [v for v, rest in more.items() if len(rest) > j]
            column[at] = [more[v][j] for v in at]
            extra.append(column)
        live = _live([first, second, *extra], [v for _, v in outputs])
        names = sorted(self._inputs, key=natural_key)
        inputs = np.array([self._inputs[nm] for nm in names], np.intp)
        live[inputs] = False   # (inputs go first, live or not)
        order = np.concatenate((inputs, np.flatnonzero(live)))
        new_index = np.full(n + 1, -1, np.int64)   # (new_index[-1]: no argument)
        new_index[order] = np.arange(len(order))
        old_first, old_second = first[order], second[order]
        renumbered = [new_index[old_first], new_index[old_second], *(new_index[c[order]] for c in extra)]
        code = np.frombuffer(self.codes, np.uint8)[order]
        counts = sum((c >= 0).view(np.uint8) for c in renumbered)
        flat = np.stack(renumbered, axis=1).ravel()
        flat = flat[flat >= 0].astype(np.int32 if len(order) < 1 << 31 else np.int64)
        del renumbered, extra
        cols = frozen(code, counts, flat)
        # The instructions held as these columns (column_instrs.ColumnInstrs), their
        # tuples made only if a reader asks for trace.instrs; the leaves, whose names
        # and values the columns cannot say, as tuples.
        leaves = self.leaves
        at = np.flatnonzero(counts == 0)
        fixed = {k: _new_tuple(Instr, (OP_NAMES[c], (), leaves[v], ()))
                 for k, c, v in zip(at.tolist(), code[at].tolist(), order[at].tolist())}
        index = new_index.tolist()
        return _as_written(Trace(ColumnInstrs((), cols, fixed), numbered(code, names),
                                 [(nm, index[v]) for nm, v in outputs], source,
                                 _inputs=tuple((nm, k) for k, nm in enumerate(names)), _all_live=True, _columns=cols))

    def _small_trace(self, outputs: list, source: Optional[str]) -> Trace:
        """`trace` of fewer than SMALL instructions, read in Python: the same trace
        (instructions, labels, outputs, inputs, the same columns' arrays), its
        instructions as tuples, which the front end's next readers (share_sums, a
        pass's load) would otherwise make from the columns (ColumnInstrs.made, whose
        NumPy is a fixed cost too). Live is what the outputs reach: a sweep from the
        last instruction back (an argument is built before its user), where `_live`
        counts uses with NumPy."""
        n = len(self._flags)
        first, second, more = self.first, self.second, self.more
        live = bytearray(n)
        for _, v in outputs:
            live[v] = 1
        for v in range(n - 1, -1, -1):
            if live[v]:
                a = first[v]
                if a >= 0:
                    live[a] = 1
                a = second[v]
                if a >= 0:
                    live[a] = 1
                if v in more:
                    for a in more[v]:
                        live[a] = 1
        names = sorted(self._inputs, key=natural_key)
        inputs = [self._inputs[nm] for nm in names]
        for v in inputs:   # (inputs go first, live or not)
            live[v] = 0
        order = inputs + list(compress(range(n), live))
        new_index = [-1] * n
        for k, v in enumerate(order):
            new_index[v] = k
        codes, leaves = self.codes, self.leaves
        code = bytes(map(codes.__getitem__, order))
        counts = bytearray(len(order))
        flat = array("i" if len(order) < 1 << 31 else "q")
        instrs = []
        for k, v in enumerate(order):
            a, b = first[v], second[v]
            if v in more:   # (`where`'s third)
                args = tuple(new_index[x] for x in (a, b, *more[v]) if x >= 0)
            elif b >= 0:
                args = (new_index[a], new_index[b]) if a >= 0 else (new_index[b],)
            elif a >= 0:
                args = (new_index[a],)
            else:
                args = ()
            if not args:   # a leaf: its name or value
                instrs.append(_new_tuple(Instr, (OP_NAMES[code[k]], (), leaves[v], ())))
                continue
            counts[k] = len(args)
            flat.extend(args)
            instrs.append(_new_tuple(Instr, (OP_NAMES[code[k]], args, (), ())))
        cols = frozen(np.frombuffer(code, np.uint8).copy(), np.frombuffer(counts, np.uint8).copy(),
                      np.frombuffer(flat, np.int32 if flat.typecode == "i" else np.int64).copy())
        return _as_written(Trace(tuple(instrs), numbered(cols.code, names, list(range(len(inputs)))),
                                 [(nm, new_index[v]) for nm, v in outputs], source,
                                 _inputs=tuple((nm, k) for k, nm in enumerate(names)), _all_live=True, _columns=cols))


def _as_written(trace: Trace) -> Trace:
    """`trace`, marked for the first pass that loads it as built through the op methods
    of a builder that pulls no negations (builder_load.AS_WRITTEN): this one's."""
    object.__setattr__(trace, "_built", [AS_WRITTEN])
    return trace


# Below this many instructions, `trace` is read in Python (_small_trace): its NumPy
# (~30 calls) is a fixed cost, and its trace's tuples, made there at once, are what the
# next readers would make of the columns (ColumnInstrs.made, NumPy again). to_trace of
# the scaling benchmark's DAG as SymPy, Python / NumPy, CPU medians of 120 expressions
# alternating, two runs, load 8-10 (to_trace and grad_reverse in parentheses): 44
# instructions built 0.89-0.90 (0.93-0.94), 129: 0.91-0.92 (0.90-0.94), 251: 0.92
# (0.95-0.97), 371: 0.95-0.96 (0.97-0.98), 494: 1.08-1.10 (0.98-0.99).
SMALL = 384


def _live(columns: list, outputs: list) -> np.ndarray:
    """True for each variable that an output is computed from (what finish._live
    says, on the argument `columns`, -1 for none): use counts; the unused taken out
    with the uses they held, the first round over all of them at once, the rest (the
    few they leave unused) one by one."""
    n = len(columns[0])
    uses = sum(np.bincount(c[c >= 0], minlength=n) for c in columns)
    np.add.at(uses, outputs, 1)   # (an output is used, however often it is named)
    live = uses > 0
    unused = np.flatnonzero(~live)
    if not len(unused):
        return live
    held = np.concatenate([c[unused] for c in columns])
    uses -= np.bincount(held[held >= 0], minlength=n)
    stack = np.flatnonzero((uses == 0) & live).tolist()
    if stack:
        uses = uses.tolist()
        while stack:
            v = stack.pop()
            live[v] = False
            for c in columns:
                a = int(c[v])
                if a >= 0:
                    uses[a] -= 1
                    if not uses[a]:
                        stack.append(a)
    return live


def _install() -> None:
    """b.add(x, y), b.sin(x)...: a method per op of the table (declining where the
    Builder has no fast method), as the Builder's; its own attributes win."""
    for opname, op in _ops.OPS.items():
        if not op.is_leaf and not opname.startswith("_") and not hasattr(ColumnBuilder, opname):
            setattr(ColumnBuilder, opname, _method(opname))


_install()

__all__ = ["ColumnBuilder", "Declined"]
