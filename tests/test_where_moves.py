"""A where()'s tensor condition carried through the ops that move lanes (passes/reverse_masks_moves.py).

where(transpose(log(X)) > 0, transpose(sqrt(log(X))), 1) at X with a 1 in it: log 1 = 0,
sqrt' = inf there, and that lane's branch is not taken. The branch's region stopped at the
transpose (its mask does not line up with sqrt's lanes), so sqrt's partial met the zero the
transpose passed back: 0·inf = NaN in the gradient, where forward mode gives 0. Now the
region goes on below each op that moves lanes (transpose, reshape, stack, concatenate, an
index, a sum/mean/max/min over axes, diag, diagonal, scatter, sum_to, broadcast_to) with the
condition moved to the argument's lanes, and masks its exits there.

Held to forward mode lane by lane (raw tangents, one unit seed per element), NumPy and C;
random chains of moves inside where branches with the singular value in some lanes (a
hypothesis search); the old analysis (the moves off: reverse_masks.move_kind -> None) was
NaN in each case where forward mode is finite, and wherever it was finite the new gradient
is the same bit for bit (a zero's sign aside: an untaken lane that was -(0·x) is 0, as
forward mode's). The Hessian-vector products (forward over this reverse sweep) alike; the
traces where no branch needs the masks are unchanged.
"""

from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler import interpret, passes, to_trace
from exprcompiler.api import BACKENDS
from exprcompiler.passes import reverse_masks
from exprcompiler.trace.builder import Builder
from test_index_adjoints import _forward_tangents, _grad, _shapes

TENSOR = sorted(b for b in BACKENDS if b != "vm")

# log(X) is 0 at the 1s (sqrt' infinite) and negative at 0.25 (sqrt NaN)
X = np.array([[1.0, 4.0, 0.25], [2.0, 1.0, 9.0]])
# row 0 sums to 0 and column 0 and 2 to less than 1 (their branches not taken); row 1 and
# column 1 have no singular lane (taken)
Y = np.array([[1.0, 4.0, 0.25], [2.0, 3.0, 9.0]])
v = np.array([1.0, 2.0, 4.0])
C = np.array([[-1.0, 1.0, -1.0], [1.0, -1.0, 1.0]])   # > 0 only where X is regular
X2 = np.array([[1.0, 4.0, 0.25], [0.5, 1.0, 9.0]])     # column 0 not taken anywhere
r = np.array([1.0, 2.0, 4.0])                          # r[0] singular, read by column 0 only

