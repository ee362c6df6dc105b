"""The stability rules: one table, one entry per rule.

Where it sits: rewrite.py walks a trace (the primal before the derivative sweeps,
the derivative trace after them) and, at each instruction whose op is a rule's
`op`, tries that op's rules in table order (specific before general); the first
whose pattern matches and whose guard holds replaces the instruction. Patterns see
their arguments already rewritten (the walk is in trace order), so rules compose:
log(1 - sigmoid(x)) becomes log(sigmoid(-x)), then -softplus(x).

A rule is (name, root op, pattern, build, reason, guard, stages, fails):
  pattern(b, args, attrs) -> a tuple of matched variables, or None;
  guard(b, *matched) -> whether the replacement is provably the same function
  (domains, exact constants); build(b, *matched) -> the replacement, from builder
  calls; reason: the one line `explain` prints; fails: where the naive form goes
  wrong in float64 (measured: exprcompiler/bench/stability.py).
Every replacement equals the pattern as real functions on the pattern's whole
domain, and keeps NaN outside it (exp(log(u)) keeps a `where`). Zeros keep their
sign where it costs nothing: 1 - exp(u) becomes 0.0 - expm1(u), not -expm1(u),
which would be -0.0 at u = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

from . import match as m
from . import patterns as P
from . import softmax_forms as S

BOTH = ("primal", "derivative")


@dataclass(frozen=True)
class Rule:
    name: str
    op: str
    pattern: Callable
    build: Callable
    reason: str
    guard: Optional[Callable] = None
    stages: tuple = BOTH
    fails: str = ""


def _with_one(name, form, f, build, reason, fails):
    """A rule for f(u) and the constant 1 in `form`: "1 - f", "f - 1", "f + -1" or "1 + f"."""
    root, pattern = {"1 - f": ("sub", P.sub_one_minus), "f - 1": ("sub", P.sub_minus_one),
                     "f + -1": ("add", lambda op: P.add_with(-1.0, op)),
                     "1 + f": ("add", lambda op: P.add_with(1.0, op))}[form]
    return Rule(name, root, P.one(pattern(f)), build, reason, fails=fails)


# (name, form, f, replacement, reason, where the naive form fails)
_WITH_ONE = (
    ("one_minus_sigmoid", "1 - f", "sigmoid", lambda b, u: b.sigmoid(b.neg(u)),
     "1 - sigmoid(u) loses digits as sigmoid(u) nears 1 (0 from u = 37); sigmoid(-u) does not",
     "u > 3 (relative error > 1e-13), u > 36.7 (0)"),
    ("expm1", "f - 1", "exp", lambda b, u: b.expm1(u),
     "exp(u) - 1 loses the digits of u for small |u| (0 below 1.1e-16); expm1(u) keeps them",
     "|u| < 1e-3 (relative error > 1e-13), |u| < 1.1e-16 (0)"),
    ("expm1_add", "f + -1", "exp", lambda b, u: b.expm1(u),
     "exp(u) + (-1) loses the digits of u for small |u|; expm1(u) keeps them",
     "|u| < 1e-3 (relative error > 1e-13)"),
    ("one_minus_exp", "1 - f", "exp", lambda b, u: P.zero_minus(b, b.expm1(u)),
     "1 - exp(u) loses the digits of u for small |u|; -expm1(u) keeps them",
     "|u| < 1e-3 (relative error > 1e-13), |u| < 1.1e-16 (0)"),
    ("cosm1", "f - 1", "cos", lambda b, u: b.cosm1(u),
     "cos(u) - 1 cancels for small |u| (0 below 1e-8); cosm1(u) = -2 sin(u/2)² does not",
     "|u| < 1e-2 (relative error > 1e-13), |u| < 1.05e-8 (0)"),
    ("one_minus_cos", "1 - f", "cos", lambda b, u: P.zero_minus(b, b.cosm1(u)),
     "1 - cos(u) cancels for small |u| (0 below 1e-8); -cosm1(u) does not",
     "|u| < 1e-2 (relative error > 1e-13), |u| < 1.05e-8 (0)"),
    ("erfc", "1 - f", "erf", lambda b, u: b.erfc(u),
     "1 - erf(u) cancels for large u (0 from u = 5.9); erfc(u) does not",
     "u > 1 (digits lost), u > 5.9 (0)"),
    ("erf", "1 - f", "erfc", lambda b, u: b.erf(u),
     "1 - erfc(u) loses the digits of erf(u) for small |u|; erf(u) keeps them",
     "|u| < 1e-3 (relative error > 1e-13)"),
    ("erf_minus_one", "f - 1", "erf", lambda b, u: P.zero_minus(b, b.erfc(u)),
     "erf(u) - 1 cancels for large u; -erfc(u) does not",
     "u > 1 (digits lost), u > 5.9 (0)"),
    ("one_plus_erf", "1 + f", "erf", lambda b, u: b.erfc(b.neg(u)),
     "1 + erf(u) cancels for large negative u (0 below -5.9); erfc(-u) does not",
     "u < -1 (digits lost), u < -5.9 (0)"),
)


RULES: tuple[Rule, ...] = (
    # -- log(...) ------------------------------------------------------------------------
    Rule("softplus", "log", P.one(P.of(lambda b, v: m.plus_const(b, v, 1.0), "exp")), lambda b, u: b.softplus(u),
         "log(1 + exp(u)) is inf for u > 709.78 and 0 below u = -36.7; softplus(u) is neither",
         fails="u > 709.78 (inf), u < -36.7 (0); its gradient NaN above 709.78"),
    Rule("logsumexp", "log", P.log_sum_of_exp, P.build_logsumexp,
         "log(sum(exp(x))) overflows when any element of x is above 709.78 and is -inf when all are below -745; "
         "logsumexp takes the maximum out (its gradient is softmax)",
         fails="max(x) > 709.78 (inf; gradient NaN), all x < -745 (-inf)"),
    Rule("log_softmax", "log", S.log_of_softmax, S.build_log_softmax,
         "log(softmax(x)) is -inf where an element's softmax underflows (745 below the maximum; gradient "
         "NaN) and loses the maximum's own value (the log of a number near 1) as it dominates; "
         "log_softmax(x), (x - max) - log1p(sum of the others' exp(x - max)), does neither",
         fails="an element 745 below the maximum (-inf; gradient NaN); the maximum ahead of the others by 8 "
               "or more (its value's relative error > 1e-13), by 37 (0)"),
    Rule("log_softmax_scaled", "log", S.log_of_scaled_softmax, S.build_scaled_log_softmax,
         "log(c·softmax(x)) (or softmax(x)/c), c > 0 a constant, is -inf where c·softmax(x) underflows (an "
         "element 745 below the maximum, less for c < 1) and its gradient overflows from 708 below (1/softmax); "
         "log(c) + log_softmax(x) does neither",
         guard=S.positive_scale,
         fails="an element more than 708 below the maximum, less for c < 1 (gradient inf or NaN; the value's "
               "relative error > 1e-13 from 718 below, -inf from 745)"),
    Rule("logaddexp", "log", P.log_sum_exp, P.build_logaddexp,
         "log(exp(a) + exp(b) + ...) overflows when any term does and underflows to -inf when all do; "
         "logaddexp (logaddexp3 for three terms) takes the largest out",
         fails="any exponent > 709.78 (inf), all < -745 (-inf); gradient NaN there"),
    Rule("log_sigmoid", "log", P.one(lambda b, a: m.arg(b, a[0], "sigmoid")), lambda b, u: b.neg(b.softplus(b.neg(u))),
         "log(sigmoid(u)) is -inf below u = -745, where sigmoid underflows; -softplus(-u) is about u there",
         fails="u < -745 (-inf; gradient NaN)"),
    Rule("log1mexp", "log", P.one(P.neg_of("expm1")), lambda b, u: b.log1mexp(u),
         "log(1 - exp(u)) loses digits near u = 0 and is 0 below u = -37; log1mexp switches "
         "between log(-expm1(u)) and log1p(-exp(u))",
         fails="-1e-6 < u < 0 (digits lost), u < -37 (0 instead of -exp(u))"),
    Rule("log_exp", "log", P.one(lambda b, a: m.arg(b, a[0], "exp")), lambda b, u: u,
         "log(exp(u)) is u exactly; exp(u) overflows for u > 709.78 and underflows below -745",
         fails="u > 709.78 (inf), u < -745 (-inf)"),
    Rule("arcsinh", "log", P.asinh, lambda b, u: b.arcsinh(u),
         "log(u + sqrt(u² + 1)) cancels to log(0) for large negative u and overflows for |u| > 1e154; "
         "arcsinh(u) does neither",
         fails="u < -1e8 (digits lost, -inf), |u| > 1.34e154 (inf)"),
    Rule("arccosh", "log", P.acosh, lambda b, u: b.arccosh(u),
         "log(u + sqrt(u² - 1)) overflows for u > 1.34e154; arccosh(u) does not",
         fails="u > 1.34e154 (inf); near u = 1 the gradient loses digits"),
    Rule("log1p", "log", P.one(lambda b, a: m.plus_const(b, a[0], 1.0)), lambda b, u: b.log1p(u),
         "log(1 + u) loses the digits of u that 1 + u rounds away (all of them for |u| < 1.1e-16); log1p(u) keeps them",
         fails="|u| < 1e-3 (relative error > 1e-13), |u| < 1.1e-16 (0)"),
    Rule("log1p_minus", "log", P.one(lambda b, a: m.const_minus(b, a[0], 1.0)),
         lambda b, u: b.log1p(P.zero_minus(b, u)),
         "log(1 - u) loses the digits of u that 1 - u rounds away; log1p(-u) keeps them",
         fails="|u| < 1e-3 (relative error > 1e-13), |u| < 1.1e-16 (0)"),
    # -- log1p(...) ----------------------------------------------------------------------
    Rule("softplus_log1p", "log1p", P.one(lambda b, a: m.arg(b, a[0], "exp")), lambda b, u: b.softplus(u),
         "log1p(exp(u)) is inf for u > 709.78; softplus(u) is u there",
         fails="u > 709.78 (inf; gradient NaN)"),
    Rule("log1mexp_log1p", "log1p", P.one(P.neg_of("exp")), lambda b, u: b.log1mexp(u),
         "log1p(-exp(u)) loses digits near u = 0 (-inf at u > -1e-16); log1mexp(u) uses log(-expm1(u)) there",
         fails="-1e-3 < u < 0 (digits lost), -1.1e-16 < u < 0 (-inf)"),
    Rule("log1p_expm1", "log1p", P.one(lambda b, a: m.arg(b, a[0], "expm1")), lambda b, u: u,
         "log1p(expm1(u)) is u exactly; expm1(u) overflows for u > 709.78",
         fails="u > 709.78 (inf)"),
    # -- exp(...) ------------------------------------------------------------------------
    Rule("exp_log", "exp", P.one(lambda b, a: m.arg(b, a[0], "log")),
         lambda b, u: b.where(b.ge(u, 0.0), b.add(u, 0.0), math.nan),
         "exp(log(u)) is u for u >= 0 and NaN below (kept by a where); the round trip costs |log u| ulps",
         fails="relative error |log u|·1.1e-16 (7e-14 at 1e300); gradient NaN at 0"),
    # -- differences with 1 (the family of f(u) ± 1: _WITH_ONE below) --------------------
    *(_with_one(*row) for row in _WITH_ONE),
    Rule("tanh_derivative", "sub", P.one(P.tanh_squared), lambda b, u: b.sech2(u),
         "1 - tanh(u)² (tanh's derivative) loses digits as tanh(u) nears ±1 (0 from |u| = 19); sech2(u) does not",
         fails="|u| > 3.5 (relative error > 1e-13), |u| > 19.1 (0)"),
    Rule("sqrt1pm1", "sub", P.one(P.sqrt1p_minus_one), lambda b, u: b.sqrt1pm1(u),
         "sqrt(1 + u) - 1 cancels for small |u|; sqrt1pm1(u) = u / (sqrt(1 + u) + 1) does not",
         fails="|u| < 1e-3 (relative error > 1e-13), |u| < 2.2e-16 (0)"),
    Rule("log_softmax_lse", "sub", S.minus_logsumexp, S.build_log_softmax,
         "x - logsumexp(x) rounds away the maximum's own value as it dominates (-log1p(sum of the others' "
         "exp(x - max)), below an ulp of max(x)), and its gradient 1 - softmax cancels there; "
         "log_softmax(x), (x - max) - log1p(that sum), does neither",
         fails="the maximum ahead of the others by 6 or more (relative error > 1e-13, more where |max(x)| is "
               "large), by 37 (value and gradient 0)"),
    Rule("neg_log_softmax_lse", "sub", S.logsumexp_minus, S.build_neg_log_softmax,
         "logsumexp(x) - x (cross-entropy's -log softmax) rounds the maximum's own value, log1p(sum of the "
         "others' exp(x - max)), to an ulp of max(x) as it dominates, and its gradient softmax - 1 cancels there; "
         "-log_softmax(x) does neither",
         fails="the maximum ahead of the others by 8 or more (relative error > 1e-13; by 4 where max(x) is 1000), "
               "by 37 (value and gradient 0)"),
    Rule("log_softmax_flat", "sub", S.logsumexp_difference_over_a_block, S.build_log_softmax_over_a_block,
         "x - logsumexp(x) (or logsumexp(x) - x) over all of x, or over adjacent axes kept, rounds the maximum's "
         "own value away as it dominates, and its gradient cancels there (in derivatives, logsumexp's own "
         "exp(x - logsumexp(x)) carries logsumexp's rounding); log_softmax of x reshaped so that those axes "
         "are one (a view), reshaped back, does neither",
         fails="the maximum ahead of the others by 8 or more (relative error > 1e-13; by 4 where max(x) is 1000), "
               "by 37 (value and gradient 0); logsumexp's gradient over several axes: 5e-11 at |x| ~ 1e6"),
    # Derivative traces only: (1 - u)(1 + u) is accurate near |u| = 1, but its own
    # derivative (1 - u) - (1 + u) cancels for small u, so it is never differentiated.
    # Built as the op one_minus_square (arctanh's): that product's bits, in NumPy one
    # array (runtime.one_minus_square multiplies in place) where the two new arrays of
    # 1 - u and 1 + u cost arcsin's value and gradient ~5% (1.09-1.13x -> 1.03-1.08x the
    # naive form's time at 10^6 points); C's xc_one_minus_square is the same product.
    Rule("one_minus_square", "sub", P.one(P.one_minus_square),
         lambda b, u: b.apply("one_minus_square", u),
         "1 - u² loses digits near |u| = 1 (arcsin', arccos'); (1 - u)(1 + u) does not",
         stages=("derivative",), fails="|u| near 1: 1 - 1e-10 gives relative error 1e-7"),
    # -- quotients ------------------------------------------------------------------------
    Rule("sigmoid_ratio", "div", P.exp_over_one_plus_exp, lambda b, u: b.sigmoid(u),
         "exp(u) / (1 + exp(u)) is inf/inf = NaN for u > 709.78 (its gradient from u = 354.9); sigmoid(u) is 1",
         fails="u > 709.78 (NaN); gradient NaN from u > 354.9"),
    Rule("softmax2", "div", P.softmax2, lambda b, x, y: b.sigmoid(b.sub(x, y)),
         "exp(x) / (exp(x) + exp(y)) overflows to NaN for large x, y and is 0/0 for very negative ones; "
         "sigmoid(x - y) is neither",
         fails="x or y > 709.78 (NaN), both < -745 (NaN)"),
    Rule("softmax", "div", S.softmax_ratio, S.build_softmax,
         "exp(x)/sum(exp(x)) is inf/inf = NaN when an element of x is above 709.78 and 0/0 when all are "
         "below -745; softmax(x) takes the maximum out first",
         fails="max(x) > 709.78 (NaN; gradient NaN), all x < -745 (NaN)"),
    Rule("tanh_ratio", "div", P.tanh_ratio, lambda b, u: b.tanh(P.half(b, u)),
         "(exp(2x) - 1) / (exp(2x) + 1) is inf/inf = NaN for x > 354.9; tanh(x) is 1",
         fails="x > 354.9 (NaN)"),
    Rule("sigmoid", "div", P.over_one_plus_exp, lambda b, a, u: b.mul(a, b.sigmoid(b.neg(u))),
         "a / (1 + exp(u)) has a gradient that overflows for u > 354.9 (exp(u)² in the quotient rule); "
         "a·sigmoid(-u) does not",
         fails="gradient 0 or NaN from u > 354.9"),
    Rule("sinh_half", "div", P.one(lambda b, a: P.exp_difference(b, a[0]) if m.is_const(b, a[1], 2.0) else None),
         lambda b, u: b.sinh(u),
         "(exp(u) - exp(-u)) / 2 cancels for small |u|; sinh(u) does not",
         fails="|u| < 1e-3 (relative error > 1e-13)"),
    # -- products -------------------------------------------------------------------------
    # Built as the op sigmoid_slope (ops.py), whose derivative is an op of its own: C takes
    # both from one exp(-|u|) and one division (c_exp.xc_sigmoid_slope), NumPy from one
    # tanh(u/2) (runtime.sigmoid_slopes); sech2(u/2)/4 with its derivative cost C 1.15-1.27x
    # the naive form where that is accurate.
    Rule("sigmoid_pair", "mul", P.sigmoid_pair, lambda b, u: b.apply("sigmoid_slope", u),
         "the gradient of sigmoid(u)·sigmoid(-u) cancels near u = 0 in the product rule (1 - 2 sigmoid(u)); "
         "sigmoid_slope(u) (the same function, sech2(u/2)/4) has -sign(u)·sigmoid_slope(u)·tanh(|u|/2), "
         "which does not",
         stages=("primal",), fails="|u| < 1e-3 (gradient relative error > 1e-13)"),
    Rule("sinh", "mul", P.one(lambda b, a: P.half_of(b, a, P.exp_difference)), lambda b, u: b.sinh(u),
         "0.5·(exp(u) - exp(-u)) cancels for small |u|; sinh(u) does not",
         fails="|u| < 1e-3 (relative error > 1e-13)"),
    Rule("arctanh", "mul", P.one(lambda b, a: P.half_of(b, a, P.artanh_log)), lambda b, u: b.arctanh(u),
         "0.5·log((1 + u)/(1 - u)) loses the digits of u for small |u|; arctanh(u) keeps them",
         fails="|u| < 1e-3 (relative error > 1e-13)"),
    Rule("xlogx", "mul", P.one(P.x_log_x), lambda b, u: b.xlogy(u, u),
         "u·log(u) is 0·(-inf) = NaN at u = 0, where its limit is 0; xlogy(u, u) is 0 there",
         fails="u = 0 (NaN; gradient NaN)"),
    # -- square roots ---------------------------------------------------------------------
    Rule("hypot", "sqrt", P.square_roots, P.build_hypot,
         "sqrt(x² + y²) overflows for |x| > 1.34e154 and underflows below 1.5e-154; hypot(x, y) (hypot3 for "
         "three terms) does neither (and its gradient at (0, 0) is 0, not NaN)",
         guard=P.exact_square_constant,
         fails="|x| > 1.34e154 (inf), |x|, |y| < 1.5e-154 (0, gradient NaN)"),
    Rule("sqrt_square", "sqrt", P.one(lambda b, a: m.squared(b, a[0])), lambda b, u: b.abs(u),
         "sqrt(u²) is |u| exactly; u² overflows for |u| > 1.34e154 and underflows below 1.5e-154",
         fails="|u| > 1.34e154 (inf), |u| < 1.5e-162 (0); gradient NaN at 0"),
)


def rules_by_op(rules, stage: str) -> dict:
    """op -> its rules for `stage`, in table order."""
    out: dict = {}
    for r in rules:
        if stage in r.stages:
            out.setdefault(r.op, []).append(r)
    return out


def select(exclude=()) -> tuple:
    """The table without the rules named in `exclude` (an unknown name is an error)."""
    names = {r.name for r in RULES}
    unknown = [n for n in exclude if n not in names]
    if unknown:
        raise ValueError(f"unknown stability rule {', '.join(map(repr, unknown))} "
                         f"(rules: {', '.join(sorted(names))})")
    return tuple(r for r in RULES if r.name not in set(exclude))


__all__ = ["Rule", "RULES", "rules_by_op", "select"]
