"""The bulk reverse sweep on where() unions and on powers of distinct exponents (issue 14).

Two shapes of large formulas the bulk sweep (passes/reverse_bulk*.py) declined or
swept slowly: a value read in the branches of more than reverse_masks._NESTED wheres
of different conditions (chained piecewise models), masked by one flag "any holds"
that the builder makes once per union (reverse_bulk_masks.Flags: the bulk sweep now
makes it so, in the block of the first edge that reads it); and x**c for many
distinct non-integer c (fitted models), whose partial holds c − 1 (one template now
reads it of each instruction's own c: reverse_bulk_generic.MinusConstants).

The per-instruction sweep is the oracle: the same gradient bits (NaN and infinite
points included) and the same printed trace, but where the bulk sweep's known
differences apply (a constant sweep's sum with a regular edge's: reverse_bulk.py);
for powers, the trace keyed by value exactly (tests/test_bulk_consts.py's check).
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bulk_consts import _check
from test_reverse_bulk import per_instruction
from test_reverse_wired import assert_same_bits

from exprcompiler import compile_hessian
from exprcompiler.frontend import to_trace
from exprcompiler.passes import reverse, reverse_bulk, reverse_bulk_generic, reverse_bulk_templates
from exprcompiler.passes.reverse_bulk import grad_reverse_bulk
from exprcompiler.passes.reverse_masks import _NESTED, where_exits
from exprcompiler.trace.check import interpret, verify

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
try:
    from bench_bulk_where import piecewise_block, powers, unions
finally:
    sys.path.pop(0)

_GRID = np.array([-2.0, -1.0, -0.5, -0.0, 0.0, 0.3, 0.5, 1.0, 2.0, np.inf, -np.inf, np.nan])


def _largest_union(trace) -> int:
    exits = where_exits(trace.instrs, reverse.active_set(trace, [v for _, v in trace.inputs]),
                        {trace.outputs[0][1]}) or {}
    return max((len(anyof) for by_j in exits.values() for _, conds in by_j.values() for anyof in conds), default=0)


def _compare(expr: str) -> tuple:
    """(the bulk gradient, the per-instruction one), the same bits asserted."""
    got = grad_reverse_bulk(to_trace(expr))
    assert got is not None, expr
    verify(got)
    want = per_instruction(to_trace(expr))
    names = [n for n, _ in to_trace(expr).inputs]
    env = {n: np.roll(_GRID, 3 * k) for k, n in enumerate(names)}
    with np.errstate(all="ignore"):
        assert_same_bits(interpret(got, env), interpret(want, env))
    return got, want


def _piecewise(statements: int, seed: int) -> str:
    lines, last = piecewise_block(random.Random(seed), ["x", "y", "z"], statements)
    return "\n".join(lines + [" + ".join(last)])


# (chained piecewise models with a union of more than _NESTED regions; the old code
# declined every one of them)
_UNIONS = [(n, s) for n, s in [(10, 1), (10, 4), (10, 6), (15, 0), (15, 3), (15, 4), (20, 0), (20, 2), (20, 3),
                               (30, 0), (30, 2), (30, 5), (30, 6)]]


@pytest.mark.parametrize("statements,seed", _UNIONS)
def test_chained_piecewise_unions_take_the_bulk_sweep(statements, seed):
    expr = _piecewise(statements, seed)
    assert _largest_union(to_trace(expr)) > _NESTED   # (the case this file is about)
    got, want = _compare(expr)
    if (statements, seed) != (10, 1):
        # (10, 1): a sum of a constant sweep's contribution and a regular edge's,
        # written −m + c: one instruction more, the bulk sweep's known difference
        assert str(got) == str(want)
    else:
        assert len(got.instrs) == len(want.instrs) + 1


def test_a_shared_value_in_six_branches():
    """The union that used to decline: p in six wheres of different conditions; its
    flag made once (ne, maximum: as many as the per-instruction sweep's), and the
    gradient 0, not NaN, where no branch is taken (x = −1: sqrt's slope NaN)."""
    expr = "p = sqrt(x)\n" + " + ".join(f"where(x > {j}, p * {j + 1}, y * {j})" for j in range(6))
    got, want = _compare(expr)
    assert str(got) == str(want)
    ops = [ins[0] for ins in got.instrs]
    assert ops.count("maximum") == 5 and ops.count("ne") == 6
    with np.errstate(all="ignore"):
        g = interpret(got, {"x": np.array([-1.0, 4.0]), "y": np.array([1.0, 1.0])})
    assert np.asarray(g[1])[0] == 0.0 and np.isfinite(np.asarray(g[1])).all()


def test_one_flag_for_many_edges_and_unions_sharing_it():
    """Several edges leave the one union (p's partials to x and y), and a second
    value's union is the first's less a branch: the flags' instructions are hash-consed
    across unions as the builder does (the trace is the per-instruction sweep's)."""
    wheres = " + ".join(f"where(x > {j / 4}, p * {j + 1}, q * {j + 2})" for j in range(7))
    expr = f"p = sqrt(x * y + 1)\nq = log(1 + exp(x) * y)\n{wheres} + where(y > 0.5, q, 1)"
    got, want = _compare(expr)
    assert str(got) == str(want)


def test_nested_unions_two_flags_on_one_edge(monkeypatch):
    """p = sqrt(x) in five wheres of y, inside u read by five wheres of z: sqrt's edge
    leaves both unions, masked by two flags (the inner one first); each made once,
    the template's later where placed after both."""
    inner = " + ".join(f"where(y > {j / 10}, p * {j + 1.5}, 0)" for j in range(5))
    outer = " + ".join(f"where(z > {j / 10}, u * {j + 2.5}, x)" for j in range(5))
    expr = f"p = sqrt(x)\nu = {inner}\n{outer}"
    seen = []
    real = reverse_bulk.mask_edges
    monkeypatch.setattr(reverse_bulk, "mask_edges", lambda *a: seen.append(real(*a)) or seen[-1])
    got, want = _compare(expr)
    assert max(len(unions) for _, unions in seen[0].flags) == 2
    assert str(got) == str(want)


def test_unions_at_bulk_size_through_grad_reverse(monkeypatch):
    expr = unions(3300)
    trace = to_trace(expr)
    assert len(trace.instrs) >= reverse._BULK_FROM and _largest_union(trace) > _NESTED
    taken = []
    real = reverse_bulk.grad_reverse_bulk
    monkeypatch.setattr(reverse_bulk, "grad_reverse_bulk", lambda *a: taken.append(real(*a)) or taken[-1])
    got = reverse.grad_reverse(trace)
    assert taken and taken[0] is not None
    want = per_instruction(to_trace(expr))
    assert len(got.instrs) <= 1.002 * len(want.instrs)
    names = [n for n, _ in trace.inputs]
    env = {n: np.roll(_GRID, k) for k, n in enumerate(names)}
    with np.errstate(all="ignore"):
        assert_same_bits(interpret(got, env), interpret(want, env))


def test_hessian_through_a_union_is_the_per_instruction_sweeps(monkeypatch):
    expr = _piecewise(15, 3)
    xs = [np.array([-1.5, -0.5, 0.0, 0.5, 2.0])] * 3
    with np.errstate(all="ignore"):
        monkeypatch.setattr(reverse, "_BULK_FROM", 0)
        assert grad_reverse_bulk(to_trace(expr)) is not None
        bulk = compile_hessian(expr)(*xs)
        monkeypatch.setattr(reverse, "_BULK_FROM", math.inf)
        one = compile_hessian(expr)(*xs)
    for a, b in zip(bulk[1:], one[1:]):
        assert np.array_equal(np.asarray(a, float), np.asarray(b, float), equal_nan=True)


def test_random_where_formulas_with_unions():
    """Drawn piecewise models (seeds 100-139, 8-24 statements): every one the bulk
    sweep takes has the per-instruction sweep's bits, nearly all its trace, and most
    with a union are taken."""
    rng = random.Random(14)
    with_union = taken = same = 0
    for seed in range(100, 140):
        expr = _piecewise(rng.randint(8, 24), seed)
        union = _largest_union(to_trace(expr)) > _NESTED
        with_union += union
        if grad_reverse_bulk(to_trace(expr)) is None:
            continue
        taken += union
        got, want = _compare(expr)
        same += str(got) == str(want)
    assert with_union >= 15 and taken >= 0.8 * with_union, (with_union, taken)
    assert same >= 0.85 * 40, same


# -- powers of distinct exponents ------------------------------------------------------

@pytest.mark.parametrize("text", [
    "t0 = x**1.37 + y**2.71\nt1 = 0.5*x**0.37 + t0**1.37 * y**1.5\nt2 = t1**2.5 + x**(-0.63)\nt0 + t1 + t2",
    "t0 = x**1.5 + 2.3*y**0.5\nt1 = t0**2.25 * x**1.25\nt0 + t1",   # (c − 1 another's c)
    "t0 = 2.37*x**3.37\nt1 = y**1.37 + 0.37*x\nt0 + t1",   # (c − 1 a coefficient of the primal)
    "t0 = x**1.37\nt1 = y**0.37\nt2 = x**1.37*y\nt0 + t1 + t2 + x**2.37",
    "t0 = x**0.37\nt1 = y**1.61\nt2 = x**0.37*y\nt0 + t1 + t2",
    "t0 = (x*y)**1.3 + (-0.7)*x**(-1.7)\nt1 = 3.3*t0**0.3\nt0*t1",
    # (under a where's mask: those keyed by value, their masked templates made after the kinds')
    "t0 = where(x > 0.5, x**1.37 * y, y**2.71)\nt1 = x**0.37 + where(y > 0, y**1.5, x**1.37)\nt0 + t1",
    "t0 = where(x >= 1, x**1.5 - sqrt(x - 1), x**2.5)\nt1 = y**1.25 * t0\nt0 + t1 + x**1.25",
])
def test_powers_as_keyed_by_value(text):
    _check(text)


def _piecewise_powers(terms: int, seed: int) -> str:
    """where(x_i > c, a·x_i**e, b·exp(d·x_i) or x_i**f) terms: powers under masks, some
    exponents drawn again or one more than another (c − 1 another's c)."""
    rng = random.Random(seed)
    pool = [1.37, 0.37, 2.37, 1.5, 0.5]
    out = []
    for _ in range(terms):
        i = rng.randrange(5)
        e, f = (rng.choice(pool) if rng.random() < 0.3 else round(rng.uniform(0.3, 3), 4) for _ in range(2))
        other = f"{rng.uniform(0.1, 3):.4f}*exp({rng.uniform(0.1, 1):.4f}*x{i})" if rng.random() < 0.5 else f"x{i}**{f}"
        out.append(f"where(x{i} > {rng.uniform(0.1, 2):.4f}, {rng.uniform(0.1, 3):.4f}*x{i}**{e}, {other})")
    return " + ".join(out)


@pytest.mark.parametrize("seed", range(4))
def test_powers_under_masks_as_keyed_by_value(seed):
    # (an edge under a where's mask: a masked template per kind keyed by value, whose
    # constants c − 1 MinusConstants makes in the order the masks make those templates)
    _check(_piecewise_powers(40, seed))


def test_powers_of_distinct_exponents_record_few_templates(monkeypatch):
    """One template for x**c whatever c (it reads c − 1 of each instruction's own c):
    ~700 distinct exponents, ~100 recordings, most the constant sweep's (keyed by
    value: ~1,000)."""
    calls = []
    real = reverse_bulk_templates._record
    monkeypatch.setattr(reverse_bulk_templates, "_record", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    monkeypatch.setattr(reverse_bulk_templates, "_TEMPLATES", {})
    monkeypatch.setattr(reverse_bulk_templates, "_PLAIN", {})
    monkeypatch.setattr(reverse_bulk_generic, "_GENERIC", {})
    expr = powers(2000)
    got = grad_reverse_bulk(to_trace(expr))
    assert got is not None
    assert len(calls) < 200, len(calls)
    _check(expr)


@pytest.mark.parametrize("size", [300, 3000])
def test_powers_bulk_is_per_instruction_and_by_value(size):
    _check(powers(size, seed=size))
