"""The Builder's op methods: ``b.sin(x)``, ``b.mul(x, y)``, and the scalar fast path.

Where it sits: builder.py installs one method per op of the table (ops.OPS) on
`Builder`, and `Builder.apply` / `Builder.op_call` look methods up here. Every
front end and pass calls these millions of times for a large expression; an op
without a fast method goes to the builder's general path (`Builder._apply`).
"""

from __future__ import annotations

from types import MappingProxyType

from .. import ops as _ops
from .identities import IDENTITIES
from .ir_trace import Instr, _new_tuple

_OPS = _ops.OPS

# Hash-consing keys of these ops take their arguments in a fixed order, so b*a after
# a*b is the same variable (the instruction keeps the order first written). Exact:
# IEEE addition and multiplication are commutative bit for bit, signed zeros included
# (maximum and minimum are not: maximum(0.0, -0.0) is 0.0, maximum(-0.0, 0.0) -0.0).
# On the 20-link pendulum's forward-mode Jacobian: 6,536 -> 6,346 operations.
_COMMUTATIVE = frozenset(("add", "mul"))

# The builder's fast path: an elementwise op of a fixed arity with no options, applied
# to scalar variables, the case of nearly every call on a scalar expression and its
# derivatives. It builds what the general path (Builder._apply) builds (fold,
# identity, hash-cons) at a fraction of its cost, in the op's method itself (b.mul(x, y):
# no argument tuple or options dict to pack and unpack, the op's identity and
# commutativity looked up once). Where an argument is not a scalar variable, or the
# table no longer holds that op (a test may replace one), the general path decides.
_NO_ATTRS = MappingProxyType({})
_NO_ARG = object()


def _scalar_method(opname: str, op, arity: int):
    identity = IDENTITIES.get(opname)
    commutative = opname in _COMMUTATIVE
    if arity == 2:
        def call(b, x, y=_NO_ARG, *more, **attrs):
            if attrs or more or y is _NO_ARG or _OPS.get(opname) is not op:
                return b._apply(opname, (x,) + more if y is _NO_ARG else (x, y) + more, attrs)
            if type(x) is not int or type(y) is not int:
                if type(x) is float:   # a rule's constant, b.mul(2.0, x)
                    x = b.const(x)
                if type(y) is float:
                    y = b.const(y)
                if type(x) is not int or type(y) is not int:
                    return b._apply(opname, (x, y), attrs)
            instrs = b.instrs
            n = len(instrs)
            if not (0 <= x < n and 0 <= y < n) or instrs[x].shape or instrs[y].shape:
                return b._apply(opname, (x, y), attrs)
            cval = b._cval
            cx, cy = cval[x], cval[y]
            if cx is not None and cy is not None:
                return b._fold(opname, op, cx, cy)
            if identity is not None:
                var = identity(b, (x, y), (cx, cy), (), _NO_ATTRS)
                if var is not None:
                    return var
            source = b._source
            sx, sy = source[x], source[y]
            key = (opname, sy, sx) if commutative and sy < sx else (opname, sx, sy)
            var = b._memo.get(key)
            if var is None:
                var = b._memo[key] = b._append(_new_tuple(Instr, (opname, (x, y), (), ())))
            return var
    else:
        def call(b, x, *more, **attrs):
            instrs = b.instrs
            n = len(instrs)
            if attrs or more or type(x) is not int or not 0 <= x < n or instrs[x].shape \
                    or _OPS.get(opname) is not op:
                return b._apply(opname, (x,) + more, attrs)
            cx = b._cval[x]
            if cx is not None:
                return b._fold(opname, op, cx)
            if identity is not None:
                var = identity(b, (x,), (None,), (), _NO_ATTRS)
                if var is not None:
                    return var
            source = b._source
            key = (opname, source[x])
            var = b._memo.get(key)
            if var is None:
                var = b._memo[key] = b._append(_new_tuple(Instr, (opname, (x,), (), ())))
            return var
    return call


def _general_method(opname: str):
    def call(b, *args, **attrs):
        return b._apply(opname, args, attrs)
    return call


class _FastMethods(dict):
    """opname -> its fast-path method for the ops that have one, else None. Filled on
    first use (ops the table gains after import are found). Tests make one with
    `enabled=False` to compare the fast path with the general one."""

    def __init__(self, enabled: bool = True):
        super().__init__()
        self.enabled = enabled

    def __missing__(self, opname):
        op = _OPS.get(opname)
        method = None
        if self.enabled and op is not None and op.shape is None and op.prepare is None \
                and op.arity in (1, 2) and opname != "copy" and not op.keywords:
            method = _scalar_method(opname, op, op.arity)
            method.__name__ = method.__qualname__ = opname
        self[opname] = method
        return method


_FAST_METHODS = _FastMethods()


def _op_methods(fast: bool = True) -> dict:
    """b.sin(x), b.add(x, y), ...: one method per op of the table, so the derivative
    rules' calls do not go through __getattr__ (a failed lookup, then a new closure,
    on each of millions of calls), nor through `apply`."""
    table = _FAST_METHODS if fast else _FastMethods(enabled=False)
    methods = {}
    for opname, op in _ops.OPS.items():
        if not op.is_leaf and not opname.startswith("_"):
            methods[opname] = table[opname] or _general_method(opname)
    return methods

