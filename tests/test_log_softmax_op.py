"""The op log_softmax(x, axis=-1): values and derivatives against mpmath at the edges
(lanes whose softmax underflows, a dominant element, ties, |z| ~ 1e4, -inf, +inf and NaN
entries) on both backends, along each axis of a matrix; forward against reverse mode
(the dot-product test); tangents and adjoints where the dominant element's would cancel;
the Hessian and HVPs against diag(s) - s·sᵀ; SymPy's derivative of the formula; a
hypothesis search over random z; the stability rules producing the op; parsing and
sparsity patterns. (Where stable=True rewrites log(softmax(z)): tests/test_log_softmax.py.)"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exprcompiler import compile_expr, compile_grad, compile_hessian, compile_jvp, compile_vjp, ops
from exprcompiler.errors import ConversionError
from exprcompiler.frontend import to_trace
from exprcompiler.jacobians import compile_hvp
from exprcompiler.sparsity import hessian_pattern, jacobian_pattern
from exprcompiler.stability import accuracy as A
from exprcompiler.stability import stabilize
from exprcompiler.trace.to_sympy import to_sympy
from conftest import BACKENDS
from test_log_softmax import error, worst   # (its exact: the same function as exact below)

GOAL = 1e-13
TINY = 2.2250738585072014e-308


pytestmark = pytest.mark.usefixtures("private_cache")


@functools.lru_cache(maxsize=None)
def grad(expr: str, n: int, backend: str = "numpy"):
    return compile_grad(expr, shapes={"z": (n,)}, backend=backend)


def softmax_parts(z):
    """(s, r) by mpmath at 60 digits: s = softmax(z) and r = 1 - s, each element's r
    as the others' share (T/(1 + T) at a unique maximum, so e^-1000 keeps its digits)."""
    with mpmath.workdps(60):
        z = [mpmath.mpf(float(t)) for t in z]
        i = max(range(len(z)), key=lambda j: z[j])
        e = [mpmath.exp(t - z[i]) for t in z]
        total = sum(e[j] for j in range(len(z)) if j != i)   # the others' sum, T
        s = [t / (1 + total) for t in e]
        r = [sum(e[m] for m in range(len(z)) if m != j) / (1 + total) for j in range(len(z))]
        return s, r


def exact(z, k):
    """log_softmax(z)[k] and its gradient (δ_kj - s_j; at j = k, r_k), by mpmath."""
    s, r = softmax_parts(z)
    with mpmath.workdps(60):
        zz = [mpmath.mpf(float(t)) for t in z]
        i = max(range(len(z)), key=lambda j: zz[j])
        value = zz[k] - zz[i] - mpmath.log1p(sum(mpmath.exp(t - zz[i]) for j, t in enumerate(zz) if j != i))
        return value, [r[j] if j == k else -s[j] for j in range(len(z))]


def jacobian(z):
    """The exact Jacobian I - 1·sᵀ as rows of mpf."""
    s, r = softmax_parts(z)
    return [[r[j] if j == k else -s[j] for j in range(len(z))] for k in range(len(z))]


# -- the op in the language ---------------------------------------------------------------------
def test_in_the_op_table_and_the_language():
    op = ops.OPS["log_softmax"]
    assert "log_softmax" in ops.FUNCTIONS and op.keywords == (("axis", -1),) and op.across
    assert "log1p" in op.doc
    t = to_trace("log_softmax(Z, axis=0)", {"Z": (2, 3)})
    assert [(i.op, dict(i.attrs)) for i in t.instrs if i.op == "log_softmax"] == [("log_softmax", {"axis": 0})]
    assert dict(to_trace("log_softmax(Z)", {"Z": (2, 3)}).instrs[-1].attrs) == {"axis": 1}   # the last
    with pytest.raises(Exception, match="log_softmax"):   # the "did you mean" comes from the op table
        to_trace("log_sofmax(z)", {"z": (3,)})


