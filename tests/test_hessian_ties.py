"""Second derivatives of every elementwise op of the op table at its edge points
(op.edges) and at ties and zeros of its arguments, where derivative rules select
(maximum's tie, logaddexp's, hypot's zero): the Hessian (both backends) and the HVP
against SymPy's exact Hessian of op.sympy, wherever that is a finite real number. A
branch that is a constant where the function is smooth (the 0.5 of a tie) has
derivative 0 and would make the Hessian wrong there. Points where SymPy's Hessian is
not a number (a Dirac delta at max's tie or abs's 0, zoo, NaN: not twice
differentiable there, or a limit SymPy does not take) are not checked."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy

from exprcompiler import compile_grad, compile_hessian, compile_hvp
from exprcompiler.trace.ir import Builder, trace_from_builder
from conftest import backends_here
from merged_cases import summed_outputs
from test_ops import DIFFERENTIABLE, steps_differentiated, varies

BACKENDS = backends_here("c")
TIES = (0.0, 1.0, -0.5)
# Points not checked, with the reason: {(op, point)}. (log1mexp'' at -inf, the limit 0,
# was NaN, 0·inf, until its slope became the op log1mexp_slope: s·(1 - s) = -0.0 there.)
KNOWN: set = set()


pytestmark = pytest.mark.usefixtures("private_cache")


def typical(op) -> list[float]:
    """A point inside the op's domain, its arguments apart."""
    return [lo + (0.37 + 0.11 * k) * (hi - lo) for k, (lo, hi) in enumerate(op.domain)]


def points(op) -> list[tuple]:
    """The op's edge points, ties of its arguments (all of them, and each pair with the
    other at a typical value) and each argument 0 (the others typical)."""
    n, base = op.arity, typical(op)
    out = [tuple(p) for p, _ in op.edges] + [tuple(base)]
    out += [(v,) * n for v in TIES] if n > 1 else []
    for i in range(n):
        out.append(tuple(0.0 if k == i else x for k, x in enumerate(base)))
        for j in range(i + 1, n):
            out += [tuple(v if k in (i, j) else x for k, x in enumerate(base)) for v in TIES]
    # polygamma's order is an integer, not a variable: keep the domain's
    fixed = {i: lo for i, (lo, hi) in enumerate(op.domain) if lo == hi}
    return list(dict.fromkeys(tuple(fixed.get(k, x) for k, x in enumerate(p)) for p in out))


def exact_hessians(op, pts) -> list[np.ndarray]:
    """SymPy's Hessian of op.sympy at each point, NaN where it is not a finite real number."""
    syms = sympy.symbols(f"x1:{op.arity + 1}", real=True)
    expr = op.sympy(sympy, *syms) if op.sympy else getattr(sympy, op.sympy_head or op.name)(*syms)
    # (not in polygamma's order, an integer: its partial is 0 by convention, SymPy's unevaluated)
    second = [steps_differentiated(sympy.diff(steps_differentiated(sympy.diff(expr, si)), sj))
              if varies(op, i) and varies(op, j) else sympy.nan
              for i, si in enumerate(syms) for j, sj in enumerate(syms)]
    fast = [mpmath_function(syms, e) for e in [expr] + second]
    out = []
    for point in pts:
        at = [sympy.Float(v, 30) if math.isfinite(v) else sympy.oo if v > 0 else -sympy.oo for v in point]
        h = np.full(op.arity ** 2, np.nan)
        if not math.isnan(number(expr, fast[0], syms, at)):   # (not where the function is not real: arccosh(0))
            h[:] = [number(e, f, syms, at) for e, f in zip(second, fast[1:])]
        out.append(h.reshape(op.arity, op.arity))
    return out


def mpmath_function(syms, expr):
    """expr lambdified for mpmath, None where mpmath has no function of it (Heaviside's
    derivative)."""
    try:
        return sympy.lambdify(syms, expr, "mpmath")
    except (sympy.printing.codeprinter.PrintMethodNotImplementedError, ValueError):
        return None


