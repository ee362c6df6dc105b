"""The bulk sweep's gradient bits where rounding is fragile: extreme constants.

grad_reverse's builder applies one identity that changes rounding, c·(k·y) ->
(c·k)·y for a power of two c (identities._scale_constant: one rounding instead of
two, which differ where k·y under- or overflows). The bulk sweep reproduces it on
the adjoints (passes/reverse_bulk_fold.py) and is not taken where grad_reverse's
replay would apply it to the primal (reverse_bulk_fold.replay_folds). These tests
hold the bulk gradient to the per-instruction sweep's bits on expressions built of
constants near the ends of the double range and powers of two, at points whose
products are subnormal or overflow."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import examples
from hypothesis import example, given, settings
from test_builder_fast import _BINARY, _UNARY, expressions_of
from test_reverse_bulk import _replay_folds, per_instruction
from test_reverse_wired import assert_same_bits, assert_wired_trace

from exprcompiler.frontend import to_trace
from exprcompiler.passes import reverse
from exprcompiler.passes.reverse import grad_reverse
from exprcompiler.passes.reverse_bulk import grad_reverse_bulk
from exprcompiler.trace import column_instrs
from exprcompiler.trace.check import interpret

_EXTREME = ("1e308", "1e-308", "2.0", "0.5", "0.25", "4.0", "3.0", "1e-300", "5e-324", "-2.0", "0.1",
            "8.98846567431158e307")
# (products weighted: the identity is on products)
extreme_expressions = expressions_of(_EXTREME, _UNARY, _BINARY + ("({}) * ({})",) * 4)

_SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 0.3, -0.9208531449445188, 1e-300, 3e-308, 5e-324, 1e300, 1.7e308,
                     2.2250738585072014e-308, np.inf, np.nan])


def _extreme_points(names, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    env = {}
    for name in names:
        col = rng.uniform(-2.0, 2.0, count) * 10.0 ** rng.integers(-310, 300, count)
        col[:len(_SPECIAL)] = rng.permutation(_SPECIAL)
        env[name] = col
    return env


def _check(text: str) -> None:
    trace = to_trace(text)
    if not trace.input_names:
        return
    got = grad_reverse_bulk(trace)
    if got is None:
        return   # (grad_reverse takes its per-instruction sweep: the oracle itself)
    want = per_instruction(trace)
    assert_wired_trace(got, want, trace)
    env = _extreme_points(trace.input_names, 64, len(text))
    assert_same_bits(interpret(got, env), interpret(want, env))


@settings(max_examples=examples(100), deadline=None)
@given(extreme_expressions())
@example("(sin((x) * (2.0))) / (1e308)")   # (the explore profile's, session 35: v̄ = 2·(cos(v)·1e-308))
@example("sin((1e-308) * (((2.0) * (x)) + (y)))")   # (G a regular edge's k·G', through a copy)
@example("(x) + (((y) * (2.0)) * ((2.0) * ((x) * (2.0))))")   # (the replay folds the primal: not taken)
@example("sin((0.5) * (((0.5) * (((0.5) * (x)) + (y))) + (z)))")   # (a fold that feeds the next)
@example("(0.0) * ((x) * ((x) * (2.0)))")   # (the folded product the builder finds built: v̄_1 read)
def test_extreme_constants_same_bits(text):
    _check(text)


@pytest.mark.parametrize("text", ["sin((1e-308) * (((2.0) * (x)) + (y)))",
                                  "exp(z) * ((0.5) * (((0.5) * (x)) - (y)))",
                                  "sin((0.5) * (((0.5) * (((0.5) * (x)) + (y))) + (z)))",
                                  "(0.0) * ((x) * ((x) * (2.0)))",
                                  "(sin((x) * (2.0))) / (1e308)",
                                  "sin(x) * ((4.0) * (((0.25) * (y)) + (x)))"])
def test_folds_as_grad_reverse(text, monkeypatch):
    # the fold, a fold feeding the next, a folded product found built, c·k = 1 (a copy
    # of y, named): grad_reverse's trace line for line; the moved instructions made
    # in spans of 2 positions as in one
    trace = to_trace(text)
    got, want = grad_reverse_bulk(trace), per_instruction(trace)
    assert got is not None and str(got) == str(want), text
    monkeypatch.setattr(column_instrs, "_SPAN", 2)
    spans = grad_reverse_bulk(trace)
    assert spans.instrs == got.instrs and list(spans.labels) == list(got.labels)
    env = _extreme_points(trace.input_names, 256, 1)
    assert_same_bits(interpret(got, env), interpret(want, env))


def test_where_an_adjoint_underflows_the_bits_differ_unfolded():
    # (the oracle is not trivially met: c·(k·v) and (c·k)·v give other bits here)
    k, v = np.float64(1e-308), np.float64(np.cos(-0.9208531449445188 * 2.0))
    assert (2.0 * (k * v)).tobytes() != ((2.0 * k) * v).tobytes()


@pytest.mark.parametrize("text", ["(2.0) * ((x) * (1e-308))", "sin(x) * ((2.0) * ((0.5) * (y)))",
                                  "a = 3*x\nb = 2*a\nb*y"])
def test_not_taken_where_the_replay_folds_the_primal(text, monkeypatch):
    # grad_reverse's replay makes 2e-308·x of 2·(x·1e-308): its primal's bits are not
    # the trace's as written, which the bulk sweep keeps; grad_reverse takes its own
    trace = to_trace(text)
    assert _replay_folds(trace)
    assert grad_reverse_bulk(trace) is None
    monkeypatch.setattr(reverse, "_BULK_FROM", 0)
    assert str(grad_reverse(trace)) == str(per_instruction(trace))


def test_taken_where_the_replay_keeps_the_primal():
    for text in ["(3.0) * ((x) * (1e-308))", "(2.0) * ((x) + (y))", "sin((2.0) * (x)) * (y)"]:
        trace = to_trace(text)
        assert not _replay_folds(trace) and grad_reverse_bulk(trace) is not None, text
