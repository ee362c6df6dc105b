"""The stability rules' patterns and replacements that take more than a line.

Where it sits: rules.py's table refers to these (as P.name); each pattern is
(b, args, attrs) -> matched variables or None, or a helper (b, args) -> one variable
that `one` makes into a pattern; builders are (b, *matched) -> the replacement. They
read the trace through match.py's helpers and build only through builder calls.
The softmax family's (softmax, log_softmax, x - logsumexp(x)) are in softmax_forms.py.
"""

from __future__ import annotations

import math

from . import match as m


def one(f):
    """A pattern that binds one variable, or None."""
    def pattern(b, a, attrs):
        u = f(b, a)
        return None if u is None else (u,)
    return pattern


def exponents(b, v, least: int):
    """The exponents of a sum of exps (a constant 1 counts as exp(0)), or None."""
    terms = m.summands(b, v)
    if terms is None or len(terms) < least:
        return None
    out = []
    for t in terms:
        e = m.arg(b, t, "exp")
        if e is None and not m.is_const(b, t, 1.0):
            return None
        out.append(e)
    return out if any(e is not None for e in out) else None


def log_sum_exp(b, a, attrs):
    found = exponents(b, a[0], 2)
    return None if found is None else tuple(found)


def fold_terms(b, terms, binary: str, ternary: str):
    """The terms combined by `binary` (two terms) or `ternary` (three) ops: one op for
    two or three terms, else ternary(ternary(t1, t2, t3), t4, t5)... with a binary one
    last for an even count: a square root or a log per two terms instead of per term."""
    if len(terms) == 2:
        return b.apply(binary, *terms)
    acc, rest = b.apply(ternary, *terms[:3]), terms[3:]
    while len(rest) >= 2:
        acc, rest = b.apply(ternary, acc, *rest[:2]), rest[2:]
    return b.apply(binary, acc, rest[0]) if rest else acc


def build_logaddexp(b, *exps):
    return fold_terms(b, [e if e is not None else b.const(0.0) for e in exps], "logaddexp", "logaddexp3")


def square_roots(b, a, attrs):
    """sqrt(a² + b² + ... [+ c]) -> ((a, b, ...), the constant c or None)."""
    terms = m.summands(b, a[0])
    if terms is None or len(terms) < 2:
        return None
    bases, constant = [], None
    for t in terms:
        base = m.squared(b, t)
        if base is not None:
            bases.append(base)
        elif b.const_value(t) is not None and b.instrs[t].shape == () and constant is None:
            constant = t
        else:
            return None
    return tuple(bases), constant


def exact_square_constant(b, bases, constant) -> bool:
    """A constant term c stands for r² with r = sqrt(c) only when r·r == c exactly
    (1, 4, 0.25; not 2)."""
    if constant is None:
        return True
    c = b.const_value(constant)
    return math.isfinite(c) and c >= 0 and math.sqrt(c) * math.sqrt(c) == c


def build_hypot(b, bases, constant):
    terms = list(bases) + ([b.const(math.sqrt(b.const_value(constant)))] if constant is not None else [])
    return fold_terms(b, terms, "hypot", "hypot3")


def softmax2(b, a, attrs):
    """exp(x) / (exp(x) + exp(y)) -> (x, y)."""
    x = m.arg(b, a[0], "exp")
    terms = m.summands(b, a[1], 2) if x is not None else None
    if terms is None or len(terms) != 2:
        return None
    e = [m.arg(b, t, "exp") for t in terms]
    if None in e:
        return None
    if m.same(b, e[0], x):
        return x, e[1]
    return (x, e[0]) if m.same(b, e[1], x) else None


def exp_over_one_plus_exp(b, a, attrs):
    u = m.arg(b, a[0], "exp")
    w = m.plus_const(b, a[1], 1.0)
    return (u,) if u is not None and w is not None and m.same(b, w, a[0]) else None


def over_one_plus_exp(b, a, attrs):
    w = m.plus_const(b, a[1], 1.0)
    u = m.arg(b, w, "exp") if w is not None else None
    return None if u is None else (a[0], u)


def tanh_ratio(b, a, attrs):
    """expm1(u) / (exp(u) + 1) -> u."""
    u = m.arg(b, a[0], "expm1")
    w = m.plus_const(b, a[1], 1.0)
    e = m.arg(b, w, "exp") if w is not None else None
    return (u,) if u is not None and e is not None and m.same(b, u, e) else None


def sigmoid_pair(b, a, attrs):
    """sigmoid(u)·sigmoid(-u), either order -> u."""
    for i, j in ((0, 1), (1, 0)):
        u, w = m.arg(b, a[i], "sigmoid"), m.arg(b, a[j], "sigmoid")
        nu = m.negated(b, w) if u is not None and w is not None else None
        if nu is not None and m.same(b, nu, u):
            return (u,)
    return None


