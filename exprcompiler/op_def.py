"""What an op is: the OpDef record and the constructors the op table is written with.

Where it sits: under the op table (ops.py, with its continuation ops_special.py),
which lists every primitive as an OpDef; see ops' docstring for what the fields
mean to each stage. The elementwise ops' JVP and VJP rules are made here from
their partials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

INF = math.inf

# Printing precedence (higher binds tighter); the parser uses the same numbers.
PREC_CMP, PREC_ADD, PREC_MUL, PREC_NEG, PREC_POW, PREC_ATOM = 5, 10, 20, 30, 40, 100
VARIADIC = -1


@dataclass(frozen=True)
class OpDef:
    name: str
    arity: int
    evaluate: Optional[Callable]           # NumPy implementation (reference semantics)
    partials: tuple                        # per argument: (b, seed, *args, out) -> var, or None
    numpy: str                             # callable spelling ("np.sin") or infix symbol ("+")
    c: str = ""                            # C99 spelling: libm/helper name, or the infix symbol
    infix: Optional[str] = None            # ASCII infix/prefix symbol, None for calls
    uinfix: Optional[str] = None           # Unicode symbol for printed tables
    prec: int = PREC_ATOM
    sympy_head: Optional[str] = None       # SymPy function class name, for conversion both ways
    sympy: Optional[Callable] = None       # (sympy_module, *args) -> expr, when not sympy_head(*args)
    domain: tuple = ()                     # per-argument sampling interval for tests (default ±3);
    #                                        one point (lo == hi): an argument that takes particular
    #                                        values only (polygamma's order), never perturbed
    kinks: tuple = ()                      # points where the op is not differentiable
    edges: tuple = ()                      # ((args...), (expected partials...)) checked by tests
    linear: bool = False
    callable_by_name: bool = True          # may be called as name(...) in the string language
    doc: str = ""
    # Tensor ops (see tensor_rules.py). An op without `shape` is elementwise: its
    # arguments broadcast, and its `jvp` and `vjp` are made from its `partials`.
    shape: Optional[Callable] = None       # (argument shapes, attrs) -> output shape
    prepare: Optional[Callable] = None     # (argument shapes, attrs) -> canonical attrs
    jvp: Optional[Callable] = None         # (b, tangents, args, out, attrs) -> tangent or None
    vjp: Optional[Callable] = None         # (b, j, adjoint, args, out, attrs) -> contribution or None
    fmt: Optional[Callable] = None         # (op, rendered args, attrs, target) -> (text, prec)
    keywords: tuple = ()                   # attributes a user may pass by keyword, with defaults
    bounds: Optional[Callable] = None      # (argument shapes, attrs) -> [(dim, least, arg)]: sizes
    #                                        a binding must have (x[5]: n >= 6), see shape_binding
    across: bool = False                   # combines its argument's elements (reductions, softmax,
    #                                        norm): of undeclared inputs, shapes come at the call

    def __post_init__(self):
        if not self.domain:
            object.__setattr__(self, "domain", ((-3.0, 3.0),) * self.arity)
        if self.shape is None and self.arity > 0:  # elementwise: both rules from the partials
            object.__setattr__(self, "jvp", _jvp_from_partials(self.partials))
            object.__setattr__(self, "vjp", _vjp_from_partials(self.partials))

    def takes(self, n: int) -> bool:
        """Whether the op accepts n arguments."""
        return n == self.arity or (self.arity == VARIADIC and n > 0)

    @property
    def is_leaf(self) -> bool:
        return self.arity == 0

    @property
    def elementwise(self) -> bool:
        return self.shape is None


def _jvp_from_partials(partials):
    """An elementwise op's JVP: its partials applied to the arguments' tangents, summed."""
    def jvp(b, tans, args, out, attrs):
        acc = None
        for partial, t in zip(partials, tans):
            if t is None or partial is None:
                continue
            c = partial(b, t, *args, out)
            if c is not None:  # a rule may find a structural zero (x**0)
                acc = c if acc is None else b.add(acc, c)
        return acc
    return jvp


def seed(b, g, *args):
    """The partial 1 (add, sub's x, copy, frac): the contribution is the seed itself.
    A named function, not a lambda, so the reverse sweep knows it without calling it."""
    return g


def negated_seed(b, g, *args):
    """The partial -1 (sub's y, neg): the seed negated; known to the sweep as `seed` is."""
    return b.neg(g)


def _vjp_from_partials(partials):
    """An elementwise op's VJP for argument j: its partial applied to the adjoint,
    summed down to the argument's shape (the adjoint of broadcasting it)."""
    def vjp(b, j, g, args, out, attrs):
        if partials[j] is None:
            return None
        c = partials[j](b, g, *args, out)
        if c is not None and b.shape(c) != b.shape(args[j]):
            c = b.sum_to(c, args[j])
        return c
    vjp.partials = partials   # the reverse pass on scalars calls them directly (no shapes to sum)
    return vjp


def _unless_zero(b, a, partial):
    """`partial()`, but 0 where `a` == 0: there the op does not depend on the argument
    being differentiated (x**0 = 1, xlogy(0, y) = 0), while the formula may be NaN
    (0·0**-1, 0/0). The contribution is 0 whatever the seed, as a structural zero
    is; a constant `a` needs no test (0: a structural zero). Where a == 0 and the
    formula is a number (±0, a multiple of a) it stays the branch taken, plus 0.0
    (+0.0, as the constant), so that its derivative in `a` is kept: a constant's, 0,
    would make the mixed second derivatives wrong there (∂²(x**y)/∂x∂y = 1/x at y = 0)."""
    c = b.const_value(a)
    if c is None:
        p = partial()
        return b.where(b.eq(a, 0.0), b.where(b.eq(p, p), b.add(p, 0.0), 0.0), p)
    return None if c == 0.0 else partial()


def _tie_split(b, wins, x, y):
    """The share of maximum's/minimum's derivative that goes to one argument: 1 where
    it `wins` (a 0/1 comparison), 0.5 at a tie. A tie is x == y, not x - y == 0, so
    maximum(inf, inf) splits too (inf - inf is NaN); a NaN argument gets 0, as
    relu'(NaN) = (NaN > 0) = 0."""
    return b.where(b.eq(x, y), 0.5, wins)


def _unary(name, evaluate, partial, numpy, sympy_head=None, **kw):
    return OpDef(name, 1, evaluate, (partial,), numpy,
                 sympy_head=sympy_head if sympy_head is not None else name, **kw)


def _binary_call(name, evaluate, partials, numpy, **kw):
    return OpDef(name, 2, evaluate, partials, numpy, **kw)
