"""The op table, continued: special functions and the rest of the elementary ones
(erf, gamma, digamma, arctan2, floor, ...). One table still: ops.py appends these
entries to its own before it builds OPS; they are in this file only to keep ops.py
short, and everything said in ops' docstring holds for them.

Conventions here (tested by `edges` and tests/test_edges.py on both backends):
  floor' = ceil' = 0 everywhere, at the integers too (as sign' = 0); frac = x - floor(x)
  has frac' = 1 everywhere;
  gamma' = gamma·digamma: -inf at ±0, NaN at the negative integers (gamma is NaN there);
  lgamma' = digamma: -inf at +0, +inf at -0 (the one-sided limits), NaN at negative integers;
  digamma' = polygamma(1, x): +inf at every pole;
  polygamma(n, x): n is an order (an integer 0..30), not a variable: its n-partial is 0;
  sinc is NumPy's normalized sin(πx)/(πx), SymPy's sinc(x) = sin(x)/x converts to
  sinc(x/π); sinc'(0) = 0, and its slope and Hessian are within a few ulps near 0 too;
  hypot' at (0, 0) is 0 (a subgradient, as norm's); arctan2' at (0, 0) is NaN (0/0);
  cbrt'(±0) = +inf; arcsinh, arccosh, arctanh: their formulas, inf at arccosh(1) and
  arctanh(±1).
"""

from __future__ import annotations

import math

import numpy as np

from . import runtime
from . import tensor_rules as T
from . import tensor_rules_softmax as S
from .op_def import INF, OpDef, _binary_call, _unary, seed

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_PI = math.pi
_INTEGERS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)   # kinks of floor, ceil, frac in the ±3 domain


def _gaussian(b, x):
    """(2/√π)·exp(-x²), the derivative of erf."""
    return b.mul(_TWO_OVER_SQRT_PI, b.exp(b.neg(b.square(x))))


# sinc'(x) = Σ_k≥1 a_k·x^(2k-1), a_k = (-1)^k·2k·π^2k/(2k+1)!: below _SINC_SMALL its first
# eight terms (the ninth is 1e-19 of the sum there; with seven, the Hessian was 8e-14 off).
# At 0.25 both forms of the slope and of its derivative are within 1.5e-15 of the exact
# values; at 0.1 the quotient's Hessian was 8e-15 off, at 0.5 the series' 2e-13.
_SINC_SMALL = 0.25
_SINC_SLOPE_SERIES = tuple((-1) ** k * 2 * k * _PI ** (2 * k) / math.factorial(2 * k + 1) for k in range(1, 9))


def _sinc_slope(b, x, out):
    """sinc'(x) = (cos(πx) - sinc(x)) / x above _SINC_SMALL, and its Maclaurin series (in
    Horner form in x²) at and below it, where that difference cancels: at 1e-9 it kept
    no digit (0 and, differentiated, -9.87 for -3.29). Each branch takes a safe argument
    where it is not taken (1 for the quotient, 0 for the series), so that neither its
    value nor its derivatives are NaN there: an adjoint of 0 times those would be NaN
    (the quotient was 0/0 at 0, the series overflows at 1e200)."""
    small = b.le(b.abs(x), _SINC_SMALL)
    near = b.where(small, x, 0.0)
    u = b.square(near)
    series = _SINC_SLOPE_SERIES[-1]
    for a in reversed(_SINC_SLOPE_SERIES[:-1]):
        series = b.add(a, b.mul(u, series))
    far = b.where(small, 1.0, x)
    return b.where(small, b.mul(near, series), b.div(b.sub(b.cos(b.mul(_PI, far)), out), far))


def _safe_norm(b, zero, out):
    """out, 1 where it is 0 (zero): the denominator of the branch not taken there, so that
    it is not 0/0 (as _sinc_slope's): reverse over forward multiplies its derivatives by
    an adjoint of 0, which gave a NaN Hessian of hypot at (0, 0) for forward over
    reverse's 0. The bits elsewhere are out's."""
    return b.where(zero, 1.0, out)


def _over_norm(b, x, y, out):
    """x / hypot, 0 where hypot is 0 (the derivative of hypot, a subgradient at 0), as the
    op hypot_slope(x, y, h), h the denominator (out, 1 where 0): the instructions the
    quotient x / h took, but the op's derivative is its own (below), where the quotient's,
    1/h - (x/h)·(x/h)/h, cancelled: 0 for y²/h³ = 3.7e-20 at (3, 1e-9). Every backend
    divides by h itself (c_forms.hypot_quotients), so the first derivative's code and
    bits are the quotient's."""
    zero = b.eq(out, 0.0)
    return b.where(zero, 0.0, b.apply("hypot_slope", x, y, _safe_norm(b, zero, out)))


