"""The bulk sweep's gradient carries its columns (NewInstrs.columns), for generate.

The columns are a cache of what the instructions say (trace/columns.py): they must
be exactly columns.made(grad.instrs), dtypes included, on every gradient the bulk
sweep makes (folds that move and insert instructions, constants, negations, the
benchmark families); generate must write the same source from them as from the
tuples; where the sweep declines, the fallback's gradient holds none that differ."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import examples
from hypothesis import given, settings
from test_builder_fast import expressions
from test_reverse_bulk import EDGE_CASES, LECTURE
from test_reverse_bulk_bits import extreme_expressions

from exprcompiler.backends import numpy_backend
from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.frontend import to_trace
from exprcompiler.passes import reverse
from exprcompiler.passes.reverse import grad_reverse, vjp
from exprcompiler.passes.reverse_bulk import grad_reverse_bulk
from exprcompiler.passes.reverse_bulk_fold import _drop_and_renumber
from exprcompiler.passes.reverse_bulk_write import NewInstrs
from exprcompiler.trace import column_instrs
from exprcompiler.trace.column_instrs import ColumnInstrs
from exprcompiler.trace.columns import Columns, kept as kept_columns, made
from exprcompiler.trace.ir_trace import Trace, instructions
from exprcompiler.trace.uses import use_counts_and_reads


def assert_same_columns(got: Columns, want: Columns) -> None:
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.tolist() == b.tolist()
        assert not a.flags.writeable


def assert_carries_its_columns(trace) -> Trace:
    grad = grad_reverse_bulk(trace)
    assert grad is not None
    assert grad._columns is not None
    assert_same_columns(grad._columns, made(grad.instrs))
    return grad


# (the fold's cases: moved instructions, inserted constants, a fold feeding the next, a
# product found built, c·k = 1; test_reverse_bulk_bits.test_folds_as_grad_reverse)
FOLDS = ["sin((1e-308) * (((2.0) * (x)) + (y)))", "exp(z) * ((0.5) * (((0.5) * (x)) - (y)))",
         "sin((0.5) * (((0.5) * (((0.5) * (x)) + (y))) + (z)))", "(0.0) * ((x) * ((x) * (2.0)))",
         "(sin((x) * (2.0))) / (1e308)", "sin(x) * ((4.0) * (((0.25) * (y)) + (x)))"]
# (negations: −(−m), old − m, c − m; test_reverse_bulk's)
NEGATIONS = ["-(sin((x) - ((x) + (x))))", "(x) / ((x) - ((x) - (y)))", "a = x*y\nb = -(-(-(a*y)))\nexp(b)*x",
             "x*cos(x - (x - x)) + y*sin(y - (y - x))", "a = x*y\nb = x - a*y\nexp(b)*x"]
# (constants the new instructions read: new ones after the primal, where(c, x, y)'s three arguments)
# (a where whose branches are sums: no masked region, so the bulk sweep takes it;
# reverse_masks)
CONSTANTS = ["3.5*x*y + 2.25/x", "where(x > y, x + 1.5, y - 0.75) + x", "x**3 - 3*x + 7.0"]


@pytest.mark.parametrize("text", FOLDS + NEGATIONS + CONSTANTS + EDGE_CASES[1:] + [t for t, _ in LECTURE])
def test_columns_are_the_instructions(text):
    grad = grad_reverse_bulk(to_trace(text))
    if grad is None:   # (x**0: an adjoint that flows nowhere)
        assert "**0" in text, text
        return
    assert grad._columns is not None
    assert_same_columns(grad._columns, made(grad.instrs))


def test_a_fold_moves_them(monkeypatch):
    # (the columns moved as the tuples are: their arguments renumbered, an inserted
    # constant's place; made in spans of 2 positions as in one)
    moved = []
    columns = NewInstrs.columns

    def spy(self, primal):
        moved.append(self.moved is not None and len(self.moved.consts) > 0)
        return columns(self, primal)
    monkeypatch.setattr(NewInstrs, "columns", spy)
    grad = assert_carries_its_columns(to_trace(FOLDS[2]))
    assert moved == [True]
    monkeypatch.setattr(column_instrs, "_SPAN", 2)
    spans = assert_carries_its_columns(to_trace(FOLDS[2]))
    assert spans.instrs == grad.instrs


@pytest.mark.parametrize("family, size", [("random DAG", 300), ("deep", 300), ("random DAG", 3000)])
def test_bench_families(family, size):
    assert_carries_its_columns(to_trace(FAMILIES[family](size)))


def _carries_if_bulk(text):
    """The text's trace carries its columns, where the bulk sweep takes it."""
    trace = to_trace(text)
    if trace.input_names and grad_reverse_bulk(to_trace(text)) is not None:
        assert_carries_its_columns(trace)


@settings(max_examples=examples(60), deadline=None)
@given(expressions())
def test_random_expressions(text):
    _carries_if_bulk(text)


@settings(max_examples=examples(40), deadline=None)
@given(extreme_expressions())
def test_random_folds(text):
    _carries_if_bulk(text)


