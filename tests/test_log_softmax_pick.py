"""log_softmax(x)[k] of a vector as the stability rules now write it (issue 18's budget;
benchmarks/bench_log_softmax.py), and log_softmax's tangent as one op.

* The pick: log_softmax_at(x, P), P = log_softmax_at_parts(x) (softmax(x) with element
  k replaced by the value), its adjoint log_softmax_at_vjp(P, g): one exp pass for
  value and gradient. Values and gradients against mpmath at the edges (a lone element,
  -inf and +inf entries, ties, 1e308, a dominant element, underflowed lanes) on both
  backends; the value's bits those of log_softmax(z)[k]; central differences; forward
  against reverse mode; HVPs; where the rules keep the old form.
* log_softmax_jvp(x, o, t): forward mode of log_softmax, against mpmath along both
  axes with and without a dominant element, both backends alike at special values.
* The four ops' own derivative rules (HVPs run them: forward over reverse), by central
  differences and the dot-product test; none callable by name (text or SymPy).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy

from exprcompiler import compile_expr, compile_grad, compile_hessian, compile_jvp, passes, runtime
from exprcompiler.errors import ConversionError, ParseError
from exprcompiler.frontend import to_trace
from exprcompiler.jacobians import compile_hvp
from exprcompiler.trace.builder import Builder
from exprcompiler.trace.check import interpret
from conftest import BACKENDS, needs_cc
from test_log_softmax import error, worst
from test_log_softmax_op import EDGES, GOAL, jacobian

pytestmark = pytest.mark.usefixtures("private_cache")

QUOTIENT = "log(exp(z[{k}])/sum(exp(z)))"
PICK_OPS = {"log_softmax_at_parts", "log_softmax_at", "log_softmax_at_vjp"}


def quotient(k: int, n, backend: str = "numpy", stable: bool = True):
    return compile_grad(QUOTIENT.format(k=k), shapes={"z": (n,)}, backend=backend, stable=stable)


# -- what the rules write -------------------------------------------------------------------------
@pytest.mark.parametrize("expr", [QUOTIENT.format(k=3), "log(exp(z)[3]/sum(exp(z)))", "log(softmax(z)[3])",
                                  "z[3] - logsumexp(z)", "logsumexp(z) - z[3]", "log(exp(z[-2])/sum(exp(z)))"])
def test_a_vectors_pick_is_the_three_ops_one_exp_pass(expr):
    g = compile_grad(expr, shapes={"z": (5,)}, stable=True)
    ops = [ins.op for ins in g.trace.instrs]
    assert PICK_OPS <= set(ops) and not {"log_softmax", "log_softmax_vjp", "scatter", "exp"} & set(ops), ops
    assert ops.count("log_softmax_at_parts") == 1
    key = [dict(ins.attrs)["key"] for ins in g.trace.instrs if ins.op == "log_softmax_at_parts"]
    assert key == [(3,)]   # (z[-2] of 5: element 3)


@pytest.mark.parametrize("expr, shapes", [("log(softmax(Z, axis=1)[1])", {"Z": (2, 3)}),
                                          ("log(softmax(z)[1:])", {"z": (4,)}),
                                          ("log(exp(z[-1])/sum(exp(z)))", {"z": ("n",)})])
def test_other_picks_stay_log_softmax_and_index(expr, shapes):
    """A row, a slice, a negative index of a named size: log_softmax and index, as before."""
    ops = {ins.op for ins in compile_expr(expr, shapes=shapes, stable=True).trace.instrs}
    assert "log_softmax" in ops and not PICK_OPS & ops


def test_a_named_size_with_a_nonnegative_index():
    g = compile_grad(QUOTIENT.format(k=2), shapes={"z": ("n",)}, stable=True)
    assert PICK_OPS <= {ins.op for ins in g.trace.instrs}
    z = np.array([0.5, -1.0, 3.0, 2.0])
    assert worst(g, z, 2) <= GOAL
    with pytest.raises(Exception, match="n"):   # (the binding checks the index: n >= 3)
        g(np.array([0.5, 1.0]))


# -- values and gradients -------------------------------------------------------------------------
MORE = [([1e308, 0.0, -1e308], 0), ([1e308, 0.0, -5e307], 2), ([1e308, 1e308, 0.0], 2),
        ([0.0, -np.inf, 1.0, 2.0], 0), ([0.0, -np.inf, 1.0, 2.0], 3), ([3.0, 3.0, 3.0, -np.inf], 3),
        ([-745.0, 0.0, -746.0], 0), ([40.0, 0.0, 0.0, -1.0], 0), ([40.0, 0.0, 0.0, -1.0], 2)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("z, k", EDGES + MORE, ids=[f"{z}[{k}]" for z, k in EDGES + MORE])
def test_edges_against_mpmath(z, k, backend):
    assert worst(quotient(k, len(z), backend), z, k) <= GOAL


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_rows_against_mpmath(backend):
    """Rows past the C loops' vector widths and tails, the picked element first, inside
    and last; a dominant element and none."""
    rng = np.random.default_rng(4)
    for n in (17, 33, 1001):
        for k in (0, n // 2, n - 1):
            z = rng.normal(scale=3.0, size=n)
            if k == n // 2:
                z[k] = 60.0
            assert worst(quotient(k, n, backend), z, k) <= GOAL, (n, k)


SPECIAL = ([np.inf, 0.0, 1.0], [0.0, np.inf, -np.inf], [np.nan, 0.0, 1.0], [np.inf, np.inf, 1.0],
           [-np.inf, -np.inf, -np.inf], [5.0, 5.0, -np.inf], [0.0, -0.0, -1.0], [1e308, -1e308, 1e308])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("z", SPECIAL, ids=str)
def test_special_values_are_the_limits(z, backend):
    """The value's bits those of log_softmax(z)[k] (the op the rules wrote before); the
    gradient δ_k - s with s its limit at a single +inf (one-hot), NaN where the value
    is NaN, and 0 - g·s off k (+0 where s is 0, as the dense adjoint)."""
    z = np.array(z)
    with np.errstate(all="ignore"):
        for k in range(3):
            v, (d,) = quotient(k, 3, backend)(z)
            w, (e,) = compile_grad(f"log_softmax(z)[{k}]", shapes={"z": (3,)}, backend=backend)(z)
            assert np.float64(v).tobytes() == np.float64(w).tobytes()
            if np.isnan(v):
                assert np.isnan(d).all()
                continue
            if np.isinf(z).any() and not np.isnan(e).any():
                np.testing.assert_array_equal(d, e + 0.0)
            assert not np.signbit(d[np.arange(3) != k][d[np.arange(3) != k] == 0]).any()


@needs_cc
def test_both_backends_alike():
    rng = np.random.default_rng(8)
    for z in [*SPECIAL, *(rng.normal(scale=s, size=6) for s in (1.0, 30.0, 1e3))]:
        z = np.asarray(z, dtype=float)
        for k in (0, len(z) - 1):
            with np.errstate(all="ignore"):
                (v0, (d0,)), (v1, (d1,)) = (quotient(k, len(z), be)(z) for be in ("numpy", "c"))
            assert np.float64(v0).tobytes() == np.float64(v1).tobytes() or np.isnan(v0) and np.isnan(v1)
            np.testing.assert_allclose(d0, d1, rtol=4e-16, atol=0)   # (NaN where NaN)
            np.testing.assert_array_equal(np.signbit(d0)[d0 == d0], np.signbit(d1)[d0 == d0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lone_element(backend):
    """log_softmax of one element is 0 whatever it is (+inf and -inf included), its
    gradient +0 (the naive form's); NaN stays NaN in both."""
    with np.errstate(all="ignore"):
        for x in (7.0, 0.0, -1e308, np.inf, -np.inf):
            v, (d,) = quotient(0, 1, backend)(np.array([x]))
            assert v == 0.0 and not np.signbit(v) and d[0] == 0.0 and not np.signbit(d[0])
        v, (d,) = quotient(0, 1, backend)(np.array([np.nan]))
        assert np.isnan(v) and np.isnan(d[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_central_differences_and_the_naive_form(backend):
    """Where the naive form is accurate: the same values and gradients, and central
    differences of the value."""
    rng = np.random.default_rng(1)
    for n, k in ((2, 1), (5, 3), (12, 0)):
        z = rng.normal(scale=2.0, size=n)
        v, (d,) = quotient(k, n, backend)(z)
        w, (e,) = quotient(k, n, backend, stable=False)(z)
        assert v == pytest.approx(w, rel=1e-14) and np.allclose(d, e, rtol=1e-13, atol=1e-15)
        f = compile_expr(QUOTIENT.format(k=k), shapes={"z": (n,)}, backend=backend, stable=True)
        h = 1e-6
        fd = [(f(z + h * u) - f(z - h * u)) / (2 * h) for u in np.eye(n)]
        np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_mode_against_reverse(backend):
    """<∇f, t> from reverse mode = the tangent from forward mode (the dot-product test),
    at a dominant element too."""
    rng = np.random.default_rng(2)
    for z, k in (([0.3, -1.0, 2.0, 0.5], 1), ([30.0, 0.0, -1.0, 2.0], 0), ([0.0, -800.0, 1.0, 1.0], 1)):
        z = np.array(z)
        t = rng.normal(size=len(z))
        j = compile_jvp(QUOTIENT.format(k=k), shapes={"z": (len(z),)}, backend=backend, stable=True)
        assert PICK_OPS - {"log_softmax_at_vjp"} <= {ins.op for ins in j.trace.instrs}
        _, (d,) = quotient(k, len(z), backend)(z)
        assert j(z, t)[1] == pytest.approx(float(np.dot(d, t)), rel=1e-13, abs=1e-300)


def softmax_hessian(z) -> np.ndarray:
    """-(diag(s) - s·sᵀ) of s = softmax(z), 3 elements, at 50 digits: the Hessian of
    log_softmax(z)[k] for every k."""
    with mpmath.workdps(50):
        e = [mpmath.exp(mpmath.mpf(t)) for t in z]
        s = [t / sum(e) for t in e]
        return -np.array([[float((i == j) * s[i] - s[i] * s[j]) for j in range(3)] for i in range(3)])


def assert_hvp_is_differences(text: str, n: int, backend: str, rng) -> None:
    """compile_hvp of `text` over z (n,) against central differences of its gradient
    along a random direction (stable=True)."""
    hv = compile_hvp(text, shapes={"z": (n,)}, backend=backend, stable=True)
    g = compile_grad(text, shapes={"z": (n,)}, backend=backend, stable=True)
    z, t = rng.normal(size=n), rng.normal(size=n)
    eps = 1e-6
    fd = (g(z + eps * t)[1][0] - g(z - eps * t)[1][0]) / (2 * eps)
    out = hv(z, t)
    np.testing.assert_allclose(np.asarray(out[-1][0] if isinstance(out[-1], tuple) else out[-1]), fd,
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_and_hvps(backend):
    """The Hessian of log_softmax(z)[k] is -(diag(s) - s·sᵀ) for every k, at an underflowed
    lane, at ties, at a dominant element; HVPs against central differences of the gradient."""
    for z in ([0.0, -800.0, 1.0], [2.0, 2.0, 2.0], [30.0, 0.0, -800.0], [0.3, -1.0, 2.0]):
        want = softmax_hessian(z)
        for k in range(3):
            h = compile_hessian(QUOTIENT.format(k=k), shapes={"z": (3,)}, backend=backend, stable=True)
            got = np.asarray(h(np.array(z))[2]).reshape(3, 3)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
    rng = np.random.default_rng(6)
    for n, k in ((4, 0), (9, 5)):
        assert_hvp_is_differences(QUOTIENT.format(k=k), n, backend, rng)


# -- log_softmax's tangent -----------------------------------------------------------------------
def test_forward_mode_of_log_softmax_is_one_op():
    j = compile_jvp("log_softmax(Z, axis=1)", shapes={"Z": (2, 3)})
    ops = [ins.op for ins in j.trace.instrs]
    assert ops.count("log_softmax_jvp") == 1 and "softmax" not in ops and "where" not in ops, ops


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("axis", [0, 1])
def test_tangents_against_mpmath(axis, backend):
    """J·t along each axis (the C row loops and the loops over the whole argument), rows
    with a dominant element (t - t_top taken first) and without, each component against
    mpmath where its terms do not cancel it (condition below 1e3)."""
    rng = np.random.default_rng(11)
    Z = np.array([[40.0, 0.0, -1.0, 2.0], [0.5, 0.25, 0.0, -0.5], [1.0, 1.0, 1.0, 1.0], [-3.0, 900.0, 0.0, 1.0],
                  [0.0, -800.0, 1.0, 3.0]])
    if axis == 0:
        Z = Z.T.copy()
    T = rng.normal(size=Z.shape)
    j = compile_jvp(f"log_softmax(Z, axis={axis})", shapes={"Z": Z.shape}, backend=backend)
    _, dot = j(Z, T)
    for r in range(5):
        z, t, got = (Z[r], T[r], dot[r]) if axis == 1 else (Z[:, r], T[:, r], dot[:, r])
        J = jacobian(z)
        with mpmath.workdps(60):
            for i in range(4):
                terms = [J[i][m] * mpmath.mpf(float(t[m])) for m in range(4)]
                want = mpmath.fsum(terms)
                if want != 0 and sum(abs(u) for u in terms) / abs(want) < 1e3:
                    assert error(got[i], want) <= GOAL, (r, i, got[i], want)


@needs_cc
def test_tangents_at_special_values_alike_on_both_backends():
    Z = np.array([[np.inf, 0.0, 1.0], [0.0, -np.inf, 1.0], [np.nan, 0.0, 1.0], [5.0, 5.0, -np.inf],
                  [700.0, 0.0, -700.0], [0.0, 0.0, 0.0]])
    T = np.random.default_rng(3).normal(size=Z.shape)
    for axis, (A, B) in ((1, (Z, T)), (0, (Z.T.copy(), T.T.copy()))):
        got = [compile_jvp(f"log_softmax(Z, axis={axis})", shapes={"Z": A.shape}, backend=be)(A, B)[1]
               for be in ("numpy", "c")]
        np.testing.assert_allclose(got[0], got[1], rtol=1e-15, atol=0)
        if axis == 1:   # a single +inf: its tangent 0, the others' t_j - t_inf
            assert got[0][0, 0] == 0.0 and got[0][0, 1] == pytest.approx(T[0, 1] - T[0, 0], rel=1e-15)


# -- the ops' own derivative rules ----------------------------------------------------------------
def _rules_hold(op, inputs: dict, attrs: dict, run, perturbed: list):
    """op(*inputs) in a trace: its jvp against central differences of `run` in the
    arguments `perturbed`, its vjp against its jvp (<F̄, dF> = Σ <ā, da>)."""
    b = Builder()
    args = [b.input(name, np.shape(v)) for name, v in inputs.items()]
    t = b.finish([("F", b.apply(op, *args, **attrs))])
    rng = np.random.default_rng(12)
    tans = {name: rng.normal(size=np.shape(inputs[name])) for name in perturbed}
    _, fdot = interpret(passes.jvp(t, perturbed), {**inputs, **{f"{n}.dot": v for n, v in tans.items()}})
    h = 1e-6

    def at(sign):
        return np.asarray(run(**{n: v + sign * h * tans[n] if n in tans else v for n, v in inputs.items()}))
    np.testing.assert_allclose(fdot, (at(1) - at(-1)) / (2 * h), rtol=1e-6, atol=1e-8)
    fbar = rng.normal(size=np.shape(fdot))
    _, *bars = interpret(passes.vjp(t, perturbed), {**inputs, "F.bar": fbar})
    assert np.sum(fbar * fdot) == pytest.approx(sum(np.sum(bv * tans[n]) for n, bv in zip(perturbed, bars)),
                                                rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("z", [[0.3, -1.0, 2.0, 0.5], [30.0, 0.0, -1.0, 2.0], [1.0, 1.0, -2.0, 0.0]])
def test_the_ops_own_derivative_rules(z):
    x = np.array(z)
    o = runtime.log_softmax(x)
    t = np.random.default_rng(5).normal(size=4)
    _rules_hold("log_softmax_jvp", {"x": x, "o": o, "t": t}, {"axis": 0},
                lambda x, o, t: runtime.log_softmax_jvp(x, o, t, 0), ["x", "t"])
    for k in (0, 2):
        key = (k,)
        P = runtime.log_softmax_at_parts(x, key)
        _rules_hold("log_softmax_at_parts", {"x": x}, {"key": key, "axis": 0},
                    lambda x: runtime.log_softmax_at_parts(x, key), ["x"])
        _rules_hold("log_softmax_at", {"x": x, "P": P}, {"key": key},
                    lambda x, P: runtime.log_softmax_at(x, runtime.log_softmax_at_parts(x, key), key), ["x"])
        _rules_hold("log_softmax_at_vjp", {"P": P, "g": np.float64(1.7)}, {"key": key},
                    lambda P, g: runtime.log_softmax_at_vjp(P, g, key), ["P", "g"])


@pytest.mark.parametrize("name", ["log_softmax_jvp", "log_softmax_at_parts", "log_softmax_at", "log_softmax_at_vjp"])
def test_internal_ops_are_not_callable_by_name(name):
    with pytest.raises(ParseError, match=name):
        to_trace(f"{name}(z, z)", {"z": (3,)})
    x, y = sympy.symbols("x y")
    with pytest.raises(ConversionError, match=name):
        to_trace(sympy.Function(name)(x, y))


# -- sparsity patterns ----------------------------------------------------------------------------
def test_sparsity_patterns_cover_the_derivatives():
    """The stabilized primal (the pick's ops), its gradient trace (log_softmax_at_vjp)
    and a forward trace of log_softmax (log_softmax_jvp): each pattern covers every
    nonzero of the Jacobian by central differences (and no longer raises)."""
    from exprcompiler.sparsity import hessian_pattern, jacobian_pattern
    from exprcompiler.stability import stabilize
    primal = stabilize(to_trace("log(exp(z[1])/sum(exp(z))) + y", {"z": (3,)}), "primal")[0]
    assert PICK_OPS - {"log_softmax_at_vjp"} <= {ins.op for ins in primal.instrs}
    J = jacobian_pattern(primal).toarray().astype(bool)
    assert primal.input_names == ("y", "z") and J.shape == (1, 4) and J.all()
    H = hessian_pattern(primal).toarray().astype(bool)
    assert H[1:, 1:].all() and not H[0].any() and not H[:, 0].any()
    grad = passes.grad_reverse(primal)
    assert "log_softmax_at_vjp" in {ins.op for ins in grad.instrs}
    G = jacobian_pattern(grad).toarray().astype(bool)   # rows: the value, ȳ, z̄
    assert G.shape == (5, 4) and G[2:, 1:].all() and not G[2:, 0].any()
    fwd = passes.jvp(to_trace("log_softmax(Z, axis=1)", {"Z": (2, 3)}), ["Z"])
    assert "log_softmax_jvp" in {ins.op for ins in fwd.instrs}
    pattern = jacobian_pattern(fwd).toarray().astype(bool)
    rng = np.random.default_rng(4)
    Z, T = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    x0 = np.concatenate([Z.ravel(), T.ravel()])
    names = [n for n in fwd.input_names]

    def outputs(x):
        vals = {"Z": x[:6].reshape(2, 3), "Z.dot": x[6:].reshape(2, 3)}
        return np.concatenate([np.ravel(o) for o in interpret(fwd, {n: vals[n] for n in names})])
    h = 1e-6
    D = np.stack([(outputs(x0 + h * e) - outputs(x0 - h * e)) / (2 * h) for e in np.eye(12)], axis=1)
    assert names == ["Z", "Z.dot"] and pattern.shape == D.shape
    assert not np.any((np.abs(D) > 1e-8) & ~pattern) and pattern.sum() < pattern.size
