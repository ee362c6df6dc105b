"""Index adjoints stay sparse through elementwise ops (tensor reverse mode).

The adjoint of x[key] is zero outside key, structurally; the reverse sweep used to
materialize it as scatter(g) and multiply it lane by lane by the partials of the
elementwise ops upstream, so 0·inf gave NaN in lanes the output never read:
sqrt(z)[2] at z = [0, -800, 1] had gradient [nan, nan, 0.5], -log(softmax(z))[0]
NaN everywhere. The sweep now pushes scatter(g · partial[key]) (passes/reverse_index.py).
Checked against raw forward-mode tangents (compile_jvp, no repair), central
differences, SymPy, Hessians and HVPs (forward over reverse), Jacobians in both
modes, the dot-product test, and random formulas with indices; NumPy and C (the VM
runs scalars only). A numeric zero times inf is not a structural zero: it stays NaN.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy
from hypothesis import example, given, settings
from hypothesis import strategies as st

from exprcompiler import compile_grad, compile_hessian, compile_hvp, compile_jacobian, compile_jvp, compile_vjp
from exprcompiler import passes, to_trace
from exprcompiler.api import BACKENDS

TENSOR = sorted(b for b in BACKENDS if b != "vm")   # numpy, and c where a compiler is

Z = np.array([0.0, -800.0, 1.0])
X = np.array([0.0, -800.0, 1.0, 4.0, 0.25])
A = np.array([[0.0, -1.0, 2.0, 3.0], [4.0, 0.0, -2.0, 1.0]])
R = np.array([1.0, -4.0, 0.0, 2.0])
C = np.array([[0.0], [2.0]])
Y = np.array([2.0, 0.0, -1.0, 0.5, 3.0])


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("backend", TENSOR)
def test_the_reported_cases(backend):
    def grad(expr):
        with np.errstate(all="ignore"):
            return compile_grad(expr, shapes={"z": (3,)}, backend=backend)(Z)[1][0]
    assert grad("sqrt(z)[2]").tolist() == [0.0, 0.0, 0.5]
    assert grad("log(exp(z))[0]").tolist() == [1.0, 0.0, 0.0]
    want = _softmax(Z) - np.array([1.0, 0.0, 0.0])
    assert np.allclose(grad("-log(softmax(z))[0]"), want, rtol=1e-14, atol=1e-300)


def test_the_softmax_case_is_sympys():
    z = sympy.symbols("z0:3", real=True)
    f = -sympy.log(sympy.exp(z[0]) / sum(sympy.exp(t) for t in z))
    at = dict(zip(z, [sympy.Integer(int(v)) for v in Z]))
    want = [float(sympy.diff(f, t).subs(at).evalf(30)) for t in z]
    got = compile_grad("-log(softmax(z))[0]", shapes={"z": (3,)})(Z)[1][0]
    assert np.allclose(got, want, rtol=1e-14, atol=1e-300)


# (formula, inputs): lanes never read hold 0 and negatives (infinite or NaN partials)
CASES = [
    ("sqrt(x)[-1]", {"x": X}),
    ("sum(sqrt(x)[2:4])", {"x": X}),
    ("sum(log(x)[::2][1:])", {"x": X}),
    ("sum(sqrt(x)[::-1][0:2])", {"x": X}),
    ("sqrt(A)[1, 3]", {"A": A}),
    ("sum(log(A)[1, 2:])", {"A": A}),
    ("sum(sqrt(A)[:, 3])", {"A": A}),
    ("sqrt(A)[1][3]", {"A": A}),
    ("sqrt(A)[-1, -1] * log(A)[0, 2]", {"A": A}),
    # repeated reads: one key, two keys, read whole too
    ("sqrt(x)[2] + sqrt(x)[2]", {"x": X}),
    ("sqrt(x)[2] * log(x)[3]", {"x": X}),
    ("sqrt(x)[2] * sqrt(x)[3] + log(x)[2:4] @ x[0:2]", {"x": X}),
    ("sqrt(x)[2] + sum(x * x)", {"x": X}),
    ("sqrt(x)[2] + sum(exp(x / 1000))", {"x": X}),
    # chains, binary ops, other arguments broadcast along the indexed axis
    ("(sqrt(x) * log(x))[3]", {"x": X}),
    ("exp(sqrt(x) / (y + 1))[3]", {"x": X, "y": Y}),
    ("sqrt(x * s)[2]", {"x": X, "s": 2.0}),
    ("sqrt(A + r)[1, 3]", {"A": A, "r": R}),
    ("sum(sqrt(A * r)[:, 3])", {"A": A, "r": R}),
    ("sqrt(A + c)[1, 0]", {"A": A, "c": C}),
    ("sum(sqrt(A + c)[1, :2])", {"A": A, "c": C}),
    ("sum(log(A * r)[0, 1::2])", {"A": A, "r": R}),
    # where() in the chain: its masks at the keyed lanes
    ("where(x > 0, sqrt(x), 0)[2]", {"x": X}),
    ("sqrt(where(x > 0, x, 1))[1]", {"x": X}),
    ("sum(where(A > 0, sqrt(A), 0)[1])", {"A": A}),
    ("where(x > 0, log(x) * y, 0)[3]", {"x": X, "y": Y}),
    # through ops that are not elementwise (dense there, as before)
    ("log(sum(exp(sqrt(x)[2:4])))", {"x": X}),
    ("-log(softmax(log(x)[2:]))[1]", {"x": X}),
]
IDS = [c[0] for c in CASES]


def _shapes(inputs):
    return {k: np.shape(v) for k, v in inputs.items()}


def _grad(expr, inputs, backend="numpy"):
    with np.errstate(all="ignore"):
        g = compile_grad(expr, shapes=_shapes(inputs), backend=backend)
        got = dict(zip(g.wrt, g(**inputs)[1]))
    return [np.asarray(got[k], dtype=float) for k in inputs]


def _forward_tangents(expr, inputs):
    """The gradient from raw forward-mode tangents (compile_jvp, one unit seed per
    element, no repair): a reference computed with no scatter at all."""
    shapes = _shapes(inputs)
    J = compile_jvp(expr, shapes=shapes)
    out = []
    for name in inputs:
        g = np.zeros(shapes[name])
        for k in np.ndindex(shapes[name]):
            seeds = {f"{n}_dot": np.zeros(shapes[n]) for n in inputs}
            if shapes[name]:
                seeds[f"{name}_dot"][k] = 1.0
            else:
                seeds[f"{name}_dot"] = 1.0
            with np.errstate(all="ignore"):
                g[k] = J(**inputs, **seeds)[1]
        out.append(g)
    return out


@pytest.mark.parametrize("backend", TENSOR)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reverse_is_forward_where_forward_is_a_number(case, backend):
    expr, inputs = case
    want = _forward_tangents(expr, inputs)
    got = _grad(expr, inputs, backend)
    assert any(np.isfinite(w).all() for w in want)
    for g, w in zip(got, want):
        finite = np.isfinite(w)
        assert np.allclose(g[finite], w[finite], rtol=1e-12, atol=1e-300), (expr, g, w)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_central_differences_where_smooth(case):
    _central_differences(*case)


def _central_differences(expr, inputs) -> int:
    """The gradient against central differences at every element where the function is
    smooth there (the one-sided slopes agree); how many elements that was
    (tests/test_index_shapes too)."""
    f = compile_grad(expr, shapes=_shapes(inputs))
    got = _grad(expr, inputs)
    checked = 0
    for name, g in zip(inputs, got):
        base = np.asarray(inputs[name], dtype=float)
        for k in np.ndindex(base.shape):
            diffs = []
            for h in (-1e-6, 1e-6):
                step = base.copy()
                step[k] += h
                with np.errstate(all="ignore"):
                    diffs.append((f(**{**inputs, name: step})[0] - f(**inputs)[0]) / h)
            left, right = diffs
            if np.isfinite(left) and np.isfinite(right) and abs(left - right) <= 1e-4 * (1 + abs(left)):
                central = (left + right) / 2
                assert abs(central - g[k]) <= 1e-5 * (1 + abs(central)), (expr, name, k, central, g[k])
                checked += 1
    return checked


def test_the_sweep_reads_the_partial_at_the_key_only():
    """O(|key|): the only derivative instruction of n lanes is the scatter."""
    primal = to_trace("exp(sqrt(x) * 2)[2]", shapes={"x": (1000,)})
    grad = passes.grad_reverse(primal)

    def wide(t):
        return sorted(ins[0] for ins in t.instrs if ins.shape == (1000,))
    assert wide(grad) == sorted(wide(primal) + ["scatter"]), grad


def test_terms_of_one_key_merge_and_of_two_keys_are_both_kept():
    one = passes.grad_reverse(to_trace("sqrt(x)[1] + sqrt(x)[1]", shapes={"x": (4,)}))
    assert sum(ins[0] == "scatter" for ins in one.instrs) == 1
    two = compile_grad("sqrt(x)[1] * sqrt(x)[2]", shapes={"x": (4,)})(np.array([0.0, 1.0, 4.0, -1.0]))[1][0]
    assert two.tolist() == [0.0, 1.0, 0.25, 0.0]


@pytest.mark.parametrize("backend", TENSOR)
def test_numeric_zeros_still_multiply(backend):
    """Only structural zeros are skipped: sqrt(x)·sqrt(x) and cbrt(x**3) at 0 stay NaN
    (the chain rule's 0·inf), read through an index or whole."""
    x = np.array([0.0, 1.0])
    for expr in ("(sqrt(x) * sqrt(x))[0]", "sqrt(x)[0] * sqrt(x)[0]", "cbrt(x ** 3)[0]", "sum(cbrt(x ** 3))"):
        with np.errstate(all="ignore"):
            g = compile_grad(expr, shapes={"x": (2,)}, backend=backend)(x)[1][0]
        assert math.isnan(g[0]) and g[1] == (0.0 if "[0]" in expr else 1.0), (expr, g)


def test_a_value_read_whole_too_has_a_dense_adjoint():
    """sqrt(x)[2] + sum(sqrt(x)): every lane is read, so 1/(2·sqrt(0)) = inf there."""
    with np.errstate(all="ignore"):
        g = compile_grad("sqrt(x)[2] + sum(sqrt(x))", shapes={"x": (3,)})(np.array([0.0, 1.0, 4.0]))[1][0]
    assert g.tolist() == [math.inf, 0.5, 0.5]


@pytest.mark.parametrize("backend", TENSOR)
def test_hvp_and_hessian(backend):
    with np.errstate(all="ignore"):
        hvp = compile_hvp("sqrt(z)[2]", shapes={"z": (3,)}, backend=backend)
        _, grad, hv = hvp(Z, np.ones(3))
    assert grad[0].tolist() == [0.0, 0.0, 0.5] and hv[0].tolist() == [0.0, 0.0, -0.25]
    s = _softmax(Z)
    want = np.diag(s) - np.outer(s, s)
    with np.errstate(all="ignore"):
        hvp = compile_hvp("-log(softmax(z))[0]", shapes={"z": (3,)}, backend=backend)
        for j in range(3):
            hv = hvp(Z, np.eye(3)[j])[2][0]
            assert np.allclose(hv, want[:, j], rtol=1e-12, atol=1e-300), (j, hv)
        H = compile_hessian("-log(softmax(z))[0]", shapes={"z": (3,)}, backend=backend)(Z)[2]
    assert np.allclose(H, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("backend", TENSOR)
def test_vjp_rows_are_finite_and_jacobians_agree(backend):
    """compile_vjp seeded on one output of sqrt(z)[1:]: its row, with no NaN in the
    lane no output reads (the Jacobian's repair no longer needed for it)."""
    z = np.array([0.0, 1.0, 4.0])
    V = compile_vjp("sqrt(z)[1:]", shapes={"z": (3,)}, backend=backend)
    with np.errstate(all="ignore"):
        rows = [V(z, e)[1][0] for e in np.eye(2)]
    assert rows[0].tolist() == [0.0, 0.5, 0.0] and rows[1].tolist() == [0.0, 0.0, 0.25]
    for mode in ("reverse", "forward"):
        with np.errstate(all="ignore"):
            jac = compile_jacobian("sqrt(z)[1:]", shapes={"z": (3,)}, mode=mode, backend=backend)(z)[1]
        assert jac.tolist() == [[0.0, 0.5, 0.0], [0.0, 0.0, 0.25]], mode


def test_jacobian_modes_agree_with_differences():
    z = np.array([1.0, 4.0, 0.5])
    expr = "sqrt(z)[1:] * log(z)[0:2] + z[2]"
    jacs = [compile_jacobian(expr, shapes={"z": (3,)}, mode=m)(z)[1] for m in ("reverse", "forward")]
    f = compile_jacobian(expr, shapes={"z": (3,)}, mode="forward")
    h = 1e-6
    fd = np.stack([(f(z + h * e)[0] - f(z - h * e)[0]) / (2 * h) for e in np.eye(3)], axis=1)
    assert np.allclose(jacs[0], jacs[1], rtol=1e-14) and np.allclose(jacs[0], fd, rtol=1e-7)


DOT_CASES = [
    ("sqrt(x)[1:4] * y[0:3]", {"x": np.array([0.0, 1.0, 4.0, 0.25, -800.0]), "y": Y}),
    ("log(x)[::2] + exp(y)[2:]", {"x": np.array([1.0, -1.0, 2.0, 0.0, 3.0]), "y": Y}),
    # (row 0 of A + r, never read: 0, 0, 0, -3)
    ("sqrt(A + r)[1]", {"A": np.array([[-1.0, 0.0, -1.0, -5.0], [4.0, 1.0, 2.0, 1.0]]),
                        "r": np.array([1.0, 0.0, 1.0, 2.0])}),
    ("log(A)[:, 0] * sqrt(A)[1, 3]", {"A": np.array([[1.0, -1.0, 0.0, 3.0], [4.0, 0.0, -2.0, 1.0]])}),
]


@pytest.mark.parametrize("backend", TENSOR)
@pytest.mark.parametrize("case", DOT_CASES, ids=[c[0] for c in DOT_CASES])
def test_dot_product_forward_against_reverse(case, backend):
    """uᵀ(J v) = (Jᵀ u)ᵀ v, with J v from a JVP and Jᵀ u from a VJP at random u, v,
    at points where lanes the outputs never read have infinite partials."""
    _dot_product(*case, backend, seed=7)


def _dot_product(expr, inputs, backend, seed):
    """uᵀ(J v) against (Jᵀ u)ᵀ v at three random (u, v) (tests/test_index_shapes too)."""
    shapes = _shapes(inputs)
    rng = np.random.default_rng(seed)
    J = compile_jvp(expr, shapes=shapes, backend=backend)
    V = compile_vjp(expr, shapes=shapes, backend=backend)
    names = list(inputs)
    for _ in range(3):
        v = {n: rng.standard_normal(shapes[n]) for n in names}
        with np.errstate(all="ignore"):
            value, jv = J(**inputs, **{f"{n}_dot": v[n] for n in names})
            u = rng.standard_normal(np.shape(value))
            _, jtu = V(**inputs, **{V.inputs[-1]: u})
        left = float(np.sum(u * jv))
        right = sum(float(np.sum(np.asarray(g) * v[n])) for n, g in zip(V.wrt, jtu))
        assert np.isfinite(left) and abs(left - right) <= 1e-12 * (1 + abs(left)), (expr, left, right)


# -- random formulas with indices against raw forward mode --------------------------------
_UNARY = ("sqrt({})", "log({})", "exp({})", "1 / {}", "cbrt({})", "tanh({})", "({} * {})", "abs({})", "-{}")
_BINARY = ("({} + {})", "({} * {})", "({} - {})", "({} / {})")
_LEAVES = ("x", "y", "(x - 1)", "(y + 0.5)", "s", "(x * s)")
_KEYS = ("[0]", "[-1]", "[1:3]", "[::2]", "[2:][0]", "[::-1][1:]", "[3]")


@st.composite
def elementwise(draw, depth=3):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(_LEAVES))
    if draw(st.booleans()):
        form = draw(st.sampled_from(_UNARY))
        inner = draw(elementwise(depth - 1))
        return form.format(inner, inner)
    return draw(st.sampled_from(_BINARY)).format(draw(elementwise(depth - 1)), draw(elementwise(depth - 1)))


@st.composite
def indexed(draw):
    reads = []
    for _ in range(draw(st.integers(1, 3))):
        e = draw(elementwise())
        if not re.search(r"\b[xy]\b", e):   # (not `in`: the x of exp(s) is no vector)
            e = f"({e} * x)"
        read = f"({e}){draw(st.sampled_from(_KEYS))}"
        reads.append(read if "[0]" in read or "[-1]" in read or "[3]" in read else f"sum({read})")
    ops = [draw(st.sampled_from(" + * -".split(" ")[1:])) for _ in reads[1:]]
    out = reads[0]
    for op, r in zip(ops, reads[1:]):
        out = f"{out} {op} {r}"
    return out


@settings(max_examples=50, deadline=None)
@given(indexed(), st.sampled_from([-1.0, 0.5, 2.0]))
@example("(x)[0] + (x)[0] + (exp(s) * x)[0]", -1.0)   # (the explore profile's: exp(s) alone is no vector)
def test_random_indexed_formulas_reverse_is_forward(expr, s):
    inputs = {"x": np.array([0.0, -1.0, 2.0, 1.0, -0.5]), "y": np.array([1.5, 0.0, -2.0, 0.5, -1.0]), "s": s}
    inputs = {k: v for k, v in inputs.items() if re.search(rf"\b{k}\b", expr)}
    want = _forward_tangents(expr, inputs)
    got = _grad(expr, inputs)
    for g, w in zip(got, want):
        finite = np.isfinite(w)
        assert np.allclose(g[finite], w[finite], rtol=1e-10, atol=1e-300), (expr, g, w)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_a_jacobian_of_index_reads_needs_no_repair(mode, monkeypatch):
    """tensor_jacobians' repairs (the structural pattern, the other mode's sweeps) are
    not reached for sqrt(z)[1:] at z_0 = 0: no sweep makes a NaN any more (reverse
    mode's rows used to, in the lane no output reads)."""
    from exprcompiler import tensor_jacobians

    J = compile_jacobian("sqrt(z)[1:] * 2", shapes={"z": (3,)}, mode=mode)
    monkeypatch.setattr(tensor_jacobians._Patterns, "get", lambda *a, **k: pytest.fail("pattern asked"))
    monkeypatch.setattr(tensor_jacobians.TensorJacobian, "_repair", lambda *a, **k: pytest.fail("repair"))
    with np.errstate(all="ignore"):
        jac = J(np.array([0.0, 1.0, 4.0]))[1]
    assert jac.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 0.5]]


