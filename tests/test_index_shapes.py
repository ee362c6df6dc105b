"""Index adjoints stay sparse through ops that move lanes (tensor reverse mode).

test_index_adjoints checks the adjoint of x[key] kept as terms through elementwise
ops; here the terms go on through transpose, reshape, stack, concatenate,
broadcast_to, sum and mean over an axis, and matmul (passes/reverse_index.moved),
where the dense adjoint (scatter(g), then the op's VJP) met the partials of lanes no
output reads: sum(sqrt(X), axis=0)[1] had NaN in X's other columns at X = 0 or < 0,
(sqrt(X) @ W)[1] NaN in W̄ from sqrt(X)'s row 0. Checked against raw forward-mode
tangents, central differences, SymPy, the dot-product test, HVPs and Hessians, on
NumPy and C (the VM runs scalars only); random chains of shape ops against the
dense sweep (MOVES emptied: the sweep as before) and forward mode wherever they are finite.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy
from hypothesis import example, given, settings
from hypothesis import strategies as st

from exprcompiler import compile_grad, compile_hessian, compile_hvp
from exprcompiler import interpret, passes, to_trace
from exprcompiler.api import BACKENDS
from exprcompiler.passes import reverse_index
from exprcompiler.trace.builder import Builder
from test_index_adjoints import _central_differences, _dot_product, _forward_tangents, _grad, _shapes

TENSOR = sorted(b for b in BACKENDS if b != "vm")   # numpy, and c where a compiler is
# (C compiles a kernel per case: ~20 s of the fast suite; CI runs them with the slow tests)
TENSOR_C_SLOW = [b if b != "c" else pytest.param(b, marks=pytest.mark.slow) for b in TENSOR]

# lanes no output reads hold 0 (sqrt's and log's partial infinite) and -1 (NaN values)
X = np.array([[0.0, 1.0, -1.0], [4.0, 2.0, 0.25]])
Y = np.array([[2.0, 0.0, 3.0], [-1.0, 0.5, 1.5]])
A = np.array([[1.0, -1.0, 2.0], [4.0, 0.0, 1.0], [9.0, 0.25, 2.0], [1.0, 0.0, -3.0]])
x = np.array([0.0, 4.0, -1.0])
y = np.array([1.0, 2.0, 0.0])
x6 = np.array([0.0, 1.0, 4.0, -1.0, 0.25, 9.0])
W = np.array([[1.0, -2.0], [3.0, 0.5], [-1.0, 2.0]])
V = np.array([[1.5, -2.0], [0.5, 1.0]])
w = np.array([1.0, -0.5, 2.0])
v = np.array([0.5, -1.5])

CASES = [
    # sum and mean over an axis: the reduced axis restored whole
    ("sum(sqrt(X), axis=0)[1]", {"X": X}),
    ("mean(sqrt(X), axis=1)[1]", {"X": X}),
    ("sum(log(A), axis=1)[2] * sum(sqrt(A), axis=0)[0]", {"A": A}),
    ("sum(sum(log(X), axis=1, keepdims=True)[1])", {"X": X}),
    ("sum(mean(sqrt(X), axis=0, keepdims=True)[0, 1:2])", {"X": X}),
    ("sum(sqrt(X), axis=0)[1:][0] + sum(sqrt(X), axis=0)[1]", {"X": X}),
    # reshape: blocks of C order
    ("reshape(sqrt(x6), shape=(2, 3))[0, 1]", {"x6": x6}),
    ("sum(reshape(sqrt(x6), shape=(2, 3))[1, 1:])", {"x6": x6}),
    ("sum(reshape(sqrt(X), shape=(6,))[4:6])", {"X": X}),
    ("reshape(sqrt(A), shape=(2, 2, 3))[1, 0, 1]", {"A": A}),
    ("sum(reshape(log(x6), shape=(3, 1, 2))[2])", {"x6": x6}),
    ("sum(reshape(sqrt(A), shape=(2, 6))[1, :3])", {"A": A}),
    # transpose
    ("sum(sqrt(X).T[1])", {"X": X}),
    ("transpose(log(X))[2, 1]", {"X": X}),
    ("sum(sqrt(A).T[:, 2][::2])", {"A": A}),
    # stack and concatenate: the parts the key selects
    ("stack(sqrt(x), log(y))[1, 1]", {"x": x, "y": y}),
    ("sum(stack(sqrt(x), log(y), axis=1)[1])", {"x": x, "y": y}),
    ("sum(stack(sqrt(x), log(y), sqrt(y), axis=1)[1, ::2])", {"x": x, "y": y}),
    ("concatenate(sqrt(x), y)[1]", {"x": x, "y": y}),
    ("sum(concatenate(sqrt(x), log(y))[1:5:3])", {"x": x, "y": y}),
    ("sum(concatenate(log(y), sqrt(x))[::-2])", {"x": np.array([4.0, -1.0, 1.0]), "y": y}),
    ("sum(concatenate(sqrt(X), log(Y), axis=1)[:, 1::3])", {"X": X, "Y": np.array([[2.0, 1.0, 0.0], [1.0, 0.5, -1.0]])}),
    # matmul: the row or column the key keeps, and the other argument read there
    ("sum((sqrt(X) @ W)[1])", {"X": X, "W": W}),
    ("(sqrt(X) @ W)[1, 0]", {"X": X, "W": W}),
    ("sum((V @ sqrt(X))[:, 1])", {"V": V, "X": X}),
    ("(sqrt(X) @ w)[1]", {"X": X, "w": w}),
    ("(v @ sqrt(X))[1]", {"v": v, "X": X}),
    ("(sqrt(X).T @ sqrt(Y))[1, 2]", {"X": X, "Y": np.array([[0.0, 1.0, 4.0], [-1.0, 2.0, 0.5]])}),
    ("outer(sqrt(x), log(y))[1, 0]", {"x": x, "y": y}),
    ("sum(outer(sqrt(x), log(y))[1:2, :2])", {"x": x, "y": y}),
    # max, min, logsumexp over an axis, softmax and log_softmax along one: that axis whole
    ("sum(max(sqrt(X), axis=0)[1:2])", {"X": X}),
    ("min(log(A), axis=1)[2]", {"A": A}),
    ("logsumexp(sqrt(X), axis=1)[1]", {"X": X}),
    ("sum(max(sqrt(X), axis=1, keepdims=True)[1:])", {"X": X}),
    ("softmax(sqrt(X), axis=1)[1, 2]", {"X": X}),
    ("softmax(log(X), axis=0)[0, 1] * 3", {"X": X}),
    ("log_softmax(log(A))[2, 0]", {"A": A}),
    ("log_softmax(sqrt(X) @ W, axis=1)[1, 0]", {"X": X, "W": W}),
    # chains of them
    ("reshape(sum(sqrt(X), axis=0), shape=(3, 1))[1, 0]", {"X": X}),
    ("sum(stack(sqrt(x), y).T[1])", {"x": x, "y": y}),
    ("concatenate(sqrt(x), y)[1:4][0] * sum(sqrt(X).T, axis=1)[1]", {"x": x, "y": y, "X": X}),
    ("sum(reshape(sqrt(X).T @ W, shape=(6,))[2:4])", {"X": X, "W": np.array([[1.0, 2.0], [0.5, -1.0]])}),
]
IDS = [c[0] for c in CASES]


def _dense(trace_fn):
    """trace_fn() with the lane-moving ops taking the materialized adjoint, as before."""
    saved = reverse_index.MOVES
    reverse_index.MOVES = {}
    try:
        return trace_fn()
    finally:
        reverse_index.MOVES = saved


def _traced_grad(expr, inputs, dense=False):
    trace = to_trace(expr, shapes=_shapes(inputs))
    grad = _dense(lambda: passes.grad_reverse(trace)) if dense else passes.grad_reverse(trace)
    out = dict(zip([name for name, _ in grad.outputs], interpret(grad, inputs)))
    return grad, [np.asarray(out[f"{name}.bar"]) for name in inputs]


@pytest.mark.parametrize("backend", TENSOR_C_SLOW)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reverse_is_forward(case, backend):
    """Every lane of the gradient is forward mode's, which is finite everywhere here
    (the dense sweep had NaN: checked, so the case tests the change)."""
    expr, inputs = case
    want = _forward_tangents(expr, inputs)
    assert all(np.isfinite(t).all() for t in want), want
    got = _grad(expr, inputs, backend)
    for g, t in zip(got, want):
        assert np.allclose(g, t, rtol=1e-12, atol=1e-300), (expr, g, t)
    _, old = _traced_grad(expr, inputs, dense=True)
    assert any(np.isnan(o).any() for o in old), "the dense sweep was finite"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_central_differences(case):
    """Lane by lane where f is smooth there (both one-sided quotients finite and near);
    a lane no output reads has difference 0 and gradient 0."""
    expr, inputs = case
    checked = _central_differences(expr, inputs)
    assert checked >= sum(np.size(a) for a in inputs.values()) - 2


def test_sympy_agrees():
    """sum(sqrt(X), axis=0)[1] * (sqrt(X) @ W)[1, 0] differentiated by SymPy, element by element."""
    Xs = sympy.Matrix(2, 3, sympy.symbols("x0:6", real=True))
    Ws = sympy.Matrix(3, 2, sympy.symbols("w0:6", real=True))
    S = Xs.applyfunc(sympy.sqrt)
    f = (S[0, 1] + S[1, 1]) * (S * Ws)[1, 0]
    at = {**dict(zip(Xs, [sympy.nsimplify(t) for t in X.ravel()])), **dict(zip(Ws, [sympy.nsimplify(t) for t in W.ravel()]))}
    want_x = np.array([float(sympy.diff(f, s).subs(at).evalf(30)) for s in Xs]).reshape(2, 3)
    want_w = np.array([float(sympy.diff(f, s).subs(at).evalf(30)) for s in Ws]).reshape(3, 2)
    got_x, got_w = _grad("sum(sqrt(X), axis=0)[1] * (sqrt(X) @ W)[1, 0]", {"X": X, "W": W})
    assert np.allclose(got_x, want_x, rtol=1e-14, atol=0) and np.allclose(got_w, want_w, rtol=1e-14, atol=0)


DOT_CASES = [
    ("sum(sqrt(X), axis=0)[1:]", {"X": np.array([[-1.0, 1.0, 4.0], [0.0, 2.0, 0.25]])}),
    ("sqrt(X).T[1]", {"X": X}),
    ("reshape(sqrt(x6), shape=(3, 2))[1:]", {"x6": np.array([0.0, -1.0, 4.0, 1.0, 0.25, 9.0])}),
    ("stack(sqrt(x), log(y), axis=1)[1]", {"x": x, "y": y}),
    ("concatenate(sqrt(x), log(y))[1:5:3]", {"x": x, "y": y}),
    ("(sqrt(X) @ W)[1]", {"X": X, "W": W}),
    ("(V @ sqrt(X))[:, 1]", {"V": V, "X": X}),
    ("log_softmax(sqrt(X), axis=1)[1]", {"X": X}),
    ("max(log(A), axis=1)[2:]", {"A": np.array([[1.0, -1.0, 0.0], [0.0, 4.0, 1.0], [9.0, 0.25, 2.0], [1.0, 3.0, 0.5]])}),
]
# vector outputs on both backends; the scalar CASES too, on NumPy
DOTS = [pytest.param(c, b, id=f"{c[0]}-{b}", marks=[pytest.mark.slow] if b == "c" else [])
        for c in DOT_CASES for b in TENSOR] + \
    [pytest.param(c, "numpy", id=f"{c[0]}-numpy") for c in CASES]


@pytest.mark.parametrize("case, backend", DOTS)
def test_dot_product_forward_against_reverse(case, backend):
    """uᵀ(J v) = (Jᵀ u)ᵀ v, J v from a JVP and Jᵀ u from a VJP at random u, v."""
    _dot_product(*case, backend, seed=11)


HVP_CASES = [   # (formula, the lanes of X it reads)
    ("sum(sqrt(X), axis=0)[1]", [(0, 1), (1, 1)]),
    ("sum(sqrt(X).T[1])", [(0, 1), (1, 1)]),
    ("sum(reshape(sqrt(X), shape=(6,))[4:6])", [(1, 1), (1, 2)]),
    ("(sqrt(X) @ w)[1]", [(1, 0), (1, 1), (1, 2)]),
]


@pytest.mark.parametrize("backend", TENSOR)
@pytest.mark.parametrize("case", HVP_CASES, ids=[c[0] for c in HVP_CASES])
def test_hvp_and_hessian(case, backend):
    """The Hessian in X of sums of sqrt's read lanes (times w's constant weights):
    diagonal, -weight/(4 x^1.5) at those lanes, 0 elsewhere (forward over reverse: the
    tangents of the gradient trace's keyed reads)."""
    expr, lanes = case
    weight = w if "@" in expr else np.ones(3)
    want = np.zeros((2, 3))
    for i, j in lanes:
        want[i, j] = -0.25 * weight[j] * X[i, j] ** -1.5
    want = np.diag(want.ravel())
    shapes = {"X": (2, 3), "w": (3,)} if "@" in expr else {"X": (2, 3)}
    const = {"w": w} if "@" in expr else {}
    with np.errstate(all="ignore"):
        hvp = compile_hvp(expr, wrt=["X"], shapes=shapes, backend=backend)
        for k in range(6):
            hv = hvp(X=X, **const, X_dot=np.eye(6)[k].reshape(2, 3))[2][0]
            assert np.allclose(hv.ravel(), want[:, k], rtol=1e-13, atol=0), (k, hv)
        H = compile_hessian(expr, wrt=["X"], shapes=shapes, backend=backend)(X=X, **const)[2]
    assert np.allclose(H, want, rtol=1e-13, atol=0)


def test_the_sweep_reads_the_partial_at_the_key_only():
    """O(|key|) past the reduction, the transpose, the matmul, the softmax and the reshape:
    the only derivative instruction as wide as X is the scatter into X̄."""
    for expr in ("exp(sum(sqrt(X), axis=0) * 2)[2]", "sum(exp(sqrt(X)).T[3])", "sum((sqrt(X) @ W)[5])",
                 "log_softmax(sqrt(X), axis=1)[3, 5]", "sum(reshape(sqrt(X), shape=(10, 1000))[2, 100:300])"):
        primal = to_trace(expr, shapes={"X": (100, 100), "W": (100, 100)} if "W" in expr else {"X": (100, 100)})
        grad = passes.grad_reverse(primal, wrt=["X"])

        def wide(t):
            return sorted(ins[0] for ins in t.instrs if ins.shape == (100, 100))
        assert wide(grad) == sorted(wide(primal) + ["scatter"]), (expr, grad)


def test_traces_without_an_index_are_unchanged():
    for expr, shapes in [("sum(sqrt(X), axis=0) @ w", {"X": (2, 3), "w": (3,)}),
                         ("sum(reshape(exp(x6), shape=(2, 3)).T @ v)", {"x6": (6,), "v": (2,)}),
                         ("sum(concatenate(sqrt(x), x * 2))", {"x": (3,)})]:
        trace = to_trace(expr, shapes=shapes)
        assert str(passes.grad_reverse(trace)) == str(_dense(lambda: passes.grad_reverse(trace)))


FALLBACK = [
    # keys that do not map: the dense adjoint, instruction for instruction as before
    # (lanes across rows, strided across rows, an empty slice and a where()'s mask on
    # the edge map now: tests/test_index_moves_more.py)
    ("sum(reshape(sqrt(B), shape=(36,))[::4])", {"B": (12, 3)}),     # more runs than MAX_PIECES
    ("softmax(sqrt(x))[1]", {"x": (3,)}),                            # its axis all of x: read whole
    ("sum(sqrt(X) @ W)", {"X": (2, 3), "W": (3, 2)}),                # no index at all
    ("sum(sqrt(X), axis=0)[1] + sum(sum(sqrt(X), axis=0))", {"X": (2, 3)}),   # read whole too
    ("sum(sqrt(X).T[0][1:][:-1])", {"X": ("n", 2)}),                # two slices of a named dimension
]


@pytest.mark.parametrize("case", FALLBACK, ids=[c[0] for c in FALLBACK])
def test_the_dense_fallback_is_unchanged(case):
    expr, shapes = case
    trace = to_trace(expr, shapes=shapes)
    assert str(passes.grad_reverse(trace)) == str(_dense(lambda: passes.grad_reverse(trace)))


def test_a_named_dimension_passes_where_it_is_not_cut():
    """x of shape ("n", 3): the key's int on n passes through the transpose and the sum."""
    g = compile_grad("sum(sqrt(X).T[1]) + sum(sqrt(X), axis=1)[2]", shapes={"X": ("n", 3)})
    Xn = np.array([[0.0, 1.0, -1.0], [4.0, 4.0, 0.25], [1.0, 9.0, 1.0], [-2.0, 0.25, 0.0]])
    with np.errstate(all="ignore"):
        got = g(Xn)[1][0]
    want = np.zeros((4, 3))
    want[:, 1] += 0.5 / np.sqrt(Xn[:, 1])
    want[2] += 0.5 / np.sqrt(Xn[2])
    assert np.array_equal(got, want), got


@pytest.mark.parametrize("expr, named, shapes", [
    ("sum((sqrt(X) @ W)[2])", {"X": ("n", 3), "W": (3, 2)}, {"X": (4, 3), "W": (3, 2)}),
    ("concatenate(sqrt(X), log(Z), axis=1)[2, 4]", {"X": ("n", 3), "Z": ("n", 2)}, {"X": (4, 3), "Z": (4, 2)}),
    ("sum(stack(sqrt(X), log(X), axis=2)[2, 1:])", {"X": ("n", 3)}, {"X": (4, 3)}),
    ("reshape(sqrt(X), shape=(-1, 1, 3))[2, 0, 1]", {"X": ("n", 3)}, {"X": (4, 3)}),
    ("log_softmax(sqrt(X), axis=1)[2, 0]", {"X": ("n", 3)}, {"X": (4, 3)}),
])
def test_named_dimensions_as_numbers(expr, named, shapes):
    """A named dimension the key reads at an int (not inside a merged group) gives the
    gradient the same formula has with the size as a number (checked against forward
    mode in test_reverse_is_forward's kind of case)."""
    Xn = np.array([[0.0, 1.0, -1.0], [4.0, 4.0, 0.25], [1.0, 9.0, 1.0], [-2.0, 0.25, 0.0]])
    inputs = {"X": Xn, "W": W, "Z": np.array([[0.0, 1.0], [-1.0, 2.0], [3.0, 0.5], [0.0, 0.0]])}
    inputs = {k: inputs[k] for k in shapes}
    with np.errstate(all="ignore"):
        got = compile_grad(expr, shapes=named)(**inputs)[1]
        want = compile_grad(expr, shapes=shapes)(**inputs)[1]
    assert all(np.isfinite(w).all() for w in want)
    assert all(np.array_equal(g, w) for g, w in zip(got, want)), (got, want)


def test_broadcast_to_moves_the_key_and_sums():
    """broadcast_to (no name in the language: built here) reads x at the key projected."""
    b = Builder()
    xv, ref = b.input("x", (3,)), b.input("r", (4, 2, 3))
    big = b.broadcast_to(b.sqrt(xv), ref)
    out = b.sum(b.index(big, key=(1, (None, None, None), 2)))
    out2 = b.sum(b.index(b.broadcast_to(b.log(xv), b.input("s", (3, 2)), axis=1), key=((1, 3, None),)))
    trace = b.finish([("y", b.add(out, out2))])
    env = {"x": np.array([0.0, 1.0, 4.0]), "r": np.zeros((4, 2, 3)), "s": np.zeros((3, 2))}
    grad = passes.grad_reverse(trace, wrt=["x"])
    got = interpret(grad, env)[1]
    assert got.tolist() == [0.0, 2.0, 2 * 0.25 + 2 * 0.25], got
    old = interpret(_dense(lambda: passes.grad_reverse(trace, wrt=["x"])), env)[1]
    assert np.isnan(old).any()


# -- random chains of shape ops against the dense sweep ------------------------------------
@st.composite
def chains(draw):
    """A formula: an elementwise function of X (2, 3, 2), then 1-4 ops that move lanes,
    then an index, summed. Shapes are followed to keep every op valid."""
    expr, shape = draw(st.sampled_from(["sqrt(X)", "log(X)", "sqrt(X) * Y", "exp(X) * log(Y)"])), (2, 3, 2)
    for _ in range(draw(st.integers(1, 4))):
        n = len(shape)
        kind = draw(st.sampled_from(["transpose", "reshape", "sum", "mean", "max", "logsumexp", "stack", "concatenate",
                                     "matmul", "softmax", "log_softmax"]))
        if kind == "transpose" and n >= 2:
            expr, shape = f"transpose({expr})", shape[::-1]
        elif kind == "reshape":
            size = int(np.prod(shape))
            options = [s for s in [(size,), (2, size // 2), (size // 2, 2), (2, 3, size // 6), (3, 2, size // 6),
                                   (size // 4, 2, 2), (1, size), (size, 1)] if int(np.prod(s)) == size and min(s) > 0]
            new = draw(st.sampled_from(options))
            expr, shape = f"reshape({expr}, shape={new})", new
        elif kind == "matmul" and n == 1 and draw(st.booleans()):
            expr, shape = f"outer({expr}, log({expr}))", shape * 2
        elif kind in ("softmax", "log_softmax"):
            expr = f"{kind}({expr}, axis={draw(st.integers(0, n - 1))})"
        elif kind in ("sum", "mean", "max", "logsumexp") and n >= 2:
            a = draw(st.integers(0, n - 1))
            keep = draw(st.booleans())
            expr = f"{kind}({expr}, axis={a}{', keepdims=True' if keep else ''})"
            shape = tuple(1 if k == a else d for k, d in enumerate(shape)) if keep else shape[:a] + shape[a + 1:]
        elif kind == "stack":
            a = draw(st.integers(0, n))
            expr, shape = f"stack({expr}, sqrt({expr}), axis={a})", shape[:a] + (2,) + shape[a:]
        elif kind == "concatenate":
            a = draw(st.integers(0, n - 1))
            expr, shape = f"concatenate({expr}, log({expr}), axis={a})", shape[:a] + (2 * shape[a],) + shape[a + 1:]
        elif kind == "matmul" and n <= 2:
            k = draw(st.integers(1, 3))
            if draw(st.booleans()):
                expr, shape = f"({expr} @ ones({shape[-1]}, {k}))", shape[:-1] + (k,)
            else:
                expr, shape = f"(ones({k}, {shape[0]}) @ {expr})", (k,) + shape[1:]
    key = []
    for d in shape[:draw(st.integers(1, len(shape)))] if shape else ():
        if draw(st.booleans()):
            key.append(str(draw(st.integers(-d, d - 1))))
        else:
            lo = draw(st.integers(0, d - 1))
            step = draw(st.sampled_from([1, 1, 2, -1]))
            key.append(f"{lo}:" if step == 1 else f"{lo}::{step}" if step > 0 else f"{lo}::-1")
    if not key:
        return f"sum({expr})"
    return f"sum(({expr})[{', '.join(key)}])"


def _with_ones(expr):
    """ones(m, k) as inputs of that shape (the language has no ones())."""
    shapes, n = {}, 0

    def sub(m):
        nonlocal n
        n += 1
        shapes[f"O{n}"] = (int(m[1]), int(m[2]))
        return f"O{n}"
    return re.sub(r"ones\((\d+), (\d+)\)", sub, expr), shapes


@settings(max_examples=60, deadline=None)
@given(chains())
@example("sum((log_softmax((ones(2, 3) @ max(exp(X) * log(Y), axis=0)), axis=1))[-1, 0::-1])")
def test_random_shape_chains_against_the_dense_sweep(expr):
    expr, extra = _with_ones(expr)
    rng = np.random.default_rng(len(expr))
    Xv = rng.choice([0.0, -1.0, 0.5, 2.0, 4.0], size=(2, 3, 2))
    Yv = rng.choice([0.0, 1.5, 3.0], size=(2, 3, 2))
    inputs = {"X": Xv, "Y": Yv, **{k: rng.standard_normal(s) for k, s in extra.items()}}
    names = [k for k in inputs if k in expr]
    inputs = {k: inputs[k] for k in names}
    _, new = _traced_grad(expr, inputs)
    _, old = _traced_grad(expr, inputs, dense=True)
    for g, o in zip(new, old):
        finite = np.isfinite(o)
        # (a lane whose exact slope is 0 by cancellation, 1ᵀJ = 0 of a log_softmax along its
        # axis, is rounding in either sweep, of either sign: ±1.3e-17 at lanes of size 0.67;
        # the absolute tolerance is relative to the lanes' size. NaN against a number fails)
        atol = 1e-14 * max(1.0, float(np.abs(o[finite]).max(initial=0.0)))
        assert np.allclose(g[finite], o[finite], rtol=1e-12, atol=atol), (expr, g, o)
    # and raw forward-mode tangents (the JVP trace, a unit seed per element) where finite,
    # but where a key did not map (the dense path, NaN as before: no worse)
    J = passes.jvp(to_trace(expr, shapes=_shapes(inputs)))
    for name, g, o in zip(inputs, new, old):
        for k in np.ndindex(g.shape):
            seeds = {f"{n}.dot": np.zeros(np.shape(a)) for n, a in inputs.items()}
            seeds[f"{name}.dot"][k] = 1.0
            t = float(interpret(J, {**inputs, **seeds})[1])
            if np.isfinite(t) and not (np.isnan(g[k]) and np.isnan(o[k])):
                assert abs(g[k] - t) <= 1e-12 * (1 + abs(t)), (expr, name, k, g[k], t)
