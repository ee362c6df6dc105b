"""The op table: every primitive, defined once.

Every stage consults this table and nothing else about an op: the parsers (which
names exist, their arity), the trace builder (shape rule, constant folding), the
derivative passes (partials), the printers and backends (spellings, precedence),
the SymPy bridge (the SymPy head) and the tests (domain, kinks, edge points).

Derivative rules are *partials*: for an elementwise op ``out = f(x_1..x_k)`` the
rule for argument i maps a seed ``s`` to ``s * ∂f/∂x_i``, written with builder
calls (``b.mul``, ``b.cos``...), so derivatives are traces themselves. The same
rule serves forward mode (seed = the argument's tangent; contributions summed)
and reverse mode (seed = the output's adjoint; contribution added to the
argument's adjoint). A ``None`` partial is a structural zero; a rule may also
return None when it sees one (the x-partial of x**0 is 0, not 0·x**-1 = NaN at 0).

Conventions at non-differentiable points (tested by `edges`):
  abs'(0) = sign(0) = 0;  relu'(0) = 0;  sign' = 0 and heaviside' = 0 everywhere;
  maximum/minimum at a tie split the derivative 0.5/0.5 (so maximum(x, x)' = 1);
  sqrt'(0) = inf, log'(0) = inf (the limits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from . import runtime

INF = math.inf

# Printing precedence (higher binds tighter); the parser uses the same numbers.
PREC_ADD, PREC_MUL, PREC_NEG, PREC_POW, PREC_ATOM = 10, 20, 30, 40, 100


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
    domain: tuple = ()                     # per-argument sampling interval for tests (default ±3)
    kinks: tuple = ()                      # points where the op is not differentiable
    edges: tuple = ()                      # ((args...), (expected partials...)) checked by tests
    linear: bool = False
    callable_by_name: bool = True          # may be called as name(...) in the string language
    doc: str = ""

    def __post_init__(self):
        if not self.domain:
            object.__setattr__(self, "domain", ((-3.0, 3.0),) * self.arity)

    @property
    def is_leaf(self) -> bool:
        return self.arity == 0


def _unary(name, evaluate, partial, numpy, sympy_head=None, **kw):
    return OpDef(name, 1, evaluate, (partial,), numpy,
                 sympy_head=sympy_head if sympy_head is not None else name, **kw)


def _binary_call(name, evaluate, partials, numpy, **kw):
    return OpDef(name, 2, evaluate, partials, numpy, **kw)


_TABLE = [
    # Leaves and the named copy used by derivative traces.
    OpDef("input", 0, None, (), "", callable_by_name=False, doc="a free variable"),
    OpDef("const", 0, None, (), "", callable_by_name=False, doc="a float constant"),
    OpDef("copy", 1, lambda x: x, (lambda b, g, x, out: g,), "", linear=True,
          callable_by_name=False, sympy=lambda sp, x: x,
          doc="names a value (v̄_2 = v̄_5); free in every backend"),

    # Arithmetic.
    OpDef("add", 2, np.add, (lambda b, g, x, y, out: g, lambda b, g, x, y, out: g), "+",
          c="+", infix="+", uinfix="+", prec=PREC_ADD, linear=True, callable_by_name=False,
          sympy=lambda sp, x, y: x + y),
    OpDef("sub", 2, np.subtract, (lambda b, g, x, y, out: g, lambda b, g, x, y, out: b.neg(g)), "-",
          c="-", infix="-", uinfix="−", prec=PREC_ADD, linear=True, callable_by_name=False,
          sympy=lambda sp, x, y: x - y),
    OpDef("mul", 2, np.multiply,
          (lambda b, g, x, y, out: b.mul(g, y), lambda b, g, x, y, out: b.mul(g, x)), "*",
          c="*", infix="*", uinfix="·", prec=PREC_MUL, callable_by_name=False,
          sympy=lambda sp, x, y: x * y),
    OpDef("div", 2, np.divide,
          (lambda b, g, x, y, out: b.div(g, y),
           lambda b, g, x, y, out: b.neg(b.div(b.mul(g, out), y))), "/",
          c="/", infix="/", uinfix="/", prec=PREC_MUL, callable_by_name=False,
          sympy=lambda sp, x, y: x / y, domain=((-3.0, 3.0), (0.5, 3.0)),
          edges=(((1.0, 0.0), (INF, -INF)),)),
    OpDef("neg", 1, np.negative, (lambda b, g, x, out: b.neg(g),), "-",
          c="-", infix="-", uinfix="−", prec=PREC_NEG, linear=True, callable_by_name=False,
          sympy=lambda sp, x: -x),
    OpDef("pow", 2, np.power,
          (lambda b, g, x, y, out: None if b.const_value(y) == 0.0
           else b.mul(g, b.mul(y, b.pow(x, b.sub(y, 1.0)))),
           lambda b, g, x, y, out: b.mul(g, b.xlogy(out, x))), "np.power",
          c="pow", infix="**", uinfix="**", prec=PREC_POW, callable_by_name=False,
          sympy=lambda sp, x, y: x ** y, domain=((0.2, 3.0), (-2.0, 2.0)),
          edges=(((0.0, 2.0), (0.0, 0.0)), ((0.0, 0.5), (INF, 0.0))),
          doc="x ** y; the y-partial x**y·log(x) is taken as 0 where x**y == 0"),

    # Elementary functions.
    _unary("square", np.square, lambda b, g, x, out: b.mul(g, b.mul(2.0, x)), "np.square", c="xc_square",
           sympy=lambda sp, x: x ** 2),
    _unary("sqrt", np.sqrt, lambda b, g, x, out: b.div(g, b.mul(2.0, out)), "np.sqrt", c="sqrt",
           domain=((0.1, 5.0),), edges=(((0.0,), (INF,)),)),
    _unary("exp", np.exp, lambda b, g, x, out: b.mul(g, out), "np.exp", c="exp",
           edges=(((800.0,), (INF,)),)),
    _unary("log", np.log, lambda b, g, x, out: b.div(g, x), "np.log", c="log",
           domain=((0.1, 5.0),), edges=(((0.0,), (INF,)),)),
    _unary("log1p", np.log1p, lambda b, g, x, out: b.div(g, b.add(1.0, x)), "np.log1p", c="log1p",
           sympy=lambda sp, x: sp.log(1 + x), domain=((-0.5, 3.0),), edges=(((-1.0,), (INF,)),)),
    _unary("expm1", np.expm1, lambda b, g, x, out: b.mul(g, b.add(out, 1.0)), "np.expm1", c="expm1",
           sympy=lambda sp, x: sp.exp(x) - 1),
    _unary("sin", np.sin, lambda b, g, x, out: b.mul(g, b.cos(x)), "np.sin", c="sin"),
    _unary("cos", np.cos, lambda b, g, x, out: b.neg(b.mul(g, b.sin(x))), "np.cos", c="cos"),
    _unary("tan", np.tan, lambda b, g, x, out: b.mul(g, b.add(1.0, b.square(out))), "np.tan", c="tan",
           domain=((-1.2, 1.2),)),
    _unary("arcsin", np.arcsin, lambda b, g, x, out: b.div(g, b.sqrt(b.sub(1.0, b.square(x)))),
           "np.arcsin", c="asin", sympy_head="asin", domain=((-0.9, 0.9),), edges=(((1.0,), (INF,)),)),
    _unary("arccos", np.arccos,
           lambda b, g, x, out: b.neg(b.div(g, b.sqrt(b.sub(1.0, b.square(x))))),
           "np.arccos", c="acos", sympy_head="acos", domain=((-0.9, 0.9),), edges=(((1.0,), (-INF,)),)),
    _unary("arctan", np.arctan, lambda b, g, x, out: b.div(g, b.add(1.0, b.square(x))),
           "np.arctan", c="atan", sympy_head="atan"),
    _unary("sinh", np.sinh, lambda b, g, x, out: b.mul(g, b.cosh(x)), "np.sinh", c="sinh"),
    _unary("cosh", np.cosh, lambda b, g, x, out: b.mul(g, b.sinh(x)), "np.cosh", c="cosh"),
    _unary("tanh", np.tanh, lambda b, g, x, out: b.mul(g, b.sub(1.0, b.square(out))), "np.tanh", c="tanh"),
    _unary("abs", np.abs, lambda b, g, x, out: b.mul(g, b.sign(x)), "np.abs", c="fabs", sympy_head="Abs",
           kinks=(0.0,), edges=(((0.0,), (0.0,)),)),
    _unary("sign", np.sign, None, "np.sign", c="xc_sign", kinks=(0.0,), edges=(((0.0,), (0.0,)),)),
    _unary("sigmoid", runtime.sigmoid, lambda b, g, x, out: b.mul(g, b.mul(out, b.sub(1.0, out))),
           "sigmoid", c="xc_sigmoid", sympy=lambda sp, x: 1 / (1 + sp.exp(-x)), edges=(((-800.0,), (0.0,)),)),
    _unary("relu", runtime.relu, lambda b, g, x, out: b.mul(g, b.heaviside(x, 0.0)), "relu", c="xc_relu",
           sympy=lambda sp, x: sp.Max(x, 0), kinks=(0.0,), edges=(((0.0,), (0.0,)),)),
    _unary("softplus", runtime.softplus, lambda b, g, x, out: b.mul(g, b.sigmoid(x)), "softplus", c="xc_softplus",
           sympy=lambda sp, x: sp.log(1 + sp.exp(x)), edges=(((800.0,), (1.0,)),)),
    _binary_call("maximum", np.maximum,
                 (lambda b, g, x, y, out: b.mul(g, b.heaviside(b.sub(x, y), 0.5)),
                  lambda b, g, x, y, out: b.mul(g, b.heaviside(b.sub(y, x), 0.5))),
                 "np.maximum", c="xc_maximum", sympy_head="Max", domain=((-3.0, 3.0), (-3.0, 3.0)),
                 edges=(((1.0, 1.0), (0.5, 0.5)),)),
    _binary_call("minimum", np.minimum,
                 (lambda b, g, x, y, out: b.mul(g, b.heaviside(b.sub(y, x), 0.5)),
                  lambda b, g, x, y, out: b.mul(g, b.heaviside(b.sub(x, y), 0.5))),
                 "np.minimum", c="xc_minimum", sympy_head="Min", domain=((-3.0, 3.0), (-3.0, 3.0)),
                 edges=(((1.0, 1.0), (0.5, 0.5)),)),
    _binary_call("heaviside", np.heaviside, (None, None), "np.heaviside", c="xc_heaviside",
                 sympy_head="Heaviside", domain=((-3.0, 3.0), (0.0, 1.0)), kinks=(0.0,),
                 doc="heaviside(x, h0): 0 for x < 0, h0 at 0, 1 for x > 0 (as np.heaviside)"),
    _binary_call("xlogy", runtime.xlogy,
                 (lambda b, g, x, y, out: b.mul(g, b.log(y)),
                  lambda b, g, x, y, out: b.mul(g, b.div(x, y))),
                 "xlogy", c="xc_xlogy", sympy=lambda sp, x, y: x * sp.log(y),
                 domain=((-3.0, 3.0), (0.1, 5.0)), edges=(((0.0, 2.0), (math.log(2.0), 0.0)),),
                 doc="x * log(y), 0 where x == 0"),
]

OPS: dict[str, OpDef] = {op.name: op for op in _TABLE}

# Names a user may call in the string language (the parser's function set).
FUNCTIONS: dict[str, OpDef] = {name: op for name, op in OPS.items() if op.callable_by_name}

# Named constants of the string language.
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
