"""The bulk sweep's gradient holds its instructions as columns (trace/column_instrs.py):
`trace.instrs` makes the same tuples the sweep made before, item for item and all
at once; generate and load read none of them; pickling, immutability and every
other reader see a plain trace."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import examples
from hypothesis import given, settings
from test_builder_fast import expressions

from exprcompiler.backends import numpy_backend
from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.frontend import to_trace
from exprcompiler.passes import reverse_bulk_write
from exprcompiler.passes.reverse_bulk import grad_reverse_bulk
from exprcompiler.trace.column_instrs import ColumnInstrs
from exprcompiler.trace.columns import CODE, UNKNOWN, made
from exprcompiler.trace.ir_trace import Instr, Trace, instructions


def _bulk(text):
    grad = grad_reverse_bulk(to_trace(text))
    assert grad is not None
    return grad


def _eager(grad: Trace) -> Trace:
    """The same trace, its instructions as tuples and no columns kept."""
    return Trace(tuple(grad.instrs), grad.labels, grad.outputs, _inputs=grad.inputs)


def _source(grad: Trace) -> str:
    return numpy_backend.generate(grad, func_name="g")[0]


def _no_tuples(monkeypatch):
    def refused(self):
        raise AssertionError("the instructions' tuples were made")
    monkeypatch.setattr(ColumnInstrs, "made", refused)


# (deep: powers of 2 that generate writes as products, made from the columns too;
# the random DAG: sigmoids, whose shared exps numpy_shares.shared_exps looks for)
@pytest.mark.parametrize("family, size", [("deep", 1500), ("deep", 5000), ("random DAG", 3000)])
def test_generate_and_load_make_no_tuple(family, size, monkeypatch):
    grad = grad_reverse_bulk(to_trace(FAMILIES[family](size)))
    want = _source(_eager(grad_reverse_bulk(to_trace(FAMILIES[family](size)))))
    assert type(instructions(grad)) is ColumnInstrs
    _no_tuples(monkeypatch)
    source, params, program = numpy_backend.generated(grad, func_name="g")
    fn = numpy_backend.load(source, "g", program=program)
    assert str(source) == want   # (the text after: a long function's is made from the program)
    point = np.linspace(0.2, 0.8, len(params))
    assert np.isfinite(fn(*point)[0])
    assert type(instructions(grad)) is ColumnInstrs


@settings(max_examples=examples(60), deadline=None)
@given(expressions())
def test_the_items_are_the_tuples(text):
    trace = to_trace(text)
    if not trace.input_names:
        return
    grad = grad_reverse_bulk(trace)
    if grad is None:
        return
    held = instructions(grad)
    assert type(held) is ColumnInstrs and len(grad) == len(held)
    items = [held[i] for i in range(len(held))]
    assert items[-1] == held[-1] and held[1:3] == tuple(items[1:3])
    assert all(type(ins) is Instr for ins in items)
    tuples = grad.instrs   # (made now, then kept)
    assert type(instructions(grad)) is tuple and tuples is grad.instrs
    assert list(tuples) == items and tuples[:len(trace)] == trace.instrs
    assert all(type(a) is int for ins in tuples for a in ins.args)
    assert all(a.dtype == b.dtype and a.tolist() == b.tolist() for a, b in zip(made(tuples), held.cols))
    # generate writes the same function from the columns as from the tuples
    again = grad_reverse_bulk(to_trace(text))
    assert _source(again) == _source(_eager(again))


def test_pickled_and_immutable():
    grad = _bulk("sin(x)*y**2 + exp(x - y)/(1 + x**2)")
    copy = pickle.loads(pickle.dumps(grad))
    assert type(instructions(copy)) is tuple
    assert (copy.instrs, list(copy.labels), copy.outputs, copy.inputs) == \
        (grad.instrs, list(grad.labels), grad.outputs, grad.inputs)
    for attr in ("instrs", "_instrs"):
        with pytest.raises(AttributeError):
            setattr(grad, attr, ())


@pytest.mark.parametrize("text", ["x**3*y + sin(y)**2", "x**3 - 3*x + y**2.5", "sin(x)**2 + cos(y)**2"])
def test_powers(text):
    # cubes (the tuples made: instructions move) and powers that stay, as squares alone
    assert _source(_bulk(text)) == _source(_eager(_bulk(text)))


def _program_text(grad: Trace) -> str:
    """generated's source (a statement program's, on a long function), as text."""
    return str(numpy_backend.generated(grad, func_name="g")[0])


def test_a_second_generate_reads_the_columns_again(monkeypatch):
    grad = grad_reverse_bulk(to_trace(FAMILIES["deep"](1500)))
    first = _program_text(grad)   # (takes the columns kept on the trace: the held ones remain)
    assert grad._columns is None
    _no_tuples(monkeypatch)
    assert _program_text(grad) == first


def test_an_op_the_columns_table_does_not_hold(monkeypatch):
    # (an op registered after the table was made: its instructions held as tuples)
    text = "sin(x)*y + exp(x*y)"
    want = _bulk(text).instrs
    monkeypatch.setattr(reverse_bulk_write, "CODE", {op: k for op, k in CODE.items() if op != "cos"})
    grad = _bulk(text)
    held = instructions(grad)
    assert UNKNOWN in held.cols.code.tolist()
    assert [held[i] for i in range(len(held))] == list(want) and grad.instrs == want
    with pytest.raises(ValueError):
        ColumnInstrs(held.head, held.cols, {})
