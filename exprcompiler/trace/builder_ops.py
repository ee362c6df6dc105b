"""The Builder's op methods: ``b.sin(x)``, ``b.mul(x, y)``, and the scalar fast path.

Where it sits: builder.py installs one method per op of the table (ops.OPS) on
`Builder`, and `Builder.apply` / `Builder.op_call` look methods up here. Every
front end and pass calls these millions of times for a large expression; an op
without a fast method goes to the builder's general path (`Builder._apply`). The
fast methods: `_scalar_method` (an op of one or two arguments, the `_FAST_METHODS`
table) and `_ternary_method` (of three: where, `_FAST_METHODS.wide`).
"""

from __future__ import annotations

import linecache
import math
import operator
import threading
from types import MappingProxyType

import numpy as np

from .. import ops as _ops
from .identities import CONST, COPY, IDENTITIES, NEG, SHAPED
from .ir_trace import Instr, _new_tuple

_OPS = _ops.OPS

# Hash-consing keys of these ops take their arguments in a fixed order, so b*a after
# a*b is the same variable (the instruction keeps the order first written). Exact:
# IEEE addition and multiplication are commutative bit for bit, signed zeros included
# (maximum and minimum are not: maximum(0.0, -0.0) is 0.0, maximum(-0.0, 0.0) -0.0).
# On the 20-link pendulum's forward-mode Jacobian: 6,536 -> 6,346 operations.
_COMMUTATIVE = frozenset(("add", "mul"))

# Hash-consing keys of operations without options on one or two variables (nearly
# all): one int, code + a·R + b for op(a, b) and code + a for op(a), arguments
# through copies (add's and mul's in order, a <= b), where code is a multiple of R²
# that tells (op name, number of arguments) apart (one per pair, in the order first
# met). Unique while a, b < R, the key's radix: an operation on a variable numbered
# R or more has a tuple key, (op name, *arguments), which no int equals (the fast
# path leaves builders that large to the general path: Builder._keyroom). An int of
# two digits (below 2**60 for the first 62 codes) is half a tuple's 64 bytes, is
# not tracked by the cycle collector, and hashes as itself, where a tuple hashes
# its three items on every call; R = 2**27 + 1 (not a power of two) puts a + b in
# a key's low bits, which the dict's first probes read, so the operations on one
# constant or input (a, the smaller, repeated) spread over the table.
KEY_RADIX = (1 << 27) + 1
_KEY_CODES: dict = {}


def key_code(opname: str, n_args: int) -> int:
    """The part of `opname`'s keys on `n_args` (1 or 2) variables that names the op."""
    code = _KEY_CODES.get((opname, n_args))
    if code is None:
        # Under a lock: two threads meeting two new ops at once must not both take
        # the next code (their operations would share keys: one would be the other)
        with _KEY_LOCK:
            code = _KEY_CODES.get((opname, n_args))
            if code is None:
                code = _KEY_CODES[opname, n_args] = (len(_KEY_CODES) + 1) * KEY_RADIX * KEY_RADIX
    return code


_KEY_LOCK = threading.Lock()


def op_key(opname: str, sources) -> object:
    """The hash-consing key of `opname` without options on `sources` (the arguments
    through copies, add's and mul's in order), as the fast methods make it."""
    if len(sources) == 2:
        a, b = sources
        if a < KEY_RADIX and b < KEY_RADIX:
            return key_code(opname, 2) + a * KEY_RADIX + b
    elif len(sources) == 1 and sources[0] < KEY_RADIX:
        return key_code(opname, 1) + sources[0]
    return (opname, *sources)


def key_sources(opname: str, args, source) -> tuple:
    """The sources of `opname`'s arguments `args` as its keys take them: each
    through `source` (its copy's source: `copies.get`), add's and mul's two in order."""
    if len(args) == 2:
        a, b = source(args[0], args[0]), source(args[1], args[1])
        return (b, a) if b < a and opname in _COMMUTATIVE else (a, b)
    return tuple([source(a, a) for a in args])

