"""Second order and Jacobians: Hessians against sympy.hessian and finite differences
of the gradient, exact symmetry, HVP against H·v and against reverse over forward,
Jacobians of a tall and a wide function in both modes (and which one `auto`
picks, and why, in `explain`), NumPy and C backends agreeing, batches, the CLI."""

import numpy as np
import pytest
import sympy as sp

from exprcompiler import (compile_grad, compile_hessian, compile_hvp, compile_jacobian, compile_vjp,
                          explain, passes, to_trace)
from exprcompiler.cli import main
from exprcompiler.jacobians import operations
from conftest import HAVE_CC, backends_here
from merged_cases import merged

BACKENDS = backends_here("c")


pytestmark = pytest.mark.usefixtures("private_cache")


def rosenbrock(n: int) -> str:
    return " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(1, n))


FUNCTIONS = [  # (expression, point)
    ("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))", {"x1": 1.5, "x2": 0.5}),
    ("log(x1) + x1*x2 - sin(x2)", {"x1": 2.0, "x2": 5.0}),
    ("exp(x*z) + x*z/log(x) + sin(log(x))/(x*z)", {"x": 2.0, "z": 3.0}),
    ("x**3 - 3*x", {"x": 1.0}),
    ("(x**2 + 1)**2", {"x": 1.0}),
    (rosenbrock(4), {"x1": -1.2, "x2": 1.0, "x3": 0.8, "x4": 1.1}),
    ("tanh(a*b) + sqrt(1 + a**2) * sigmoid(b - c) - c**2 * a", {"a": 0.3, "b": -0.7, "c": 1.2}),
]


def sympy_hessian(expr: str, point: dict):
    names = list(to_trace(expr).input_names)
    syms = sp.symbols(names, real=True)
    local = dict(zip(names, syms))
    f = sp.sympify(expr.replace("sigmoid(b - c)", "1/(1 + exp(-(b - c)))"), locals=local)
    H = sp.hessian(f, syms)
    subs = {s: sp.Float(point[n], 30) for s, n in zip(syms, names)}
    return np.array(H.xreplace(subs).evalf(25).tolist(), dtype=float)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("expr, point", FUNCTIONS)