def test_value_is_the_same_function_as_log_of_softmax_where_that_is_accurate():
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(4, 5))
    for axis in (0, 1, -1):
        f = compile_expr(f"log_softmax(Z, axis={axis})", shapes={"Z": (4, 5)})
        g = compile_expr(f"log(softmax(Z, axis={axis}))", shapes={"Z": (4, 5)})
        np.testing.assert_allclose(f(Z), g(Z), rtol=1e-14, atol=1e-15)


# -- values and gradients at the edges --------------------------------------------------------
EDGES = [
    ([0.0, -800.0, 1.0], 0),        # lane 1 underflows: log(softmax(z)) gives gradient NaN
    ([0.0, -800.0, 1.0], 1),        # the underflowed lane itself: -801.3, not -inf
    ([-800.0, 0.0], 0),
    ([1000.0, -1000.0, 0.0], 0),    # the maximum dominates: value -e^-1000, gradient e^-1000
    ([700.0, 0.0, -700.0], 0),      # value -e^-700 (normal)
    ([30.0, 0.0, -1.0], 0),         # 1 - softmax_0 = 1.3e-13 keeps its digits
    ([30.0, 0.0, -1.0], 2),
    ([1e4, 1e4 - 30.0, 9990.0], 0),     # |z| ~ 1e4
    ([1e4, 1e4 - 30.0, 9990.0], 1),
    ([-1e4, -1e4 - 3.0, -9999.5], 2),
    ([1e300, -1e300, 0.0], 1),
    ([-1e300, 1e300], 0),
    ([0.0, 0.0, 0.0], 0),           # ties
    ([5.0, 5.0, -3.0, -900.0], 1),
    ([5.0, 5.0, -3.0, -900.0], 2),
    ([-1000.0, -1001.0, -1200.0, -999.5], 3),
    ([2.0, 1.0, 0.5, -0.25, 3.0], 4),
    ([7.0], 0),                     # one element: 0, gradient 0
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("z, k", EDGES, ids=[f"{z}[{k}]" for z, k in EDGES])
def test_edges_against_mpmath(z, k, backend):
    assert worst(grad(f"log_softmax(z)[{k}]", len(z), backend), z, k) <= GOAL


@pytest.mark.parametrize("backend", BACKENDS)
def test_infinite_and_nan_entries(backend):
    """-inf: that lane -inf, the others exact, gradient finite. A single +inf: the limits
    (0 there, -inf elsewhere; gradients as s -> [1, 0, 0]). NaN, two +infs, all -inf: NaN."""
    z = np.array([0.0, -np.inf, 1.0])
    for k in (0, 2):
        assert worst(grad(f"log_softmax(z)[{k}]", 3, backend), z, k) <= GOAL
    v, (d,) = grad("log_softmax(z)[1]", 3, backend)(z)
    s = np.exp(z - np.logaddexp(0.0, 1.0))
    assert v == -np.inf and d[1] == 1.0 and np.allclose(d[[0, 2]], -s[[0, 2]], rtol=1e-15, atol=0)
    f = compile_expr("log_softmax(z)", shapes={"z": (3,)}, backend=backend)
    with np.errstate(all="ignore"):
        plus = np.array([np.inf, 0.0, 1.0])
        assert list(f(plus)) == [0.0, -np.inf, -np.inf]
        v, (d,) = grad("log_softmax(z)[0]", 3, backend)(plus)
        assert v == 0.0 and list(d) == [0.0, 0.0, 0.0]
        v, (d,) = grad("log_softmax(z)[1]", 3, backend)(plus)
        assert v == -np.inf and list(d) == [-1.0, 1.0, 0.0]
        for bad in ([np.nan, 0.0, 1.0], [np.inf, np.inf, 1.0], [-np.inf, -np.inf, -np.inf]):
            assert np.isnan(f(np.array(bad))).all(), bad
            v, (d,) = grad("log_softmax(z)[1]", 3, backend)(np.array(bad))
            assert np.isnan(v) and np.isnan(d).all(), bad
        assert list(compile_expr("log_softmax(z)", shapes={"z": (1,)}, backend=backend)(np.array([-np.inf]))) == [0.0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("axis", [0, 1])
def test_along_each_axis_of_a_matrix(axis, backend):
    Z = np.array([[0.0, 900.0, 3.0], [-800.0, 1.0, 3.0], [40.0, 0.0, 40.0]])
    W = np.array([[1.0, 0.0, 0.25], [0.0, 1.0, -2.0], [0.5, 0.5, 1.0]])
    shapes = {"Z": (3, 3), "W": (3, 3)}
    g = compile_grad(f"sum(W*log_softmax(Z, axis={axis}))", shapes=shapes, wrt=["Z"], backend=backend)
    v, (d,) = g(Z=Z, W=W)
    lines, weights = (Z, W) if axis == 1 else (Z.T, W.T)
    want_v, want_d = 0, []
    with mpmath.workdps(60):   # (the sums too: not at whatever mp.dps another test left)
        for z, w in zip(lines, weights):
            row = [mpmath.mpf(0)] * 3
            for k, wk in enumerate(w):
                val, gk = exact(z, k)
                want_v += wk * val
                row = [a + wk * t for a, t in zip(row, gk)]
            want_d.append(row)
    assert error(v, want_v) <= GOAL
    got = d if axis == 1 else d.T
    # each element against its line's largest: the last line ties at 40 ([40, 0, 40],
    # weights [0.5, 0.5, 1]), where the exact 1 - 2·s_2 = 2.1e-18 is the difference of
    # two terms of 1 (g - s·Σg, as the naive form's) and comes out 0
    for r, wr in zip(got, want_d):
        scale = max(abs(t) for t in wr)
        assert max(abs(a - b) for a, b in zip(r, wr)) <= GOAL * scale


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_with_one_hot_and_probability_targets(backend):
    g = compile_grad("-sum(y*log_softmax(z))", shapes={"z": (3,), "y": (3,)}, backend=backend)
    z = np.array([0.0, -800.0, 40.0])
    for y in ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.0, 0.8], [0.1, 0.3, 0.6]):
        y = np.array(y)
        v, (dy, dz) = g(y=y, z=z)
        parts = [exact(z, k) for k in range(3)]
        assert error(v, -sum(yk * p[0] for yk, p in zip(y, parts))) <= GOAL
        assert max(error(a, -sum(yk * p[1][j] for yk, p in zip(y, parts))) for j, a in enumerate(dz)) <= GOAL
        assert max(error(a, -p[0]) for a, p in zip(dy, parts)) <= GOAL