# The builder's fast path: an elementwise op of a fixed arity with no options, applied
# to scalar variables, the case of nearly every call on a scalar expression and its
# derivatives. It builds what the general path (Builder._apply) builds (fold,
# identity, hash-cons) at a fraction of its cost, in the op's method itself (b.mul(x, y):
# no argument tuple or options dict to pack and unpack, the op's identity and
# commutativity looked up once). It takes exactly the op's arguments (no *args or
# **options to pack on every call): a call with options or another number of
# arguments goes through Builder.apply, or is a TypeError on the method itself.
# Where an argument is not a scalar variable, or a fold or an identity may apply and
# the table no longer holds the op the method was made for (a test may replace one),
# the general path decides. (An operation built as written is the same for any
# elementwise op of that name and arity, so that case does not look the op up.)
# The builder's per-variable flags (identities.CONST...) tell it, in one byte per
# argument, when no fold or identity can apply: then it goes straight to the
# hash-consing table, and appends a new instruction itself (Builder._append's work
# for an operation on scalars: it ends most calls, millions of them).
#
# One text for every builder class that keeps these tables (the Builder's, and the
# SymPy converter's ColumnBuilder, parse/sympy_columns.py, which keeps instructions
# as columns): they differ in a few steps, the upper-case names in the text (how a
# new instruction is appended, where an identity is asked, whether variables have
# sources), given per class to `fast_path`, which compiles the text once per class
# with them (a call through a function there would cost every new instruction a
# call; a test on the class, every call a test). The class provides what the text
# reads of `b`: _flags (identities.CONST... per variable), _keyroom (the variables
# it keys, see op_key), _memo, _consts, _copies, _fold, const, _apply (its general
# path, or its decline). Only this module's constant text is compiled: names of ops
# reach it as values, never as source.
_NO_ATTRS = MappingProxyType({})
_RULES = CONST | NEG | SHAPED   # the flags for which folding, an identity or the general path may apply

_FAST_PATH = """
def make(opname, op, arity):
    identity = IDENTITIES.get(opname)
    commutative = opname in COMMUTATIVE
    flag = NEG if opname == "neg" else 0   # the new variable's flags (see Builder._append)
    code, radix = key_code(opname, arity), KEY_RADIX   # (its keys: see op_key)
    SETUP
    if arity == 2:
        def call(b, x, y):
            if type(x) is not int or type(y) is not int:
                if type(x) is float:   # a rule's constant, b.mul(2.0, x)
                    x = b.const(x)
                if type(y) is float:
                    y = b.const(y)
                if type(x) is not int or type(y) is not int:
                    return b._apply(opname, (x, y), {})
            flags = b._flags
            n = len(flags)
            # (past the room, or the keys' radix: the general path raises, or makes a tuple key)
            if GUARD2:
                return b._apply(opname, (x, y), {})
            try:
                f = flags[x] | flags[y]
            except IndexError:   # (a variable not defined: the general path says so)
                return b._apply(opname, (x, y), {})
            if not f:   # scalars, built as written (see identities.CONST)
                key = code + y * radix + x if commutative and y < x else code + x * radix + y
            else:
                if f & RULES:
                    if f & SHAPED or OPS.get(opname) is not op:
                        return b._apply(opname, (x, y), {})
                    cval = b._consts.get
                    cx, cy = cval(x), cval(y)
                    if cx is not None and cy is not None:
                        return b._fold(opname, op, cx, cy)
                    if FIRES2:
                        var = identity(b, (x, y), (cx, cy), (), NO_ATTRS)
                        if var is not None:
                            return var
                    n = len(flags)   # (an identity that built nothing may have added a constant)
                    if n >= b._keyroom:
                        return b._apply(opname, (x, y), {})
                SOURCES2   # (else only copies: built as written, of their sources)
                key = code + sy * radix + sx if commutative and sy < sx else code + sx * radix + sy
            # one hash-consing lookup: the key is entered with the next variable's number
            var = b._memo.setdefault(key, n)
            if var == n:   # new: appended here (most calls end here)
                APPEND2
                flags.append(flag)
            return var
    else:
        def call(b, x):
            flags = b._flags
            n = len(flags)
            if GUARD1:   # (see above)
                return b._apply(opname, (x,), {})
            f = flags[x]
            if not f:   # a scalar, built as written (see identities.CONST)
                key = code + x
            elif not f & RULES:   # a copy of one
                key = code + SOURCE1
            else:
                if f & SHAPED or OPS.get(opname) is not op:
                    return b._apply(opname, (x,), {})
                cx = b._consts.get(x)
                if cx is not None:
                    return b._fold(opname, op, cx)
                if FIRES1:
                    var = identity(b, (x,), (None,), (), NO_ATTRS)
                    if var is not None:
                        return var
                    n = len(flags)   # (see above)
                    if n >= b._keyroom:
                        return b._apply(opname, (x,), {})
                key = code + SOURCE1
            var = b._memo.setdefault(key, n)
            if var == n:   # new: appended here
                APPEND1
                flags.append(flag)
            return var
    return call
"""


