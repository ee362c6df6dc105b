"""Edge points through the whole pipeline (issue "Trust"): op table -> passes ->
backends. For every elementwise op of the op table, the NumPy backend, the C
backend and the reference interpreter give the same value and the same
derivatives (gradient in reverse and forward mode, JVP, VJP, HVP) at ±0, ±inf,
NaN, ±the smallest subnormal, ±1, overflow (±710, ±1e308) and the kinks, in every
argument position: inf, NaN and the sign of zero exactly, finite values to 1e-13
relative (libmvec's last bits). Each argument is tried as an array, as a scalar
(NumPy's loops take other paths when an argument does not vary: pow with the
exponent 0.5 is sqrt there) and as a constant (which the builder folds and
simplifies); values are also checked against the op's NumPy evaluator applied
directly, the reference for values. A hypothesis test does the same for small
random expressions. The last tests pin the cases this suite found.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exprcompiler import compile_expr, compile_grad, compile_hvp, compile_jvp, compile_vjp, ops
from exprcompiler.trace import interpret
from exprcompiler.trace.ir import Builder, trace_from_builder
from conftest import HAVE_CC, NO_CC, examples
from merged_cases import summed_outputs
from test_ops import DIFFERENTIABLE as ELEMENTWISE

if not HAVE_CC:
    pytest.skip(NO_CC, allow_module_level=True)

INF, NAN, TINY = math.inf, math.nan, 5e-324
EDGES = (0.0, -0.0, TINY, -TINY, 0.5, 1.0, -1.0, 2.0, -2.0, 3.0, 710.0, -710.0, 1e308, -1e308, INF, -INF, NAN)
# Tangents, cotangents and HVP directions: finite, zeros of both signs among them.
SEEDS = (1.0, -0.5, 0.0, 2.0, -0.0)

# Accepted differences from the NumPy backend: {(op, kind): reason}. Empty: every
# difference found so far was a bug and is fixed. An entry here needs a line in
# the README's "IEEE semantics" bullet.
EXCEPTIONS: dict[tuple[str, str], str] = {}

KINDS = {
    "grad_reverse": lambda t, **kw: compile_grad(t, mode="reverse", **kw),
    "grad_forward": lambda t, **kw: compile_grad(t, mode="forward", **kw),
    "jvp": compile_jvp,
    "vjp": compile_vjp,
    "hvp": compile_hvp,
}


pytestmark = pytest.mark.usefixtures("private_cache")


def same(a, b) -> np.ndarray:
    """Elementwise agreement: both NaN; or equal with the same sign (zeros too);
    or both finite and nonzero within 1e-13 relative."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    exact = (a == b) & (np.signbit(a) == np.signbit(b))
    with np.errstate(all="ignore"):
        close = np.isfinite(a) & np.isfinite(b) & (a != 0) & (b != 0) \
            & (np.abs(a - b) <= 1e-13 * np.maximum(np.abs(a), np.abs(b)))
    return (np.isnan(a) & np.isnan(b)) | exact | close


