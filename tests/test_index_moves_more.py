"""Index adjoints kept sparse through the moves the first pass left dense.

test_index_shapes checks the terms of an index adjoint moved through transpose,
reshape (a block), stack, ..., matmul (passes/reverse_index_moves.py). These classes
took the dense adjoint there, and 0·inf = NaN in lanes no output reads:
- a reshape whose key reads no block of its argument: a reversed or strided block,
  a column of a flattened matrix, lanes across rows (reshape(transpose(x)))
  (passes/reverse_index_reshape.py: runs of keys, each a term);
- a where()'s mask on the edge of an op that moves lanes, or of an index whose
  adjoint holds terms (where(x > 0, sum(sqrt(X), axis=0), 1)[1]): the mask applied to
  each term at its keyed lanes (reverse_masks_build's premask / postmask);
- diagonal and diag (SymPy's DiagonalOf, DiagMatrix; built here);
- a key that reads no lane (an empty slice) through a move: no contribution.
Checked against raw forward-mode tangents, central differences and the dot-product
test, NumPy and C; random chains of moves with reversed and strided keys against
forward mode lane by lane.
"""

from __future__ import annotations

import contextlib
import re
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from exprcompiler import compile_hessian, interpret, passes, to_trace, verify
from exprcompiler.api import BACKENDS
from exprcompiler.passes import reverse_index, reverse_index_moves, reverse_index_reshape
from exprcompiler.trace.builder import Builder
from test_index_adjoints import _central_differences, _dot_product, _forward_tangents, _grad, _shapes
from test_index_shapes import _dense, _traced_grad

TENSOR = sorted(b for b in BACKENDS if b != "vm")
TENSOR_C_SLOW = [b if b != "c" else pytest.param(b, marks=pytest.mark.slow) for b in TENSOR]

# lanes no output reads hold 0 (sqrt's and log's partial infinite) and negatives (NaN)
X = np.array([[0.0, 1.0, -1.0], [4.0, 2.0, 0.25]])
A = np.array([[0.0, 4.0, -1.0], [-1.0, 9.0, 0.0], [2.0, 0.25, 1.0], [0.0, 1.0, -3.0]])
T3 = np.array([[[0.0, 1.0, 4.0, -1.0], [2.0, 0.0, 9.0, 0.25], [-1.0, 0.5, 1.0, 0.0]],
               [[1.0, 2.0, 3.0, 0.0], [0.5, 4.0, 2.0, -2.0], [0.0, 1.5, 0.5, 1.0]]])
x6 = np.array([0.0, -1.0, 4.0, 1.0, 0.25, 9.0])


def _only(shape, lanes):
    """0 and -1 (sqrt's and log's partials infinite or NaN) but at the flat `lanes`, the
    ones the formula reads: 1, 1.5, 2, ..."""
    a = np.resize([0.0, -1.0], int(np.prod(shape)))
    a[list(lanes)] = 1.0 + 0.5 * np.arange(len(lanes))
    return a.reshape(shape)


x = np.array([-1.0, 4.0, 1.0])
W = np.array([[1.0, -2.0], [3.0, 0.5], [-1.0, 2.0]])