# The Builder's steps of the text: how a new instruction is appended (an Instr, or a
# plain tuple where the builder says so: Builder.plain_tuples), where an
# identity is asked (a condition on identity, x, y, cx, cy, flags), what an argument's
# source is (the variable it copies: sx, sy for x, y), and when the general path
# decides before the flags are read (GUARD: the Builder's arguments come from any
# caller, so a number out of range goes there too; n is the number of variables).
_BUILDER_STEPS = {
    "SETUP": "pass",
    "APPEND2": "b.instrs.append((opname, (x, y), (), ()) if b._plain else _new_tuple(Instr, (opname, (x, y), (), ())));"
               " b.labels.append(None)",
    "APPEND1": "b.instrs.append((opname, (x,), (), ()) if b._plain else _new_tuple(Instr, (opname, (x,), (), ())));"
               " b.labels.append(None)",
    "FIRES2": "identity is not None",
    "FIRES1": "identity is not None",
    "SOURCES2": "source = b._copies.get; sx, sy = source(x, x), source(y, y)",
    "SOURCE1": "b._copies.get(x, x)",
    "GUARD2": "x < 0 or y < 0 or n >= b._keyroom",
    "GUARD1": "type(x) is not int or not 0 <= x < n < b._keyroom",
}


def fast_path(name: str, names: dict, **steps: str):
    """make(opname, op, arity) -> the fast method b.<opname>(x[, y]) of the builder
    class `name`: the text above with the Builder's steps, but for `steps` (one line
    each, `; ` between statements, reading opname, op, x, y, b, what SETUP binds
    once per method, and `names`, the class's module's constants)."""
    if steps.keys() - _BUILDER_STEPS.keys():
        raise ValueError(f"no such steps in the fast path: {sorted(steps.keys() - _BUILDER_STEPS.keys())}")
    source = _FAST_PATH
    for slot, step in {**_BUILDER_STEPS, **steps}.items():
        source = source.replace(slot, step)
    namespace = {"IDENTITIES": IDENTITIES, "COMMUTATIVE": _COMMUTATIVE, "NEG": NEG, "SHAPED": SHAPED,
                 "RULES": _RULES, "OPS": _OPS, "NO_ATTRS": _NO_ATTRS, "KEY_RADIX": KEY_RADIX,
                 "key_code": key_code, **names}
    filename = f"<builder_ops.fast_path of {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)   # (tracebacks)
    exec(compile(source, filename, "exec"), namespace)
    return namespace["make"]


_scalar_method = fast_path("Builder", {"Instr": Instr, "_new_tuple": _new_tuple})


def built_as_written(b, flagged) -> bool:
    """Whether the op method of each instruction i in `flagged` (b.instrs[i], an op
    with a fast method, whose arguments hold a constant or a negation) would go past
    the fold and the identity, as `_scalar_method` takes them, to its hash-consing
    key: for builder_load, which holds the builder's tables already loaded. The
    identities read only their arguments' entries; one that builds (and so would
    not give None) is not undone: the caller drops the builder if this is False."""
    instrs, cval = b.instrs, b._consts.get
    n = len(instrs)
    for i in flagged:
        opname, args, _, _ = instrs[i]
        identity = IDENTITIES.get(opname)
        if len(args) == 2:
            cx, cy = cval(args[0]), cval(args[1])
            if cx is not None and cy is not None:
                return False   # folded
            if identity is not None and identity(b, args, (cx, cy), (), _NO_ATTRS) is not None:
                return False
        else:
            if cval(args[0]) is not None:
                return False
            if identity is not None and identity(b, args, (None,), (), _NO_ATTRS) is not None:
                return False
    return len(instrs) == n   # (an identity that built nothing may have made a constant)


def exact_fold(opname: str, op, values: tuple):
    """op(*values) of scalar constants in Python floats, where that is NumPy's value bit
    for bit; None elsewhere (Builder._fold then asks NumPy). IEEE-754 rounds a sum,
    difference, product or quotient of two doubles, and a negation, one way, in C's
    arithmetic as in NumPy's float64 scalars: so for finite operands and a finite
    result (no NaN's payload or sign to tell apart; no division by zero, which Python
    refuses), where the op's evaluator is that ufunc (a test may give an op another).
    Without NumPy's errstate and float64 scalars: ~1 µs against ~5.5 µs a fold. The
    gradients of the bench's text and SymPy at 10³ operations fold 21-23 such
    constants (the seed's products and negations near the output) in their sweeps."""
    exact = _EXACT.get(opname)
    if exact is None or op.evaluate is not exact[1]:
        return None
    for v in values:
        if type(v) is not float or not math.isfinite(v):
            return None
    if opname == "div" and values[1] == 0.0:
        return None
    value = exact[0](*values)
    return value if math.isfinite(value) else None


# op name -> (Python's operation, the NumPy ufunc whose value on float64 scalars it is)
_EXACT = {"add": (operator.add, np.add), "sub": (operator.sub, np.subtract), "mul": (operator.mul, np.multiply),
          "div": (operator.truediv, np.divide), "neg": (operator.neg, np.negative)}


def _general_method(opname: str):
    def call(b, *args, **attrs):
        return b._apply(opname, args, attrs)
    return call


