"""The bulk reverse sweep masks where() branches itself (passes/reverse_bulk_masks.py).

The per-instruction sweep (passes/reverse.py with reverse_masks.py) is the oracle:
the bulk sweep's gradient of a trace with masked where() branches has its values
bit for bit (NumPy's interpreter, NaN and infinite points included) and, where the
two sweeps make the same trace without masks, its instructions as printed; it is
forward mode's slope; the Hessian (forward over reverse) through the bulk sweep is
the per-instruction sweep's. Large formulas take the bulk path through grad_reverse.
"""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from test_reverse_bulk import per_instruction
from test_reverse_wired import _points, assert_same_bits
from test_where_reverse import _BRANCH, _LEAF, ONE, TWO, formulas, grad_of

from exprcompiler import compile_hessian
from exprcompiler.frontend import to_trace
from exprcompiler.passes import reverse, reverse_bulk
from exprcompiler.passes.reverse_bulk import grad_reverse_bulk
from exprcompiler.passes.reverse_masks import where_exits
from exprcompiler.trace.check import interpret, verify


def _same_gradient(expr: str, trace_too: bool = False):
    got = grad_reverse_bulk(to_trace(expr))
    assert got is not None, expr
    verify(got)
    want = per_instruction(to_trace(expr))
    if trace_too:
        assert str(got) == str(want), expr
    env = _points([n for n, _ in to_trace(expr).inputs], 40, 3)
    with np.errstate(all="ignore"):
        assert_same_bits(interpret(got, env), interpret(want, env))
    return got


# (those of test_where_reverse.py that the bulk sweep covers; "sqrt(x) * (x > 1)"
# has a structural zero, declined as before; "sqrt(x) + sqrt(x) ** 2" makes 2·v twice,
# once in the constant sweep: the bulk sweep finds no constant sweep's instruction,
# masked or not)
COVERED = [e for e in ONE + TWO if "(x > 1)" not in e]


@pytest.mark.parametrize("expr", COVERED)
def test_masked_formulas_are_the_per_instruction_sweeps(expr):
    _same_gradient(expr, trace_too="sqrt(x) ** 2" not in expr)


def _large(expr: str, copies: int) -> str:
    """`copies` of `expr`, each on its own variables (x_k, y_k) and shifted: a trace
    large enough for grad_reverse's bulk path, with every where masked."""
    terms = []
    for k in range(copies):
        term = re.sub(r"\bx\b", f"x{k}", expr)
        term = re.sub(r"\by\b", f"y{k // 3}", term)
        terms.append(f"({term}) * {1 + k / 64}")
    return " + ".join(terms)


@pytest.mark.parametrize("expr", ["where(x > 0, sqrt(x), 0)", "where(x > 0, sqrt(x), log(-x))",
                                  "where(x > y, sqrt(x - y) * y, log(y - x + 1) * x)",
                                  "where(x > 0, where(y > 0, sqrt(x * y), y), x * sqrt(1 - x))"])
def test_nan_cases_at_bulk_size_take_the_bulk_path(monkeypatch, expr):
    big = _large(expr, 700)
    trace = to_trace(big)
    assert len(trace.instrs) >= reverse._BULK_FROM
    taken = []
    real = reverse_bulk.grad_reverse_bulk
    monkeypatch.setattr(reverse_bulk, "grad_reverse_bulk", lambda *a: taken.append(real(*a)) or taken[-1])
    got = reverse.grad_reverse(trace)
    assert taken and taken[0] is not None   # (the bulk sweep made it)
    want = per_instruction(to_trace(big))
    # (the same values; as on the bench's families, a few more instructions: the bulk
    # sweep does not hash-cons G·w made twice)
    assert len(got.instrs) <= 1.01 * len(want.instrs)
    env = {name: np.array([-4.0, -1.0, -0.0, 0.0, 0.25, 1.0, 4.0, np.inf, -np.inf]) for name, _ in trace.inputs}
    with np.errstate(all="ignore"):
        g, w = interpret(got, env), interpret(want, env)
    assert_same_bits(g, w)
    # no NaN where every branch's partials are finite at the points taken
    assert not any(np.isnan(np.asarray(x)[:6]).any() for x in g[1:]) or "log" in expr or "x - y" in expr