RESHAPES = [
    ("sum(reshape(sqrt(x6), shape=(2, 3))[1, ::-1])", {"x6": x6}),           # a block, reversed
    ("sum(reshape(sqrt(X), shape=(6,))[1::3])", {"X": X}),                     # a column of X
    ("sum(reshape(sqrt(A), shape=(12,))[10:0:-3])", {"A": A}),                 # a column, reversed
    # (A's (3, 0), then row 1 of Aᵀ)
    ("sum(reshape(transpose(sqrt(A)), shape=(12,))[3:7])", {"A": _only((4, 3), [9, 1, 4, 7])}),   # across rows
    ("sum(reshape(sqrt(X), shape=(3, 2))[1])", {"X": _only((2, 3), [2, 3])}),  # across two rows
    ("sum(reshape(sqrt(T3), shape=(6, 4))[2:5, 1:3])", {"T3": T3}),            # runs, and a group whole
    ("sum(reshape(log(A), shape=(2, 6))[:, 1::2])", {"A": _only((4, 3), [1, 3, 5, 7, 9, 11])}),   # lane by lane
    ("sum(reshape(sqrt(T3), shape=(4, 6))[::-3, 2::2])", {"T3": _only((2, 3, 4), [20, 22, 2, 4])}),
]
WHERES = [
    ("where(x > 0, sum(sqrt(X), axis=0), 1)[1]", {"x": x, "X": X}),           # the mask on a sum's edge
    ("sum(where(X > 0, sqrt(X).T.T, 0)[1])", {"X": X}),                        # on a transpose's
    ("sum(where(v > 0, sqrt(X) @ W, 0)[1])", {"X": X, "W": W, "v": np.array([1.0, -1.0])}),   # matmul's
    ("where(s > 0, (sqrt(X) @ W)[1], 1)[0]", {"s": 2.0, "X": X, "W": W}),      # a scalar condition
    ("sum(where(x > 0, sqrt(X)[1], 0)[1:])", {"x": x, "X": X}),                # an index's edge, with terms
    ("sum(where(X > 0, sqrt(X)[::-1], 0)[0])", {"X": X}),
    ("where(x > 0, reshape(sqrt(X), shape=(3, 2))[:, 0], 1)[2]", {"x": x, "X": X}),
    ("where(x > 0, log_softmax(sqrt(X), axis=1)[1], 1)[1]", {"x": x, "X": X}),
]
OTHERS = [
    ("sum(sum(sqrt(X), axis=0)[1:][0:0]) + sqrt(X)[1, 1]", {"X": X}),         # an empty slice
    ("sum((log(x) * r)[1:]) + sqrt(x)[1]", {"x": np.array([0.0, 4.0, -1.0]), "r": np.array([[1.0, 2.0, 3.0]])}),
]
# (an empty slice of r's size-1 axis: the elementwise op's argument x read whole, by none of its lanes)
NOT_A_MOVE_EMPTY = "sum((log(x) * r)[1:]) + sqrt(x)[1]"
CASES = RESHAPES + WHERES + OTHERS
IDS = [c[0] for c in CASES]
# (the index's own masked edge with terms: not the moves, so MOVES emptied does not undo it;
# and where()'s mask carried through the transposes, or log_softmax's lanes, to sqrt's,
# reverse_masks_moves, which leaves the dense sweep no NaN there either:
# tests/test_where_moves.py, tests/test_where_mixing.py)
NOT_A_MOVE = {"sum(where(x > 0, sqrt(X)[1], 0)[1:])", "sum(where(X > 0, sqrt(X)[::-1], 0)[0])",
              "sum(where(X > 0, sqrt(X).T.T, 0)[1])", "where(x > 0, log_softmax(sqrt(X), axis=1)[1], 1)[1]"}


@pytest.mark.parametrize("backend", TENSOR_C_SLOW)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reverse_is_forward(case, backend):
    """Every lane of the gradient is forward mode's, finite here (the dense sweep's was
    NaN in a lane no output reads)."""
    expr, inputs = case
    want = _forward_tangents(expr, inputs)
    assert all(np.isfinite(t).all() for t in want), want
    got = _grad(expr, inputs, backend)
    for g, t in zip(got, want):
        assert np.allclose(g, t, rtol=1e-12, atol=1e-300), (expr, g, t)
    if expr not in NOT_A_MOVE and expr != NOT_A_MOVE_EMPTY:
        _, old = _traced_grad(expr, inputs, dense=True)
        assert any(np.isnan(o).any() for o in old), "the dense sweep was finite"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_central_differences(case):
    expr, inputs = case
    checked = _central_differences(expr, inputs)
    assert checked >= sum(np.size(a) for a in inputs.values()) - 2