CASES = [
    ("sum(where(transpose(log(X)) > 0, transpose(sqrt(log(X))), 1))", {"X": X}),
    ("sum(where(reshape(log(X), shape=(3, 2)) > 0, reshape(sqrt(log(X)), shape=(3, 2)), 1))", {"X": X}),
    ("sum(where(log(X)[:, 1:] <= 0, 1, sqrt(log(X))[:, 1:]))", {"X": X}),   # an index, the else branch
    ("sum(where(reshape(log(X), shape=(6,)) <= 0, 1, exp(reshape(sqrt(log(X)), shape=(6,)))))", {"X": X}),
    ("sum(where(stack(log(v), log(v)) > 0, stack(sqrt(log(v)), 2 * sqrt(log(v))), 1))", {"v": v}),
    ("sum(where(concatenate(log(v), log(v)) > 0, concatenate(sqrt(log(v)), exp(sqrt(log(v)))), 1))", {"v": v}),
    ("sum(where(log(v[::-1]) > 0, sqrt(log(v))[::-1], 1))", {"v": v}),
    ("sum(where(log(X[0]) > 0, sqrt(log(X))[0], 1))", {"X": X}),
    ("sum(where(sum(log(Y), axis=1) > 1, sum(sqrt(log(Y)), axis=1), 1))", {"Y": Y}),
    ("sum(where(mean(log(Y), axis=0) > 0.5, mean(sqrt(log(Y)), axis=0), 1))", {"Y": Y}),
    ("sum(where(transpose(log(X)) > 0, transpose(where(log(X) < 1, sqrt(log(X)), 1)), 1))", {"X": X}),
    ("sum(where(reshape(transpose(log(X)), shape=(6,)) > 0, reshape(transpose(sqrt(log(X))), shape=(6,)), 1))",
     {"X": X}),
    ("sum(where(transpose(log(X)) > 0, exp(transpose(sqrt(log(X)))), 1))", {"X": X}),
    # one value in the branches of two conditions (a union), moved alike
    ("sum(where(transpose(log(X)) > 0, transpose(sqrt(log(X))), 1) + "
     "where(transpose(log(X)) > 1, 2 * transpose(sqrt(log(X))), 3))", {"X": X}),
    # the condition of another tensor: its lanes moved, not the branch's own
    ("sum(where(transpose(C) > 0, transpose(sqrt(log(X))), 1))", {"X": X, "C": C}),
    # a scalar condition inside: as it is
    ("sum(where(transpose(log(X)) > 0, transpose(where(s > 0, sqrt(log(X)), 0)), 1))", {"X": X, "s": 1.0}),
    # a narrower value broadcast inside the moved region (its lane read by masked lanes only)
    ("sum(where(transpose(log(X2)) > 0, transpose(sqrt(log(X2)) * sqrt(log(r))), 1))", {"X2": X2, "r": r}),
]
IDS = [c[0] for c in CASES]
# C builds of each case: the first few in the fast suite, the rest slow
CASE_BACKENDS = [pytest.param(c, b, id=f"{c[0]}-{b}", marks=[pytest.mark.slow] if b == "c" and k >= 3 else [])
                 for k, c in enumerate(CASES) for b in TENSOR]


@contextlib.contextmanager
def _moves_off():
    """The analysis as it was: a region stops at an op that moves lanes."""
    with mock.patch.object(reverse_masks, "move_kind", lambda op, j: None):
        yield


def _traced(trace, env: dict, old: bool = False, off=_moves_off) -> list:
    """The gradient by the reference interpreter (no compiled kernel, so no cache);
    `old`: with the analysis as it was (`off`, a context)."""
    with off() if old else contextlib.nullcontext():
        grad = passes.grad_reverse(trace)
    with np.errstate(all="ignore"):
        out = dict(zip([name for name, _ in grad.outputs], interpret(grad, env)))
    return [np.asarray(out[f"{name}.bar"], dtype=float) for name in env]


def _held_to_forward(got: list, want: list, expr, inputs=None) -> None:
    """`got` is forward mode's `want` wherever that is finite. A lane whose exact slope is
    0 by cancellation (1ᵀJ = 0 of a softmax whose lanes are all taken) is rounding in
    either mode, against the other's exact 0: the absolute tolerance is relative to the
    size of the terms, the largest of the lanes and (given `inputs`) of the function's
    values along the way (softmax(exp(...)) at e^9: 4.5e-13 against 0). NaN against a
    number fails whatever the tolerance."""
    scale = 1.0
    if inputs is not None:
        with np.errstate(all="ignore"):
            values = interpret(to_trace(expr, shapes=_shapes(inputs)), inputs, all_values=True)
        scale = max([scale] + [float(np.abs(a[np.isfinite(a)]).max(initial=0.0)) for a in map(np.asarray, values)])
    for g, w in zip(got, want):
        finite = np.isfinite(w)
        atol = 1e-14 * max(scale, float(np.abs(w[finite]).max(initial=0.0)))
        assert np.allclose(g[finite], w[finite], rtol=1e-12, atol=atol), (expr, g, w)


