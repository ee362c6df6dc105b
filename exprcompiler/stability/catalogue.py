"""The catalogue of classic unstable formulas the stability rewrites are checked on.

Where it sits: data for exprcompiler/stability/accuracy.py (errors against mpmath),
exprcompiler/bench/stability.py (the README's table: worst error before and after,
and speed) and tests/test_stability*.py. Each entry is a formula as a user writes
it, the input ranges where its naive float64 evaluation (value or gradient) goes
wrong, and the rules expected to fire on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np


# -- samplers: rng, n -> n float64 points ---------------------------------------------------
def lin(lo: float, hi: float) -> Callable:
    return lambda rng, n: rng.uniform(lo, hi, n)


def logu(lo: float, hi: float) -> Callable:
    """Log-uniform on [lo, hi], 0 < lo < hi."""
    return lambda rng, n: 10.0 ** rng.uniform(np.log10(lo), np.log10(hi), n)


def neg(s: Callable) -> Callable:
    return lambda rng, n: -s(rng, n)


def signed(s: Callable) -> Callable:
    """s's points with random signs."""
    return lambda rng, n: s(rng, n) * rng.choice([-1.0, 1.0], n)


def shift(c: float, s: Callable) -> Callable:
    return lambda rng, n: c + s(rng, n)


def either(*ss: Callable) -> Callable:
    """Points from each sampler in turn (the union of their ranges)."""
    def draw(rng, n):
        return np.concatenate([s(rng, n // len(ss) + 1) for s in ss])[:n]
    return draw


def vectors(k: int, s: Callable) -> Callable:
    """n vectors of k of s's points: an (n, k) array (a vector input's points)."""
    return lambda rng, n: s(rng, n * k).reshape(n, k)


def arrays(shape: tuple, s: Callable) -> Callable:
    """n arrays of `shape` of s's points: an (n, *shape) array (a matrix input's points)."""
    return lambda rng, n: s(rng, n * math.prod(shape)).reshape((n, *shape))


def with_points(s: Callable, *points: float) -> Callable:
    """s's points, the first ones replaced by these (edges such as 0)."""
    def draw(rng, n):
        x = s(rng, n)
        x[:len(points)] = points
        return x
    return draw


@dataclass(frozen=True)
class Entry:
    name: str
    expr: str
    ranges: dict             # input -> sampler
    shown: str               # the ranges as the README prints them
    rules: tuple             # rules expected to fire (either stage); () for a stable op as written
    exact: Optional[Callable] = None   # mpmath value where the formula's own is a limit (0·log 0)
    shapes: tuple = ()       # (input, shape) of vector inputs; their samplers give (n, k) arrays

    @property
    def shape_map(self) -> Optional[dict]:
        """`shapes` as compile_*'s shapes= takes them (None: every input a scalar)."""
        return dict(self.shapes) or None


# Where the naive forms are accurate (value and gradient within 1e-13 of mpmath, checked
# by bench/stability.py and tests/test_stability_bench.py): what a rewrite costs when it
# was not needed. Every scalar entry has one: moderate inputs of the same kind, away from
# the cancellation, overflow or underflow its rewrite is for, and away from zeros of the
# gradient (swish's near x = -1.28, BCE's at z = log(3/7), sigmoid(x)·(1 - sigmoid(x))'s
# at 0), where any evaluation's relative error is large; log(exp(a)+exp(b)) and x*log(x)
# cross 0 inside theirs, where every form's relative error grows, reaching 1e-13 within
# about 1e-3 of the zero (the first: 9.9e-14 on the bench's 200 points, the closest call).
# entry name -> (sampler, as shown).
SAFE = {
    "log(1+x)": (lin(0.1, 10), "x in [0.1, 10]"),
    "log(1-x)": (lin(-10, -0.1), "x in [-10, -0.1]"),
    "exp(x)-1": (lin(1, 10), "x in [1, 10]"),
    "1-exp(x)": (lin(1, 10), "x in [1, 10]"),
    "log(1+exp(x))": (lin(-5, 5), "x in [-5, 5]"),
    "log1p(exp(x))": (lin(-5, 5), "x in [-5, 5]"),
    "1/(1+exp(-x))": (lin(-5, 5), "x in [-5, 5]"),
    "exp(x)/(1+exp(x))": (lin(-5, 5), "x in [-5, 5]"),
    "x/(1+exp(-x)) (swish)": (lin(-1, 5), "x in [-1, 5]"),
    "log(1/(1+exp(-x)))": (lin(-3, 3), "x in [-3, 3]"),
    "log(sigmoid(x))": (lin(-3, 3), "x in [-3, 3]"),
    "log(1-sigmoid(x))": (lin(-3, 3), "x in [-3, 3]"),
    "1-sigmoid(x)": (lin(-5, 0.5), "x in [-5, 0.5]"),
    "sigmoid(x) (gradient)": (lin(-3, 3), "x in [-3, 3]"),
    "sigmoid(x)*(1-sigmoid(x))": (signed(lin(0.5, 3)), "|x| in [0.5, 3]"),
    "BCE, label 0.3": (either(lin(-5, -2), lin(0, 5)), "z in [-5, -2] or [0, 5]"),
    "tanh(x) (gradient)": (lin(-2, 2), "x in [-2, 2]"),
    "1-tanh(x)**2": (lin(-2, 2), "x in [-2, 2]"),
    # (beyond |x| = 2 the quotient rule's two terms of the naive gradient cancel)
    "(exp(2x)-1)/(exp(2x)+1)": (signed(lin(0.5, 2)), "|x| in [0.5, 2]"),
    "log(exp(a)+exp(b))": (lin(-5, 5), "a, b in [-5, 5]"),
    "log(exp(a)+exp(b)+exp(c))": (lin(-5, 5), "a, b, c in [-5, 5]"),
    # (the naive gradient is p - p², which cancels as p = softmax -> 1: 3e-13 at |a - b| = 10)
    "exp(a)/(exp(a)+exp(b))": (lin(-2, 2), "a, b in [-2, 2]"),
    "log(1-exp(x))": (lin(-3, -0.5), "x in [-3, -0.5]"),
    "log(-expm1(x))": (lin(-3, -0.5), "x in [-3, -0.5]"),
    "log1p(-exp(x))": (lin(-3, -0.5), "x in [-3, -0.5]"),
    "sqrt(x**2+y**2)": (lin(-10, 10), "x, y in [-10, 10]"),
    "sqrt(x**2+y**2+z**2)": (lin(-10, 10), "x, y, z in [-10, 10]"),
    "sqrt(1+x**2)": (lin(-10, 10), "x in [-10, 10]"),
    "sqrt(x**2)": (lin(-10, 10), "x in [-10, 10]"),
    "cos(x)-1": (lin(0.5, 3), "x in [0.5, 3]"),
    "1-cos(x)": (lin(0.5, 3), "x in [0.5, 3]"),
    "sqrt(1+x)-1": (lin(0.5, 3), "x in [0.5, 3]"),
    "log(exp(x))": (signed(lin(0.5, 5)), "|x| in [0.5, 5]"),
    "exp(log(x))": (lin(0.1, 10), "x in [0.1, 10]"),
    "x*log(x)": (lin(0.1, 3), "x in [0.1, 3]"),
    "1-erf(x)": (lin(-3, 0.5), "x in [-3, 0.5]"),
    "1+erf(x)": (lin(-0.5, 3), "x in [-0.5, 3]"),
    "1-erfc(x)": (signed(lin(0.5, 3)), "|x| in [0.5, 3]"),
    "log(x+sqrt(x**2+1))": (lin(0.5, 10), "x in [0.5, 10]"),
    "log(x+sqrt(x**2-1))": (lin(1.5, 10), "x in [1.5, 10]"),
    "0.5*log((1+x)/(1-x))": (signed(lin(0.2, 0.9)), "|x| in [0.2, 0.9]"),
    "(exp(x)-exp(-x))/2": (signed(lin(0.5, 5)), "|x| in [0.5, 5]"),
    "arcsin(x) (gradient)": (lin(-0.9, 0.9), "x in [-0.9, 0.9]"),
}


E = Entry
L = 709.78  # log(DBL_MAX)
K = 5       # elements of the vector entries' input
_VECTORS = either(vectors(K, lin(700, 1000)), vectors(K, lin(-1000, -745)), vectors(K, lin(-1000, 1000)))
_VECTORS_SHOWN = f"a: {K} elements, all in [700, 1000], all in [-1000, -745] or all in [-1000, 1000]"
_MATRICES = either(*(arrays((2, 3), s) for s in (lin(700, 1000), lin(-1000, -745), lin(-1000, 1000))))
_MATRICES_SHOWN = "A: 2×3, all in [700, 1000], all in [-1000, -745] or all in [-1000, 1000]"
CATALOGUE: tuple[Entry, ...] = (
    E("log(1+x)", "log(1 + x)", {"x": signed(logu(1e-300, 1e-3))}, "|x| in [1e-300, 1e-3]", ("log1p",)),
    E("log(1-x)", "log(1 - x)", {"x": signed(logu(1e-300, 1e-3))}, "|x| in [1e-300, 1e-3]", ("log1p_minus",)),
    E("exp(x)-1", "exp(x) - 1", {"x": signed(logu(1e-300, 1e-3))}, "|x| in [1e-300, 1e-3]", ("expm1",)),
    E("1-exp(x)", "1 - exp(x)", {"x": signed(logu(1e-300, 1e-3))}, "|x| in [1e-300, 1e-3]", ("one_minus_exp",)),
    E("log(1+exp(x))", "log(1 + exp(x))", {"x": lin(-800, 800)}, "x in [-800, 800]", ("softplus",)),
    E("log1p(exp(x))", "log1p(exp(x))", {"x": lin(-800, 800)}, "x in [-800, 800]", ("softplus_log1p",)),
    E("1/(1+exp(-x))", "1/(1 + exp(-x))", {"x": lin(-800, 800)}, "x in [-800, 800]", ("sigmoid",)),
    E("exp(x)/(1+exp(x))", "exp(x)/(1 + exp(x))", {"x": lin(-800, 800)}, "x in [-800, 800]",
      ("sigmoid_ratio",)),
    E("x/(1+exp(-x)) (swish)", "x/(1 + exp(-x))", {"x": lin(-800, -20)}, "x in [-800, -20]", ("sigmoid",)),
    E("log(1/(1+exp(-x)))", "log(1/(1 + exp(-x)))", {"x": lin(-800, 700)}, "x in [-800, 700]",
      ("sigmoid", "log_sigmoid")),
    E("log(sigmoid(x))", "log(sigmoid(x))", {"x": lin(-800, 700)}, "x in [-800, 700]", ("log_sigmoid",)),
    E("log(1-sigmoid(x))", "log(1 - sigmoid(x))", {"x": lin(-700, 800)}, "x in [-700, 800]",
      ("one_minus_sigmoid", "log_sigmoid")),
    E("1-sigmoid(x)", "1 - sigmoid(x)", {"x": lin(1, 700)}, "x in [1, 700]", ("one_minus_sigmoid",)),
    E("sigmoid(x) (gradient)", "sigmoid(x)", {"x": lin(20, 700)}, "x in [20, 700]", ("one_minus_sigmoid",)),
    E("sigmoid(x)*(1-sigmoid(x))", "sigmoid(x)*(1 - sigmoid(x))", {"x": either(lin(20, 700), signed(logu(1e-300, 1e-3)))},
      "x in [20, 700] or |x| in [1e-300, 1e-3] (gradient)", ("one_minus_sigmoid", "sigmoid_pair")),
    E("BCE, label 0.3", "-(0.3*log(sigmoid(z)) + 0.7*log(1 - sigmoid(z)))",
      {"z": either(lin(-800, -30), lin(30, 800))}, "|z| in [30, 800]", ("log_sigmoid", "one_minus_sigmoid")),
    E("tanh(x) (gradient)", "tanh(x)", {"x": lin(-350, 350)}, "x in [-350, 350]", ("tanh_derivative",)),
    E("1-tanh(x)**2", "1 - tanh(x)**2", {"x": lin(-350, 350)}, "x in [-350, 350]", ("tanh_derivative",)),
    E("(exp(2x)-1)/(exp(2x)+1)", "(exp(2*x) - 1)/(exp(2*x) + 1)", {"x": lin(-350, 800)}, "x in [-350, 800]",
      ("tanh_ratio",)),
    E("log(exp(a)+exp(b))", "log(exp(a) + exp(b))", {"a": lin(-1000, 1000), "b": lin(-1000, 1000)},
      "a, b in [-1000, 1000]", ("logaddexp",)),
    E("log(exp(a)+exp(b)+exp(c))", "log(exp(a) + exp(b) + exp(c))",
      {"a": lin(-1000, 1000), "b": lin(-1000, 1000), "c": lin(-1000, 1000)}, "a, b, c in [-1000, 1000]",
      ("logaddexp",)),
    E("exp(a)/(exp(a)+exp(b))", "exp(a)/(exp(a) + exp(b))", {"a": lin(-1000, 1000), "b": lin(-1000, 1000)},
      "a, b in [-1000, 1000], a - b > -700", ("softmax2",)),
    E("log(1-exp(x))", "log(1 - exp(x))", {"x": neg(logu(1e-300, 700))}, "x in [-700, -1e-300]",
      ("one_minus_exp", "log1mexp")),
    E("log(-expm1(x))", "log(-expm1(x))", {"x": neg(logu(1e-300, 700))}, "x in [-700, -1e-300]", ("log1mexp",)),
    E("log1p(-exp(x))", "log1p(-exp(x))", {"x": neg(logu(1e-300, 700))}, "x in [-700, -1e-300]",
      ("log1mexp_log1p",)),
    E("sqrt(x**2+y**2)", "sqrt(x**2 + y**2)", {"x": signed(logu(1e-300, 1e300)), "y": signed(logu(1e-300, 1e300))},
      "|x|, |y| in [1e-300, 1e300]", ("hypot",)),
    E("sqrt(x**2+y**2+z**2)", "sqrt(x**2 + y**2 + z**2)",
      {"x": signed(logu(1e-300, 1e300)), "y": signed(logu(1e-300, 1e300)), "z": signed(logu(1e-300, 1e300))},
      "|x|, |y|, |z| in [1e-300, 1e300]", ("hypot",)),
    E("sqrt(1+x**2)", "sqrt(1 + x**2)", {"x": signed(logu(1e-300, 1e300))}, "|x| in [1e-300, 1e300]", ("hypot",)),
    E("sqrt(x**2)", "sqrt(x**2)", {"x": signed(logu(1e-300, 1e300))}, "|x| in [1e-300, 1e300]", ("sqrt_square",)),
    E("cos(x)-1", "cos(x) - 1", {"x": signed(logu(1e-150, 1e-1))}, "|x| in [1e-150, 0.1]", ("cosm1",)),
    E("1-cos(x)", "1 - cos(x)", {"x": signed(logu(1e-150, 1e-1))}, "|x| in [1e-150, 0.1]", ("one_minus_cos",)),
    E("sqrt(1+x)-1", "sqrt(1 + x) - 1", {"x": signed(logu(1e-300, 1e-2))}, "|x| in [1e-300, 0.01]",
      ("sqrt1pm1",)),
    E("log(exp(x))", "log(exp(x))", {"x": lin(-1000, 1000)}, "x in [-1000, 1000]", ("log_exp",)),
    E("exp(log(x))", "exp(log(x))", {"x": with_points(logu(1e-300, 1e300), 0.0)}, "x in {0} and [1e-300, 1e300]",
      ("exp_log",)),
    E("x*log(x)", "x*log(x)", {"x": with_points(logu(1e-300, 1.0), 0.0)}, "x in {0} and [1e-300, 1]", ("xlogx",),
      exact=lambda mp, x: mp.mpf(0) if x == 0 else x * mp.log(x)),
    E("1-erf(x)", "1 - erf(x)", {"x": lin(1, 26)}, "x in [1, 26]", ("erfc",)),
    E("1+erf(x)", "1 + erf(x)", {"x": lin(-26, -1)}, "x in [-26, -1]", ("one_plus_erf",)),
    E("1-erfc(x)", "1 - erfc(x)", {"x": signed(logu(1e-300, 1e-2))}, "|x| in [1e-300, 0.01]", ("erf",)),
    E("log(x+sqrt(x**2+1))", "log(x + sqrt(x**2 + 1))", {"x": signed(logu(1e-300, 1e300))},
      "|x| in [1e-300, 1e300]", ("arcsinh",)),
    E("log(x+sqrt(x**2-1))", "log(x + sqrt(x**2 - 1))", {"x": logu(1.5, 1e300)}, "x in [1.5, 1e300]",
      ("arccosh",)),
    E("0.5*log((1+x)/(1-x))", "0.5*log((1 + x)/(1 - x))", {"x": signed(logu(1e-300, 0.5))},
      "|x| in [1e-300, 0.5]", ("arctanh",)),
    E("(exp(x)-exp(-x))/2", "(exp(x) - exp(-x))/2", {"x": signed(logu(1e-300, 1e-2))}, "|x| in [1e-300, 0.01]",
      ("sinh_half",)),
    E("arcsin(x) (gradient)", "arcsin(x)", {"x": signed(shift(1.0, neg(logu(1e-16, 0.1))))},
      "|x| in 1 - [1e-16, 0.1]", ("one_minus_square",)),
    # vectors of K: every element large, every element small, or spread out
    E("log(sum(exp(a)))", "log(sum(exp(a)))", {"a": _VECTORS}, _VECTORS_SHOWN, ("logsumexp",),
      shapes=(("a", (K,)),)),
    E("exp(a)/sum(exp(a))", "(exp(a)/sum(exp(a)))[0]", {"a": _VECTORS}, _VECTORS_SHOWN,
      ("softmax",), shapes=(("a", (K,)),)),
    # log-softmax and cross-entropy: naive, an element more than 745 below the maximum
    # (the third range) has softmax 0, log -inf, and every gradient element NaN; spelled
    # a - log(sum(exp(a))), exp overflows (the first range) and logsumexp alone leaves
    # a - logsumexp(a), which rounds the dominant element's value to 0 (the third)
    E("log(softmax(a))[0]", "log(softmax(a))[0]", {"a": _VECTORS}, _VECTORS_SHOWN, ("log_softmax",),
      shapes=(("a", (K,)),)),
    E("log(exp(a)/sum(exp(a)))[0]", "log(exp(a)/sum(exp(a)))[0]", {"a": _VECTORS}, _VECTORS_SHOWN,
      ("softmax", "log_softmax"), shapes=(("a", (K,)),)),
    E("log(softmax(a)[0])", "log(softmax(a)[0])", {"a": _VECTORS}, _VECTORS_SHOWN, ("log_softmax",),
      shapes=(("a", (K,)),)),
    E("a-log(sum(exp(a)))", "(a - log(sum(exp(a))))[0]", {"a": _VECTORS}, _VECTORS_SHOWN,
      ("logsumexp", "log_softmax_lse"), shapes=(("a", (K,)),)),
    E("cross-entropy", "-sum(y*log(softmax(a)))", {"a": _VECTORS, "y": vectors(K, lin(0, 1))},
      f"a as above; y: {K} elements in [0, 1]", ("log_softmax",), shapes=(("a", (K,)), ("y", (K,)))),
    # more spellings of the same: cross-entropy with a label, logsumexp(a) - a[k] (naive:
    # the dominant element's value and gradient 0, the third range); a scaled softmax
    # (naive: -inf and a gradient inf or NaN where an element's softmax underflows); one
    # element of exp over the sum (a pick of the softmax); a - logsumexp(a) over all of a
    # matrix (a reshape makes its elements one axis)
    E("logsumexp(a)-a[0]", "logsumexp(a) - a[0]", {"a": _VECTORS}, _VECTORS_SHOWN, ("neg_log_softmax_lse",),
      shapes=(("a", (K,)),)),
    E("log(sum(exp(a)))-a[0]", "log(sum(exp(a))) - a[0]", {"a": _VECTORS}, _VECTORS_SHOWN,
      ("logsumexp", "neg_log_softmax_lse"), shapes=(("a", (K,)),)),
    E("log(2*softmax(a))[0]", "log(2*softmax(a))[0]", {"a": _VECTORS}, _VECTORS_SHOWN, ("log_softmax_scaled",),
      shapes=(("a", (K,)),)),
    E("log(exp(a[0])/sum(exp(a)))", "log(exp(a[0])/sum(exp(a)))", {"a": _VECTORS}, _VECTORS_SHOWN,
      ("softmax", "log_softmax"), shapes=(("a", (K,)),)),
    E("A-logsumexp(A)", "(A - logsumexp(A))[0, 1]", {"A": _MATRICES}, _MATRICES_SHOWN, ("log_softmax_flat",),
      shapes=(("A", (2, 3)),)),
    # the op itself, as a user writes it: no rule fires (the naive form is already stable;
    # the op's own value and derivative rules are what the rules above produce)
    E("log_softmax(a)[0]", "log_softmax(a)[0]", {"a": _VECTORS}, _VECTORS_SHOWN, (), shapes=(("a", (K,)),)),
    E("cross-entropy, log_softmax", "-sum(y*log_softmax(a))", {"a": _VECTORS, "y": vectors(K, lin(0, 1))},
      f"a as above; y: {K} elements in [0, 1]", (), shapes=(("a", (K,)), ("y", (K,)))),
)

__all__ = ["CATALOGUE", "SAFE", "Entry", "lin", "logu", "neg", "signed", "shift", "either", "vectors", "arrays",
           "with_points"]
