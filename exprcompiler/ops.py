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
A structural zero stays 0 where the seed is inf or NaN (no 0·inf is computed).

Conventions at non-differentiable points (tested by `edges`, and on both backends
by tests/test_edges.py):
  abs'(0) = sign(0) = 0;  relu'(0) = 0;  sign' = 0 everywhere;
  heaviside(x, h0): the x-partial is 0 everywhere, the h0-partial 1 at x = ±0 (the
  value is h0 there) and 0 elsewhere;
  maximum/minimum at a tie (x == y, equal infinities included) split the derivative
  0.5/0.5 (so maximum(x, x)' = 1); a NaN argument gets 0, as relu'(NaN) does;
  sqrt'(0) = inf, log'(0) = inf (the limits); at -0.0 both are -inf, the sign IEEE
  keeps through 1/(2·sqrt(x)) and 1/x (the rules stay as the lecture tables print them);
  x**y: the x-partial is 0 where y == 0, xlogy(x, y): the y-partial is 0 where x == 0
  (the op does not depend on that argument there; the formula would give NaN);
  the special functions' (floor, gamma, digamma, sinc, hypot...) are in ops_special.
Values are NumPy's (the evaluators), signed zeros and NaN included: the C helpers
reproduce them, and where NumPy's own loops disagree with each other (pow with an
exponent 0.5 that does not vary) `runtime.power` picks C's pow for both backends.
"""

from __future__ import annotations

import math

import numpy as np

from . import runtime
from . import shapes as _shapes
from . import tensor_rules as T

# OpDef and the precedences are read through this module too (ops.OpDef, ops.PREC_ATOM).
from .op_def import (INF, PREC_ADD, PREC_ATOM, PREC_CMP, PREC_MUL, PREC_NEG, PREC_POW,  # noqa: F401
                     VARIADIC, OpDef, _binary_call, _tie_split, _unary, _unless_zero, negated_seed, seed)
from .ops_special import TABLE as _SPECIAL


def _pow_x_partial(b, g, x, y, out):
    """g·y·x**(y - 1), 0 where y == 0 (see _unless_zero). With a scalar constant
    exponent (x**2, the common case) y - 1 is made here, as the builder would fold
    b.sub(y, 1.0), and x**1 is x: two trips through its folding and identities less
    per power, the same instructions and constants in the same order. (The builder's
    tables are read directly: this runs once per power of a gradient.)"""
    consts = b._consts
    c = consts.get(y)
    if c is None or c == 0.0 or b.instrs[y][3] or b.instrs[x][3] or x in consts:
        return _unless_zero(b, y, lambda: b.mul(g, b.mul(y, b.pow(x, b.sub(y, 1.0)))))
    if 1.0 not in b._scalar_consts:   # (b.const(1.0) of a constant it has: its own lookup)
        b.const(1.0)   # b.sub(y, 1.0) makes the constant 1.0 first (if new, its place in the trace)
    e = c - 1.0   # IEEE subtraction, as NumPy's fold
    if e == 1.0:   # (b.const(1.0), just made: nothing new)
        return b.mul(g, b.mul(y, x))
    return b.mul(g, b.mul(y, b.pow(x, b.const(e))))


def _exp_partial(b, g, x, out):
    return b.mul(g, out)


# (expm1's derivative is exp(x), not expm1(x) + 1: that sum cancels for x < 0, 2.4e-13
# relative at x = -9, 0 for exp(-40); the NumPy backend shares one exp where it can)
def _expm1_partial(b, g, x, out):
    return b.mul(g, b.exp(x))


def _sigmoid_bend(b, s):
    """sigmoid_slope_slope's derivative s·(1 - 6s) of s = sigmoid_slope(x): s·(tanh(x/2)² - 2s),
    tanh(x/2)² = 1 - 4s (no cancellation but at its zeros, |x| = 1.32)."""
    return b.mul(s, b.sub(1.0, b.mul(6.0, s)))


# x/y's partials, 1/y and -(x/y)/y; over_norm's (below) in x and h too (its s-partial is 0)
_QUOTIENT = (lambda b, g, x, y, *out: b.div(g, y),
             lambda b, g, x, y, *out: b.neg(b.div(b.mul(g, out[-1]), y)))

_TABLE = [
    # Leaves and the named copy used by derivative traces.
    OpDef("input", 0, None, (), "", callable_by_name=False, doc="a free variable"),
    OpDef("const", 0, None, (), "", callable_by_name=False, doc="a float constant"),
    OpDef("copy", 1, lambda x: x, (seed,), "", linear=True,
          callable_by_name=False, sympy=lambda sp, x: x,
          doc="names a value (v̄_2 = v̄_5); free in every backend"),

    # Arithmetic.
    OpDef("add", 2, np.add, (seed, seed), "+",
          c="+", infix="+", uinfix="+", prec=PREC_ADD, linear=True, callable_by_name=False,
          sympy=lambda sp, x, y: x + y),
    OpDef("sub", 2, np.subtract, (seed, negated_seed), "-",
          c="-", infix="-", uinfix="−", prec=PREC_ADD, linear=True, callable_by_name=False,
          sympy=lambda sp, x, y: x - y),
    OpDef("mul", 2, np.multiply,
          (lambda b, g, x, y, out: b.mul(g, y), lambda b, g, x, y, out: b.mul(g, x)), "*",
          c="*", infix="*", uinfix="·", prec=PREC_MUL, callable_by_name=False,
          sympy=lambda sp, x, y: x * y),
    OpDef("div", 2, np.divide, _QUOTIENT, "/",
          c="/", infix="/", uinfix="/", prec=PREC_MUL, callable_by_name=False,
          sympy=lambda sp, x, y: x / y, domain=((-3.0, 3.0), (0.5, 3.0)),
          edges=(((1.0, 0.0), (INF, -INF)),)),
    OpDef("neg", 1, np.negative, (negated_seed,), "-",
          c="-", infix="-", uinfix="−", prec=PREC_NEG, linear=True, callable_by_name=False,
          sympy=lambda sp, x: -x),
    OpDef("pow", 2, runtime.power,
          (_pow_x_partial,
           lambda b, g, x, y, out: b.mul(g, b.xlogy(out, x))), "power",
          c="xc_pow", infix="**", uinfix="**", prec=PREC_POW, callable_by_name=False,
          sympy=lambda sp, x, y: x ** y, domain=((0.2, 3.0), (-2.0, 2.0)),
          edges=(((0.0, 2.0), (0.0, 0.0)), ((0.0, 0.5), (INF, 0.0)), ((0.0, 0.0), (0.0, -INF))),
          doc="x ** y; the x-partial is 0 where y == 0 (x**0 = 1), the y-partial x**y·log(x) "
              "is taken as 0 where x**y == 0"),

    # Elementary functions.
    _unary("square", np.square, lambda b, g, x, out: b.mul(g, b.mul(2.0, x)), "np.square", c="xc_square",
           sympy=lambda sp, x: x ** 2),
    _unary("sqrt", np.sqrt, lambda b, g, x, out: b.div(g, b.mul(2.0, out)), "np.sqrt", c="sqrt",
           domain=((0.1, 5.0),), edges=(((0.0,), (INF,)), ((-0.0,), (-INF,)))),
    _unary("exp", np.exp, _exp_partial, "np.exp", c="exp",
           edges=(((800.0,), (INF,)),)),
    _unary("log", np.log, lambda b, g, x, out: b.div(g, x), "np.log", c="log",
           domain=((0.1, 5.0),), edges=(((0.0,), (INF,)), ((-0.0,), (-INF,)))),
    _unary("log1p", np.log1p, lambda b, g, x, out: b.div(g, b.add(1.0, x)), "np.log1p", c="xc_log1p",
           sympy=lambda sp, x: sp.log(1 + x), domain=((-0.5, 3.0),), edges=(((-1.0,), (INF,)),)),
    # log1p(0.0 - x) as C kernels and the tape VM compute it (c_backend.c_forms puts it in
    # for log(1 - x) rewritten): from u = 1 - x, whose 1/u its derivative -1/(1 - x)
    # shares (c_special.xc_log1m_shared). Not in the language.
    _unary("log1m_shared", runtime.log1p_of_neg, lambda b, g, x, out: b.neg(b.div(g, b.sub(1.0, x))),
           "log1p_of_neg", c="xc_log1m_shared", sympy_head="", sympy=lambda sp, x: sp.log(1 - x),
           callable_by_name=False, domain=((-3.0, 0.5),), edges=(((1.0,), (-INF,)),),
           doc="log1p(0.0 - x), computed in C from 1 - x"),
    _unary("expm1", np.expm1, _expm1_partial, "np.expm1", c="xc_expm1",
           sympy=lambda sp, x: sp.exp(x) - 1),
    # expm1(x) and e^x as the C kernels and the tape VM compute them where both are of the
    # same x (expm1 and its derivative; c_backend.c_forms puts these in for that pair, they
    # are not in the language): from one argument reduction (c_exp), which a kernel then
    # computes once. Alone, libmvec's exp and c_exp's xc_expm1 are faster.
    _unary("expm1_shared", np.expm1, _expm1_partial, "np.expm1", c="xc_expm1_shared", sympy_head="",
           sympy=lambda sp, x: sp.exp(x) - 1, callable_by_name=False,
           doc="expm1(x), computed in C by the same steps as exp_shared(x)"),
    _unary("exp_shared", np.exp, _exp_partial, "np.exp", c="xc_exp_shared", sympy_head="",
           sympy=lambda sp, x: sp.exp(x), callable_by_name=False, edges=(((800.0,), (INF,)),),
           doc="exp(x), computed in C by the same steps as expm1_shared(x)"),
    # expm1(0.0 - x) where a kernel also computes log1mexp(x) (c_backend.c_forms puts it
    # in; log1mexp's slope itself is the op log1mexp_slope, ops_special): C computes it
    # from log1mexp's own reduction (c_special.xc_expm1_neg_shared). Its derivative -e^-x
    # is -(1 + out).
    _unary("expm1_neg_shared", runtime.expm1_of_neg, lambda b, g, x, out: b.neg(b.mul(g, b.add(1.0, out))),
           "expm1_of_neg", c="xc_expm1_neg_shared", sympy_head="", sympy=lambda sp, x: sp.exp(-x) - 1,
           callable_by_name=False, edges=(((-INF,), (-INF,)), ((INF,), (-0.0,))),
           doc="expm1(0.0 - x), computed in C by the same steps as log1mexp(x)"),
    # hypot(1, x) and sqrt(x - 1)·sqrt(x + 1), the derivatives' denominators of arcsinh(x)
    # and arccosh(x), where a kernel computes the value too (c_backend.c_forms): C takes
    # them from the value's own square root (c_special). Derivatives x/out.
    _unary("hypot1_shared", runtime.hypot_one, lambda b, g, x, out: b.mul(g, b.div(x, out)), "hypot_one",
           c="xc_hypot1_shared", sympy_head="", sympy=lambda sp, x: sp.sqrt(1 + x ** 2), callable_by_name=False,
           doc="hypot(1, x), computed in C by the same steps as arcsinh(x)"),
    _unary("acosh_root_shared", runtime.acosh_root, lambda b, g, x, out: b.mul(g, b.div(x, out)), "acosh_root",
           c="xc_acosh_root_shared", sympy_head="", sympy=lambda sp, x: sp.sqrt(x - 1) * sp.sqrt(x + 1),
           callable_by_name=False, domain=((1.2, 5.0),),
           doc="sqrt(x - 1)·sqrt(x + 1), computed in C by the same steps as arccosh(x)"),
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
    # sinh(x) and cosh(x) as C kernels and the tape VM compute them where both are of the
    # same x (sinh and its derivative; c_backend.c_forms puts these in): from one argument
    # reduction (c_exp). Alone, each keeps libmvec's.
    _unary("sinh_shared", np.sinh, lambda b, g, x, out: b.mul(g, b.cosh(x)), "np.sinh", c="xc_sinh_shared",
           sympy_head="", sympy=lambda sp, x: sp.sinh(x), callable_by_name=False,
           doc="sinh(x), computed in C by the same steps as cosh_shared(x)"),
    _unary("cosh_shared", np.cosh, lambda b, g, x, out: b.mul(g, b.sinh(x)), "np.cosh", c="xc_cosh_shared",
           sympy_head="", sympy=lambda sp, x: sp.cosh(x), callable_by_name=False,
           doc="cosh(x), computed in C by the same steps as sinh_shared(x)"),
    _unary("tanh", np.tanh, lambda b, g, x, out: b.mul(g, b.sub(1.0, b.square(out))), "np.tanh", c="xc_tanh"),
    _unary("abs", np.abs, lambda b, g, x, out: b.mul(g, b.sign(x)), "np.abs", c="fabs", sympy_head="Abs",
           kinks=(0.0,), edges=(((0.0,), (0.0,)),)),
    _unary("sign", np.sign, None, "np.sign", c="xc_sign", kinks=(0.0,), edges=(((0.0,), (0.0,)),)),
    _unary("sigmoid", runtime.sigmoid, lambda b, g, x, out: b.mul(g, b.mul(out, b.sub(1.0, out))),
           "sigmoid", c="xc_sigmoid", sympy=lambda sp, x: 1 / (1 + sp.exp(-x)), edges=(((-800.0,), (0.0,)),)),
    # sigmoid(x)·sigmoid(-x), sigmoid's slope: the stability rule sigmoid_pair's form of
    # sigmoid(u)·(1 - sigmoid(u)) (not in the language). C computes it and its derivative,
    # the op sigmoid_slope_slope, from one exp(-|x|) and one division, as w·(1 - w), w =
    # sigmoid(-|x|) (c_exp.xc_sigmoid_slope), NumPy both from one tanh(x/2) in one call
    # (runtime.sigmoid_slopes). Derivative s·(1 - 2 sigmoid(x)) = -sign(x)·s·tanh(|x|/2),
    # which does not cancel near 0 as 1 - 2 sigmoid(x) does.
    _unary("sigmoid_slope", runtime.sigmoid_slope,
           lambda b, g, x, out: b.mul(g, b.apply("sigmoid_slope_slope", x)), "sigmoid_slope",
           c="xc_sigmoid_slope", sympy_head="", sympy=lambda sp, x: sp.exp(-x) / (1 + sp.exp(-x)) ** 2,
           callable_by_name=False, edges=(((0.0,), (0.0,)), ((-800.0,), (0.0,))),
           doc="sigmoid(x)·sigmoid(-x) = exp(-|x|)/(1 + exp(-|x|))², sigmoid's slope"),
    # sigmoid_slope's derivative -sign(x)·s·tanh(|x|/2) (s = sigmoid_slope(x)), from the
    # value's exp and division (c_exp.xc_sigmoid_slope_slope, runtime.sigmoid_slopes). Its
    # own derivative s·(1 - 6s) (1 - 4s = tanh(x/2)²), which cancels only at its zeros.
    _unary("sigmoid_slope_slope", runtime.sigmoid_slope_slope,
           lambda b, g, x, out: b.mul(g, _sigmoid_bend(b, b.apply("sigmoid_slope", x))), "sigmoid_slope_slope",
           c="xc_sigmoid_slope_slope", sympy_head="",
           sympy=lambda sp, x: sp.exp(-x) * (sp.exp(-x) - 1) / (1 + sp.exp(-x)) ** 3,
           callable_by_name=False, edges=(((0.0,), (-0.125,)), ((-800.0,), (0.0,))),
           doc="the derivative of sigmoid(x)·sigmoid(-x), -sign(x)·s·tanh(|x|/2), s = sigmoid_slope(x); "
               "derivative s·(1 - 6s)"),
    # sigmoid(x)·sigmoid(-x) where the trace has the product of the two sigmoids beside the
    # kernel's sigmoid(x) (c_backend.c_forms puts it in: the derivative of sigmoid(x) and of
    # 1 - sigmoid(x), rewritten by one_minus_sigmoid): C computes it from that sigmoid's own
    # exp and division, without a second division (c_exp.xc_sigmoid_slope_shared).
    _unary("sigmoid_slope_shared", runtime.sigmoid_pair_product,
           lambda b, g, x, out: b.mul(g, b.apply("sigmoid_slope_slope", x)), "sigmoid_pair_product",
           c="xc_sigmoid_slope_shared", sympy_head="", sympy=lambda sp, x: sp.exp(-x) / (1 + sp.exp(-x)) ** 2,
           callable_by_name=False, edges=(((0.0,), (0.0,)), ((-800.0,), (0.0,))),
           doc="sigmoid(x)·sigmoid(-x), computed in C from the steps of sigmoid(x)"),
    _unary("relu", runtime.relu, lambda b, g, x, out: b.mul(g, b.gt(x, 0.0)), "relu", c="xc_relu",
           sympy=lambda sp, x: sp.Max(x, 0), kinks=(0.0,), edges=(((0.0,), (0.0,)),)),
    _unary("softplus", runtime.softplus, lambda b, g, x, out: b.mul(g, b.sigmoid(x)), "softplus", c="xc_softplus",
           sympy=lambda sp, x: sp.log(1 + sp.exp(x)), edges=(((800.0,), (1.0,)),)),
    _binary_call("maximum", np.maximum,
                 (lambda b, g, x, y, out: b.mul(g, _tie_split(b, b.gt(x, y), x, y)),
                  lambda b, g, x, y, out: b.mul(g, _tie_split(b, b.lt(x, y), x, y))),
                 "np.maximum", c="xc_maximum", sympy_head="Max", domain=((-3.0, 3.0), (-3.0, 3.0)),
                 edges=(((1.0, 1.0), (0.5, 0.5)), ((INF, INF), (0.5, 0.5)), ((math.nan, 1.0), (0.0, 0.0)))),
    _binary_call("minimum", np.minimum,
                 (lambda b, g, x, y, out: b.mul(g, _tie_split(b, b.lt(x, y), x, y)),
                  lambda b, g, x, y, out: b.mul(g, _tie_split(b, b.gt(x, y), x, y))),
                 "np.minimum", c="xc_minimum", sympy_head="Min", domain=((-3.0, 3.0), (-3.0, 3.0)),
                 edges=(((1.0, 1.0), (0.5, 0.5)), ((-INF, -INF), (0.5, 0.5)))),
    # The h0-partial is 1 where x == 0 (the value is h0 there), else 0; `where`, not a
    # product with the 0/1 mask, so an infinite seed elsewhere gives 0, not NaN.
    _binary_call("heaviside", np.heaviside, (None, lambda b, g, x, h0, out: b.where(b.eq(x, 0.0), g, 0.0)),
                 "np.heaviside", c="xc_heaviside",
                 sympy_head="Heaviside", domain=((-3.0, 3.0), (0.0, 1.0)), kinks=(0.0,),
                 edges=(((0.0, 0.25), (0.0, 1.0)), ((-0.0, 0.25), (0.0, 1.0)), ((2.0, 0.25), (0.0, 0.0))),
                 doc="heaviside(x, h0): 0 for x < 0, h0 at 0, 1 for x > 0 (as np.heaviside)"),
    _binary_call("xlogy", runtime.xlogy,
                 (lambda b, g, x, y, out: b.mul(g, b.log(y)),
                  lambda b, g, x, y, out: _unless_zero(b, x, lambda: b.mul(g, b.div(x, y)))),
                 "xlogy", c="xc_xlogy", sympy=lambda sp, x, y: x * sp.log(y),
                 domain=((-3.0, 3.0), (0.1, 5.0)),
                 edges=(((0.0, 2.0), (math.log(2.0), 0.0)), ((0.0, 0.0), (-INF, 0.0))),
                 doc="x * log(y), 0 where x == 0 (so is its y-partial)"),
]


def _reduction_attrs(shapes, attrs):
    axis = _shapes.normalize_axis(attrs.get("axis"), len(shapes[0]), "axis")
    keepdims = bool(attrs.get("keepdims"))
    out = {}
    if axis is not None and (keepdims or len(axis) < len(shapes[0])):  # all axes: as None
        out["axis"] = axis
    if keepdims:
        out["keepdims"] = True
    return out


def _axis_attr(default, new_axis: bool = False):
    """One `axis` option, normalized; `new_axis`: it may name the axis the op adds (stack)."""
    def prepare(shapes, attrs):
        ndim = len(shapes[0]) + new_axis
        axes = _shapes.normalize_axis(attrs.get("axis", default), ndim, "axis")
        if axes is None:   # (all axes: one for a vector)
            axes = tuple(range(ndim))
        if len(axes) != 1:   # (a tuple's first axis alone would be another function, silently)
            given = attrs.get("axis")
            whole = " (axis=None means all axes: reshape to a vector for that)" if given is None else ""
            raise _shapes.ShapeError(f"axis: one axis (an integer), got {given!r}{whole}")
        return {"axis": axes[0]}
    return prepare


def _reduction(name, evaluate, numpy, jvp, vjp, doc, **kw):
    return OpDef(name, 1, evaluate, (None,), numpy, shape=T.shape_reduce, prepare=_reduction_attrs,
                 jvp=jvp, vjp=vjp, keywords=(("axis", None), ("keepdims", False)), doc=doc, across=True, **kw)


def _compare(name, symbol, relation):
    return OpDef(name, 2, getattr(runtime, name), (None, None), name, c=f"xc_{name}",
                 infix=symbol, uinfix={"<=": "≤", ">=": "≥", "!=": "≠"}.get(symbol, symbol),
                 prec=PREC_CMP, callable_by_name=False,
                 sympy=lambda sp, x, y, _f=relation: sp.Piecewise((1.0, _f(sp, x, y)), (0.0, True)),
                 doc=f"1.0 where x {symbol} y, else 0.0 (derivative 0)")


_TABLE += [
    # Comparisons give 0/1 floats: `where` selects with them, masks multiply.
    _compare("lt", "<", lambda sp, x, y: sp.StrictLessThan(x, y)),
    _compare("le", "<=", lambda sp, x, y: sp.LessThan(x, y)),
    _compare("gt", ">", lambda sp, x, y: sp.StrictGreaterThan(x, y)),
    _compare("ge", ">=", lambda sp, x, y: sp.GreaterThan(x, y)),
    _compare("eq", "==", lambda sp, x, y: sp.Eq(x, y)),
    _compare("ne", "!=", lambda sp, x, y: sp.Ne(x, y)),
    OpDef("where", 3, runtime.where,
          (None, lambda b, g, c, x, y, out: b.where(c, g, 0.0),
           lambda b, g, c, x, y, out: b.where(c, 0.0, g)),
          "where", c="xc_where", sympy=lambda sp, c, x, y: sp.Piecewise((x, sp.Ne(c, 0)), (y, True)),
          doc="where(c, x, y): x where c is nonzero, else y; the derivative follows the branch taken"),

    # Reductions.
    _reduction("sum", np.sum, "np.sum", T.jvp_sum, T.vjp_sum, linear=True,
               doc="sum over all elements, or over `axis` (keepdims=True keeps them as 1s)"),
    _reduction("mean", np.mean, "np.mean", T.jvp_mean, T.vjp_mean, linear=True, doc="mean, as sum"),
    _reduction("max", np.max, "np.max", T.jvp_extreme, T.vjp_extreme, bounds=T.bounds_nonempty,
               doc="largest element; at ties the derivative is shared equally (max(x, y) with "
                   "two arguments is the elementwise maximum)"),
    _reduction("min", np.min, "np.min", T.jvp_extreme, T.vjp_extreme, bounds=T.bounds_nonempty,
               doc="smallest element; ties share the derivative equally"),
    _reduction("logsumexp", runtime.logsumexp, "logsumexp", T.jvp_logsumexp, T.vjp_logsumexp,
               bounds=T.bounds_nonempty,
               doc="log(sum(exp(x))), computed with the maximum taken out (no overflow)"),
    OpDef("softmax", 1, runtime.softmax, (None,), "softmax", shape=T.shape_same, prepare=_axis_attr(-1),
          bounds=T.bounds_nonempty,
          jvp=T.jvp_softmax, vjp=T.vjp_softmax, keywords=(("axis", -1),), across=True,
          doc="exp(x) / sum(exp(x)) along `axis` (default the last), the maximum taken out"),
    OpDef("log_softmax", 1, runtime.log_softmax, (None,), "log_softmax", shape=T.shape_same,
          prepare=_axis_attr(-1), bounds=T.bounds_nonempty,
          jvp=T.jvp_log_softmax, vjp=T.vjp_log_softmax, keywords=(("axis", -1),), across=True,
          doc="log(softmax(x)) along `axis` (default the last), as (x - max) - log1p(sum of the "
              "others' exp(x - max)): finite where softmax underflows, the dominant element's "
              "value and derivative kept to its last digits"),
    OpDef("norm", 1, runtime.norm, (None,), "norm", shape=T.shape_scalar, across=True,
          jvp=T.jvp_norm, vjp=T.vjp_norm,
          doc="2-norm of all elements; its derivative at 0 is taken as 0 (a subgradient)"),

    # Linear algebra and structure.
    OpDef("matmul", 2, np.matmul, (None, None), "@", infix="@", uinfix="@", prec=PREC_MUL,
          callable_by_name=False, shape=T.shape_matmul, jvp=T.jvp_matmul, vjp=T.vjp_matmul,
          doc="matrix product of vectors and matrices (x @ y; dot(x, y) is the same)"),
    OpDef("outer", 2, np.outer, (None, None), "np.outer", shape=T.shape_outer,
          jvp=T.jvp_outer, vjp=T.vjp_outer, linear=True, doc="outer product of two vectors"),
    OpDef("transpose", 1, np.transpose, (None,), "np.transpose", shape=T.shape_transpose,
          jvp=T.jvp_linear_unary("transpose"), vjp=T.vjp_transpose, fmt=T.fmt_transpose, linear=True,
          doc="reverses the axes (x.T)"),
    OpDef("reshape", 1, runtime.reshape, (None,), "reshape",
          shape=T.shape_reshape, jvp=T.jvp_linear_unary("reshape"), vjp=T.vjp_reshape, linear=True,
          keywords=(("shape", None),), doc="reshape(x, shape=(3, -1))"),
    OpDef("index", 1, runtime.index, (None,), "", shape=T.shape_index, jvp=T.jvp_index, bounds=T.key_bounds(0),
          vjp=T.vjp_index, fmt=T.fmt_index, linear=True, callable_by_name=False,
          doc="x[key] with constant indices and slices"),
    OpDef("scatter", 2, runtime.scatter, (None, None), "scatter", shape=T.shape_scatter, bounds=T.key_bounds(1),
          jvp=T.jvp_scatter, vjp=T.vjp_scatter, linear=True, callable_by_name=False,
          doc="zeros shaped like the second argument with the first at [key]: the adjoint of x[key]"),
    OpDef("stack", VARIADIC, runtime.stack, (), "stack", shape=T.shape_stack, prepare=_axis_attr(0, new_axis=True),
          jvp=T.jvp_stack, vjp=T.vjp_stack, linear=True, keywords=(("axis", 0),),
          doc="stack(a, b, ..., axis=0): arrays of one shape along a new axis"),
    OpDef("concatenate", VARIADIC, runtime.concatenate, (), "concatenate", shape=T.shape_concatenate,
          prepare=_axis_attr(0), jvp=T.jvp_concatenate, vjp=T.vjp_concatenate, linear=True,
          keywords=(("axis", 0),), doc="concatenate(a, b, ..., axis=0) along an existing axis"),

    # What derivative passes insert: broadcasting, its adjoint, and a mean's count.
    OpDef("broadcast_to", 2, runtime.broadcast_to, (None, None), "broadcast_to", shape=T.shape_of_ref,
          jvp=T.jvp_broadcast_to, vjp=T.vjp_broadcast_to, linear=True, callable_by_name=False,
          doc="the first argument broadcast to the second's shape (after re-inserting `axis`)"),
    OpDef("sum_to", 2, runtime.sum_to, (None, None), "sum_to", shape=T.shape_of_ref,
          jvp=T.jvp_sum_to, vjp=T.vjp_sum_to, linear=True, callable_by_name=False,
          doc="the first argument summed down to the second's shape (the adjoint of broadcasting)"),
    OpDef("size_ratio", 2, runtime.size_ratio, (None, None), "size_ratio", shape=T.shape_scalar,
          jvp=T.no_derivative, vjp=T.no_derivative, callable_by_name=False,
          doc="size(x) / size(out): how many elements a mean averages"),
]

_TABLE += [
    # A square matrix's diagonal and a vector's diagonal matrix, each the other's adjoint;
    # SymPy's Trace(A) converts to sum(diagonal(A)).
    OpDef("diagonal", 1, np.diagonal, (None,), "np.diagonal", shape=T.shape_diagonal,
          jvp=T.jvp_linear_unary("diagonal"), vjp=T.vjp_diagonal, linear=True, callable_by_name=False,
          doc="the diagonal of a square matrix, as a vector"),
    OpDef("diag", 1, np.diag, (None,), "np.diag", shape=T.shape_diag,
          jvp=T.jvp_linear_unary("diag"), vjp=T.vjp_diag, linear=True, callable_by_name=False,
          doc="the square matrix with a vector on its diagonal and zeros elsewhere"),
]

# Special functions and the other elementary ones (erf, gamma, arctan2, floor...): in
# ops_special, to keep this file short; one table still.
_TABLE += _SPECIAL

_TABLE += [
    # hypot3's partials x/h as the backends compute them (c_forms.hypot_quotients makes
    # ops_special's hypot3_slope<i> under its guard this): its value is three partials'
    # one reciprocal (x·k·(1/(h·k)), k a power of two by the sum of squares s), its
    # derivative the quotient's. Differentiated step by step, that product's 1/(h·k)²
    # overflowed or underflowed where the Hessian, (I - n·nᵀ)/h, is a normal float: -inf
    # at h = 1e-300, the n·nᵀ term 0 at 1e300; the quotient's, 1/h - (x/h)·(x/h)/h through
    # h, cancelled at (1e-9, 3, 2e-9): hypot3's derivatives are the slopes' own. Not in
    # the language.
    OpDef("over_norm", 3, runtime.over_norm, _QUOTIENT + (None,), "over_norm", c="xc_over_norm",
          sympy=lambda sp, x, h, s: x / h, domain=((-3.0, 3.0), (0.5, 3.0), (0.0, 9.0)),
          callable_by_name=False,
          edges=(((3.0, 4.0, 25.0), (0.25, -0.1875, 0.0)),
                 ((3.0 * 2.0 ** -1000, 2.0 ** -998, 0.0), (2.0 ** 998, -0.75 * 2.0 ** 998, 0.0))),
          doc="x / h as x·k·(1/(h·k)), k = 2^60 where s <= 2^120, else 2^-60: a quotient by a norm "
              "whose reciprocal several share; derivative 1/h in x, -x/h² in h, 0 in s"),
]

OPS: dict[str, OpDef] = {op.name: op for op in _TABLE}

# Names a user may call in the string language (the parser's function set).
FUNCTIONS: dict[str, OpDef] = {name: op for name, op in OPS.items() if op.callable_by_name}

# Function names that stay variable names where they are not called: these functions
# came after formulas had used the names (gamma a discount factor, erf or floor a
# quantity), so `gamma * x` keeps meaning an input gamma; `sin * 2` is still an error.
VARIABLE_TOO: frozenset = frozenset(op.name for op in _SPECIAL)

# Named constants of the string language.
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