DOT_CASES = [
    ("reshape(sqrt(x6), shape=(2, 3))[1, ::-1]", {"x6": x6}),
    ("reshape(transpose(sqrt(A)), shape=(12,))[3:7]", {"A": _only((4, 3), [9, 1, 4, 7])}),
    ("reshape(sqrt(T3), shape=(6, 4))[2:5, 1:3]", {"T3": T3}),
    ("where(x > 0, sum(sqrt(X), axis=0), 1)[1:]", {"x": np.array([-1.0, 4.0, 2.0]), "X": np.array([[0.0, 1.0, 4.0], [-1.0, 2.0, 0.25]])}),
    ("where(v > 0, sqrt(X) @ W, 0)[1]", {"X": X, "W": W, "v": np.array([1.0, -1.0])}),
]
DOTS = [pytest.param(c, b, id=f"{c[0]}-{b}", marks=[pytest.mark.slow] if b == "c" else [])
        for c in DOT_CASES for b in TENSOR] + \
    [pytest.param(c, "numpy", id=f"{c[0]}-numpy") for c in CASES]


@pytest.mark.parametrize("case, backend", DOTS)
def test_dot_product_forward_against_reverse(case, backend):
    _dot_product(*case, backend, seed=13)


@pytest.mark.parametrize("backend", TENSOR_C_SLOW)
@pytest.mark.parametrize("expr, lanes", [("sum(reshape(transpose(sqrt(A)), shape=(12,))[3:7])", [9, 1, 4, 7]),
                                         ("sum(reshape(sqrt(A), shape=(3, 4))[1:, 2])", [6, 10])])
def test_hessian_of_pieces(expr, lanes, backend):
    """Forward over reverse through the pieces' cuts and reshapes: the Hessian of a sum of
    sqrt at the lanes read, -1/(4 x^1.5) on the diagonal there, 0 elsewhere (finite)."""
    A = _only((4, 3), lanes)
    with np.errstate(all="ignore"):
        H = compile_hessian(expr, shapes={"A": (4, 3)}, backend=backend)(A)[2]
    want = np.zeros((12, 12))
    for k in lanes:
        want[k, k] = -0.25 * A.ravel()[k] ** -1.5
    assert np.allclose(H, want, rtol=1e-13, atol=0), H


# -- reshape's pieces -------------------------------------------------------------------
def _lanes(key, shape):
    """The flat lanes x[key] reads, in C order."""
    return np.arange(int(np.prod(shape))).reshape(shape)[tuple(slice(*k) if type(k) is tuple else k for k in key)]


@settings(max_examples=examples(150), deadline=None)
@given(st.data())
def test_pieces_read_the_keyed_lanes(data):
    """Each piece of a key of reshape(x, out) takes the part of g whose lanes of
    out[key] are the lanes of x its key reads (reshape keeps C order: a lane's flat
    number is the same in x and out), in order; the pieces cover each lane once."""
    xs = data.draw(st.sampled_from([(12,), (3, 4), (4, 3), (2, 3, 2), (2, 6), (6, 2), (2, 2, 3), (3, 2, 2)]))
    os = data.draw(st.sampled_from([s for s in [(12,), (3, 4), (4, 3), (2, 3, 2), (2, 6), (6, 2), (2, 2, 3)]
                                    if s != xs]))
    key = []
    for d in os:
        if data.draw(st.booleans()):
            key.append(data.draw(st.integers(0, d - 1)))
        else:
            r = range(d)[slice(data.draw(st.integers(0, d - 1)), None, data.draw(st.sampled_from([1, 2, 3, -1, -2])))]
            key.append(reverse_index_reshape.slice_item(r, d))
    key = tuple(key)
    got = reverse_index_reshape.pieces(key, xs, os, reverse_index_moves._groups(xs, os))
    lanes = np.asarray(_lanes(key, os), dtype=float)   # (as g: each lane its flat number)
    if got is None:   # (past MAX_PIECES: at least a lane each)
        assert lanes.size > reverse_index_reshape.MAX_PIECES
        return
    b = Builder()
    g = b.input("g", lanes.shape)
    xv, ov = b.input("x", xs), b.input("o", os)
    parts = [(k, move(b, g, [xv], ov)) for _, k, move in got]
    trace = b.finish([(f"p{n}", v) for n, (_, v) in enumerate(parts)])
    verify(trace)
    outs = interpret(trace, {"g": lanes, "x": np.zeros(xs), "o": np.zeros(os)})
    for (k, _), o in zip(parts, outs):
        assert np.array_equal(o, _lanes(k, xs)), (xs, os, key, k, o)
    read = np.concatenate([np.ravel(o) for o in outs])
    assert sorted(read.tolist()) == sorted(lanes.ravel().tolist()), (xs, os, key, [k for k, _ in parts])