# -- forward and reverse mode --------------------------------------------------------------------
POINTS = ([0.0, -800.0, 1.0, 2.0], [3.0, 3.0, -1.0, 0.0], [1e4, 9999.0, -1e4, 9990.0], [40.0, 0.0, -1.0, 2.0],
          [-5.0, 700.0, 1.0, 2.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_and_reverse_agree_and_keep_the_dominant_digits(backend):
    """J·u and Jᵀ·v, J = I - 1·sᵀ, each component within 1e-13 of mpmath's, also at a
    dominant element (gap 40: t_0 - sum(s·t) would keep none of its e^-40 digits) where
    random u and v do not make the component cancel (condition below 1e3); and the
    dot-product test <v, J·u> = <Jᵀ·v, u>."""
    rng = np.random.default_rng(7)
    jvp = compile_jvp("log_softmax(z)", shapes={"z": (4,)}, backend=backend)
    vjp = compile_vjp("log_softmax(z)", shapes={"z": (4,)}, backend=backend)
    for z in POINTS:
        z = np.array(z)
        J = jacobian(z)
        for _ in range(3):
            u, v = rng.normal(size=4), rng.normal(size=4)
            value, ju = jvp(z, u)
            value2, (jtv,) = vjp(z, v)
            np.testing.assert_array_equal(value, value2)
            with mpmath.workdps(60):
                for got, row, x in [(ju[k], J[k], u) for k in range(4)] + \
                                   [(jtv[j], [J[k][j] for k in range(4)], v) for j in range(4)]:
                    terms = [a * mpmath.mpf(float(b)) for a, b in zip(row, x)]
                    want = sum(terms)
                    if want != 0 and sum(abs(t) for t in terms) / abs(want) < 1e3:
                        assert error(got, want) <= GOAL, (z, got, want)
            assert np.dot(v, ju) == pytest.approx(np.dot(jtv, u), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adjoint_at_the_dominant_element_takes_the_others_g_as_a_sum(backend):
    """g concentrated on the dominant element with a remainder far below its ulp: the
    adjoint there, g_0·r_0 - s_0·(g_1 + g_2), needs the others' g summed by themselves
    (sum(g) - g_0 would round it to g_0·r_0, off by 2e-4 here)."""
    vjp = compile_vjp("log_softmax(z)", shapes={"z": (3,)}, backend=backend)
    z, g = np.array([40.0, 0.0, 0.0]), np.array([1.0, 1e-21, 1e-21])
    _, (adj,) = vjp(z, g)
    J = jacobian(z)
    with mpmath.workdps(60):
        for j in range(3):
            assert error(adj[j], sum(J[k][j] * mpmath.mpf(float(g[k])) for k in range(3))) <= GOAL


# -- second order ---------------------------------------------------------------------------------
def hessian_exact(z, w):
    """∇² of -sum(w·log_softmax(z)) = sum(w)·(diag(s) - s·sᵀ); the diagonal s_i·r_i."""
    s, r = softmax_parts(z)
    with mpmath.workdps(60):
        total = sum(mpmath.mpf(float(t)) for t in w)
        return [[total * (s[i] * r[i] if i == j else -s[i] * s[j]) for j in range(len(z))] for i in range(len(z))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_is_diag_s_minus_s_st(backend):
    """Also where log(softmax) is NaN (an underflowed lane), at ties, and at a dominant
    element, whose diagonal entry s_0·(1 - s_0) = 9e-14 (gap 30) keeps its digits."""
    h = compile_hessian("-log_softmax(z)[0]", shapes={"z": (3,)}, backend=backend)
    hy = compile_hessian("-sum(y*log_softmax(z))", wrt=["z"], shapes={"z": (3,), "y": (3,)}, backend=backend)
    y = np.array([0.25, 0.5, 2.0])
    for z in ([0.0, -800.0, 1.0], [2.0, 2.0, 2.0], [30.0, 0.0, -800.0], [1e4, 1e4 - 2.0, 1e4 - 35.0]):
        z = np.array(z)
        for got, want in ((h(z)[2], hessian_exact(z, [1.0])), (hy(y=y, z=z)[2], hessian_exact(z, y))):
            got = np.asarray(got).reshape(3, 3)
            assert max(error(got[i, j], want[i][j]) for i in range(3) for j in range(3)) <= 1e-12, (z, got)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hvp_matches_the_hessian_along_each_axis(backend):
    """Forward over reverse on a matrix, along each axis: H·v with H block-diagonal in
    the slices, each block sum(w)·(diag(s) - s·sᵀ)."""
    rng = np.random.default_rng(5)
    Z, W, V = rng.normal(size=(2, 3)) * 4, rng.uniform(size=(2, 3)), rng.normal(size=(2, 3))
    Z[0, 0] = 60.0
    for axis in (0, 1):
        hvp = compile_hvp(f"-sum(W*log_softmax(Z, axis={axis}))", wrt=["Z"], shapes={"Z": (2, 3), "W": (2, 3)},
                          backend=backend)
        _, _, (hv,) = hvp(Z=Z, W=W, Z_dot=V)
        lines, weights, dirs = (Z, W, V) if axis == 1 else (Z.T, W.T, V.T)
        got = hv if axis == 1 else hv.T
        for z, w, v, row in zip(lines, weights, dirs, got):
            H = hessian_exact(z, w)
            with mpmath.workdps(60):
                want = [sum(H[i][j] * mpmath.mpf(float(v[j])) for j in range(len(z))) for i in range(len(z))]
            np.testing.assert_allclose(row, [float(t) for t in want], rtol=1e-12, atol=1e-14 * np.abs(v).max())


# -- SymPy -----------------------------------------------------------------------------------------
def test_sympy_derivative_of_the_formula_written_over_elements():
    """to_sympy takes scalar traces only, so it refuses the op (as it refuses softmax);
    the catalogue's element-wise form (stability.accuracy) writes it as
    z_k - log(sum(exp(z))), whose sympy.diff is δ - softmax: compared with the gradient."""
    trace = to_trace("log_softmax(z)[1]", {"z": (3,)})
    with pytest.raises(ConversionError, match="scalar traces only"):
        to_sympy(trace)
    e, symbols = A._elements(trace)
    assert e == symbols[1] - sympy.log(sum(sympy.exp(s) for s in symbols))
    z = np.array([0.5, -2.0, 3.0])
    _, (d,) = grad("log_softmax(z)[1]", 3)(z)
    point = dict(zip(symbols, [sympy.Float(float(t), 30) for t in z]))
    want = [float(sympy.diff(e, s).evalf(30, subs=point)) for s in symbols]
    np.testing.assert_allclose(d, want, rtol=1e-15)


# -- random z ---------------------------------------------------------------------------------------
ELEMENT = st.one_of(st.floats(-5, 5), st.floats(-1e3, 1e3), st.floats(-1e300, 1e300),
                    st.sampled_from([0.0, -745.0, 709.0, 1.0, 40.0]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ELEMENT, min_size=1, max_size=6).flatmap(
    lambda z: st.tuples(st.just(z), st.integers(0, len(z) - 1))))
def test_random_z_against_mpmath(case):
    """Value and every gradient element within 1e-13 (NumPy; the C kernel's steps are the
    edges' above), at any spread, ties, huge |z|."""
    z, k = case
    assert worst(grad(f"log_softmax(z)[{k}]", len(z)), z, k) <= GOAL, case


# -- what produces it, what it costs -----------------------------------------------------------------
@pytest.mark.parametrize("expr", ["log(softmax(z))", "z - logsumexp(z)", "log(exp(z)/sum(exp(z)))"])
def test_the_stability_rules_produce_the_op(expr):
    new, firings = stabilize(to_trace(expr, {"z": (3,)}))
    assert firings and [i.op for i in new.instrs if i.op not in ("input", "copy")] == ["log_softmax"]


def test_its_jacobian_and_hessian_patterns_are_dense_per_slice():
    t = to_trace("log_softmax(Z, axis=0)", {"Z": (2, 2)})
    # columns Z[0,0], Z[0,1], Z[1,0], Z[1,1]; slices along axis 0: columns (0, 2) and (1, 3)
    want = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(jacobian_pattern(t).toarray(), want)
    np.testing.assert_array_equal(hessian_pattern(to_trace("sum(log_softmax(Z, axis=0))", {"Z": (2, 2)})).toarray(),
                                  want)


def test_float32_stays_float32():
    g = compile_grad("-sum(y*log_softmax(z))", shapes={"z": (4,), "y": (4,)}, dtype="float32")
    v, (dy, dz) = g(y=np.full(4, 0.25, np.float32), z=np.array([1, 2, 3, 40], np.float32))
    assert dz.dtype == np.float32 and dy.dtype == np.float32 and np.isfinite(dz).all()