def _norm_of(b, x, y, h):
    """hypot(x, y) for hypot_slope(x, y, h)'s derivative: the hypot that h guards (h =
    where(hypot == 0, 1, hypot) of x and y in either order, as _over_norm makes it), else
    a new one (the builder's instructions are read directly, as ops._pow_x_partial's)."""
    ins = b.instrs[b.source_of(h)]
    if ins[0] == "where" and b.const_value(ins[1][1]) == 1.0:
        r = b.source_of(ins[1][2])
        got = b.instrs[r]
        if got[0] == "hypot" and tuple(map(b.source_of, got[1])) in ((x, y), (y, x)):
            return r
    return b.hypot(x, y)


def _hypot_slope_partial(b, g, x, y, h, out, wrt_x: bool):
    """∂(x/r)/∂x = (y/r)²/r and ∂(x/r)/∂y = -(x/r)(y/r)/r, r = hypot(x, y): products of
    the unit vector's components, which do not cancel (the quotient's derivative,
    (1 - (x/r)²)/r, did); 0 where r is 0 (r taken as 1 there, so that no branch is 0/0).
    y/r is hypot_slope(y, x, h), the value's other partial where hypot's gradient has it."""
    r = _norm_of(b, x, y, h)
    zero = b.eq(r, 0.0)
    t = b.apply("hypot_slope", y, x, h)
    d = b.where(zero, 0.0, b.div(b.mul(t if wrt_x else out, t), _safe_norm(b, zero, r)))
    return b.mul(g, d) if wrt_x else b.neg(b.mul(g, d))


def _over_norm_squared(b, u, y, x):
    """u / (x² + y²) as (u / h) / h with h = hypot(y, x): no overflow of x² at 1e200."""
    h = b.hypot(y, x)
    return b.div(b.div(u, h), h)


def _step(name, evaluate, numpy, c, sympy_head, doc):
    return _unary(name, evaluate, None, numpy, c=c, sympy_head=sympy_head, kinks=_INTEGERS,
                  edges=(((1.0,), (0.0,)), ((-0.5,), (0.0,))), doc=doc)