def test_the_repair_is_still_needed_where_every_lane_is_read():
    """sqrt(z) seeded on one output row: 0·inf in the others' lanes (a dense seed, not
    a structural zero), so the pattern still zeroes them."""
    with np.errstate(all="ignore"):
        row = compile_vjp("sqrt(z)", shapes={"z": (2,)})(np.array([1.0, 0.0]), np.array([1.0, 0.0]))[1][0]
        jac = compile_jacobian("sqrt(z)", shapes={"z": (2,)}, mode="reverse")(np.array([1.0, 0.0]))[1]
    assert row[0] == 0.5 and math.isnan(row[1])
    assert jac.tolist() == [[0.5, 0.0], [0.0, math.inf]]


@pytest.mark.parametrize("backend", TENSOR)
def test_named_dimensions(backend):
    g = compile_grad("sqrt(x)[1:][0] + log(x)[-1] * sum(x[2:] * x[2:])", shapes={"x": ("n",)}, backend=backend)
    x = np.array([0.0, 4.0, 1.0, -3.0, 2.0])
    with np.errstate(all="ignore"):
        gx = g(x)[1][0]
    ln2 = math.log(2.0)
    assert np.allclose(gx, [0.0, 0.25, ln2 * 2.0, ln2 * -6.0, ln2 * 4.0 + 14.0 / 2.0], rtol=1e-15, atol=0)


def test_past_max_terms_the_adjoint_is_dense_and_right():
    from exprcompiler.passes import reverse_index

    n = reverse_index.MAX_TERMS + 4
    expr = " + ".join(f"sqrt(x)[{k}] * {k + 1}" for k in range(n))
    x = np.arange(1.0, n + 2)
    got = compile_grad(expr, shapes={"x": (n + 1,)})(x)[1][0]
    want = np.append(np.arange(1.0, n + 1) / (2 * np.sqrt(x[:n])), 0.0)
    assert np.allclose(got, want, rtol=1e-14)
    few = compile_grad(" + ".join(f"sqrt(x)[{k}]" for k in range(3)), shapes={"x": (5,)})
    with np.errstate(all="ignore"):
        assert few(np.array([1.0, 4.0, 1.0, 0.0, -1.0]))[1][0].tolist() == [0.5, 0.25, 0.5, 0.0, 0.0]