def half(b, u):
    """u/2, exactly: x when u = 2x (the usual (exp(2x) - 1)/(exp(2x) + 1))."""
    a = m.args(b, u, "mul")
    if a is not None:
        for i, j in ((0, 1), (1, 0)):
            if m.is_const(b, a[i], 2.0):
                return a[j]
    return b.mul(0.5, u)


def exp_difference(b, v):
    """u when v = exp(u) - exp(-u), else None."""
    a = m.args(b, v, "sub")
    if a is None:
        return None
    u, w = m.arg(b, a[0], "exp"), m.arg(b, a[1], "exp")
    if u is None or w is None:
        return None
    nu = m.negated(b, w)
    return u if nu is not None and m.same(b, nu, u) else None


def half_of(b, a, f):
    """f(x) when the product is 0.5·x or x·0.5."""
    for i, j in ((0, 1), (1, 0)):
        if m.is_const(b, a[i], 0.5):
            return f(b, a[j])
    return None


def artanh_log(b, v):
    """u when v = log((1 + u) / (1 - u)), else None."""
    inner = m.arg(b, v, "log")
    q = m.args(b, inner, "div") if inner is not None else None
    if q is None:
        return None
    u, w = m.plus_const(b, q[0], 1.0), m.const_minus(b, q[1], 1.0)
    return u if u is not None and w is not None and m.same(b, u, w) else None


def asinh(b, a, attrs):
    """log(u + hypot(u, 1)) or log(u + sqrt(u² + 1)) -> u."""
    s = m.args(b, a[0], "add")
    if s is None:
        return None
    for i, j in ((0, 1), (1, 0)):
        u, r = s[i], s[j]
        h = m.args(b, r, "hypot")
        if h is not None and ((m.same(b, h[0], u) and m.is_const(b, h[1], 1.0)) or
                              (m.same(b, h[1], u) and m.is_const(b, h[0], 1.0))):
            return (u,)
        inner = m.arg(b, r, "sqrt")
        w = m.plus_const(b, inner, 1.0) if inner is not None else None
        if w is not None and m.squared(b, w) is not None and m.same(b, m.squared(b, w), u):
            return (u,)
    return None


def acosh(b, a, attrs):
    """log(u + sqrt(u² - 1)) -> u."""
    s = m.args(b, a[0], "add")
    if s is None:
        return None
    for i, j in ((0, 1), (1, 0)):
        inner = m.arg(b, s[j], "sqrt")
        w = m.minus_const(b, inner, 1.0) if inner is not None else None
        base = m.squared(b, w) if w is not None else None
        if base is not None and m.same(b, base, s[i]):
            return (s[i],)
    return None


def of(outer, inner_op):
    """u when the argument is inner_op(u), reached through `outer` (a match helper
    taking (b, v)), e.g. 1 + exp(u)."""
    def f(b, a):
        w = outer(b, a[0]) if outer is not None else a[0]
        return m.arg(b, w, inner_op) if w is not None else None
    return f


def sub_one_minus(op):
    """1 - op(u), at a `sub` root -> u."""
    def f(b, a):
        return m.arg(b, a[1], op) if m.is_const(b, a[0], 1.0) else None
    return f


def sub_minus_one(op):
    """op(u) - 1, at a `sub` root -> u."""
    def f(b, a):
        return m.arg(b, a[0], op) if m.is_const(b, a[1], 1.0) else None
    return f


def add_with(value, op):
    """op(u) + value (either order), at an `add` root -> u."""
    def f(b, a):
        for i, j in ((0, 1), (1, 0)):
            if m.is_const(b, a[i], value):
                return m.arg(b, a[j], op)
        return None
    return f


def one_minus_square(b, a):
    return m.squared(b, a[1]) if m.is_const(b, a[0], 1.0) else None


def tanh_squared(b, a):
    base = one_minus_square(b, a)
    return m.arg(b, base, "tanh") if base is not None else None


def neg_of(op):
    def f(b, a):
        w = m.negated(b, a[0])
        return m.arg(b, w, op) if w is not None else None
    return f


def zero_minus(b, v):
    return b.sub(0.0, v)


def sqrt1p_minus_one(b, a):
    if not m.is_const(b, a[1], 1.0):
        return None
    inner = m.arg(b, a[0], "sqrt")
    return m.plus_const(b, inner, 1.0) if inner is not None else None


def x_log_x(b, a):
    for i, j in ((0, 1), (1, 0)):
        u = m.arg(b, a[j], "log")
        if u is not None and m.same(b, u, a[i]):
            return a[i]
    return None


def log_sum_of_exp(b, a, attrs):
    """log(sum(exp(x), axis...)) -> (x, the sum's options)."""
    n = m.node(b, a[0])
    if n.op != "sum":
        return None
    u = m.arg(b, n.args[0], "exp")
    return None if u is None else (u, n.attrs)


def build_logsumexp(b, u, attrs):
    return b.apply("logsumexp", u, **dict(attrs))