TABLE = [
    _unary("erf", runtime.erf, lambda b, g, x, out: b.mul(g, _gaussian(b, x)), "erf", c="erf",
           edges=(((0.0,), (_TWO_OVER_SQRT_PI,)), ((INF,), (0.0,))), doc="the error function"),
    _unary("erfc", runtime.erfc, lambda b, g, x, out: b.neg(b.mul(g, _gaussian(b, x))), "erfc", c="erfc",
           edges=(((0.0,), (-_TWO_OVER_SQRT_PI,)), ((-INF,), (-0.0,))), doc="1 - erf(x), accurate where erf is near 1"),
    # erfc(x) as the C kernels and the tape VM compute it where the kernel also computes
    # exp(-x²) of the same x, erfc's and erf's derivative's (c_backend.c_forms puts it in;
    # not in the language): c_erfc's xc_erfc, whose exp is that very expression, so that gcc
    # computes it once. Alone, libmvec's erfc is faster, and closer (1.5 ulps, xc_erfc 4.6).
    _unary("erfc_shared", runtime.erfc, lambda b, g, x, out: b.neg(b.mul(g, _gaussian(b, x))), "erfc",
           c="xc_erfc", sympy_head="", sympy=lambda sp, x: sp.erfc(x), callable_by_name=False,
           edges=(((0.0,), (-_TWO_OVER_SQRT_PI,)), ((-INF,), (-0.0,))),
           doc="erfc(x), computed in C from the exp(-x²) of its derivative"),
    _unary("gamma", runtime.gamma, lambda b, g, x, out: b.mul(g, b.mul(out, b.digamma(x))), "gamma", c="tgamma",
           domain=((0.2, 4.0),), edges=(((0.0,), (-INF,)), ((-0.0,), (-INF,)), ((INF,), (INF,))),
           doc="Γ(x) (C's tgamma): ±inf at ±0, NaN at negative integers; derivative Γ(x)·digamma(x)"),
    _unary("lgamma", runtime.lgamma, lambda b, g, x, out: b.mul(g, b.digamma(x)), "lgamma", c="lgamma",
           sympy_head="loggamma", sympy=lambda sp, x: sp.log(sp.Abs(sp.gamma(x))), domain=((0.2, 5.0),),
           edges=(((0.0,), (-INF,)), ((-0.0,), (INF,)), ((INF,), (INF,))),
           doc="log|Γ(x)| (C's lgamma; SymPy's loggamma for x > 0): +inf at the poles; derivative digamma(x)"),
    _unary("digamma", runtime.digamma, lambda b, g, x, out: b.mul(g, b.polygamma(1.0, x)), "digamma",
           c="xc_digamma", domain=((0.2, 5.0),), edges=(((0.0,), (INF,)), ((-0.0,), (INF,)), ((INF,), (0.0,))),
           doc="ψ(x) = Γ'(x)/Γ(x) (SymPy's polygamma(0, x)); derivative polygamma(1, x)"),
    # The order's interval is one point: tests do not perturb or differentiate it (see OpDef.domain).
    OpDef("polygamma", 2, runtime.polygamma,
          (None, lambda b, g, n, x, out: b.mul(g, b.polygamma(b.add(n, 1.0), x))), "polygamma",
          c="xc_polygamma", sympy_head="polygamma", domain=((1.0, 1.0), (0.2, 5.0)),
          edges=(((1.0, 0.0), (0.0, -INF)), ((2.0, -0.0), (0.0, INF))),
          doc="polygamma(n, x): the n-th derivative of digamma, for integer orders 0 <= n <= 30 "
              "(NaN otherwise); its derivative in x is polygamma(n + 1, x), in n 0"),
    _unary("cbrt", np.cbrt, lambda b, g, x, out: b.div(g, b.mul(3.0, b.square(out))), "np.cbrt", c="cbrt",
           sympy=lambda sp, x: sp.real_root(x, 3), edges=(((0.0,), (INF,)), ((-0.0,), (INF,))),
           doc="the real cube root (negative for x < 0)"),
    _unary("log2", np.log2, lambda b, g, x, out: b.div(g, b.mul(x, math.log(2.0))), "np.log2", c="log2",
           sympy=lambda sp, x: sp.log(x, 2), domain=((0.1, 5.0),),
           edges=(((0.0,), (INF,)), ((-0.0,), (-INF,)))),
    _unary("log10", np.log10, lambda b, g, x, out: b.div(g, b.mul(x, math.log(10.0))), "np.log10", c="log10",
           sympy=lambda sp, x: sp.log(x, 10), domain=((0.1, 5.0),),
           edges=(((0.0,), (INF,)), ((-0.0,), (-INF,)))),
    _unary("arcsinh", np.arcsinh, lambda b, g, x, out: b.div(g, b.hypot(1.0, x)), "np.arcsinh", c="xc_asinh",
           sympy_head="asinh", edges=(((0.0,), (1.0,)),)),
    _unary("arccosh", np.arccosh,
           lambda b, g, x, out: b.div(g, b.mul(b.sqrt(b.sub(x, 1.0)), b.sqrt(b.add(x, 1.0)))),
           "np.arccosh", c="xc_acosh", sympy_head="acosh", domain=((1.2, 5.0),), edges=(((1.0,), (INF,)),)),
    _unary("arctanh", np.arctanh, lambda b, g, x, out: b.div(g, b.apply("one_minus_square", x)),
           "np.arctanh", c="xc_atanh", sympy_head="atanh", domain=((-0.9, 0.9),),
           edges=(((1.0,), (INF,)), ((-1.0,), (INF,)))),
    # arctanh's denominator (1 - x)(1 + x) as one op, so that its derivative is -2x: the
    # product's own, -(1 + x) + (1 - x), cancels for small x (the Hessian was 0 below
    # 1e-16, 2.7e-8 off at 1e-9). The value keeps the product's bits (within an ulp of
    # 1 - x²; 1 - x is exact near 1, 1 + x near -1, so its digits are kept there) and its
    # cost: a select of 1 - x·x where |x| < 1/2 made NumPy's value and gradient 1.6x
    # slower. Not in the language.
    _unary("one_minus_square", runtime.one_minus_square, lambda b, g, x, out: b.mul(g, b.mul(-2.0, x)),
           "one_minus_square", c="xc_one_minus_square", sympy=lambda sp, x: 1 - x ** 2, callable_by_name=False,
           edges=(((1.0,), (-2.0,)), ((-0.5,), (1.0,))),
           doc="1 - x² as (1 - x)(1 + x), arctanh's denominator; derivative -2x"),
    _step("floor", np.floor, "np.floor", "floor", "floor", "the largest integer <= x; derivative 0 (at the integers too)"),
    _step("ceil", np.ceil, "np.ceil", "ceil", "ceiling",
          "the smallest integer >= x (SymPy's ceiling); derivative 0 (at the integers too)"),
    _unary("frac", runtime.frac, seed, "frac", c="xc_frac", kinks=_INTEGERS,
           edges=(((1.0,), (1.0,)), ((-0.5,), (1.0,))),
           doc="x - floor(x), in [0, 1) (SymPy's frac); derivative 1 (at the integers too)"),
    _unary("sinc", np.sinc, lambda b, g, x, out: b.mul(g, _sinc_slope(b, x, out)), "np.sinc", c="xc_sinc",
           sympy_head="", sympy=lambda sp, x: sp.sinc(sp.pi * x), edges=(((0.0,), (0.0,)),),
           doc="NumPy's normalized sinc, sin(πx)/(πx), 1 at 0 (SymPy's sinc(x) = sin(x)/x is sinc(x/π))"),
    _binary_call("arctan2", np.arctan2,
                 (lambda b, g, y, x, out: b.mul(g, _over_norm_squared(b, x, y, x)),
                  lambda b, g, y, x, out: b.neg(b.mul(g, _over_norm_squared(b, y, y, x)))),
                 "np.arctan2", c="atan2", sympy_head="atan2", kinks=(0.0,),
                 edges=(((0.0, 1.0), (1.0, 0.0)), ((1.0, 0.0), (0.0, -1.0))),
                 doc="arctan2(y, x): the angle of the point (x, y), in [-π, π]; NaN derivative at (0, 0)"),
    _binary_call("hypot", np.hypot,
                 (lambda b, g, x, y, out: b.mul(g, _over_norm(b, x, y, out)),
                  lambda b, g, x, y, out: b.mul(g, _over_norm(b, y, x, out))),
                 "np.hypot", c="hypot", sympy=lambda sp, x, y: sp.sqrt(x ** 2 + y ** 2),
                 edges=(((0.0, 0.0), (0.0, 0.0)), ((3.0, 4.0), (0.6, 0.8))),
                 doc="sqrt(x² + y²) without overflow; its derivative at (0, 0) is 0 (a subgradient)"),
    # hypot's partials (_over_norm). h is a hint, not an argument of the function: the
    # denominator the kernel has, which backends divide by where it is that (the value's
    # hypot of x and y, 1 where 0: c_forms.hypot_quotients), else they compute hypot.
    OpDef("hypot_slope", 3, runtime.hypot_slope,
          (lambda b, g, x, y, h, out: _hypot_slope_partial(b, g, x, y, h, out, True),
           lambda b, g, x, y, h, out: _hypot_slope_partial(b, g, x, y, h, out, False), None),
          "hypot_slope", c="xc_hypot_slope", sympy_head="",
          sympy=lambda sp, x, y, h: x / sp.sqrt(x ** 2 + y ** 2), callable_by_name=False,
          edges=(((0.0, 0.0, 1.0), (0.0, 0.0, 0.0)), ((0.0, 2.0, 2.0), (0.5, -0.0, 0.0))),
          doc="x / hypot(x, y), 0 where hypot is 0 (hypot's partial); h, the kernel's hypot of x "
              "and y (1 where 0), is a hint the function does not depend on; derivative (y/r)²/r in x, "
              "-(x/r)(y/r)/r in y"),
]