def test_pieces_of_the_reported_cases():
    """reshape(transpose(x), (12,))[3:7] of a (3, 4): two runs, not four lanes."""
    got = reverse_index_reshape.pieces(((3, 7, None),), (3, 4), (12,), [([0, 1], [0])])
    assert [k for _, k, _ in got] == [(0, 3), (1, (0, 3, None))]
    got = reverse_index_reshape.pieces((1, (2, None, -1)), (6,), (2, 3), [([0], [0, 1])])
    assert [k for _, k, _ in got] == [((5, 2, -1),)]


# -- diagonal and diag (no name in the language: built here) ------------------------------
def _built(build, env):
    b = Builder()
    ins = {k: b.input(k, np.shape(v)) for k, v in env.items()}
    return b.finish([("y", build(b, ins))])


def _jvp_gradient(trace, env):
    J = passes.jvp(trace)
    out = []
    for name, a in env.items():
        g = np.zeros(np.shape(a))
        for k in np.ndindex(np.shape(a)):
            seeds = {f"{n}.dot": np.zeros(np.shape(v)) for n, v in env.items()}
            seeds[f"{name}.dot"][k] = 1.0
            with np.errstate(all="ignore"):
                g[k] = interpret(J, {**env, **seeds})[1]
        out.append(g)
    return out


FULL = (None, None, None)
DIAGS = [
    ("diagonal(sqrt(M))[1]", lambda b, i: b.index(b.diagonal(b.sqrt(i["M"])), key=(1,))),
    ("sum(diagonal(sqrt(M))[1:])", lambda b, i: b.sum(b.index(b.diagonal(b.sqrt(i["M"])), key=((1, 3, None),)))),
    ("diag(sqrt(v))[1, 1]", lambda b, i: b.index(b.diag(b.sqrt(i["v"])), key=(1, 1))),
    ("diag(sqrt(v))[0, 1]", lambda b, i: b.mul(b.index(b.diag(b.sqrt(i["v"])), key=(0, 1)), b.index(i["v"], key=(1,)))),
    ("sum(diag(sqrt(v))[1:, 1])", lambda b, i: b.sum(b.index(b.diag(b.sqrt(i["v"])), key=((1, 3, None), 1)))),
    ("sum(diag(log(v))[::-1, 1:])", lambda b, i: b.sum(b.index(b.diag(b.log(i["v"])), key=((2, None, -1), (1, 3, None))))),
]


@pytest.mark.parametrize("name, build", DIAGS, ids=[d[0] for d in DIAGS])
def test_diagonal_and_diag(name, build):
    env = {"M": np.array([[0.0, 1.0, -1.0], [4.0, 4.0, 0.0], [-1.0, 0.0, 9.0]])} if "M" in name else \
        {"v": np.array([0.0, 4.0, 9.0])}
    trace = _built(build, env)
    want = _jvp_gradient(trace, env)
    assert all(np.isfinite(w).all() for w in want)
    with np.errstate(all="ignore"):
        got = interpret(passes.grad_reverse(trace), env)[1:]
        old = interpret(_dense(lambda: passes.grad_reverse(trace)), env)[1:]
    assert all(np.array_equal(g, w) for g, w in zip(got, want)), (got, want)
    assert any(np.isnan(o).any() for o in old)


