"""The cheaper log_softmax (issue 18's budget; benchmarks/bench_log_softmax.py): the
adjoint as one op, log_softmax_vjp (runtime.log_softmax_vjp, c_tensor_ops.emit_
log_softmax_vjp), against mpmath at the edges on both backends, with the same special
values on both; its branches (a dominant element or none, along the innermost axis and
another); its own derivative rules (the Hessian's forward-over-reverse sweep runs them)
by finite differences and the dot-product test; and the C kernels' vectorized maximum
(Loops.extreme_row), which must keep the bits of the sequential fold it replaced
(first NaN, last of equal zeros)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, compile_vjp, passes
from exprcompiler.frontend import to_trace
from exprcompiler.trace.builder import Builder
from exprcompiler.trace.check import interpret
from conftest import BACKENDS, needs_cc
from test_log_softmax_op import EDGES, GOAL, jacobian
from test_log_softmax import error, worst

pytestmark = pytest.mark.usefixtures("private_cache")


def test_the_gradient_is_one_op_and_not_callable_by_name():
    g = compile_grad("log_softmax(z)[1]", shapes={"z": (4,)})
    assert "log_softmax_vjp(" in g.source and "softmax(z" not in g.source.replace("log_softmax(z", "")
    with pytest.raises(Exception, match="log_softmax_vjp"):
        to_trace("log_softmax_vjp(z, z, z)", {"z": (3,)})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("z, k", EDGES, ids=[f"{z}[{k}]" for z, k in EDGES])
def test_edges_against_mpmath(z, k, backend):
    g = compile_grad(f"log_softmax(z)[{k}]", shapes={"z": (len(z),)}, backend=backend)
    assert worst(g, z, k) <= GOAL


SPECIAL = ([0.0, -np.inf, 1.0], [np.inf, 0.0, 1.0], [0.0, np.inf, -np.inf], [np.nan, 0.0, 1.0],
           [np.inf, np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [5.0, 5.0, -np.inf], [0.0, -0.0, -1.0])


@needs_cc
@pytest.mark.parametrize("z", SPECIAL, ids=str)
def test_special_values_alike_on_both_backends(z):
    """inf, -inf, NaN entries and ties: the same infinities, NaNs and zeros from NumPy
    and C (the C loops take every branch by a mask: the limits must survive that)."""
    z = np.array(z)
    for k in range(3):
        got = [compile_grad(f"log_softmax(z)[{k}]", shapes={"z": (3,)}, backend=be)(z) for be in ("numpy", "c")]
        (v0, (d0,)), (v1, (d1,)) = got
        for a, b in ((v0, v1), (d0, d1)):   # (to an ulp or two: their exp and log1p differ)
            np.testing.assert_allclose(a, b, rtol=1e-15, atol=0)   # (NaN where NaN, inf where inf)
            np.testing.assert_array_equal(np.signbit(a)[a == a], np.signbit(b)[a == a])   # (zeros' signs)


def _adjoint_exact(z, g):
    """Jᵀg along a slice, J = I - 1·sᵀ, at 60 digits."""
    J = jacobian(z)
    with mpmath.workdps(60):
        return [sum(J[k][j] * mpmath.mpf(float(g[k])) for k in range(len(z))) for j in range(len(z))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("axis", [0, 1])
def test_vjp_along_each_axis_with_and_without_a_dominant_element(axis, backend):
    """Slices with a dominant element (S < 2: the others' sum taken) and without (S >= 2),
    along the innermost axis (the C row loops) and the other (the C loops over the
    whole argument): each adjoint component against mpmath, where the terms do not
    cancel it (condition below 1e3)."""
    rng = np.random.default_rng(3)
    Z = np.array([[40.0, 0.0, -1.0, 2.0], [0.5, 0.25, 0.0, -0.5], [1.0, 1.0, 1.0, 1.0], [-3.0, 900.0, 0.0, 1.0]])
    if axis == 0:
        Z = Z.T.copy()
    G = rng.normal(size=Z.shape)
    vjp = compile_vjp(f"log_softmax(Z, axis={axis})", shapes={"Z": (4, 4)}, backend=backend)
    _, (adj,) = vjp(Z, G)
    lines = range(4)
    for r in lines:
        z, g, got = (Z[r], G[r], adj[r]) if axis == 1 else (Z[:, r], G[:, r], adj[:, r])
        want = _adjoint_exact(z, g)
        J = jacobian(z)
        with mpmath.workdps(60):
            for j in range(4):
                terms = [J[k][j] * mpmath.mpf(float(g[k])) for k in range(4)]
                if want[j] != 0 and sum(abs(t) for t in terms) / abs(want[j]) < 1e3:
                    assert error(got[j], want[j]) <= GOAL, (r, j, got[j], want[j])


def _op_trace(n: int):
    b = Builder()
    x, o, g = b.input("x", (n,)), b.input("o", (n,)), b.input("g", (n,))
    return b.finish([("F", b.apply("log_softmax_vjp", x, o, g, axis=0))])


@pytest.mark.parametrize("z", [[0.3, -1.0, 2.0, 0.5], [30.0, 0.0, -1.0, 2.0], [1.0, 1.0, -2.0, 0.0]])
def test_the_ops_own_derivative_rules(z):
    """jvp against central differences of runtime.log_softmax_vjp in x and g (o is
    only read at the NaN limit), and the vjp against the jvp (<F̄, dF> = <x̄, dx> + <ḡ, dg>)."""
    from exprcompiler import runtime
    n = len(z)
    rng = np.random.default_rng(9)
    x, g = np.array(z), rng.normal(size=n)
    o = runtime.log_softmax(x)
    dx, dg, fbar = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    t = _op_trace(n)
    (_, fdot) = interpret(passes.jvp(t, ["x", "g"]), {"x": x, "o": o, "g": g, "x.dot": dx, "g.dot": dg})
    h = 1e-6
    fd = (runtime.log_softmax_vjp(x + h * dx, o, g + h * dg, 0) - runtime.log_softmax_vjp(x - h * dx, o, g - h * dg, 0)) / (2 * h)
    np.testing.assert_allclose(fdot, fd, rtol=1e-6, atol=1e-8)
    _, xbar, gbar = interpret(passes.vjp(t, ["x", "g"]), {"x": x, "o": o, "g": g, "F.bar": fbar})
    assert np.dot(fbar, fdot) == pytest.approx(np.dot(xbar, dx) + np.dot(gbar, dg), rel=1e-12, abs=1e-14)


# -- the C kernels' maximum ------------------------------------------------------------------
def _fold(xs, kind):
    """The old C reduction: acc = xc_maximum(acc, x) from -inf (xc_minimum from +inf)."""
    acc = -np.inf if kind == "max" else np.inf
    for x in xs:
        better = acc > x if kind == "max" else acc < x
        acc = acc if (better or acc != acc) else x
    return acc


@needs_cc
@pytest.mark.parametrize("kind", ["max", "min"])
def test_vectorized_extremes_keep_the_folds_bits(kind):
    """Signed zeros (the fold keeps the last of equal elements), NaNs with payloads (the
    first), infinities; rows of a matrix and a whole vector: the bits of the fold."""
    rng = np.random.default_rng(5)
    f = compile_expr(f"{kind}(z)", shapes={"z": (37,)}, backend="c")
    fm = compile_expr(f"{kind}(Z, axis=1)", shapes={"Z": (6, 37)}, backend="c")
    nan2 = np.frombuffer(np.array([0x7FF8000000000123], dtype=np.uint64).tobytes(), dtype=np.float64)[0]
    for trial in range(40):
        Z = rng.choice([0.0, -0.0, -1.0, 1.0, np.inf, -np.inf, np.nan, nan2, 2.5], size=(6, 37),
                       p=[0.3, 0.3, 0.1, 0.05, 0.02, 0.02, 0.01, 0.01, 0.19])
        if trial % 3 == 0:
            Z[Z > 0] = 0.0 if kind == "max" else Z[Z > 0]
            Z[Z < 0] = -0.0 if kind == "min" else Z[Z < 0]
        got = fm(Z)
        for r in range(6):
            want = _fold(Z[r], kind)
            assert np.float64(got[r]).tobytes() == np.float64(want).tobytes(), (Z[r], got[r], want)
        assert np.float64(f(Z[0])).tobytes() == np.float64(_fold(Z[0], kind)).tobytes()