# The stable forms the stability rewrites put in (exprcompiler/stability/rules.py), each a
# primitive with its own derivative: built from `where`, the branch not taken would
# still feed its infinite derivative times 0 (NaN) into gradients.
def _logaddexp_share(b, x, y, flip: bool = False):
    """∂logaddexp/∂x = sigmoid(x - y), and ∂/∂y = sigmoid(-(x - y)) (flip): the same
    difference (y - x is -(x - y) exactly), so a C kernel computes exp(-|x - y|) once for
    the value and both partials. 0.5 at equal infinities (inf - inf is NaN), as
    maximum's. At a finite tie sigmoid(0) is 0.5 too, and it stays the branch taken
    there: a constant's derivative, 0, would make every Hessian wrong at a tie."""
    d = b.sub(x, y)
    s = b.sigmoid(b.neg(d) if flip else d)
    return _at_nan_tie(b, b.eq(x, y), s, 0.5, d)


TABLE += [
    _binary_call("logaddexp", np.logaddexp,
                 (lambda b, g, x, y, out: b.mul(g, _logaddexp_share(b, x, y)),
                  lambda b, g, x, y, out: b.mul(g, _logaddexp_share(b, x, y, flip=True))),
                 "np.logaddexp", c="xc_logaddexp", sympy=lambda sp, x, y: sp.log(sp.exp(x) + sp.exp(y)),
                 domain=((-3.0, 3.0), (-3.0, 3.0)),
                 edges=(((INF, INF), (0.5, 0.5)), ((0.0, 0.0), (0.5, 0.5)), ((800.0, 0.0), (1.0, 0.0))),
                 doc="log(exp(x) + exp(y)) without overflow or underflow; derivative sigmoid(x - y) "
                     "(0.5 at a tie, equal infinities included)"),
    # The slope -1/expm1(0.0 - x) = -e^x/(1 - e^x) as an op of its own, log1mexp_slope:
    # -inf at ±0 (0.0 - x is +0.0 at both zeros: the limit from below, where the function
    # lives). Written out, -g/expm1(0.0 - x) was -0.0 below -709.78 (expm1 overflows; the
    # slope is -e^x, a subnormal float) and its derivative 0·inf = NaN; the op's own
    # derivative is s·(1 - s) (s <= 0: no cancellation), finite everywhere. Each backend
    # takes it from the value's own steps (runtime.log1mexp_slopes; C: xc_log1mexp_slope,
    # -e^x/|expm1(x)| from xc_log1mexp's reduction, one division).
    _unary("log1mexp", runtime.log1mexp,
           lambda b, g, x, out: b.mul(g, b.apply("log1mexp_slope", x)),
           "log1mexp", c="xc_log1mexp", sympy=lambda sp, x: sp.log(1 - sp.exp(x)), domain=((-5.0, -0.05),),
           edges=(((-0.0,), (-INF,)), ((0.0,), (-INF,)), ((-INF,), (-0.0,)), ((-745.0,), (-5e-324,))),
           doc="log(1 - exp(x)) for x <= 0 (NaN above): accurate near 0 and below -37; derivative -1/expm1(-x)"),
    _unary("log1mexp_slope", runtime.log1mexp_slope, lambda b, g, x, out: b.mul(g, b.mul(out, b.sub(1.0, out))),
           "log1mexp_slope", c="xc_log1mexp_slope", sympy_head="",
           sympy=lambda sp, x: -sp.exp(x) / (1 - sp.exp(x)), callable_by_name=False, domain=((-5.0, -0.05),),
           edges=(((-0.0,), (-INF,)), ((-INF,), (-0.0,)), ((-745.0,), (-5e-324,))),
           doc="-1/expm1(-x) = -exp(x)/(1 - exp(x)), log1mexp's slope (-exp(x) below -709.78, where "
               "expm1(-x) overflows); derivative s·(1 - s)"),
    _unary("cosm1", runtime.cosm1, lambda b, g, x, out: b.neg(b.mul(g, b.sin(x))), "cosm1", c="xc_cosm1",
           sympy=lambda sp, x: sp.cos(x) - 1, edges=(((0.0,), (0.0,)),),
           doc="cos(x) - 1 as -2·sin(x/2)², accurate near the multiples of 2π; derivative -sin(x)"),
    _unary("sech2", runtime.sech2, lambda b, g, x, out: b.mul(g, b.mul(-2.0, b.mul(out, b.tanh(x)))),
           "sech2", c="xc_sech2", sympy=lambda sp, x: 1 / sp.cosh(x) ** 2,
           edges=(((0.0,), (0.0,)), ((800.0,), (-0.0,))),
           doc="sech(x)² = 1 - tanh(x)² (tanh's derivative) without cancellation or overflow; "
               "derivative -2·sech(x)²·tanh(x)"),
    _unary("sqrt1pm1", runtime.sqrt1pm1, lambda b, g, x, out: b.div(b.mul(0.5, g), b.add(out, 1.0)),
           "sqrt1pm1", c="xc_sqrt1pm1", sympy=lambda sp, x: sp.sqrt(1 + x) - 1, domain=((-0.5, 3.0),),
           edges=(((-1.0,), (INF,)), ((INF,), (0.0,))),
           doc="sqrt(1 + x) - 1 as x / (sqrt(1 + x) + 1), accurate for small x; derivative 1/(2·sqrt(1 + x))"),
]