def number(expr, fast, syms, at) -> float:
    """expr at the point `at` by mpmath at 30 digits (`fast`: expr lambdified), or where
    mpmath has no function of it (DiracDelta) or fails (0/0) by SymPy (all symbols at
    once: 0·zoo is not 0); NaN where that is not a finite real number."""
    with mpmath.workdps(30):
        try:
            if fast is None:
                raise NameError(expr)
            value = fast(*(mpmath.mpf(float(a)) for a in at))
            if isinstance(value, mpmath.mpf) and mpmath.isfinite(value):
                return float(value)
        except (TypeError, ValueError, ZeroDivisionError, NameError, AttributeError):
            pass
    try:
        value = expr.subs(dict(zip(syms, at)), simultaneous=True).evalf(30)
    except (TypeError, ValueError, ZeroDivisionError, RecursionError):
        return math.nan
    if value.is_real and value.is_finite and not value.has(sympy.DiracDelta, sympy.Heaviside,
                                                           sympy.Derivative, sympy.Subs):
        return float(value)
    return math.nan


def all_ops_trace():
    """Every op on inputs of its own (<op>_x1...), summed: the Hessian is block diagonal,
    each block one op's."""
    b = Builder()
    outputs = []
    for op in DIFFERENTIABLE:
        xs = [b.input(f"{op.name}_x{k + 1}") for k in range(op.arity)]
        outputs.append((f"y_{op.name}", b.apply(op.name, *xs)))
    return trace_from_builder(b, summed_outputs(b, outputs))


def cases(points_of=None):
    """(every op's input names, sorted: the order of the Hessian's rows; their argument
    columns of n points, each op's own points (`points_of(op)`, this module's `points`
    unless given) repeated up to n; {op: its points}; n)."""
    per_op = {op.name: (points_of or points)(op) for op in DIFFERENTIABLE}
    n = max(map(len, per_op.values()))
    names = sorted(f"{op.name}_x{k + 1}" for op in DIFFERENTIABLE for k in range(op.arity))
    columns = {}
    for op in DIFFERENTIABLE:
        pts = [per_op[op.name][i % len(per_op[op.name])] for i in range(n)]
        for k in range(op.arity):
            columns[f"{op.name}_x{k + 1}"] = np.array([p[k] for p in pts])
    return names, [columns[name] for name in names], per_op, n


def in_order(inputs, names, columns) -> list:
    """`columns` (in `names` order) in the compiled function's order of `inputs`."""
    by_name = dict(zip(names, columns))
    return [by_name[name] for name in inputs]


@pytest.fixture(scope="module")
def expected():
    names, args, per_op, n = cases()
    exact = {op.name: exact_hessians(op, per_op[op.name]) for op in DIFFERENTIABLE}
    return names, args, per_op, n, exact


def check(hessian_of, expected) -> list[str]:
    """Mismatches of hessian_of(op, point index) (an arity x arity block) against SymPy's."""
    names, args, per_op, n, exact = expected
    problems = []
    for op in DIFFERENTIABLE:
        for i, point in enumerate(per_op[op.name]):
            if (op.name, point) in KNOWN:
                continue
            want, got = exact[op.name][i], hessian_of(op, i)
            known = ~np.isnan(want)
            ok = np.isclose(got, want, rtol=1e-9, atol=1e-12) | ~known
            if not ok.all():
                problems.append(f"{op.name} at {point}: got {got[known].tolist()}, SymPy {want[known].tolist()}")
    return problems


