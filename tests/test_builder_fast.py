"""The builder's scalar fast path (trace.builder_ops._scalar_method) builds exactly what
the general path of Builder.apply builds: same instructions, labels and outputs for
the front end's trace and its derivatives, same generated source."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.backends import numpy_backend
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse, hvp
from exprcompiler.randexpr import random_program
from exprcompiler.trace import builder, builder_ops, ir

# constants that the identities look at (signed zeros, ±1, powers of two) and others
_CONSTS = ("0.0", "-0.0", "1.0", "-1.0", "2.0", "0.5", "3.0", "1e308")
_UNARY = ("-({})", "sin({})", "exp({})", "log({})", "sqrt({})", "tanh({})", "({})**2", "({})**3", "abs({})")
_BINARY = ("({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / ({})", "({}) ** ({})", "maximum({}, {})")


def expressions_of(consts, unary, binary):
    """A strategy of expressions in x, y, z of depth <= 4 from these leaves and forms."""
    @st.composite
    def expressions(draw, depth=4):
        if depth == 0 or draw(st.integers(0, 3)) == 0:
            return draw(st.sampled_from(("x", "y", "z") + consts))
        if draw(st.booleans()):
            return draw(st.sampled_from(unary)).format(draw(expressions(depth - 1)))
        form = draw(st.sampled_from(binary))
        return form.format(draw(expressions(depth - 1)), draw(expressions(depth - 1)))
    return expressions


expressions = expressions_of(_CONSTS, _UNARY, _BINARY)


def _everything(text: str):
    """The front end's trace, its gradient and Hessian-vector product, and the
    gradient's source: what the builder's results feed."""
    trace = to_trace(text)
    out = [trace]
    if trace.input_names:
        grad = grad_reverse(trace)
        out += [grad, hvp(trace), numpy_backend.generate(grad)[0]]
    # repr: a NaN constant is not == another NaN
    return [repr((t.instrs, t.labels, t.outputs)) if isinstance(t, ir.Trace) else t for t in out]


def _general_path_only(monkeypatch):
    """Every op through Builder._apply: no fast methods, neither b.mul(...) nor apply("mul", ...)."""
    fast = builder_ops._FAST_METHODS
    for opname, method in builder_ops._op_methods(fast=False).items():
        own = fast[opname] or fast.wide(opname)   # (where's: _ternary_method)
        if own is not None and vars(ir.Builder).get(opname) is own:
            monkeypatch.setattr(ir.Builder, opname, method)
    # (the table Builder.apply and Builder.op_call read)
    monkeypatch.setattr(builder, "_FAST_METHODS", builder_ops._FastMethods(enabled=False))
    b = ir.Builder()
    assert b.mul.__func__ is not fast["mul"] and builder._FAST_METHODS["mul"] is None
    assert b.op_call("mul") is not fast["mul"]
    assert b.where.__func__ is not fast.wide("where") and b.op_call("where") is not fast.wide("where")


def _compare(text: str, monkeypatch) -> None:
    fast = _everything(text)
    with monkeypatch.context() as m:
        _general_path_only(m)
        general = _everything(text)
    assert fast == general


@settings(max_examples=60, deadline=None)
@given(text=expressions())
def test_fast_path_builds_what_the_general_path_builds(text):
    with pytest.MonkeyPatch.context() as monkeypatch:
        _compare(f"({text}) + x * y", monkeypatch)


@pytest.mark.parametrize("text", ["x * 1.0 + (-0.0 - y) + (x + -0.0) - (x - 0.0) + 2.0 * (0.5 * x)",
                                  "(-x) * y + x - -y + x**1 + (-(-x)) / y",
                                  random_program(60, seed=5)])
def test_fast_path_on_identities_and_a_program(text, monkeypatch):
    _compare(text, monkeypatch)


def test_fast_path_respects_a_replaced_op(monkeypatch):
    # A test (or a plugin) may replace an op of the table: the fast path must not use
    # the op it saw first.
    import dataclasses

    from exprcompiler import ops
    b = ir.Builder()
    x = b.input("x")
    assert b.const_value(b.sin(b.const(0.0))) == 0.0
    assert b.const_value(b.sin(b.const(2.0))) == math.sin(2.0)   # a fold the builder caches
    monkeypatch.setitem(ops.OPS, "sin", dataclasses.replace(ops.OPS["sin"], evaluate=lambda v: v + 1.0))
    assert b.const_value(b.sin(b.const(0.0))) == 1.0
    assert b.const_value(b.sin(b.const(2.0))) == 3.0
    assert b.instrs[b.sin(x)].op == "sin"


def test_an_op_added_to_the_table_later_gets_its_method(monkeypatch):
    # Builder has no __getattr__ (see its docstring): an op the table gains after
    # import is applied by name, and from then on is a method as the others are
    import dataclasses

    from exprcompiler import ops
    assert "__getattr__" not in vars(ir.Builder)
    twice = dataclasses.replace(ops.OPS["sin"], name="xc_test_twice", evaluate=lambda v: 2.0 * v)
    monkeypatch.setitem(ops.OPS, "xc_test_twice", twice)
    try:
        b = ir.Builder()
        x = b.input("x")
        assert not hasattr(b, "xc_test_twice")
        v = b.apply("xc_test_twice", x)
        assert b.instrs[v].op == "xc_test_twice" and b.xc_test_twice(x) == v
        assert b.const_value(b.xc_test_twice(b.const(3.0))) == 6.0   # its fold, through the fast path
    finally:   # (the method and the table's entry go with the op)
        builder_ops._FAST_METHODS.pop("xc_test_twice", None)
        if "xc_test_twice" in vars(ir.Builder):
            delattr(ir.Builder, "xc_test_twice")


def test_caches_by_value_keep_signed_zeros_apart():
    # const() and constant folding look values up by float key, which is exact only
    # for nonzero floats (0.0 == -0.0): zeros must still give two constants
    b = ir.Builder()
    pz, nz, two = b.const(0.0), b.const(-0.0), b.const(2.0)
    assert pz != nz and math.copysign(1.0, b.const_value(nz)) == -1.0
    assert b.mul(two, pz) == pz and b.mul(two, nz) == nz and b.mul(nz, two) == nz
    assert b.const(2.0) == two and b.const(2) == two and b.mul(two, b.const(3.0)) == b.const(6.0)
    nan = b.const(math.nan)
    assert b.add(nan, two) == b.add(nan, two) and math.isnan(b.const_value(b.add(nan, two)))


@pytest.mark.parametrize("general", [False, True])
def test_commuted_sums_and_products_are_one_variable(general, monkeypatch):
    # b*a after a*b (and b + a) is the variable a*b made, in the order first written
    # (IEEE addition and multiplication commute bit for bit); maximum does not commute
    # at signed zeros, so maximum(y, x) stays its own instruction
    if general:
        _general_path_only(monkeypatch)
    t = to_trace("x*y - y*x + (x + y)/(y + x) + maximum(x, y) - maximum(y, x)")
    ops = [ins.op for ins in t.instrs]
    assert ops.count("mul") == 1 and ops.count("add") == 3 and ops.count("maximum") == 2, t  # 4 adds written
    mul = next(ins for ins in t.instrs if ins.op == "mul")
    assert [t.instrs[a].name for a in mul.args] == ["x", "y"]
    b = ir.Builder()
    x, y = b.input("x"), b.input("y")
    assert b.mul(y, x) == b.mul(x, y) and b.add(x, y) == b.add(y, x) and b.sub(x, y) != b.sub(y, x)
