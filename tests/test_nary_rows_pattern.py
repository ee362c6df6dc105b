"""The three-term forms' partials as the op table builds them (ops_special._over_norm3,
_softmax3) and the NumPy matcher that finds them (numpy_nary): the pattern it looks
for comes from the op table's own rules, so that a change of a rule changes what it
finds; hypot3's scale taken from the sum of squares, not from the value (a C kernel
then computes it beside the square root); and hypot3's values where the scale's
choice matters, against mpmath."""

import dataclasses
import math

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad, runtime
from exprcompiler.backends import numpy_nary
from exprcompiler.ops import OPS
from exprcompiler.trace.ir import Builder, trace_from_builder

INF, NAN = math.inf, math.nan
BACKENDS = ("numpy", "c", "vm")


def _depends_on(instrs, i: int, j: int) -> bool:
    """Whether instruction i reads j, directly or not."""
    todo, seen = [i], set()
    while todo:
        k = todo.pop()
        if k == j:
            return True
        if k not in seen:
            seen.add(k)
            todo.extend(instrs[k].args)
    return False


def _gradient_trace(op: str):
    """The reverse-mode gradient trace of op(x, y, z) and the op's instruction."""
    g = compile_grad(f"{op}(x, y, z)")
    instrs = g.trace.instrs
    return g, instrs, next(i for i, ins in enumerate(instrs) if ins.op == op)


def test_hypot3_scale_is_read_from_the_sum_of_squares_not_the_value():
    # a C kernel then computes it beside the square root (the value's comparisons had it
    # wait for the root)
    _, instrs, h = _gradient_trace("hypot3")
    # hypot3_guard(slope, h, s): over_norm(x, h, s) on every backend, x·k·(1/(h·k)), k by s
    partials = [ins for ins in instrs if ins.op == "hypot3_guard"]
    assert len(partials) == 3 and len({ins.args[2] for ins in partials}) == 1
    assert not _depends_on(instrs, partials[0].args[2], h)
    assert not any(ins.op == "div" for ins in instrs)   # the reciprocal is over_norm's, one in C


@pytest.mark.parametrize("op", sorted(numpy_nary.NARY_OPS))
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_rows_found_from_the_op_tables_rules_in_both_modes(op, mode):
    g = compile_grad(f"{op}(x, y, z)", mode=mode)
    body = g.source.split("def ")[1]
    assert body.count(f"{op}_rows(") == 1 and "where" not in body
    # the pattern is the op table's: its partials at a seed of 1, on placeholders
    instrs, out, partials, _ = numpy_nary._pattern(op)
    assert instrs[out][0] == op and len(partials) == 3
    b = Builder(pull_negations=True)
    xs = [b.input(n) for n in "xyz"]
    h = b.apply(op, *xs)
    ps = [OPS[op].partials[j](b, b.const(1.0), *xs, h) for j in range(3)]
    t = trace_from_builder(b, [("h", h)] + [(f"p{j}", p) for j, p in enumerate(ps)])
    rows = numpy_nary.nary_rows(t.instrs)
    assert [rows[t.outputs[j][1]][-1] for j in range(4)] == [0, 1, 2, 3]


def test_a_changed_rule_is_still_found(monkeypatch):
    # the matcher follows the op table: a rule built otherwise (here x·(1/out) without the
    # scale) is looked for as it is now, and its rows helper takes its place
    def plain(b, g, x, y, z, out, i=0):
        return b.mul(g, b.where(b.eq(out, 0.0), 0.0, b.mul((x, y, z)[i], b.div(1.0, out))))

    changed = dataclasses.replace(OPS["hypot3"], partials=tuple(
        (lambda b, g, x, y, z, out, i=i: plain(b, g, x, y, z, out, i)) for i in range(3)))
    monkeypatch.setitem(OPS, "hypot3", changed)
    numpy_nary._pattern.cache_clear()
    try:
        b = Builder(pull_negations=True)
        xs = [b.input(n) for n in "xyz"]
        h = b.apply("hypot3", *xs)
        ps = [changed.partials[j](b, b.const(1.0), *xs, h) for j in range(3)]
        t = trace_from_builder(b, [("h", h)] + [(f"p{j}", p) for j, p in enumerate(ps)])
        rows = numpy_nary.nary_rows(t.instrs)
        assert [rows[t.outputs[j][1]][-1] for j in range(4)] == [0, 1, 2, 3]
    finally:
        numpy_nary._pattern.cache_clear()