# The three-term forms the stability rewrites put in for sqrt(x² + y² + z²) and
# log(exp(a) + exp(b) + exp(c)) (stability/patterns.py): one op where two nested binary
# ones took two square roots or two exps and two logs. Arity 3, so that every backend,
# the tape VM (three operands an instruction) and the op tests take them as they are.
def _softmax3(b, i, x, y, z):
    """∂logaddexp3/∂(its argument i) = exp(x_i - m)/Σ_j exp(x_j - m), m the largest (not
    exp(x_i - out), which would carry out's rounding, |out|·2^-53: 1e-13 at 1000): 1/3
    each where all are equal, equal infinities included, 0 where x_i is -inf. m is the
    first argument equal to the largest, big, by selection, so that its derivative is
    that argument's (big's, maximum's, is the average of the tied arguments': second
    derivatives at ties would be wrong); its exp(0) = 1. The exps taken are those of
    the two others, u and w in order, of _tie_difference(t, m). Each partial is its exp
    (1 for m's) times 1/(1 + e^(u-m) + e^(w-m)): the steps of the C helper
    xc_logaddexp3, so that a C kernel computes two exps and one division for the value
    and all three partials (value and gradient in cache: 1.27x the naive form's time
    with an exp of each argument, 1.07x with two). The bits are those of
    exp(where(x_i == big, 0, x_i - big)) for each argument."""
    big = b.maximum(b.maximum(x, y), z)
    qx, qy = b.eq(x, big), b.eq(y, big)
    m = b.where(qx, x, b.where(qy, y, big))
    u, w = b.where(qx, y, x), b.where(qx, z, b.where(qy, z, y))
    eu, ew = (b.exp(_tie_difference(b, b.eq(t, big), t, m)) for t in (u, w))
    r = b.div(1.0, b.add(1.0, b.add(eu, ew)))
    e = (b.where(qx, 1.0, eu), b.where(qx, eu, b.where(qy, 1.0, ew)), b.where(qx, ew, b.where(qy, ew, 1.0)))
    return b.mul(e[i], r)


