"""Labels as columns (trace/labels.py): a `Labels` reads as the tuple of `Label`s it
replaces (indexing, slicing, iteration, equality, pickles), Griewank numbering from
op codes gives the old numbering, a loaded builder's placeholders come back as the
loaded trace's labels, and passes give the same traces from column labels as from
tuples of Label objects."""

import pickle
import random

import pytest

from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.passes.replay import derived_labels, labels_of, replay
from exprcompiler.trace import ir
from exprcompiler.trace.labels import LOADED, Labels, as_labels
from exprcompiler.randexpr import random_program
from test_splice_labels import griewank   # (the Griewank numbering, made one label at a time)

Label = ir.Label


def _random_labels(rng, n):
    kinds = ["v", "dot", "bar", "dot_bar", "bar_bar", "odd_kind"]
    out = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.25:
            out.append(None)
        elif roll < 0.85:
            out.append(Label(rng.choice(kinds[:3]), rng.randint(-5, 10**6)))
        elif roll < 0.9:
            out.append(Label("v", rng.randint(-3, 0), base=rng.choice(["x", "y1", "é"])))
        elif roll < 0.95:
            out.append(Label(rng.choice(kinds), rng.randint(0, 99), tag=rng.choice(["2", "x1", None])))
        else:
            out.append(Label("v", rng.choice([None, 1 << 40, 1 << 70, -(1 << 65)])))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_labels_read_as_their_tuple(seed):
    rng = random.Random(seed)
    labs = _random_labels(rng, rng.randint(0, 60))
    cols = as_labels(labs)
    ref = tuple(labs)
    assert len(cols) == len(ref)
    assert tuple(cols) == ref and list(cols) == labs and cols.tolist() == labs
    assert cols == ref and ref == cols and cols == labs and not cols != ref and hash(cols) == hash(ref)
    for i in range(-len(ref), len(ref)):
        assert cols[i] == ref[i]
        if ref[i] is not None:   # (the same field types: an int index stays an int)
            assert type(cols[i].index) is type(ref[i].index)
    for lo, hi in [(0, 3), (2, None), (None, -2), (5, 5), (3, 1)]:
        assert cols[lo:hi] == ref[lo:hi] and isinstance(cols[lo:hi], Labels)
    assert cols[::2] == ref[::2]
    with pytest.raises(IndexError):
        cols[len(ref)]
    assert pickle.loads(pickle.dumps(cols)) == cols
    assert as_labels(cols) is cols
    if ref:
        other = list(labs)
        other[-1] = Label("v", 123456789) if other[-1] != Label("v", 123456789) else None
        assert as_labels(other) != cols and cols != tuple(other)


def test_only_the_odd_labels_are_kept_whole():
    # (as_labels reads each label's four fields in one pass: a base or a tag alone,
    # an unknown kind or an index that is not an int makes a label odd, nothing else)
    labs = [Label("bar", 3), None, Label("v", 2, tag="2"), Label("v", 0, base="x"), Label("dot", 7),
            Label("bar", None, base="y"), Label("zz", 1), Label("bar_bar", -4)] * 3
    cols = as_labels(labs)
    assert cols.kinds == bytes([3, 0, 255, 255, 2, 255, 255, 7]) * 3
    assert list(cols.indexes) == [3, 0, 0, 0, 7, 0, 0, -4] * 3
    assert sorted(cols.odd) == [k + 8 * r for r in range(3) for k in (2, 3, 5, 6)]
    assert list(cols) == labs and as_labels(labs[:1] * 1000).odd == {}


@pytest.mark.parametrize("seed", range(10))
def test_labels_read_in_blocks_give_the_same_columns(seed, monkeypatch):
    from exprcompiler.trace import labels as labels_mod
    rng = random.Random(seed)
    labs = _random_labels(rng, rng.randint(0, 60))
    whole = as_labels(labs)
    monkeypatch.setattr(labels_mod, "_BLOCK", 3)   # (blocks end inside the list; wide indexes in a later block)
    cols = as_labels(labs)
    assert cols.kinds == whole.kinds and cols.odd == whole.odd and list(cols) == labs
    assert list(cols.indexes) == list(whole.indexes)

def test_primal_labels_are_griewank_numbering():
    trace = to_trace("a = sin(x1) * 2.0; b = a + x2 * a; b / (x1 - 3.0)")
    expected = griewank(trace.instrs)
    assert isinstance(trace.labels, Labels) and list(trace.labels) == expected
    assert ir.primal_labels(trace.instrs) == expected


@pytest.mark.parametrize("seed", range(8))
def test_passes_give_the_same_trace_from_columns_as_from_label_objects(seed):
    primal = to_trace(random_program(40, n_vars=3, seed=seed))
    assert isinstance(primal.labels, Labels)
    as_tuple = ir.Trace(primal.instrs, tuple(primal.labels), primal.outputs, primal.source)
    assert isinstance(as_tuple.labels, tuple)
    grad, grad_ref = grad_reverse(primal), grad_reverse(as_tuple)
    assert isinstance(grad.labels, Labels)
    assert grad.instrs == grad_ref.instrs and grad.labels == grad_ref.labels and grad.outputs == grad_ref.outputs
    assert str(grad) == str(grad_ref)
    # second order: labels of a gradient (bar kinds, tags) derived again
    assert labels_of(grad) == labels_of(ir.Trace(grad.instrs, tuple(grad.labels), grad.outputs))
    for tag in (None, "x1"):
        assert derived_labels(grad.labels, "dot", tag) == derived_labels(tuple(grad.labels), "dot", tag)


def test_a_loaded_builder_holds_placeholders_and_finishes_with_the_trace_labels():
    primal = to_trace("sin(x) * y + exp(x * y)")
    b = ir.Builder(pull_negations=True)
    replay(b, primal)
    assert b._loaded_labels is primal.labels
    assert all(lab is LOADED or lab is None for lab in b.labels)
    assert b.label_list() == list(primal.labels)
    again = b.finish(primal.outputs)
    assert again.labels == primal.labels and again.instrs == primal.instrs
    with pytest.raises(TypeError):   # a placeholder is no Label: a reader taking one fails loudly
        as_labels([LOADED])


def test_traces_pickle_with_column_labels_and_old_pickles_load():
    trace = to_trace("x * y + sin(x)")
    back = pickle.loads(pickle.dumps(trace))
    assert isinstance(back.labels, Labels) and back.labels == trace.labels and back.instrs == trace.instrs
    # a pickle made before labels were columns holds a tuple of Labels
    old = pickle.dumps(ir.Trace(trace.instrs, tuple(trace.labels), trace.outputs, trace.source))
    loaded = pickle.loads(old)
    assert isinstance(loaded.labels, tuple) and loaded.labels == trace.labels
    assert str(loaded) == str(trace)


@pytest.mark.parametrize("seed", range(10))
def test_extended_and_taken_in_an_order(seed):
    rng = random.Random(seed)
    head, more = _random_labels(rng, rng.randint(0, 30)), _random_labels(rng, rng.randint(0, 30))
    joined = as_labels(head).extended(more)
    assert joined == head + more and as_labels(head).extended(as_labels(more)) == joined
    order = [rng.randrange(len(head) + len(more)) for _ in range(rng.randint(0, 40))] if head or more else []
    taken = as_labels(head).extended(more, order)
    assert taken == [(head + more)[i] for i in order]
    assert as_labels([]).extended([]) == () and len(as_labels([]).extended([], [])) == 0