def test_partials_found_beside_a_constant_argument():
    # hypot3(x, y, 2): the builder folds the pattern's 2·2 into the constant 4
    g = compile_grad("sqrt(x**2 + y**2 + 4)", stable=True)
    body = g.source.split("def ")[1]
    assert "hypot3_rows(" in body and "where" not in body
    x, y = np.array([1.0, 3e200, -1e-300, 0.0]), np.array([2.0, 1e-300, 2e-300, 0.0])
    v, (gx, gy) = g(x, y)
    vc, (cx, cy) = compile_grad("sqrt(x**2 + y**2 + 4)", stable=True, backend="c")(x, y)
    for got, want in ((v, vc), (gx, cx), (gy, cy)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_rows_beside_a_users_square_of_an_argument(mode):
    # NumPy's rewrites make the user's x**2 an x·x beside the partials' own (the trace it
    # renders is not hash-consed again): the matcher takes the partials' one
    expr = "sqrt(x**2 + y**2 + z**2) * x**2"
    g = compile_grad(expr, stable=True, mode=mode)
    body = g.source.split("def ")[1]
    assert body.count("hypot3_rows(") == 1 and "where" not in body
    x, y, z = np.random.default_rng(3).uniform(-3, 3, (3, 40))
    v, grads = g(x, y, z)
    vc, gc = compile_grad(expr, stable=True, mode=mode, backend="c")(x, y, z)
    np.testing.assert_allclose(v, vc, rtol=4.5e-16)
    for p, q in zip(grads, gc):
        np.testing.assert_allclose(p, q, rtol=1e-15)


def _mp_partials(p):
    with mpmath.workdps(40):   # (local: a global mp.dps changes other files' references)
        h = mpmath.sqrt(sum(mpmath.mpf(t) ** 2 for t in p))
        return float(h), [float(mpmath.mpf(t) / h) if h else 0.0 for t in p]


@pytest.mark.parametrize("backend", BACKENDS)
def test_hypot3_partials_where_the_scale_changes(backend):
    # s = x² + y² + z² around 2^120 (out around 2^60), and tiny and huge values around it
    rng = np.random.default_rng(7)
    t = 2.0 ** 60 * (1.0 + rng.uniform(-1e-15, 1e-15, 300))
    pts = np.stack([t, rng.uniform(-1.0, 1.0, 300) * 1e-300, rng.uniform(-1.0, 1.0, 300)])
    near = np.exp(rng.uniform(np.log(2.0 ** 55), np.log(2.0 ** 65), (3, 300))) * rng.choice([-1.0, 1.0], (3, 300))
    pts = np.concatenate([pts, near, [[5e-324, 1.7e308, -3e-310], [2.5e-310, 1e-5, 4e-320], [0.0, 1e300, 1e-320]]],
                         axis=1)
    v, grads = compile_grad("hypot3(x, y, z)", backend=backend)(*pts)
    for k, p in enumerate(pts.T):
        h, want = _mp_partials(p)
        assert v[k] == pytest.approx(h, rel=3e-16)
        for g, w in zip(grads, want):
            assert g[k] == pytest.approx(w, rel=4.5e-16, abs=1e-323)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hypot3_partial_beside_an_infinity_and_a_nan(backend):
    # the value is inf (C's hypot); a finite term's partial is 0 (x/inf), whatever its size
    g = compile_grad("hypot3(x, y, z)", backend=backend)
    for point in ((1e300, INF, NAN), (-1.7e308, NAN, -INF), (2.0, INF, NAN)):
        v, grads = g(*point)
        assert v == INF
        assert [float(d) for d in grads][0] == 0.0
    rows = runtime.hypot3_rows(np.array([1e300, 2.0]), np.array([INF, NAN]), np.array([NAN, -INF]))
    assert list(rows[1]) == [0.0, 0.0]
