"""from_sympy's ColumnBuilder (parse/sympy_columns.py) makes exactly the trace that
the Builder and its finish make (instructions, labels, outputs, inputs, columns),
or declines and a Builder in its state goes on: on random SymPy DAGs (evaluated and
not), every function head, Piecewise, Min/Max, powers, coefficients, folds, the
identities' constants and negations, matrices, declines at the start, middle and end
of a large walk, and errors, which keep their messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from sympy.core.parameters import evaluate

import exprcompiler.parse.from_sympy as fs
from exprcompiler.bench.suite_scaling import FAMILIES, random_dag
from exprcompiler.errors import ConversionError, InputTooLarge
from exprcompiler.frontend import to_trace
from exprcompiler.parse.sympy_columns import ColumnBuilder
from exprcompiler.trace.to_sympy import to_sympy
from conftest import spy
from test_random import SETTINGS, build, recipes

x, y, z = sp.symbols("x y z")
x10, x2 = sp.symbols("x10 x2")


def _both(expr, monkeypatch, **kw):
    """(the Builder's trace, the column path's trace, whether the columns made it)."""
    made = spy(monkeypatch, ColumnBuilder, "trace")
    monkeypatch.setattr(fs, "COLUMNS", False)
    old = fs.from_sympy(expr, source="s", **kw)
    monkeypatch.setattr(fs, "COLUMNS", True)
    new = fs.from_sympy(expr, source="s", **kw)
    return old, new, bool(made)


def _same(old, new) -> None:
    assert repr(new.instrs) == repr(old.instrs)   # (repr: a NaN constant is not equal to itself)
    assert [tuple(map(type, ins)) for ins in new.instrs] == [tuple(map(type, ins)) for ins in old.instrs]
    assert list(new.labels) == list(old.labels)
    assert new.outputs == old.outputs and new.inputs == old.inputs and new.source == old.source
    assert new._all_live and old._all_live
    for a, b in zip(new._columns, old._columns):
        assert a.dtype == b.dtype and np.array_equal(a, b)
        assert not a.flags.writeable


def _check(expr, monkeypatch, columns: bool, **kw):
    old, new, made = _both(expr, monkeypatch, **kw)
    _same(old, new)
    assert made == columns, "the column path was expected to " + ("make" if columns else "decline")
    return new


@pytest.mark.parametrize("n_ops", [30, 300, 3000])
def test_random_dags_as_the_bench_makes_them(n_ops, monkeypatch):
    expr, = to_sympy(to_trace(FAMILIES["random DAG"](n_ops)), evaluate=False)
    trace = _check(expr, monkeypatch, columns=True)
    assert trace.size >= n_ops


@settings(max_examples=30, **SETTINGS)
@given(recipe=recipes(max_steps=16))
def test_random_recipes_evaluated_and_not(recipe):
    with pytest.MonkeyPatch.context() as mp:
        trace = build(recipe)
        for flag in (True, False):
            try:
                expr, = to_sympy(trace, evaluate=flag)
            except Exception:   # (SymPy's evaluation of some recipes fails: not ours to test)
                continue
            try:
                old, new, _ = _both(expr, mp)
            except ConversionError as e:   # (a head SymPy evaluated into one we do not convert)
                mp.setattr(fs, "COLUMNS", False)
                with pytest.raises(ConversionError) as again:
                    fs.from_sympy(expr)
                assert str(again.value) == str(e)
                continue
            _same(old, new)


@pytest.mark.parametrize("expr", [
    sp.sin(x) + sp.cos(y) * sp.exp(z), x - y, x - 3 * y, -x - y, x / y, x / sp.sqrt(y), x ** -2 * y,
    x / 3, 2 * x / 3, sp.Rational(1, 3) * x * y, -sp.Rational(2, 7) * x / y, 1 + x, x - 1, x - 2.5,
    x ** 2, x ** sp.Rational(1, 2), x ** sp.Rational(3, 2), x ** -sp.Rational(1, 2), x ** y, sp.E ** x,
    sp.sinc(x), sp.polygamma(0, x), sp.polygamma(1, x), sp.Heaviside(x), sp.Heaviside(x, 0.3),
    sp.Max(x, y), sp.Min(x, y, z), sp.atan2(y, x), sp.pi * x, sp.E + x, 1.5 * x + 0.25,
    sp.log(x) * sp.tanh(y) - sp.atan(z), (x + y) ** 2 - (x + y), x10 * x2 + x2, sp.sin(-x) + sp.cos(-x),
    -x * y + x * y, sp.exp(-x) / (1 + sp.exp(-x)), sp.gamma(x) + sp.erf(y) + sp.Abs(z),
], ids=str)
def test_node_kinds(expr, monkeypatch):
    _check(expr, monkeypatch, columns=True)


@pytest.mark.parametrize("expr", [
    sp.Piecewise((x, x < y), (y, True)),             # where: the Builder's general path
    sp.Piecewise((x, sp.And(x > 0, y > 0)), (0, True)),
    sp.Piecewise((x, x < 1), (-x, x < 2)),           # where(c, x, nan)
    sp.Piecewise((sp.Integer(2), sp.true), evaluate=False) * x,
    sp.Mul(1, x, evaluate=False),                    # x·1: an identity
    sp.Mul(-1.0, x, evaluate=False),                 # -1.0·x: an identity
    sp.Mul(1.0, x, evaluate=False),
    sp.Add(x, -0.0, evaluate=False),                 # x + (-0.0)
    sp.Add(x, 0.0, evaluate=False),                  # x + 0.0: not an identity
    sp.Pow(x, 1.0, evaluate=False),                  # x**1.0
    sp.Add(sp.Integer(2), sp.Integer(3), evaluate=False),   # a fold
    sp.sin(sp.Integer(2), evaluate=False) * x,       # a fold
    sp.sqrt(2) * x + sp.Rational(1, 3) ** sp.Rational(1, 2) * y + sp.exp(1) * sp.pi * z,   # folds
    sp.Add(sp.Mul(-1, x, evaluate=False), sp.Mul(-1, y, evaluate=False), evaluate=False),
    sp.Add(sp.Integer(-1), sp.Mul(-1, x, evaluate=False), evaluate=False),
])
def test_folds_identities_and_where_on_the_columns(expr, monkeypatch):
    _check(expr, monkeypatch, columns=True)


@pytest.mark.parametrize("expr", [
    sp.MatrixSymbol("A", 2, 2)[0, 1] * x,
    sp.Trace(sp.MatrixSymbol("A", 2, 2)),
    sp.sin(x) + sp.Trace(sp.MatrixSymbol("A", 2, 2)) * sp.cos(y),
], ids=str)
def test_matrices_go_on_with_the_builder(expr, monkeypatch):
    _check(expr, monkeypatch, columns=False)


@pytest.mark.parametrize("expr", [
    sp.Add(sp.sin(x), sp.Float(-0.0), evaluate=False),   # add(v, -0.0) is v
    sp.sin(sp.Mul(-1, sp.Mul(-1, x, evaluate=False), evaluate=False), evaluate=False),   # neg(neg(x)): x
    sp.sin(sp.Integer(2), evaluate=False) * x,   # sin of a constant: folded
    sp.Add(y, sp.Pow(sp.Mul(-1, x, evaluate=False), 1, evaluate=False), evaluate=False),   # y + neg(x): y - x
], ids=str)
def test_simplified_as_the_builder_simplifies(expr, monkeypatch):
    trace = _check(expr, monkeypatch, columns=True)
    assert "neg" not in [ins.op for ins in trace.instrs]


# -- a decline in a large walk: the Builder goes on from the ColumnBuilder's state --

def _dag(n_ops, seed):
    expr, = to_sympy(to_trace(random_dag(n_ops, seed)), evaluate=False)
    return expr


_BIG, _OTHER = _dag(2000, 1), _dag(1500, 2)
_X0, _X1 = sp.symbols("x0 x1", real=True)   # (to_sympy's symbols; free_symbols walks the DAG as a tree)
_TERMS = {"fold": sp.sqrt(2) * _X0, "identity": sp.Mul(1.0, _X1, evaluate=False),
          "where": sp.Piecewise((_X0, _X1 > 0), (0, True)),
          "rational": sp.Rational(1, 3) ** sp.Rational(1, 2) * _X0,
          "matrix": sp.Trace(sp.MatrixSymbol("A", 2, 2)) * _X0}


@pytest.mark.parametrize("where_in_walk", ["start", "middle", "end"])
@pytest.mark.parametrize("kind", list(_TERMS))
def test_each_kind_at_the_start_middle_and_end_of_a_large_walk(kind, where_in_walk, monkeypatch):
    term = _TERMS[kind]
    parts = {"start": (term, _BIG, _OTHER), "middle": (_BIG, term, _OTHER), "end": (_BIG, _OTHER, term)}
    expr = sp.Add(*parts[where_in_walk], evaluate=False)
    _check(expr, monkeypatch, columns=kind != "matrix")


@pytest.mark.parametrize("at", [0.0, 0.01, 0.5, 0.99, 1.0])
@pytest.mark.parametrize("method", ["add", "mul", "const", "input", "sin"])
def test_a_decline_anywhere_goes_on_with_the_builder(method, at, monkeypatch):
    # every call of one ColumnBuilder method counted, then the walk again with the
    # one at `at` of the way declining: the Builder goes on from there (with methods
    # still stacked for nodes above, and within a node: an Add of many terms)
    from exprcompiler.parse.sympy_columns import Declined, _method
    expr = sp.Add(_BIG, sp.sin(_OTHER, evaluate=False), sp.cos(_X0), evaluate=False)
    real = getattr(ColumnBuilder, method) if method != "sin" else _method("sin")
    calls = []

    def counting(*args, **kw):
        calls.append(None)
        if len(calls) == stop:
            raise Declined
        return real(*args, **kw)
    stop = 0
    if method == "sin":
        monkeypatch.setitem(__import__("exprcompiler.parse.sympy_columns", fromlist=["_METHODS"])._METHODS,
                            "sin", counting)
        monkeypatch.setattr(fs, "_BUILD_BY_CLASS", {fs.Builder: {}, ColumnBuilder: {}})
    else:
        monkeypatch.setattr(ColumnBuilder, method, counting)
    monkeypatch.setattr(fs, "COLUMNS", False)
    want = fs.from_sympy(expr, source="s")
    monkeypatch.setattr(fs, "COLUMNS", True)
    fs.from_sympy(expr, source="s")
    assert len(calls) > 10
    stop = 1 + round(at * (len(calls) - 1))
    calls.clear()
    switched = []
    real_builder = ColumnBuilder.builder
    monkeypatch.setattr(ColumnBuilder, "builder", lambda self: (switched.append(1), real_builder(self))[1])
    _same(want, fs.from_sympy(expr, source="s"))
    assert switched == [1]


def test_dead_instructions_and_unused_inputs(monkeypatch):
    # x - y·z: mul(y, z) then neg(...) (dead: the Add subtracts the magnitude); the
    # reciprocal's div(1, y**2) dead under x·y**-2; both column and Builder drop them
    e = x - y * z + x * y ** -2 + sp.sin(-(x * z), evaluate=False)
    trace = _check(e, monkeypatch, columns=True)
    assert "neg" in [ins.op for ins in trace.instrs]   # (sin reads the negation)
    _check(sp.Add(x, sp.Mul(-1, y, z, evaluate=False), evaluate=False), monkeypatch, columns=True)


_FIRING = (1.0, -1.0, 0.0, -0.0, 2.0)   # (identities.FIRES_ON's constants, and one that fires nowhere)


@pytest.mark.parametrize("c", _FIRING, ids=repr)
def test_identities_at_either_argument(c, monkeypatch):
    # the ops' rules asked where FIRES_ON says they fire, constants and negations on
    # the left and on the right, as the Builder asks them (unevaluated: as written)
    k = sp.Float(c)
    cases = [sp.Mul(x, k, evaluate=False), sp.Mul(k, x, evaluate=False), sp.Add(x, k, evaluate=False),
             sp.Add(k, x, evaluate=False), sp.Mul(x, sp.Pow(k, -1, evaluate=False), evaluate=False),
             sp.Pow(x, k, evaluate=False), sp.Add(x, sp.Mul(-1, k, evaluate=False), evaluate=False),
             sp.Add(sp.Mul(-1, x, evaluate=False), sp.Mul(k, y, evaluate=False), evaluate=False),
             sp.Add(sp.Mul(k, y, evaluate=False), sp.Mul(-1, x, evaluate=False), evaluate=False),
             sp.sin(sp.Mul(-1, sp.Mul(k, x, evaluate=False), evaluate=False))]
    for e in cases:
        _same(*_both(e, monkeypatch)[:2])


def test_input_order_is_natural_and_outputs_named(monkeypatch):
    y_input = sp.Symbol("y")
    trace = _check(x10 * y_input + x2, monkeypatch, columns=True)
    assert trace.input_names == ("x2", "x10", "y")
    assert trace.output_names == ("f",)


def _messages(monkeypatch, error, expr, **options) -> list:
    """The message of the `error` converting `expr` raises, without and with columns."""
    messages = []
    for flag in (False, True):
        monkeypatch.setattr(fs, "COLUMNS", flag)
        with pytest.raises(error) as err:
            fs.from_sympy(expr, **options)
        messages.append(str(err.value))
    return messages


def test_input_too_large_is_the_builders(monkeypatch):
    expr, = to_sympy(to_trace(FAMILIES["random DAG"](300)), evaluate=False)
    messages = _messages(monkeypatch, InputTooLarge, expr, max_ops=50)
    assert messages[0] == messages[1]


@pytest.mark.parametrize("expr", [sp.Integral(x, x), sp.Function("f")(x), x < y, sp.Matrix([[x, y], [y, x]]),
                                  x + sp.Symbol("x", positive=True)],   # (two symbols of one name)
                         ids=str)
def test_errors_keep_their_messages(expr, monkeypatch):
    messages = _messages(monkeypatch, ConversionError, expr)
    assert messages[0] == messages[1]


def test_constants_nan_and_signed_zeros(monkeypatch):
    with evaluate(False):
        e = sp.Add(sp.Mul(sp.Float(0.0), x), sp.Mul(sp.Float(-2.5), y), sp.Mul(sp.nan, z), sp.Mul(sp.nan, x))
    trace = _check(e, monkeypatch, columns=True)
    values = [ins.value for ins in trace.instrs if ins.op == "const"]
    assert sum(map(math.isnan, values)) == 1


def test_deep_chain_converts():
    e = x
    for _ in range(5000):
        e = sp.sin(e, evaluate=False)
    trace = fs.from_sympy(e)
    assert trace.size == 5000 and len(trace.instrs) == 5001


def test_constants_made_before_a_decline_are_found_after_it(monkeypatch):
    # a zero and NaN are found by their keys (not by value): the Builder takes the keys over
    def scaled(c, v):
        return sp.Mul(c, v, evaluate=False)
    e = sp.Add(scaled(sp.Float(0.0), _X0), scaled(sp.nan, _X1), _TERMS["matrix"], scaled(sp.Float(0.0), _X1),
               scaled(sp.nan, _X0), evaluate=False)
    assert e.args[2] is _TERMS["matrix"]   # (the decline between the constants' uses)
    trace = _check(e, monkeypatch, columns=False)
    assert [ins.op for ins in trace.instrs].count("const") == 2