def _tie_difference(b, tie, t, m):
    """t - m, 0 where it is NaN at a tie (equal infinities). At a finite tie t - m is 0
    and stays the branch taken, so that its derivative, dt - dm, is kept."""
    d = b.sub(t, m)
    return _at_nan_tie(b, tie, d, 0.0, d)


def _at_nan_tie(b, tie, value, const, d):
    """`value`, but `const` where `tie` holds and the difference `d` is NaN (equal
    infinities): a tie's convention taken only where the formula has no number, so that
    at a finite tie the formula stays the branch taken and its derivative is kept (a
    constant's, 0, made the Hessians of logaddexp and logaddexp3 wrong at every tie)."""
    return b.where(tie, b.where(b.eq(d, d), value, const), value)


def _over_norm3(b, i, xs, out):
    """xs[i] / hypot3, 0 where hypot3 is 0 (the subgradient, as hypot's), as the ops
    hypot3_guard(hypot3_slope<i>(x, y, z), h, s): h the value (1 where 0: _safe_norm),
    s its naive sum of squares. Every backend computes the pair as where(out == 0, 0,
    over_norm(xs[i], h, s)) (c_forms.hypot_quotients), the instructions and bits of the
    partials before they were ops: x·k·(1/(h·k)), one division for the three partials
    (a C kernel makes one; NumPy's hypot3_rows too) where x/out took three, k 2^60 where
    s is at most 2^120, else 2^-60 (s overflowed, or is NaN: beside an infinite term and
    a NaN, a finite term's partial is then 0, x/inf) (exact scalings): out·k is in
    [2^-1014, 2^964] in float64, [2^-89, 2^121] in float32, so its reciprocal is a normal
    float in both, and the partial has the bits of x·(1/out) wherever 1/out is normal,
    whatever k. k comes from s, not from out, so that a C kernel computes it beside the
    square root (s is xc_hypot3's own, the same operations in the same order, which gcc
    computes once): from out, its comparisons waited for the root (value and gradient in
    cache: 1.44 -> 1.18x the naive form's time). Two ops where over_norm(x, h, s) was
    one, so that the derivative reads y and z: over_norm's, 1/h - (x/h)·(x/h)/h through
    h, cancelled (0 for y²/h³ = 3.7e-20 at (1e-9, 3, 2e-9)); the slope's is its own
    (_hypot3_slope_partial), and the guard keeps h and s in the trace for the backends
    (the VM's instructions have three operands: one op could not take x, y, z, h and s).
    One slope op per argument, on hypot3's arguments in its order, so that each is one
    hypot3's (two of one hypot3 of an argument twice, hypot3(x, x, y), are one: _first)."""
    s = b.add(b.add(b.mul(xs[0], xs[0]), b.mul(xs[1], xs[1])), b.mul(xs[2], xs[2]))
    zero = b.eq(out, 0.0)
    h = _safe_norm(b, zero, out)   # (made before the slope: the instructions' order is over_norm's)
    return b.apply("hypot3_guard", b.apply(_SLOPES[_first(b, xs, i)], *xs), h, s)


_SLOPES = ("hypot3_slope0", "hypot3_slope1", "hypot3_slope2")


def _first(b, xs, i: int) -> int:
    """The first argument that is the value xs[i]: its slope is xs[i]'s (the same value,
    one instruction, as over_norm(x, h, s) was)."""
    v = b.source_of(xs[i])
    return next(j for j in range(3) if b.source_of(xs[j]) == v)