# The fast path of an elementwise op of three arguments without options or identity
# (`where`: reverse mode masks every adjoint edge leaving a branch with where(c, ḡ, 0),
# reverse_masks.py: ~18k calls on a gradient of 3,000 where terms, 0.34 of its 1.2 s
# through the general path). It builds what Builder._apply builds on scalars: numbers
# made constants in order, a fold where all three are constants, no identity, the
# tuple key (op, *sources) of op_key (no int key for three arguments, so keys made by
# either path are the same and the builder's radix does not matter). Anything else
# (a tensor, a bool or NumPy number, an argument out of range, past the room, the
# table changed under the method) goes to the general path, which decides or raises.
# A plain function, not the text of `fast_path`: only the Builder has it (the SymPy
# converter's ColumnBuilder has its own method for `where`, builder_load loads no
# trace that holds one: neither reads this table).

_INT_FLOAT = frozenset((int, float))


def _ternary_method(opname: str, op):
    def call(b, c, x, y):
        if type(c) is not int or type(x) is not int or type(y) is not int:
            # a rule's constant, b.where(m, g, 0.0): made as _apply's _variables makes
            # them, in order (any other kind of number, a bool...: all made there)
            if not (type(c) in _INT_FLOAT and type(x) in _INT_FLOAT and type(y) in _INT_FLOAT):
                return b._apply(opname, (c, x, y), {})
            if type(c) is float:
                c = b.const(c)
            if type(x) is float:
                x = b.const(x)
            if type(y) is float:
                y = b.const(y)
        flags = b._flags
        n = len(flags)
        if c < 0 or x < 0 or y < 0 or n >= b._room or _OPS.get(opname) is not op:
            return b._apply(opname, (c, x, y), {})
        try:
            f = flags[c] | flags[x] | flags[y]
        except IndexError:   # (a variable not defined: the general path says so)
            return b._apply(opname, (c, x, y), {})
        if f:
            if f & SHAPED:
                return b._apply(opname, (c, x, y), {})
            if flags[c] & flags[x] & flags[y] & CONST:   # (three constants: folded there)
                return b._apply(opname, (c, x, y), {})
            if f & COPY:
                source = b._copies.get
                key = (opname, source(c, c), source(x, x), source(y, y))
            else:
                key = (opname, c, x, y)
        else:
            key = (opname, c, x, y)
        var = b._memo.setdefault(key, n)
        if var == n:   # new: appended as Builder._append would (flags: not a negation, a scalar)
            b.instrs.append((opname, (c, x, y), (), ()) if b._plain
                            else _new_tuple(Instr, (opname, (c, x, y), (), ())))
            b.labels.append(None)
            flags.append(0)
        return var
    call.__name__ = call.__qualname__ = opname
    call.op = op
    call.arity = 3
    return call


class _FastMethods(dict):
    """opname -> its fast-path method for the ops that have one, else None. Filled on
    first use (ops the table gains after import are found). Tests make one with
    `enabled=False` to compare the fast path with the general one."""

    def __init__(self, enabled: bool = True):
        super().__init__()
        self.enabled = enabled
        self.install = None   # builder.py's: (opname, method) -> None, a Builder method for a new op
        self._wide: dict = {}

    def wide(self, opname: str):
        """opname's fast method of three arguments (`_ternary_method`), or None: kept
        apart from the table's own (opname -> a method of one or two arguments), which
        builder_load and the SymPy converter read as such."""
        try:
            return self._wide[opname]
        except KeyError:
            pass
        op = _OPS.get(opname)
        method = None
        if self.enabled and op is not None and op.arity == 3 and op.shape is None and op.prepare is None \
                and not op.keywords and opname not in IDENTITIES and not op.is_leaf:
            method = _ternary_method(opname, op)
        self._wide[opname] = method
        return method

    def __missing__(self, opname):
        op = _OPS.get(opname)
        method = None
        if self.enabled and op is not None and op.shape is None and op.prepare is None \
                and op.arity in (1, 2) and opname != "copy" and not op.keywords:
            method = _scalar_method(opname, op, op.arity)
            method.__name__ = method.__qualname__ = opname
            method.op = op   # (builder_load: the op it was made for)
            method.arity = op.arity   # (Builder.apply: calls it takes)
        self[opname] = method
        if self.install is not None and op is not None and not op.is_leaf and not opname.startswith("_"):
            self.install(opname, method or self.wide(opname) or _general_method(opname))
        return method


_FAST_METHODS = _FastMethods()


def _op_methods(fast: bool = True) -> dict:
    """b.sin(x), b.add(x, y), ...: one method per op of the table, Builder's own
    (builder.py installs them), so the derivative rules' calls do not go through
    `apply`."""
    table = _FAST_METHODS if fast else _FastMethods(enabled=False)
    methods = {}
    for opname, op in _ops.OPS.items():
        if not op.is_leaf and not opname.startswith("_"):
            methods[opname] = table[opname] or table.wide(opname) or _general_method(opname)
    return methods