@settings(max_examples=40, deadline=None)
@given(formulas(), st.integers(2, 6))
@example("log(sqrt(x))", 5)   # (found by the explore profile: terms that cancel to rounding)
def test_random_where_formulas_bulk_is_per_instruction_and_forward(expr, copies):
    numbers = iter(range(1, 10 ** 6))
    expr = re.sub("@", lambda _: f"{next(numbers) / 64}", expr)
    expr = _large(f"{expr} + x * y", copies)
    got = grad_reverse_bulk(to_trace(expr))
    if got is None:
        return   # (a case it declines: grad_reverse's per-instruction sweep; see the test below)
    want = per_instruction(to_trace(expr))
    names = [n for n, _ in to_trace(expr).inputs]
    grid = np.array([-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0])
    env = {n: np.roll(grid, k) for k, n in enumerate(names)}
    with np.errstate(all="ignore"):
        g = interpret(got, env)
        assert_same_bits(g, interpret(want, env))
    # forward mode's slope, where it is a number
    xs = [env[n] for n in names]
    fwd = grad_of(expr, "numpy", xs, mode="forward")
    rev = np.stack([np.asarray(x, float) * np.ones(len(grid)) for x in g[1:]], axis=1)
    finite = np.isfinite(fwd)
    # (atol: terms of order 1 on this grid that cancel, 0.5/x1 + y0 at 0.5 and -1, leave
    # each mode its own rounding, -2.2e-16 against -1.1e-16)
    assert np.allclose(rev[finite], fwd[finite], rtol=1e-12, atol=1e-12), expr


def _drawn(rng: random.Random, depth: int = 3) -> str:
    """A formula of test_where_reverse.formulas' grammar, from a seeded generator."""
    if depth == 0 or rng.randint(0, 3) == 0:
        return rng.choice(_LEAF).replace("@", f"{rng.randint(1, 200) / 64}")
    kind = rng.randint(0, 2)
    a, b = _drawn(rng, depth - 1), _drawn(rng, depth - 1)
    if kind == 0:
        return rng.choice(_BRANCH).format(a=a, b=b)
    cond = rng.choice(["{a} > 0", "{a} < {b}", "{a} >= 1", "abs({a}) < 1"]).format(a=a, b=b)
    c, d = _drawn(rng, depth - 1), _drawn(rng, depth - 1)
    return f"where({cond}, {c}, {d})" + ("" if kind == 1 else f" + {c}")


def test_random_where_formulas_are_mostly_covered():
    """Of 40 drawn formulas with a masked where, most take the bulk path (on the old
    code none did: a masked where sent the trace to the per-instruction sweep)."""
    rng = random.Random(14)
    masked = covered = 0
    while masked < 40:
        expr = _large(f"{_drawn(rng)} + x * y", 3)
        t = to_trace(expr)
        if not where_exits(t.instrs, reverse.active_set(t, [v for _, v in t.inputs]), {t.outputs[0][1]}):
            continue
        masked += 1
        covered += grad_reverse_bulk(t) is not None
    assert covered >= 32, covered


@pytest.mark.parametrize("expr", ["where(x > 0, sqrt(x) * y, log(-x) * y) + x * y",
                                  "where(x > y, sqrt(x - y) * y, log(y - x + 1) * x)"])
def test_hessian_through_the_bulk_sweep_is_the_per_instruction_sweeps(monkeypatch, expr):
    big = _large(expr, 3)
    xs = [np.array([-1.5, -0.5, 0.0, 0.5, 2.0])] * len(to_trace(big).inputs)
    with np.errstate(all="ignore"):
        monkeypatch.setattr(reverse, "_BULK_FROM", 0)
        assert grad_reverse_bulk(to_trace(big)) is not None
        bulk = compile_hessian(big)(*xs)
        monkeypatch.setattr(reverse, "_BULK_FROM", math.inf)
        one = compile_hessian(big)(*xs)
    for a, b in zip(bulk[1:], one[1:]):
        assert np.array_equal(np.asarray(a, float), np.asarray(b, float), equal_nan=True)