def column_blocks(columns):
    """block(op, i) for check: op's Hessian at point i from columns[k], the products with
    the k-th unit direction, as {variable name: values}."""
    def block(op, i):
        out = np.full((op.arity, op.arity), np.nan)
        for k in range(op.arity):
            for r in range(op.arity):
                out[r, k] = np.asarray(columns[k][f"{op.name}_x{r + 1}"])[i]
        return out
    return block


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_ops_hessian_is_sympys_at_edges_ties_and_zeros(backend, expected):
    names, args, per_op, n, exact = expected
    H = compile_hessian(all_ops_trace(), names, backend=backend)
    with np.errstate(all="ignore"):
        full = H(*in_order(H.inputs, names, args))[2]
    index = {name: k for k, name in enumerate(names)}

    def block(op, i):
        at = [index[f"{op.name}_x{k + 1}"] for k in range(op.arity)]
        return full[i][np.ix_(at, at)]
    problems = check(block, expected)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_ops_hvp_is_sympys_at_edges_ties_and_zeros(backend, expected):
    """The HVP in direction e_k of every op's block at once: column k of each block."""
    names, args, per_op, n, exact = expected
    hvp = compile_hvp(all_ops_trace(), names, backend=backend)
    arity = max(op.arity for op in DIFFERENTIABLE)
    columns = []
    for k in range(arity):
        v = [np.full(n, float(name.endswith(f"_x{k + 1}"))) for name in names]
        with np.errstate(all="ignore"):
            got = hvp(*in_order(hvp.inputs[:len(names)], names, args), *v)   # (directions in `names` order)
        columns.append(dict(zip(names, got[2])))   # (value, gradient, H·v)

    problems = check(column_blocks(columns), expected)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_stable_rewrites_hessians_at_ties_are_the_naive_forms(backend):
    """stable=True puts logaddexp and logaddexp3 in for log(exp(a) + exp(b) (+ exp(c))):
    at ties their Hessians are the naive form's (0 before: the tie's constant 0.5)."""
    for text, at in (("log(exp(x) + exp(y))", [(1.0, 1.0)]),
                     ("log(exp(x) + exp(y) + exp(z))", [(1.0, 1.0, 0.0), (0.5, -1.0, 0.5), (2.0, 2.0, 2.0)])):
        stable = compile_hessian(text, backend=backend, stable=True)
        assert "logaddexp" in stable.source
        naive = compile_hessian(text, backend=backend)
        for point in at:
            np.testing.assert_allclose(stable(*point)[2], naive(*point)[2], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS + (["vm"] if "c" in BACKENDS else []))
def test_first_derivatives_keep_their_values_at_ties_infinities_and_nan(backend):
    """The tie's selections now keep the formula at finite ties; the first derivatives
    are what they were: 0.5 (1/3) at ties, equal infinities included, NaN from NaN;
    x**y's x-partial and xlogy's y-partial +0.0 where the exponent (x) is 0, NaN
    arguments and infinite seeds included."""
    inf, nan = math.inf, math.nan
    g2 = compile_grad("logaddexp(x, y)", backend=backend)
    for point, want in (((1.0, 1.0), 0.5), ((inf, inf), 0.5), ((-inf, -inf), 0.5), ((nan, 1.0), nan)):
        np.testing.assert_array_equal(g2(*point)[1], (want, want))
    g3 = compile_grad("logaddexp3(x, y, z)", backend=backend)
    for point, want in (((2.0, 2.0, 2.0), (1 / 3,) * 3), ((inf, inf, inf), (1 / 3,) * 3),
                        ((inf, inf, 0.0), (0.5, 0.5, 0.0)), ((1.0, nan, 1.0), (nan,) * 3)):
        np.testing.assert_allclose(g3(*point)[1], want, rtol=1e-15)
    power, xlogy = compile_grad("x**y", backend=backend), compile_grad("xlogy(x, y)", backend=backend)
    with np.errstate(all="ignore"):
        for x in (-2.0, 0.0, -0.0, inf, -inf, nan):
            d = power(x, 0.0)[1][0]
            assert d == 0.0 and not np.signbit(d), (x, d)
            d = xlogy(0.0, -x if x == x else x)[1][1]
            assert d == 0.0 and not np.signbit(d), (x, d)
