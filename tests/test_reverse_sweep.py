"""The adjoint sweep's shortcuts on scalar traces build what its general path builds.

On a trace of scalars passes.reverse.adjoint_sweep calls each op's partials itself,
applies the partials `seed` and `negated_seed` (add, sub, neg, copy, frac) without a
call, and accumulates v̄ += -m as v̄ - m; pow's partial folds a constant exponent
itself. The general path (every edge through the op's VJP, v̄ + c through the
builder's identities) and pow's partial as the op table used to write it must give
the same instructions, labels and outputs, first and second order."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings

from conftest import examples
from test_builder_fast import expressions_of
from exprcompiler import ops
from exprcompiler.bench.suite_scaling import FAMILIES as SCALING
from exprcompiler.frontend import to_trace
from exprcompiler.op_def import _unless_zero
from exprcompiler.passes import grad_reverse, hvp, reverse, vjp
from exprcompiler.randexpr import random_program

# constants the identities and the pow rule look at (signed zeros, ±1, powers of two;
# exponents 0, 1, 2, 3, 0.5, -1) and others
_CONSTS = ("0.0", "-0.0", "1.0", "-1.0", "2.0", "0.5", "3.0", "-2.0", "1e308")
_UNARY = ("-({})", "sin({})", "cos({})", "exp({})", "log({})", "sqrt({})", "tanh({})", "({})**2",
          "({})**3", "({})**0.5", "({})**-1", "({})**0", "abs({})", "frac({})", "cosm1({})", "erfc({})",
          "arccos({})", "sigmoid({})")
_BINARY = ("({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / ({})", "({}) ** ({})", "maximum({}, {})",
           "arctan2({}, {})", "where({} > 0, {}, 1.0)")


expressions = expressions_of(_CONSTS, _UNARY, _BINARY)


def _pow_x_partial_as_written(b, g, x, y, out):
    """pow's x-partial before it folded constant exponents itself."""
    return _unless_zero(b, y, lambda: b.mul(g, b.mul(y, b.pow(x, b.sub(y, 1.0)))))


def _derivatives(text: str) -> list:
    trace = to_trace(text)
    if not trace.input_names:
        return []
    grad = grad_reverse(trace)
    # vjp(grad): reverse over reverse, its labels tagged apart from the gradient's own
    out = trace.outputs[0][0]
    traces = [grad, hvp(trace), vjp(grad), vjp(trace), vjp(trace, seeds={out: -1.0}), vjp(trace, seeds={out: -0.0})]
    return [repr((t.instrs, t.labels, t.outputs)) for t in traces]   # repr: NaN constants


def _general_path(monkeypatch) -> None:
    """Every edge through its op's VJP, and pow's partial as it was written."""
    monkeypatch.setattr(reverse, "_SCALAR_SWEEP", False)
    pow_op = ops.OPS["pow"]
    monkeypatch.setitem(ops.OPS, "pow", dataclasses.replace(
        pow_op, partials=(_pow_x_partial_as_written, pow_op.partials[1])))


def _compare(text: str) -> None:
    fast = _derivatives(text)
    with pytest.MonkeyPatch.context() as m:
        _general_path(m)
        general = _derivatives(text)
    assert fast == general, text


@settings(max_examples=examples(80), deadline=None)
@given(text=expressions())
def test_scalar_sweep_builds_what_the_general_path_builds(text):
    # x - y·x**2: the seed reaches x through sub, so v̄_x accumulates a negation
    _compare(f"({text}) + x * y - (y - z) - x**2 * ({text})")


@pytest.mark.parametrize("text", [
    "-(x - y) + (x - (y - z)) * cos(x) - cos(y) + (x - y) + (z - x)",   # v̄ += -m, after a first v̄
    "x**2 + y**3 + z**0.5 + (x*y)**2 + (2*x)**2 + (-x)**2 + x**-1 + x**0 * y + 0.5*(x - y)**2",
    "(x - -0.0) - (0.0 - y) + (-0.0 - x)**2 - -x - (-(-y))",
    "cos(x) + x * -0.0 - (y - y * -0.0) + (x - y)",   # v̄ = -0.0 (a constant) += -m: -m
    "tanh(y) * x**3",   # (in vjp) the constant 1.0 first made by x**3's partial, then used by tanh's
    random_program(80, seed=7),
    SCALING["random DAG"](300),
    SCALING["deep"](120),
])
def test_scalar_sweep_on_negations_powers_and_programs(text):
    _compare(text)


@pytest.mark.parametrize("text", ["x * y - sin(x) / y + (x - y)**2", random_program(40, seed=3)])
def test_scalar_sweep_with_renumbered_arguments(text):
    # a builder that holds something already: the replay's numbers are not the
    # trace's, and the partials take the mapped arguments
    from exprcompiler.passes.replay import replay
    from exprcompiler.trace.ir import Builder

    trace = to_trace(text)
    (name, v), = trace.outputs

    def gradient(shifted: bool):
        b = Builder(pull_negations=True)
        if shifted:
            b.const(12345.0)   # dead: the finished trace leaves it out
        vmap = replay(b, trace)
        assert (vmap[0] != 0) == shifted
        adj = reverse.adjoint_sweep(b, trace, vmap, {v: b.const(1.0)}, reverse.active_set(trace, range(2)))
        t = b.finish([(name, vmap[v])] + [(f"d{k}", adj[k]) for k in range(2)])
        return repr((t.instrs, t.labels, t.outputs))

    assert gradient(True) == gradient(False)