def _hypot3_slope_partial(b, g, xs, out, i: int, j: int):
    """∂(x_i/r)/∂x_i = Σ_(k≠i) (x_k/r)·((x_k/r)/r), ∂(x_i/r)/∂x_j = -(x_i/r)·((x_j/r)/r), r =
    hypot3(*xs): products of the unit vector's components, which do not cancel (the
    quotient's derivative, (1 - (x_i/r)²)/r, did); r taken as 1 where it is 0, so that no
    branch is 0/0 (there the components are 0, and so are these). Each component is
    divided by r before it is multiplied: a product of two first underflowed where the
    entry is a normal float (-(y/r)(z/r)/r = -1e-307 at (1e-5, 1e-22, 1e-300) was 1.5e-12
    off, (y/r)² = 1e-310 at (1e-5, 1e-160, 0) loses digits). The components are the
    value's gradient's own slopes, r its hypot3 (the same instructions)."""
    r = b.apply("hypot3", *xs)
    h = _safe_norm(b, b.eq(r, 0.0), r)
    t = [out if k == i else b.apply(_SLOPES[_first(b, xs, k)], *xs) for k in range(3)]
    if j == i:
        u, w = (t[k] for k in range(3) if k != i)
        return b.mul(g, b.add(b.mul(u, b.div(u, h)), b.mul(w, b.div(w, h))))
    return b.neg(b.mul(g, b.mul(out, b.div(t[j], h))))


def _guarded_seed(b, g, q, h, s, out):
    """hypot3_guard's partial in q: g, 0 where the norm is 0 (h == 1 and s == 0; h's own
    test where h is where(r == 0, 1, r), as _over_norm3 makes it)."""
    ins = b.instrs[b.source_of(h)]
    zero = None
    if ins[0] == "where" and b.const_value(ins[1][1]) == 1.0:
        test = b.instrs[b.source_of(ins[1][0])]
        if test[0] == "eq" and b.source_of(test[1][0]) == b.source_of(ins[1][2]) \
                and b.const_value(test[1][1]) == 0.0:
            zero = ins[1][0]
    if zero is None:
        zero = b.mul(b.eq(h, 1.0), b.eq(s, 0.0))
    return b.where(zero, 0.0, g)


