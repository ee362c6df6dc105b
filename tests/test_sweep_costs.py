"""The adjoint sweep's neighbours' shortcuts build what their general paths build.

Builder._fold folds a sum, difference, product, quotient or negation of finite
scalar constants with a finite result in Python floats (builder_ops.exact_fold)
instead of NumPy's float64 scalars under errstate: IEEE-754 rounds each the same
way in both, so the constant's bits, and so every trace, label and generated
source, are the same. Each case on both sides of exact_fold's limits (finite or
not, a zero divisor, an op the table no longer holds)."""

from __future__ import annotations

import dataclasses
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from test_builder_fast import expressions_of
from exprcompiler import ops
from exprcompiler.backends import numpy_backend
from exprcompiler.bench.suite_scaling import random_dag
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse, hvp, vjp
from exprcompiler.trace import builder, builder_ops
from exprcompiler.trace.ir import Builder

_FOLDED = ("add", "sub", "mul", "div", "neg")


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def _numpy_fold(opname: str, values: tuple) -> float:
    """The fold as Builder._fold made it before: NumPy's float64 scalars."""
    with np.errstate(all="ignore"):
        return float(ops.OPS[opname].evaluate(*[np.float64(v) for v in values]))


doubles = st.one_of(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
                    st.sampled_from((0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 2.0 ** -1022, 1.7976931348623157e308,
                                     -1.7976931348623157e308, 0.1, 3.0, math.inf, -math.inf, math.nan)),
                    st.integers(0, 2 ** 64 - 1).map(lambda k: struct.unpack("<d", struct.pack("<Q", k))[0]))


@settings(max_examples=examples(400), deadline=None)
@given(opname=st.sampled_from(_FOLDED), x=doubles, y=doubles)
def test_exact_fold_is_numpys_value_bit_for_bit(opname, x, y):
    values = (x,) if opname == "neg" else (x, y)
    got = builder_ops.exact_fold(opname, ops.OPS[opname], values)
    finite = all(map(math.isfinite, values)) and not (opname == "div" and y == 0.0)
    if got is None:   # declined: only where an operand or the result is not finite, or y == 0 divides
        assert not finite or not math.isfinite(_numpy_fold(opname, values))
    else:
        assert finite and math.isfinite(got)
        assert _bits(got) == _bits(_numpy_fold(opname, values)), (opname, values)


@pytest.mark.parametrize("opname, values", [
    ("mul", (1e308, 10.0)),          # overflow: inf, NumPy's
    ("add", (math.inf, 1.0)),        # an infinite operand
    ("sub", (math.inf, math.inf)),   # NaN
    ("mul", (math.nan, 2.0)),
    ("neg", (math.nan,)),            # (the NaN's sign: NumPy's)
    ("div", (1.0, 0.0)),             # Python refuses; NumPy's inf
    ("div", (0.0, -0.0)),
    ("div", (-1.0, -0.0)),
    ("pow", (2.0, 3.0)),             # not one of the five
    ("sqrt", (4.0,)),
])
def test_exact_fold_declines_outside_its_limits(opname, values):
    assert builder_ops.exact_fold(opname, ops.OPS[opname], values) is None


@pytest.mark.parametrize("opname, values, expected", [
    ("mul", (2.0 ** -1000, 2.0 ** -60), 2.0 ** -1060),   # a subnormal result
    ("mul", (-1.0, 0.0), -0.0),
    ("add", (-0.0, -0.0), -0.0),
    ("add", (0.0, -0.0), 0.0),
    ("sub", (0.0, 0.0), 0.0),
    ("neg", (0.0,), -0.0),
    ("div", (1.0, 3.0), 1.0 / 3.0),
    ("div", (-0.0, 5.0), -0.0),
])
def test_exact_fold_takes_signed_zeros_and_subnormals(opname, values, expected):
    got = builder_ops.exact_fold(opname, ops.OPS[opname], values)
    assert _bits(got) == _bits(expected) == _bits(_numpy_fold(opname, values))


def test_exact_fold_declines_an_op_of_another_evaluator(monkeypatch):
    mul = ops.OPS["mul"]
    swapped = dataclasses.replace(mul, evaluate=lambda x, y: np.multiply(x, y) + 1.0)
    monkeypatch.setitem(ops.OPS, "mul", swapped)
    assert builder_ops.exact_fold("mul", swapped, (2.0, 3.0)) is None
    b = Builder()
    assert b.const_value(b._fold("mul", swapped, 2.0, 3.0)) == 7.0   # (NumPy's path: the op's own evaluator)
    assert b.const_value(b.mul(b.const(2.0), b.const(4.0))) == 9.0   # (the fast path's fold: the table's op)
    assert builder_ops.exact_fold("mul", mul, (2.0, 3.0)) == 6.0   # (the ufunc's: Python's product)


def test_fold_makes_the_constant_numpy_makes():
    b = Builder()
    for opname, values in [("mul", (0.1, 3.0)), ("add", (0.1, 0.2)), ("sub", (1.0, 1e-17)), ("div", (2.0, 3.0)),
                           ("neg", (0.5,)), ("mul", (1e308, 10.0)), ("div", (1.0, 0.0))]:
        var = b._fold(opname, ops.OPS[opname], *values)
        assert _bits(b.const_value(var)) == _bits(_numpy_fold(opname, values))


def _derivatives(text: str) -> list:
    trace = to_trace(text)
    out = [trace]
    if trace.input_names:
        grad = grad_reverse(trace)
        name = trace.outputs[0][0]
        out += [grad, hvp(trace), vjp(trace, seeds={name: -0.5}), numpy_backend.generate(grad)[0]]
    return [repr((t.instrs, t.labels, t.outputs)) if not isinstance(t, str) else t for t in out]   # repr: NaNs


def _compare(text: str) -> None:
    fast = _derivatives(text)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(builder, "exact_fold", lambda opname, op, values: None)   # every fold through NumPy
        general = _derivatives(text)
    assert fast == general, text


expressions = expressions_of(("0.0", "-0.0", "1.0", "-1.0", "2.0", "0.5", "3.0", "0.1", "1e308", "-1e-310"),
                             ("-({})", "sin({})", "exp({})", "sqrt({})", "({})**2", "abs({})"),
                             ("({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / ({})"))


@settings(max_examples=examples(80), deadline=None)
@given(text=expressions())
def test_folds_build_what_numpys_folds_build(text):
    # (constants on their own fold in the front end; a seed's products near the output, in the sweep)
    _compare(f"({text}) * 0.5 + x * y - 3.0 * (2.0 * ({text}))")


@pytest.mark.parametrize("text", [
    "-(-(1.0 * 0.5)) * x + (0.1 + 0.2) * y - (1.0 / 3.0) * x * y",
    "(x + y) * 0.5 - (x - y) * 0.25 + 1e308 * 10.0 * x",   # (an overflow: NumPy's inf)
    "0.0 / 0.0 + x",
])
def test_folds_of_written_constants(text):
    _compare(text)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_bench_gradients_fold_alike(seed):
    # text at 10^3 operations: ~20 folds in its sweep (the seed's products and negations)
    _compare(random_dag(1000, seed=seed))