def test_hessian_matches_sympy_and_is_symmetric(expr, point, backend):
    H = compile_hessian(expr, backend=backend)
    value, grad, hess = H(**point)
    want = sympy_hessian(expr, point)
    np.testing.assert_allclose(hess, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    assert np.array_equal(hess, hess.T)  # exactly: the lower triangle is the upper one
    g = compile_grad(expr)
    v, gr = g(**point)
    assert value == v
    np.testing.assert_allclose(grad, gr, rtol=1e-14, atol=0)


@pytest.mark.parametrize("expr, point", FUNCTIONS)
def test_hessian_matches_finite_differences_of_the_gradient(expr, point):
    H = compile_hessian(expr)
    g = compile_grad(expr)
    names = list(H.wrt)
    _, _, hess = H(**point)
    for j, x in enumerate(names):
        h = 1e-5 * max(1.0, abs(point[x]))
        up = np.array(g(**{**point, x: point[x] + h})[1])
        down = np.array(g(**{**point, x: point[x] - h})[1])
        np.testing.assert_allclose(hess[:, j], (up - down) / (2 * h), rtol=1e-6,
                                   atol=1e-6 * max(1.0, np.abs(hess).max()))


def _check_hvp(expr, point: dict, hvp_and_rof=None) -> None:
    """H·v against the Hessian's, and reverse over forward against it. `hvp_and_rof(v)`:
    (grad, hv, hv2) computed elsewhere (the C test's merged kernels), else on NumPy."""
    hessian = compile_hessian(expr)
    names = list(hessian.wrt)
    v = np.random.default_rng(len(expr)).normal(size=len(names))
    _, grad_h, hess = hessian(**point)
    if hvp_and_rof is None:
        h = compile_hvp(expr)
        assert list(h.wrt) == names
        _, grad, hv = h(**point, **{f"{x}_dot": v[k] for k, x in enumerate(names)})
        # reverse over forward: the VJP of the forward-mode gradient, cotangents (0, v)
        primal = to_trace(expr)
        rof = compile_vjp(passes.grad_forward(primal))
        y = primal.output_names[0]
        _, hv2 = rof(**point, **{f"{y}_bar": 0.0}, **{f"{x}_bar_bar": v[k] for k, x in enumerate(names)})
    else:
        grad, hv, hv2 = hvp_and_rof(names, v)
    np.testing.assert_allclose(hv, hess @ v, rtol=1e-12, atol=1e-12 * np.abs(hess).max())
    np.testing.assert_allclose(grad, grad_h, rtol=1e-14, atol=0)
    np.testing.assert_allclose(hv2, hv, rtol=1e-12, atol=1e-12 * np.abs(hess).max())


@pytest.mark.parametrize("expr, point", FUNCTIONS)
def test_hvp_is_hessian_times_v_and_reverse_over_forward(expr, point):
    _check_hvp(expr, point)


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_hvp_on_c_is_hessian_times_v_and_reverse_over_forward():
    """Every function's HVP and reverse over forward in one C kernel each: the HVP of
    their sum over disjoint inputs (merged_cases.py; two builds instead of fourteen),
    whose gradient and H·v entries for function k's inputs are function k's own."""
    total = merged([(expr, None) for expr, _ in FUNCTIONS], summed=True)
    point = {f"c{k}_{x}": value for k, (_, p) in enumerate(FUNCTIONS) for x, value in p.items()}
    h = compile_hvp(total, backend="c")
    rof = compile_vjp(passes.grad_forward(total), backend="c")
    v = {}   # each function's direction, by merged input name, as its own check draws it
    for k, (expr, _) in enumerate(FUNCTIONS):
        own = list(compile_hessian(expr).wrt)
        v.update(zip([f"c{k}_{x}" for x in own], np.random.default_rng(len(expr)).normal(size=len(own))))
    names = list(h.wrt)
    _, grad, hv = h(**point, **{f"{x}_dot": v[x] for x in names})
    _, hv2 = rof(**point, y_bar=0.0, **{f"{x}_bar_bar": v[x] for x in names})
    at = {x: j for j, x in enumerate(names)}
    failures = []
    for k, (expr, p) in enumerate(FUNCTIONS):
        def mine(names_k, v_k, k=k):
            idx = [at[f"c{k}_{x}"] for x in names_k]
            return [np.array([vector[i] for i in idx]) for vector in (grad, hv, hv2)]
        try:
            _check_hvp(expr, p, mine)
        except AssertionError as err:
            failures.append(f"{expr}: {err}")
    assert not failures, "\n".join(failures)


def test_hvp_cost_is_a_small_multiple_of_the_function():
    primal = to_trace(rosenbrock(100))
    ratio = operations(passes.hvp(primal)) / operations(primal)
    assert ratio < 10, ratio  # forward over reverse: a constant, not a factor n


# -- Jacobians -----------------------------------------------------------------------
# Both share an intermediate that every output needs, so the number of sweeps over
# it decides the cost (without sharing, unit seeds fold each sweep down to its own
# output or input and both modes cost the same).
# Tall, m = 50, n = 2: a chain t10(x, y), then sin(k * t10): 2 tangent sweeps go
# through the chain once each; 50 adjoint sweeps go back through it 50 times.
TALL = ("t1 = sin(x*y) + x\n" + "".join(f"t{k + 1} = t{k}*t{k}/(1 + t{k}**2) + y\n" for k in range(1, 10))
        + ", ".join(f"sin({k}*t10)" for k in range(1, 51)))
# Wide, m = 2, n = 50: s = Σ k sin(w_k), a chain u10(s), then two functions of u10:
# 50 tangent sweeps go through the chain 50 times, 2 adjoint sweeps twice.
WIDE_VARS = [f"w{k}" for k in range(1, 51)]
WIDE = ("u0 = " + " + ".join(f"{k}*sin(w{k})" for k in range(1, 51)) + "\n"
        + "".join(f"u{k + 1} = u{k}*u{k}/(1 + u{k}**2) + 0.5\n" for k in range(10)) + "exp(u10/100), u10*u10")


# mode="auto": the sweeps of the lecture's rule (forward on the tall shape, reverse on
# the wide one), then vertex elimination in the order whose work that rule bounds
# (forward order up to n = 2m), which has fewer operations on both (491 against 543,
# 561 against 621), so it is what auto compiles.
@pytest.mark.parametrize("expr, m, n, order", [(TALL, 50, 2, "forward"), (WIDE, 2, 50, "reverse")],
                         ids=["tall", "wide"])
def test_tall_and_wide_jacobians(expr, m, n, order):
    J = {mode: compile_jacobian(expr, mode=mode) for mode in ("auto", "forward", "reverse")}
    assert J["auto"].mode == "elimination"
    assert str(J["auto"].trace) == str(passes.jacobian(to_trace(expr), None, "elimination", order=order))
    rng = np.random.default_rng(m)
    point = {x: rng.uniform(-1, 1) for x in J["auto"].inputs}
    results = {mode: j(**point) for mode, j in J.items()}
    vals, jac = results["forward"]
    assert vals.shape == (m,) and jac.shape == (m, n)
    np.testing.assert_allclose(results["reverse"][1], jac, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(results["auto"][0], vals)
    np.testing.assert_allclose(results["auto"][1], jac, rtol=1e-13, atol=1e-15)
    if HAVE_CC:  # the C backend compiles the mode auto picks (the other one is 6-8x larger)
        c_vals, c_jac = compile_jacobian(expr, backend="c")(**point)
        np.testing.assert_allclose(c_jac, jac, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(c_vals, vals, rtol=1e-13, atol=1e-15)
    # against finite differences, column by column
    f = J["auto"]
    for j, x in enumerate(f.wrt[:3]):
        h = 1e-6
        up, down = f(**{**point, x: point[x] + h})[0], f(**{**point, x: point[x] - h})[0]
        np.testing.assert_allclose(jac[:, j], (up - down) / (2 * h), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("expr, cheaper", [(TALL, "forward"), (WIDE, "reverse")], ids=["tall", "wide"])
def test_explain_shows_why_the_mode_is_cheaper(expr, cheaper):
    primal = to_trace(expr)
    fwd, rev = operations(passes.jacobian(primal, None, "forward")), operations(passes.jacobian(primal, None, "reverse"))
    elim = operations(passes.jacobian(primal, None, "elimination", order=cheaper))
    assert (fwd < rev) if cheaper == "forward" else (rev < fwd)
    text = explain(expr)
    assert f"the sweeps of mode='auto': {cheaper} mode" in text
    assert f"Jacobian, forward mode        {fwd:7d}" in text and f"Jacobian, reverse mode        {rev:7d}" in text
    assert f"Jacobian, vertex elimination  {elim:7d}" in text and elim < min(fwd, rev)
    assert f"here the {cheaper}-mode trace is" in text
    assert (f"mode='auto' picks elimination mode: vertex elimination in {cheaper} order has {elim} operations, "
            f"fewer than the {cheaper}-mode trace's {min(fwd, rev)}") in text


def test_jacobian_of_a_batch_has_the_batch_first():
    J = compile_jacobian("x*y; x + y; sin(x)")
    x, y = np.linspace(0, 1, 5), np.linspace(1, 2, 5)
    vals, jac = J(x, y)
    assert vals.shape == (5, 3) and jac.shape == (5, 3, 2)
    for k in range(5):
        v1, j1 = J(x[k], y[k])
        np.testing.assert_array_equal(jac[k], j1)
        np.testing.assert_array_equal(vals[k], v1)
    _, _, hess = compile_hessian("x**2 * y")(x, 2.0)
    assert hess.shape == (5, 2, 2)


def test_jacobian_inputs_lists_and_sympy_vectors():
    x, y = sp.symbols("x y")
    for exprs in (["x*y", "sin(x) - y"], (x * y, sp.sin(x) - y), sp.Matrix([x * y, sp.sin(x) - y])):
        _, jac = compile_jacobian(exprs)(1.0, 2.0)
        np.testing.assert_allclose(jac, [[2.0, 1.0], [np.cos(1.0), -1.0]], rtol=1e-15)
    _, jac = compile_jacobian("a = x*y\na, 2*a", wrt="y")(3.0, 2.0)
    np.testing.assert_array_equal(jac, [[3.0], [6.0]])


def test_errors_are_clear():
    with pytest.raises(ValueError, match="a Hessian needs a single-output expression.*compile_jacobian"):
        compile_hessian("x; y")
    with pytest.raises(ValueError, match="unknown mode 'sideways'"):
        compile_jacobian("x; y", mode="sideways")
    with pytest.raises(ValueError, match=r"out=: expected 3 arrays \(one per result\), got 1"):
        compile_hessian("x*y")(1.0, 2.0, out=np.empty(()))
    with pytest.raises(ValueError, match=r"out= array 2: expected float64 of shape \(4, 2, 2\), got float64 "
                                         r"of shape \(2, 2, 4\)"):
        compile_hessian("x*y")(np.ones(4), 2.0, out=(np.empty(4), np.empty((4, 2)), np.empty((2, 2, 4))))
    with pytest.raises(Exception, match="2x2 SymPy matrix"):
        compile_jacobian(sp.Matrix([[1, 2], [3, 4]]))


def test_second_derivative_through_select_matches_sympy():
    g = compile_grad("sin(x) * y**3")
    d2 = compile_grad(passes.select(g.trace, "x.bar"))  # ∂/∂(x, y) of ∂f/∂x
    value, (dxx, dxy) = d2(0.7, 1.3)
    assert value == pytest.approx(np.cos(0.7) * 1.3 ** 3, rel=1e-15)
    assert dxx == pytest.approx(-np.sin(0.7) * 1.3 ** 3, rel=1e-14)
    assert dxy == pytest.approx(3 * np.cos(0.7) * 1.3 ** 2, rel=1e-14)
    printed = str(d2.trace)
    assert "[2]" in printed  # the second sweep's v̄_-1 is told apart from the first's


def test_printed_hvp_trace_reads_as_tangents_of_adjoints():
    printed = str(passes.hvp(to_trace("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))")))
    assert "v̄̇_4  = v̄̇_4 + v̄̇_5" in printed and "x̄̇1" in printed


# -- CLI -----------------------------------------------------------------------------
def test_cli_hessian_jacobian_explain_and_order_two(capsys):
    assert main(["hessian", "x**2*y", "--at", "x=3,y=2"]) == 0
    out = capsys.readouterr().out
    assert "y = 18.0" not in out and "f = 18.0" in out and "Hessian (symmetric):" in out
    assert main(["jacobian", TALL, "--at", "x=0.1,y=0.2"]) == 0   # mode auto: see test_tall_and_wide_jacobians
    out = capsys.readouterr().out
    assert "Jacobian (50x2), elimination mode (vertex elimination on the linearized graph):" in out
    assert main(["jacobian", TALL, "--at", "x=0.1,y=0.2", "--mode", "forward"]) == 0
    assert "Jacobian (50x2), forward mode (2 tangent sweeps):" in capsys.readouterr().out
    assert main(["jacobian", WIDE, "--at", ",".join(f"{w}=0.5" for w in WIDE_VARS), "--mode", "reverse"]) == 0
    assert "reverse mode (2 adjoint sweeps)" in capsys.readouterr().out
    assert main(["explain", "x**3 - 3*x"]) == 0
    assert "value + gradient + HVP" in capsys.readouterr().out
    assert main(["grad", "x**3 - 3*x", "--order", "2"]) == 0
    assert "def f_hvp(x, x_dot):" in capsys.readouterr().out
    assert main(["grad", "x**3 - 3*x", "--order", "2", "--target", "c"]) == 0
    assert "int f_hvp(ptrdiff_t n" in capsys.readouterr().out
    assert main(["grad", "x", "--order", "3"]) == 2
    assert "--order 3" in capsys.readouterr().err
    assert main(["hessian", "x; y", "--at", "x=1,y=2"]) == 2
    assert "single-output" in capsys.readouterr().err