def reverse_is_forward(case, backend, off=_moves_off):
    """Every lane of the gradient where forward mode is finite is forward mode's; the old
    analysis (`off`) had NaN in one of them (the case tests the change)."""
    expr, inputs = case
    want = _forward_tangents(expr, inputs)
    assert any(np.isfinite(w).any() for w in want)
    _held_to_forward(_grad(expr, inputs, backend), want, expr)
    old = _traced(to_trace(expr, shapes=_shapes(inputs)), inputs, True, off)
    assert any((np.isnan(o) & np.isfinite(w)).any() for o, w in zip(old, want)), "the old gradient was finite"


def bits_where_the_old_gradient_was_finite(case, off=_moves_off):
    expr, inputs = case
    trace = to_trace(expr, shapes=_shapes(inputs))
    for o, n in zip(_traced(trace, inputs, True, off), _traced(trace, inputs)):
        finite = np.isfinite(o)
        assert np.array_equal(o[finite], n[finite]), (expr, o, n)
        assert np.isfinite(n).all(), (expr, n)


@pytest.mark.parametrize("case, backend", CASE_BACKENDS)
def test_reverse_is_forward(case, backend):
    reverse_is_forward(case, backend)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bits_where_the_old_gradient_was_finite(case):
    bits_where_the_old_gradient_was_finite(case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conditions_moved_as_one_mask(case):
    """Past reverse_masks._PATH_TERMS conjunctions the conditions are moved as one 0/1 mask
    (here always): the same gradient."""
    expr, inputs = case
    trace = to_trace(expr, shapes=_shapes(inputs))
    with mock.patch.object(reverse_masks, "_PATH_TERMS", 0):
        got = _traced(trace, inputs)
    for g, n in zip(got, _traced(trace, inputs)):
        assert np.array_equal(g, n), (expr, g, n)


# -- the ops that only derivative passes or other front ends make: built here ------------
def _gt0(b, x):
    return b.apply("gt", x, 0.0)


def _sqrt_log(b, x):
    return b.sqrt(b.log(x))


# v[0] = 1 (singular) is read by column 0, not taken in either row; v[2] by one taken row
CB = np.array([[-1.0, 1.0, 1.0], [-1.0, 1.0, -1.0]])
BUILT = [
    # broadcast_to (a lane read by several, "any"): kept by a transpose after it (a where
    # broadcasts its branch itself: the builder drops a broadcast_to there)
    ("broadcast_to", {"v": np.array([1.0, 4.0, 2.0]), "C": CB},
     lambda b, i: b.sum(b.where(_gt0(b, b.transpose(i["C"])),
                                b.transpose(b.broadcast_to(_sqrt_log(b, i["v"]), i["C"])), 1.0))),
    ("broadcast_to, else branch", {"v": np.array([1.0, 4.0, 2.0]), "C": np.where(CB > 0, -1.0, 1.0)},
     lambda b, i: b.sum(b.where(_gt0(b, b.transpose(i["C"])), 1.0,
                                b.transpose(b.broadcast_to(_sqrt_log(b, i["v"]), i["C"]))))),
    ("diag", {"v": v, "C": np.array([[-1.0, 1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, 1.0, -1.0]])},
     lambda b, i: b.sum(b.where(_gt0(b, i["C"]), b.diag(_sqrt_log(b, i["v"])), 1.0))),
    ("diagonal", {"M": np.array([[1.0, 1.0, 2.0], [1.0, 4.0, 1.0], [3.0, 1.0, 1.0]]), "c": np.array([-1.0, 1.0, -1.0])},
     lambda b, i: b.sum(b.where(_gt0(b, i["c"]), b.diagonal(_sqrt_log(b, i["M"])), 1.0))),
    ("diagonal, else branch", {"M": np.array([[1.0, 1.0, 2.0], [1.0, 4.0, 1.0], [3.0, 1.0, 1.0]]),
                               "c": np.array([1.0, -1.0, 1.0])},
     lambda b, i: b.sum(b.where(_gt0(b, i["c"]), 1.0, b.diagonal(_sqrt_log(b, i["M"]))))),
    ("max over an axis", {"X": np.array([[1.0, 4.0, 2.0], [2.0, 3.0, 9.0]]), "c": np.array([-1.0, 1.0])},
     lambda b, i: b.sum(b.where(_gt0(b, i["c"]), b.max(_sqrt_log(b, i["X"]), axis=1), 1.0))),
    ("scatter", {"v": np.array([1.0, 4.0]), "C": np.array([1.0, -1.0, 1.0, -1.0])},
     lambda b, i: b.sum(b.where(_gt0(b, i["C"]), b.scatter(_sqrt_log(b, i["v"]), i["C"], key=((1, 3, None),)), 1.0))),
    ("sum_to", {"X": np.array([[1.0, 4.0, 1.0], [2.0, 3.0, 1.0]]), "c": np.array([-1.0, 1.0, -1.0])},
     lambda b, i: b.sum(b.where(_gt0(b, i["c"]), b.sum_to(_sqrt_log(b, i["X"]), i["c"]), 1.0))),
]


def _built(build, env):
    b = Builder()
    ins = {k: b.input(k, np.shape(a)) for k, a in env.items()}
    return b.finish([("y", build(b, ins))])


def _jvp_gradient(trace, env, name):
    """The gradient in `name` from raw forward-mode tangents (the trace's JVP, interpreted)."""
    J = passes.jvp(trace)
    g = np.zeros(np.shape(env[name]))
    for k in np.ndindex(g.shape):
        seeds = {f"{n}.dot": np.zeros(np.shape(a)) for n, a in env.items()}
        seeds[f"{name}.dot"][k] = 1.0
        with np.errstate(all="ignore"):
            g[k] = interpret(J, {**env, **seeds})[1]
    return g


@pytest.mark.parametrize("name, env, build", BUILT, ids=[c[0] for c in BUILT])
def test_built_moves(name, env, build):
    trace = _built(build, env)
    first = next(iter(env))   # (the value's input; the condition's is the other)
    want = _jvp_gradient(trace, env, first)
    assert np.isfinite(want).all()
    got = _traced(trace, env)[0]
    assert np.array_equal(got, want), (name, got, want)
    old = _traced(trace, env, old=True)[0]
    assert np.isnan(old).any(), old


# -- random chains of moves inside where branches ------------------------------------------
def _moves(shape: tuple) -> list:
    """(template, new shape) of the moves a value of `shape` may take."""
    z = np.zeros(shape)
    got = [("{}[::-1]", shape), ("stack({}, {})", (2,) + shape), ("concatenate({}, {})", (2 * shape[0],) + shape[1:])]
    if shape[0] > 1:
        got.append(("{}[1:]", z[1:].shape))
    if len(shape) == 2:
        got += [("transpose({})", shape[::-1]), ("{}[:, ::-1]", shape)]
        got += [(f"sum({{}}, axis={k})", z.sum(axis=k).shape) for k in (0, 1)]
        got += [(f"mean({{}}, axis={k})", z.sum(axis=k).shape) for k in (0, 1)]
        if shape[0] > 1:
            got.append(("{}[1]", z[1].shape))
    size = z.size
    for s in ((size,), (2, size // 2), (size // 2, 2)):
        if s != shape and np.prod(s) == size and min(s) > 0:
            got.append((f"reshape({{}}, shape={s if len(s) > 1 else (size,)})", s))
    return [(t, s) for t, s in got if 0 < len(s) <= 3 and 0 < np.prod(s) <= 24]


@st.composite
def branches(draw):
    """sum(where(L > 0, V, 1)) where V is sqrt(log(X)) under 1-4 steps, L log(X) under the
    same moves (its lanes V's): a move, a where of L (either branch), an elementwise op, a
    where of a scalar condition, a union (V in two branches of different conditions)."""
    value, cond, shape = "sqrt(log(X))", "log(X)", (2, 3)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["move", "move", "move", "where", "unary", "scalar", "union"]))
        if kind == "move":
            template, shape = draw(st.sampled_from(_moves(shape)))
            value, cond = (template.replace("{}", e) for e in (value, cond))
        elif kind == "where":
            cut = draw(st.sampled_from(["0", "0.5"]))
            value = draw(st.sampled_from([f"where({cond} > {cut}, {value}, 1)",
                                          f"where({cond} <= {cut}, 1, {value})"]))
        elif kind == "unary":
            unary = draw(st.sampled_from(["exp({})", "2 * {}", "{} * {}", "sin({}) + 1", "-{}"]))
            value = "(" + unary.replace("{}", value) + ")"
        elif kind == "scalar":
            value = f"where(s > 0, {value}, 0)"
        else:
            value = f"(where({cond} > 0, {value}, 1) + where({cond} > 0.5, 2 * {value}, 3))"
    expr = draw(st.sampled_from([f"sum(where({cond} > 0, {value}, 1))",
                                 f"sum(where({cond} <= 0, 1, {value}))"]))
    lanes = draw(st.lists(st.sampled_from([1.0, 4.0, 0.25, 2.0, 0.5, 9.0]), min_size=6, max_size=6))
    inputs = {"X": np.array(lanes).reshape(2, 3)}
    if "s > 0" in expr:
        inputs["s"] = draw(st.sampled_from([1.0, -1.0]))
    return expr, inputs


def _random_case(case, backend, off=_moves_off, inputs_held: int = 0):
    """The gradient against forward mode (of the first `inputs_held` inputs; 0: all of
    them), and the same bits where the old analysis (`off`) gave a number."""
    expr, inputs = case
    held = slice(inputs_held or None)
    _held_to_forward(_grad(expr, inputs, backend)[held], _forward_tangents(expr, inputs)[held], expr, inputs)
    trace = to_trace(expr, shapes=_shapes(inputs))
    for o, n in list(zip(_traced(trace, inputs, True, off), _traced(trace, inputs)))[held]:
        finite = np.isfinite(o)
        assert np.array_equal(o[finite], n[finite]), (expr, o, n)


@settings(max_examples=40, deadline=None)
@given(branches())
def test_random_branches_numpy(case):
    _random_case(case, "numpy")


@pytest.mark.slow
@pytest.mark.skipif("c" not in TENSOR, reason="no C compiler")
@settings(max_examples=15, deadline=None)
@given(branches())
def test_random_branches_c(case):
    _random_case(case, "c")


# -- Hessian-vector products: forward mode over this reverse sweep ----------------------------
HVPS = [CASES[0], CASES[2], CASES[4], CASES[8], CASES[12]]


def _hvp(trace, env: dict, old: bool = False):
    with _moves_off() if old else contextlib.nullcontext():
        hvp = passes.hvp(trace)
    names = [name for name, _ in hvp.outputs]

    def apply(directions: dict) -> list:
        with np.errstate(all="ignore"):
            out = dict(zip(names, interpret(hvp, {**env, **{f"{n}.dot": d for n, d in directions.items()}})))
        return [np.asarray(out[f"{n}.bar.dot"], dtype=float) for n in env]
    return apply


@pytest.mark.parametrize("case", HVPS, ids=[c[0] for c in HVPS])
def test_hessian_vector_products(case):
    """Finite (the old sweep's were NaN), the old values where they were finite, and
    symmetric: uᵀ(H w) = wᵀ(H u)."""
    expr, inputs = case
    trace = to_trace(expr, shapes=_shapes(inputs))
    new, old = _hvp(trace, inputs), _hvp(trace, inputs, old=True)
    rng = np.random.default_rng(5)
    nan_before = False
    for _ in range(3):
        u = {n: rng.standard_normal(np.shape(a)) for n, a in inputs.items()}
        w = {n: rng.standard_normal(np.shape(a)) for n, a in inputs.items()}
        hu, hw, was = new(u), new(w), old(u)
        assert all(np.isfinite(h).all() for h in hu + hw), (expr, hu)
        for o, h in zip(was, hu):
            finite = np.isfinite(o)
            nan_before |= not finite.all()
            assert np.array_equal(o[finite], h[finite]), (expr, o, h)
        left = sum(float(np.sum(u[n] * h)) for n, h in zip(inputs, hw))
        right = sum(float(np.sum(w[n] * h)) for n, h in zip(inputs, hu))
        assert abs(left - right) <= 1e-12 * (1 + abs(left)), (expr, left, right)
    assert nan_before


# -- what does not change ----------------------------------------------------------------
UNCHANGED = [
    ("sum(transpose(sqrt(A)) * B)", {"A": (3, 2), "B": (2, 3)}),                  # no where
    ("sum(where(s > 0, transpose(sqrt(A)), 1))", {"A": (3, 2), "s": ()}),          # a scalar condition
    ("sum(where(B > 0, sqrt(transpose(A)), 1))", {"A": (3, 2), "B": (2, 3)}),      # nothing below a move
    ("sum(where(B > 0, transpose(A), 1))", {"A": (3, 2), "B": (2, 3)}),            # an input moved
    ("sum(where(B > 0, transpose(A + C), 1))", {"A": (3, 2), "B": (2, 3), "C": (3, 2)}),   # partials ±1
    ("sum(where(B > 0, A @ C, 1))", {"A": (2, 2), "B": (2, 3), "C": (2, 3)}),      # inputs mixed (test_where_mixing)
]


@pytest.mark.parametrize("expr, shapes", UNCHANGED, ids=[u[0] for u in UNCHANGED])
def test_traces_where_no_branch_needs_a_moved_mask_are_unchanged(expr, shapes):
    trace = to_trace(expr, shapes=shapes)
    with _moves_off():
        old = passes.grad_reverse(trace)
    assert str(passes.grad_reverse(trace)) == str(old)


def test_an_index_keeps_its_adjoint_at_the_key():
    """O(|key|): the moved condition of an index is read at the key as the value the
    scatter would hold there (reverse_index_keyed.read), not scattered over n lanes."""
    primal = to_trace("sum(where(log(x[0:3]) > 0, sqrt(log(x))[0:3], 1))", shapes={"x": (1000,)})
    grad = passes.grad_reverse(primal)

    def wide(t):
        return sorted(ins[0] for ins in t.instrs if ins.shape == (1000,))
    assert wide(grad) == sorted(wide(primal) + ["scatter"]), grad


def test_a_condition_on_the_branchs_own_moves_is_compared_again_unmoved():
    """transpose(log(X)) > 0 moved back through the transpose is log(X) > 0: no move of the
    comparison (which NumPy would hold as a float mask, its wheres two passes each)."""
    trace = to_trace("sum(where(transpose(log(X)) > 0, transpose(sqrt(log(X))), 1))", shapes={"X": (2, 3)})
    grad = passes.grad_reverse(trace)
    comparisons = {k for k, ins in enumerate(grad.instrs) if ins[0] == "gt"}
    assert len(comparisons) == 2
    assert not any(ins[0] == "transpose" and ins[1][0] in comparisons for ins in grad.instrs), grad


def test_a_reductions_condition_is_compared_at_the_reduced_lanes():
    """sum(sqrt(L), axis=1)'s condition at sqrt's lanes is the row's, put back at (n, 1)
    (which the mask's where broadcasts): no comparison, nor broadcast, of n² lanes."""
    trace = to_trace("sum(where(sum(log(L), axis=1) > 1, sum(sqrt(log(L)), axis=1), 1))", shapes={"L": (40, 30)})
    grad = passes.grad_reverse(trace)
    compared = [ins.shape for ins in grad.instrs if ins[0] == "gt"]
    assert compared and all(s in ((40,), (40, 1)) for s in compared), grad
    assert not any(ins[0] == "broadcast_to" and grad.instrs[ins[1][0]][0] == "gt" for ins in grad.instrs), grad