# -- random chains: reversed and strided keys, broadcasting, indexes between moves ---------
@st.composite
def chains(draw):
    """An elementwise function of X (2, 3, 2), then 1-4 ops that move lanes, index or
    broadcast, then one or two indexes, summed (shapes followed: every op valid)."""
    expr, shape = draw(st.sampled_from(["sqrt(X)", "log(X)", "sqrt(X) * Y", "exp(X) * log(Y)"])), (2, 3, 2)
    extra = {}
    for _ in range(draw(st.integers(1, 4))):
        n = len(shape)
        if not n:   # (an index of every axis: a number)
            return f"sum({expr}) * 2", extra
        kind = draw(st.sampled_from(["transpose", "reshape", "reshape", "sum", "stack", "concatenate", "index",
                                     "softmax", "broadcast"]))
        if kind == "transpose" and n >= 2:
            expr, shape = f"transpose({expr})", shape[::-1]
        elif kind == "reshape":
            size = int(np.prod(shape))
            new = draw(st.sampled_from([s for s in [(size,), (2, size // 2), (size // 2, 2), (3, size // 3),
                                                    (2, 3, size // 6), (size // 4, 2, 2), (size // 6, 6)]
                                        if int(np.prod(s)) == size and min(s) > 0]))
            expr, shape = f"reshape({expr}, shape={new})", new
        elif kind == "sum" and n >= 2:
            a = draw(st.integers(0, n - 1))
            op = draw(st.sampled_from(["sum", "max", "logsumexp"]))
            expr, shape = f"{op}({expr}, axis={a})", shape[:a] + shape[a + 1:]
        elif kind == "softmax":
            expr = f"log_softmax({expr}, axis={draw(st.integers(0, n - 1))})"
        elif kind == "stack" and n <= 3:
            a = draw(st.integers(0, n))
            expr, shape = f"stack({expr}, sqrt({expr}), axis={a})", shape[:a] + (2,) + shape[a:]
        elif kind == "concatenate":
            a = draw(st.integers(0, n - 1))
            expr, shape = f"concatenate({expr}, log({expr}), axis={a})", shape[:a] + (2 * shape[a],) + shape[a + 1:]
        elif kind == "index":
            key, shape = draw(_keys(shape))
            expr = f"({expr})[{key}]"
        elif kind == "broadcast":
            name = f"R{len(extra)}"
            extra[name] = shape[-1:]
            expr = f"({expr} * {name})"
    if not shape:
        return f"sum({expr}) * 2", extra
    key, _ = draw(_keys(shape))
    out = f"sum(({expr})[{key}])"
    if draw(st.booleans()):
        key2, _ = draw(_keys(shape))
        out += f" * sum(({expr})[{key2}])"
    return out, extra


@st.composite
def _keys(draw, shape):
    """A key of 1..n items, ints and slices (steps 1, 2, 3, -1, -2; never empty), and
    the shape it reads."""
    items, out = [], []
    n = draw(st.integers(1, len(shape)))
    for d in shape[:n]:
        if draw(st.booleans()):
            items.append(str(draw(st.integers(-d, d - 1))))
        else:
            lo, step = draw(st.integers(0, d - 1)), draw(st.sampled_from([1, 2, 3, -1, -2]))
            items.append(f"{lo}::{step}")
            out.append(len(range(d)[lo::step]))
    return ", ".join(items), tuple(out) + tuple(shape[n:])


@settings(max_examples=examples(200), deadline=None)
@given(chains())
def test_random_chains_are_forward_where_it_is_a_number(drawn):
    """Lane by lane, the gradient is raw forward mode's wherever that one is finite (the
    caps on pieces and terms raised: the mapping, not the policy, is tested)."""
    expr, extra = drawn
    rng = np.random.default_rng(len(expr))
    inputs = {"X": rng.choice([0.0, -1.0, 0.5, 2.0, 4.0], size=(2, 3, 2)),
              "Y": rng.choice([0.0, 1.5, 3.0], size=(2, 3, 2)),
              **{k: rng.choice([0.0, 1.0, -2.0], size=s) for k, s in extra.items()}}
    inputs = {k: v for k, v in inputs.items() if re.search(rf"\b{k}\b", expr)}
    trace = to_trace(expr, shapes=_shapes(inputs))
    with np.errstate(all="ignore"), _caps(64):
        grad = passes.grad_reverse(trace)
        verify(grad)
        got = dict(zip([name for name, _ in grad.outputs], interpret(grad, inputs)))
    want = _jvp_gradient(trace, inputs)
    for name, w in zip(inputs, want):
        g = got[f"{name}.bar"]
        finite = np.isfinite(w)
        # A lane whose exact derivative is 0 by cancellation (the sum of a log_softmax's
        # tangent along a slice where s is uniform: 1ᵀJ = 0 there) is rounding in either
        # mode, ~1e-16 of the terms: the absolute tolerance is relative to the lanes' size.
        atol = 1e-14 * max(1.0, float(np.abs(w[finite]).max(initial=0.0)))
        assert np.allclose(np.asarray(g)[finite], w[finite], rtol=1e-12, atol=atol), (expr, name, g, w)


@contextlib.contextmanager
def _caps(n):
    saved = reverse_index_reshape.MAX_PIECES, reverse_index.MAX_TERMS
    reverse_index_reshape.MAX_PIECES, reverse_index.MAX_TERMS = n, n
    try:
        yield
    finally:
        reverse_index_reshape.MAX_PIECES, reverse_index.MAX_TERMS = saved


def test_past_max_pieces_the_dense_path_is_unchanged():
    """A key of more runs than MAX_PIECES (9 lanes of B (12, 3), no two in a run): the
    materialized adjoint, instruction for instruction."""
    trace = to_trace("sum(reshape(sqrt(B), shape=(36,))[::4])", shapes={"B": (12, 3)})
    assert len(reverse_index_moves._reshape((((0, 36, 4),)), [(12, 3)], (36,), {}) or ()) == 0
    assert str(passes.grad_reverse(trace)) == str(_dense(lambda: passes.grad_reverse(trace)))


def test_terms_materialized_together_take_one_pass():
    """Terms of several keys that reach an input together (the pieces of a reshape,
    reads of one value at several keys) are summed within the block that holds their
    lanes, then scattered once: one instruction as wide as X, where each term's
    scatter and each sum was one."""
    for expr, shapes in [("sum(reshape(transpose(sqrt(X)), shape=(10000,))[50:150])", {"X": (100, 100)}),
                         ("sqrt(x)[2] * sqrt(x)[3]", {"x": (1000,)}),
                         ("sum(exp(sqrt(X))[1, 3:5]) * sum(sqrt(X)[2:4, 3])", {"X": (100, 100)})]:
        grad = passes.grad_reverse(to_trace(expr, shapes=shapes), wrt=list(shapes))
        wide = [ins[0] for ins in grad.instrs if ins.shape == next(iter(shapes.values()))]
        primal = [ins[0] for ins in to_trace(expr, shapes=shapes).instrs
                  if ins.shape == next(iter(shapes.values()))]
        assert sorted(wide) == sorted(primal + ["scatter"]), (expr, grad)
    X = np.arange(10000.0).reshape(100, 100) / 7
    for expr in ("sum(exp(sqrt(X))[1, 3:5]) * sum(sqrt(X)[2:4, 3])", "sum(reshape(transpose(sqrt(X)), shape=(10000,))[50:150])"):
        trace = to_trace(expr, shapes={"X": (100, 100)})
        new = passes.grad_reverse(trace)
        with mock.patch.object(reverse_index, "_hull", lambda *a: None):   # (a scatter of the whole each)
            old = passes.grad_reverse(trace)
        assert str(new) != str(old)
        got, want = interpret(new, {"X": X})[1], interpret(old, {"X": X})[1]
        assert np.array_equal(got, want) and np.isfinite(got).all(), expr