def _slope_op(i: int) -> OpDef:
    """hypot3_slope<i>(x, y, z) = (x, y, z)[i] / hypot3(x, y, z)."""
    name = _SLOPES[i]
    sym = "xyz"[i]
    edge = [0.0, 0.0, 0.0]   # at (0, 0, 2), r = 2: (1 - (x_i/r)²)/r on the diagonal, 0 elsewhere
    edge[i] = 0.0 if i == 2 else 0.5
    return OpDef(name, 3, getattr(runtime, name),
                 tuple(lambda b, g, x, y, z, out, j=j: _hypot3_slope_partial(b, g, (x, y, z), out, i, j)
                       for j in range(3)),
                 name, c="xc_" + name, sympy_head="", callable_by_name=False,
                 sympy=lambda sp, x, y, z: (x, y, z)[i] / sp.sqrt(x ** 2 + y ** 2 + z ** 2),
                 edges=(((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), ((0.0, 0.0, 2.0), tuple(edge))),
                 doc=f"{sym} / hypot3(x, y, z) ({sym} where hypot3 is 0), over_norm's steps: hypot3's "
                     f"partial in {sym}; derivative Σ (the others / r)² / r in {sym}, -({sym}/r)(y/r)/r in "
                     "another, y")


def _pick_op(name: str, arity: int, shape, doc: str) -> OpDef:
    """One of log_softmax's pick ops (stability/softmax_forms.build_log_softmax writes
    them; key= their picks): not callable by name, across lanes, its shape checked and
    its key's bounds those of its first argument, its rules tensor_rules_softmax's."""
    return OpDef(name, arity, getattr(runtime, name), (None,) * arity, name,
                 shape=S.checked_pick(shape), bounds=S.pick_bounds(0), callable_by_name=False, across=True,
                 jvp=getattr(S, "jvp_" + name), vjp=getattr(S, "vjp_" + name), doc=doc)


def _log_softmax_rule_op(name: str, doc: str) -> OpDef:
    """log_softmax's adjoint or tangent as one op of (x's value o, g or t, x) along
    `axis` (tensor_rules makes them): not callable by name, across lanes, of its
    arguments' shape, its own rules tensor_rules'."""
    return OpDef(name, 3, getattr(runtime, name), (None, None, None), name, shape=T.shape_same,
                 callable_by_name=False, across=True, jvp=getattr(T, "jvp_" + name), vjp=getattr(T, "vjp_" + name),
                 doc=doc)


def _three(partial):
    """The partials (b, g, x, y, z, out) of a symmetric op of three arguments from
    partial(b, i, (x, y, z), out), ∂/∂(argument i) at a seed of 1."""
    return tuple(lambda b, g, x, y, z, out, i=i: b.mul(g, partial(b, i, (x, y, z), out)) for i in range(3))


TABLE += [
    OpDef("hypot3", 3, runtime.hypot3, _three(_over_norm3),
          "hypot3", c="xc_hypot3", sympy=lambda sp, x, y, z: sp.sqrt(x ** 2 + y ** 2 + z ** 2),
          edges=(((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), ((2.0, -3.0, 6.0), (2.0 / 7.0, -3.0 / 7.0, 6.0 / 7.0))),
          doc="sqrt(x² + y² + z²) without overflow or underflow; its derivative x/hypot3 is 0 at "
              "(0, 0, 0) (a subgradient, as hypot's)"),
    OpDef("logaddexp3", 3, runtime.logaddexp3, _three(lambda b, i, xs, out: _softmax3(b, i, *xs)),
          "logaddexp3", c="xc_logaddexp3", sympy=lambda sp, x, y, z: sp.log(sp.exp(x) + sp.exp(y) + sp.exp(z)),
          edges=(((INF, INF, INF), (1.0 / 3.0,) * 3), ((0.0, 0.0, 0.0), (1.0 / 3.0,) * 3),
                 ((800.0, 0.0, -INF), (1.0, 0.0, 0.0))),
          doc="log(exp(x) + exp(y) + exp(z)) without overflow or underflow; derivative softmax "
              "(1/3 each where all three are equal, equal infinities included)"),
    # hypot3's partials (_over_norm3): x / hypot3(x, y, z) with its own derivative, and
    # the guard that gives 0 where the norm is 0 and holds the kernel's h and s (hints:
    # its value reads them only for that test), which the backends divide by
    # (c_forms.hypot_quotients: over_norm(x, h, s) and a where, the partials' old bits).
    *(_slope_op(i) for i in range(3)),
    # log_softmax's adjoint as one op (tensor_rules.vjp_log_softmax makes it): its steps
    # were ten passes over the slice in the trace.
    _log_softmax_rule_op("log_softmax_vjp",
                         "log_softmax(x)'s adjoint at g along `axis` (o its value): g - softmax(x)·sum(g), "
                         "at a dominant element minus the sum of the others'"),
    # its tangent as one op (tensor_rules_softmax.jvp_log_softmax), and log_softmax(x)[k] of
    # a vector as three that share one exp pass between value and gradient (the stability
    # rules write that pick so: softmax_forms.build_log_softmax).
    _log_softmax_rule_op("log_softmax_jvp",
                         "log_softmax(x)'s tangent at t along `axis` (o its value): t - sum(softmax(x)·t), "
                         "taken from t less the dominant element's t"),
    _pick_op("log_softmax_at_parts", 1, T.shape_same,
             "softmax(x) of a vector with element k (each key's) replaced by log_softmax(x)[k] "
             "(one exp pass)"),
    _pick_op("log_softmax_at", 2, S.shape_picks,
             "log_softmax(x)[k] read from P = log_softmax_at_parts(x) (the vector of them for "
             "several keys); derivative in x only"),
    _pick_op("log_softmax_at_vjp", 2, T.shape_same,
             "log_softmax(x)[k]'s adjoint g·(δ_k - s) from P = log_softmax_at_parts(x): -g·P off k, "
             "-g·expm1(P[k]) at k (several keys: the sum of theirs, one pass)"),
    _pick_op("log_softmax_at_jvp", 2, S.shape_picks,
             "log_softmax(x)[k]'s tangent t_k - sum(s·t) from P = log_softmax_at_parts(x): "
             "-expm1(P[k])·t_k less the others' P·t (one pass)"),
    OpDef("hypot3_guard", 3, runtime.hypot3_guard, (_guarded_seed, None, None), "hypot3_guard",
          c="xc_hypot3_guard", sympy_head="", sympy=lambda sp, q, h, s: q, callable_by_name=False,
          domain=((-3.0, 3.0), (0.5, 3.0), (0.0, 9.0)),
          edges=(((2.0, 1.0, 0.0), (0.0, 0.0, 0.0)), ((2.0, 3.0, 9.0), (1.0, 0.0, 0.0))),
          doc="q, 0 where h == 1 and s == 0 (a norm h of 0, taken as 1, and its sum of squares s: "
              "hints, which the value reads for that test only): hypot3's partial; derivative 1 in q"),
]