def same_kind(a, b) -> np.ndarray:
    """Elementwise: both NaN, both the same infinity, both the same signed zero, or
    both finite and nonzero. For results of several ops, where a last-bit difference
    of one (libmvec's cos(710)) can grow through cancellation (cos(710) - 1)."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    special = ~np.isfinite(a) | (a == 0)
    return np.where(special, same(a, b), np.isfinite(b) & (b != 0))


def flat(result) -> list:
    if isinstance(result, tuple):
        return [x for item in result for x in flat(item)]
    return [result]


def grid(arity: int, extra=()) -> list[np.ndarray]:
    """Every combination of edge points for `arity` arguments (plus `extra` points)."""
    points = list(itertools.product(EDGES, repeat=arity)) + list(extra)
    return [np.array(col) for col in zip(*points)] if arity else []


def calls(arity: int, extra=()):
    """(label, argument columns): all arrays, then each argument as a scalar."""
    yield "arrays", grid(arity, extra)
    for k in range(arity):
        rest = grid(arity - 1)
        for e in EDGES:
            yield f"x{k + 1}={e!r} (scalar)", rest[:k] + [e] + rest[k:]


def mismatches(compiled: dict, args: list, label: str, reference=None, agree=same) -> list[str]:
    """Where the C backend, the interpreter and (for the first outputs, the values)
    `reference` differ from the NumPy backend, one line per output and source."""
    py = compiled["numpy"]
    n = max(np.size(a) for a in args) if args else 1
    seeds = [np.resize(np.roll(SEEDS, k), n) for k in range(len(py.inputs) - len(args))]
    full = args + seeds
    with np.errstate(all="ignore"):
        got = {"numpy": flat(py(*full)), "c": flat(compiled["c"](*full)),
               "interpret": list(interpret(py.trace, dict(zip(py.trace.input_names, full))))}
    if reference is not None:  # the values only: the rows below stop at its end
        got["evaluator"] = list(reference)
    # every output broadcast to the call's points and stacked (outputs, points): one
    # `agree` per source, not one per output (thousands of small calls otherwise)
    shape = np.broadcast_shapes(*[np.shape(a) for a in full], *[np.shape(w) for w in got["numpy"]])
    stack = lambda outs: np.array([np.broadcast_to(np.asarray(o, float), shape) for o in outs])  # noqa: E731
    want_all = stack(got.pop("numpy"))
    cols = [np.broadcast_to(a, shape).ravel() for a in full]
    lines = []
    for who, outs in got.items():
        have_all = stack(outs[:len(want_all)])
        ok_all = agree(want_all[:len(have_all)], have_all)
        for r in np.flatnonzero(~ok_all.reshape(len(have_all), -1).all(axis=1)):
            name, ok = py.trace.output_names[r], ok_all[r]
            bad = np.flatnonzero(~ok.ravel())
            w, h = want_all[r].ravel(), have_all[r].ravel()
            shown = "; ".join(f"at {tuple(float(c[i]) for c in cols)}: numpy {w[i]!r}, {who} {h[i]!r}"
                              for i in bad[:3])
            lines.append(f"{label}: {name} {who} differs at {bad.size} points, {shown}")
    return lines


def every_op_trace(group, summed=False):
    """Every op of `group` on inputs of its own (<op>_x1... -> y_<op>): each output and
    its JVP and VJP depend on that op alone, so one kernel checks the whole group.
    `summed`: one output, the sum of them all, whose gradient and HVP with respect to
    an op's inputs are that op's alone (an adjoint of a sum is the sum's own, 1; the
    other ops' tangents are structural zeros): one kernel for a group's gradients."""
    b = Builder()
    outputs = []
    for op in group:
        xs = [b.input(f"{op.name}_x{k + 1}") for k in range(op.arity)]
        outputs.append((f"y_{op.name}", b.apply(op.name, *xs)))
    return trace_from_builder(b, summed_outputs(b, outputs) if summed else outputs)


ARITIES = sorted({op.arity for op in ELEMENTWISE})


@pytest.mark.parametrize("kind", ["jvp", "vjp", "grad_reverse", "grad_forward", "hvp"])
@pytest.mark.parametrize("arity", ARITIES)
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_derivatives_of_every_op_agree_at_edge_points(arity, kind):
    """check_kinds for every op of one arity, in one kernel (not one per op): the same
    calls, an op's own edge points padded to the group's longest by repeats. JVP and
    VJP have one output per op, checked against the op's evaluator too; gradients and
    HVPs are of the ops' sum (every_op_trace), so the value is the sum's and only the
    backends and the interpreter are compared (the values are the JVP test's)."""
    group = [op for op in ELEMENTWISE if op.arity == arity and (op.name, kind) not in EXCEPTIONS]
    per_output = kind in ("jvp", "vjp")
    trace = every_op_trace(group, summed=not per_output)
    compiled = {"numpy": KINDS[kind](trace), "c": KINDS[kind](trace, backend="c")}
    arrays = [grid(arity, extra=[p for p, _ in op.edges]) for op in group]
    n = max(len(cols[0]) for cols in arrays)
    batches = [("arrays", [[np.resize(c, n) for c in cols] for cols in arrays])]
    batches += [(label, [args] * len(group)) for label, args in calls(arity) if label != "arrays"]
    names = [f"{op.name}_x{k + 1}" for op in group for k in range(op.arity)]
    order = compiled["numpy"].inputs[:len(names)]   # the inputs come sorted by name
    assert sorted(order) == sorted(names), order
    problems = []
    for label, per_op in batches:
        with np.errstate(all="ignore"):
            values = [op.evaluate(*args) for op, args in zip(group, per_op)]
        by_name = dict(zip(names, [c for args in per_op for c in args]))
        problems += mismatches(compiled, [by_name[name] for name in order], f"{kind} {label}",
                               reference=values if per_output else None)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("arity", [n for n in ARITIES if n > 1])
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_constant_arguments_agree_at_edge_points(arity):
    """op(..., c, ...) for every edge constant c in every position, for every op of one
    arity: one trace whose outputs are all of them (each op on inputs of its own), so
    the builder's folding and identities (x + -0.0, x**1, x * -1...) meet every edge
    point, against the evaluator applied directly."""
    group = [op for op in ELEMENTWISE if op.arity == arity]
    b = Builder()
    outputs, plan = [], []
    for op in group:
        xs = [b.input(f"{op.name}_x{i + 1}") for i in range(arity)]
        for k in range(arity):
            for j, c in enumerate(EDGES):
                outputs.append((f"y_{op.name}_{k}_{j}", b.apply(op.name, *(xs[:k] + [c] + xs[k + 1:]))))
                plan.append((op, k, c))
    trace = trace_from_builder(b, outputs)
    cols = grid(arity)
    names = [f"{op.name}_x{i + 1}" for op in group for i in range(arity)]
    args = {name: cols[int(name.rsplit("_x", 1)[1]) - 1] for name in names}
    with np.errstate(all="ignore"):
        values = [op.evaluate(*(cols[:k] + [np.float64(c)] + cols[k + 1:])) for op, k, c in plan]
    # forward mode only: reverse mode applies the same partials
    compiled = {"numpy": compile_jvp(trace), "c": compile_jvp(trace, backend="c")}
    order = compiled["numpy"].inputs[:len(names)]   # the inputs come sorted by name
    assert sorted(order) == sorted(names), order
    problems = mismatches(compiled, [args[name] for name in order], f"arity {arity} jvp constants",
                          reference=values)
    assert not problems, "\n".join(problems[:20])


# --------------------------------------------------------------------------- random expressions
NAMES = [op.name for op in ELEMENTWISE]


@st.composite
def expressions(draw, n_inputs=2):
    """A few ops of the table over x1, x2, earlier results and edge constants:
    [(op name, [("v", index) | ("c", value)]...)]; the last result is the output."""
    steps = []
    for s in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(NAMES))
        pool = n_inputs + s
        args = [("c", draw(st.sampled_from(EDGES))) if draw(st.integers(0, 4)) == 0
                else ("v", pool - 1 - draw(st.integers(0, min(2, pool - 1)))) for _ in range(ops.OPS[name].arity)]
        steps.append((name, args))
    return steps


def build(steps, n_inputs=2):
    b = Builder()
    var = [b.input(f"x{i + 1}") for i in range(n_inputs)]
    for name, args in steps:
        var.append(b.apply(name, *(var[a] if kind == "v" else a for kind, a in args)))
    return trace_from_builder(b, [("y", var[-1])])


def text(steps, n_inputs=2) -> str:
    names = [f"x{i + 1}" for i in range(n_inputs)]
    for name, args in steps:
        names.append(f"{name}({', '.join(names[a] if kind == 'v' else repr(a) for kind, a in args)})")
    return names[-1]


@settings(max_examples=examples(10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=expressions(), mode=st.sampled_from(("reverse", "forward")))
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_random_expressions_agree_at_edge_points(steps, mode):
    trace = build(steps)
    compiled = {"numpy": compile_grad(trace, mode=mode), "c": compile_grad(trace, mode=mode, backend="c")}
    problems = mismatches(compiled, grid(2), f"{text(steps)} ({mode})", agree=same_kind)
    assert not problems, "\n".join(problems[:10])


# --------------------------------------------------------------------------- cases found
@pytest.mark.parametrize("expr, at, want", [
    ("1/relu(x)", -0.0, INF),          # np.maximum(-0.0, 0.0) is +0.0 (C returned -0.0)
    ("1/sign(x)", -0.0, INF),          # np.sign(-0.0) is +0.0
    ("1/maximum(x, 0.0)", -0.0, INF),  # a tie gives the second argument
    ("1/minimum(x, -0.0)", 0.0, -INF),
    ("x**0.5", -INF, INF),             # pow, not NumPy's sqrt path for a constant 0.5
    ("1/x**0.5", -0.0, INF),
    ("1/(x + 0)", -0.0, INF),          # the builder dropped "+ 0": -0.0 + 0.0 is +0.0
    ("1/(0 - x)", 0.0, INF),           # ... and made 0 - x into -x
])
def test_cases_found(expr, at, want):
    for backend in ("numpy", "c"):
        assert compile_expr(expr, backend=backend)(at) == want, (expr, backend)


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_heaviside_h0_partial_is_one_at_zero(backend, mode):
    """heaviside(0, h0) = h0, so d/dh0 is 1 there (it was 0: no partial at all)."""
    g = compile_grad("heaviside(x, h)", mode=mode, backend=backend)
    _, grad = g(x=np.array([-1.0, -0.0, 0.0, 1.0, NAN]), h=0.25)
    d = dict(zip(g.wrt, grad))
    np.testing.assert_array_equal(d["h"], [0.0, 1.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(d["x"], 0.0)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_structural_zeros_are_zero_at_inf_by_design(backend):
    """A partial that is identically zero (sign', heaviside's x-partial, the
    comparisons', x**0's) is left out of the derivative trace, not multiplied out:
    d/dx sign(x)·exp(x) at 800 is 0·inf + 1·inf = inf, not NaN (README, conventions)."""
    _, (d,) = compile_grad("sign(x) * exp(x)", backend=backend)(800.0)
    assert d == INF