@pytest.mark.parametrize("family", ["random DAG", "deep"])
def test_generate_writes_the_same_source(family):
    # the columns read in place of the tuples (the instructions held as columns): the
    # same function as from a trace of the tuples, without columns
    trace = to_trace(FAMILIES[family](1500))
    kept, dropped = grad_reverse_bulk(trace), grad_reverse_bulk(to_trace(FAMILIES[family](1500)))
    assert kept._columns is not None
    dropped = Trace(dropped.instrs, dropped.labels, dropped.outputs, _inputs=dropped.inputs)
    assert type(instructions(dropped)) is tuple and kept_columns(dropped) is None
    assert numpy_backend.generate(kept, func_name="g") == numpy_backend.generate(dropped, func_name="g")


def _unlabelled_trace():
    t = to_trace("sin(x)*(x + y) - exp(y)")
    return Trace(t.instrs, [label if ins.op == "input" or i == t.outputs[0][1] else None
                            for i, (ins, label) in enumerate(zip(t.instrs, t.labels))], t.outputs, _all_live=True)


def _wide_max_trace(k: int = 300):
    return to_trace(f"max(stack({', '.join(f'x{i}' for i in range(k))})) * x0")


@pytest.mark.parametrize("make", [_unlabelled_trace, _wide_max_trace])
def test_declined_gradients_hold_no_other_columns(make, monkeypatch):
    # the bulk sweep declines (a trace without labels; the max of a stack of 300
    # arguments); grad_reverse's own gradient holds no columns, or the right ones
    assert grad_reverse_bulk(make()) is None
    monkeypatch.setattr(reverse, "_BULK_FROM", 0)
    grad = grad_reverse(make())
    cols = getattr(grad, "_columns", None)
    if cols is not None:
        assert_same_columns(cols, made(grad.instrs))


def _random_new_instrs(rng, n: int, size: int, n_consts: int) -> tuple:
    """A NewInstrs of `size` positions after `n` primal ones: constants as tuples at
    random places (as the layout makes them), the rest put (1 to 3 arguments)."""
    out = NewInstrs(n, size)
    places = rng.permutation(size)
    consts = sorted(places[:n_consts].tolist())
    for p in consts:
        out.new[p] = ("const", (), (("value", float(p)),), ())
        out.written[p] = True
    for p in sorted(places[n_consts:].tolist()):
        v = n + p
        arity = int(rng.integers(1, 4))
        op = ("neg", "add", "where")[arity - 1]
        out.put(np.array([v]), op, [np.array([int(rng.integers(0, v))], np.int32) for _ in range(arity)])
    return out, consts


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("wide", [False, True])
def test_new_instrs_columns(seed, wide):
    # NewInstrs.columns against columns.made of the tuples made, with and without a
    # move (dropped instructions, an inserted constant); a primal with an instruction
    # of 300 arguments: int32 counts, as columns.made makes them
    rng = np.random.default_rng(seed)
    n = 30
    primal = [("input", (), (), ())] * 5 + [("add", (0, 1), (), ())] * (n - 6)
    primal.append(("max", tuple(range(5)) * 60 if wide else (0, 1, 2), (), ()))
    for move in (False, True):
        out, consts = _random_new_instrs(np.random.default_rng(seed), n, 200, 12)
        if move:
            lost = [int(v) for v in rng.integers(n, n + 200, 30)]
            _drop_and_renumber(out, n, lost, [(int(rng.integers(0, 200)), 0.5)], [], [n + 199])
            assert out.moved.consts and not out.moved.keep.all()
        cols = out.columns(made(primal))
        assert out.args is None and out.arity is None   # (the tuples are made from the columns)
        grad = ColumnInstrs(tuple(primal), cols, out.fixed(cols)).made()
        assert None not in grad and grad[:n] == tuple(primal)
        want = made(grad)
        assert want.counts.dtype == (np.int32 if wide else np.uint8)
        assert_same_columns(cols, want)


def test_a_new_instruction_not_put_must_be_a_constant():
    out, consts = _random_new_instrs(np.random.default_rng(0), 10, 50, 5)
    out.new[consts[2]] = ("neg", (3,), (), ())
    with pytest.raises(AssertionError):
        out.columns(made([("input", (), (), ())] * 10))


@pytest.mark.parametrize("take", [False, True])
def test_use_counts_and_reads_takes_them(take):
    grad = grad_reverse_bulk(to_trace(FAMILIES["random DAG"](300)))
    cols = grad._columns
    uses, reads = use_counts_and_reads(grad, take=take)
    assert reads is cols.flat
    assert (grad._columns is None) == take
    plain_uses, plain_reads = use_counts_and_reads(grad)   # (read from the tuples once taken)
    assert plain_uses.tolist() == uses.tolist() and plain_reads.tolist() == reads.tolist()


def test_differentiated_again_from_its_columns():
    # a pass's load of the gradient as its primal (the replay of reverse over
    # reverse: a Hessian's row) reads the columns in place of the tuples: the same trace
    kept, dropped = (grad_reverse_bulk(to_trace(FAMILIES["random DAG"](200))) for _ in range(2))
    object.__setattr__(dropped, "_columns", None)
    assert kept._columns is not None
    seeds = {kept.output_names[1]: 1.0}
    assert str(vjp(kept, seeds=seeds)) == str(vjp(dropped, seeds=seeds))
