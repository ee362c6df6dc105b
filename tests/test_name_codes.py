"""Names as codes (backends/name_codes.Names, assign_names(coded=True)): the same
names as the list of strings, their texts made by NumPy many at a time, and a long
function's generate holding no str per name.

The list form (assign_names' default, the oracle here) makes each name in its loop;
the coded form keeps an int per variable and makes the strings only when asked
for: one (`names[v]`), every one (`list()`), or many joined by newlines
(`joined(variables)`, a long function's slot texts, program_text.Texts)."""

from __future__ import annotations

import gc
import tracemalloc
from array import array

import numpy as np
import pytest

from exprcompiler import passes, to_trace
from exprcompiler.backends import name_codes, numpy_backend
from exprcompiler.backends.name_codes import INDEXED_KINDS, Names
from exprcompiler.backends.naming import assign_names
from exprcompiler.randexpr import random_program
from exprcompiler.trace.ir import Instr, Label, Trace
from exprcompiler.trace.render import named_vars, use_counts


def _traces():
    for seed in range(4):
        primal = to_trace(random_program(60, n_vars=4, seed=seed))
        yield f"value-{seed}", primal
        yield f"grad-{seed}", passes.grad_reverse(primal)
        yield f"jvp-{seed}", passes.jvp(primal)
        if seed < 2:
            yield f"hessian-{seed}", passes.hessian(primal)   # (tagged labels, kinds bar_dot and the like)
    # inputs of every class of identifier (reserved, of a generated form, escaped),
    # and temporaries (t1: no label)
    yield "inputs", passes.grad_reverse(to_trace("int * v1 + sin(x_bar) * lambda_ + exp(int)"))


TRACES = dict(_traces())


@pytest.mark.parametrize("name", list(TRACES))
def test_the_codes_give_the_lists_names(name):
    trace = TRACES[name]
    named, uses = named_vars(trace), use_counts(trace)
    reserved = numpy_backend.RESERVED | {"f"}
    want = assign_names(trace, named, reserved, uses)
    aliases_list, aliases_coded = {}, {}
    assign_names(trace, named, reserved, uses, aliases_list)
    names = assign_names(trace, named, reserved, uses, aliases_coded, coded=True)
    assert type(names) is Names and names.codes.typecode == "i"
    assert names.list() == want
    assert [names[v] for v in range(len(names))] == want
    assert aliases_coded == aliases_list
    at = np.flatnonzero(np.array([n is not None for n in want]))
    assert names.joined(at) == "\n".join(want[v] for v in at.tolist())
    assert names.joined(at[::3]) == "\n".join(want[v] for v in at[::3].tolist())


def test_every_kind_and_width_of_index_is_spelled_as_the_list_spells_it():
    top = 10 ** 12 + 7   # (wide codes: an array('q'), as a trace of 2^28 instructions would have)
    indices = [0, 1, 9, 10, 11, 99, 100, 12345, 10 ** 9, 10 ** 12]
    codes, want = [0], [None]
    for k, kind in enumerate(INDEXED_KINDS, 1):
        for index in indices:
            codes.append(k * top + index)
            want.append(f"v{index}" if kind == "v" else f"v{index}_{kind}")
    names = Names(array("q", codes), top, [])
    names.codes.append(0)
    want.append(None)
    for text in ("x", "u___e9_", "t3", "v4_bar_1", "-np.inf", "0.5"):   # names held by text, constants' texts
        names.codes.append(0)
        names.set_text(len(names) - 1, text)
        want.append(text)
    order = np.random.default_rng(0).permutation(len(want))   # (interleaved: odd names among the others)
    shuffled = Names(array("q", [names.codes[k] for k in order.tolist()]), top, names.texts)
    want = [want[k] for k in order.tolist()]
    assert shuffled.list() == want
    assert [shuffled[v] for v in range(len(want))] == want
    at = np.array([v for v, n in enumerate(want) if n is not None])
    assert shuffled.joined(at) == "\n".join(want[v] for v in at.tolist())


def test_joined_makes_the_names_a_chunk_at_a_time(monkeypatch):
    monkeypatch.setattr(name_codes, "_CHUNK", 7)
    trace = TRACES["hessian-0"]
    named = named_vars(trace)
    want = assign_names(trace, named, set())
    names = assign_names(trace, named, set(), coded=True)
    at = np.flatnonzero(np.array([n is not None for n in want]))
    assert names.joined(at) == "\n".join(want[v] for v in at.tolist())


def test_holders_counts_the_variables_of_those_names():
    y, x = Instr("input", (), (("name", "y"),)), Instr("input", (), (("name", "x"),))
    instrs = [y, Instr("sin", (0,)), x, Instr("cos", (2,)), Instr("exp", (3,))]
    # an input made after a variable of its label, which nothing reads: that name again
    labels = [Label("v", 0, "y"), Label("v", 0, "x"), Label("v", 0, "x"), Label("v", 3), Label("v", 4)]
    trace = Trace(instrs, labels, [("f", 4)])
    named = [True] * 5
    names = assign_names(trace, named, set(), coded=True)
    assert names.list() == assign_names(trace, named, set()) == ["y", "x", "x", "v3", "v4"]
    assert names.holders([2]) == 2 and names.holders([0, 3]) == 2 and names.holders([]) == 0
    assert not numpy_backend._keeps_inputs(names, [0, 2]) and not numpy_backend._keeps_inputs(names.list(), [0, 2])
    other = assign_names(TRACES["grad-0"], named_vars(TRACES["grad-0"]), set(), coded=True)
    inputs = [v for _, v in TRACES["grad-0"].inputs]
    assert numpy_backend._keeps_inputs(other, inputs) and numpy_backend._keeps_inputs(other.list(), inputs)


def test_a_long_functions_names_are_codes_and_hold_no_str_each(monkeypatch):
    """generate's keyed path (a long function's) asks for codes; the coded names of a
    gradient of a few thousand operations take a fifth of the list's memory at most
    (4 bytes a variable against a str of ~60 and its pointer)."""
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
    monkeypatch.setattr(numpy_backend, "_KEYED_MARGIN", 0)
    grad = passes.grad_reverse(to_trace(random_program(2000, seed=5)))
    asked = []

    def spy(*args, **kwargs):
        out = assign_names(*args, **kwargs)
        asked.append(type(out))
        return out
    monkeypatch.setattr(numpy_backend, "assign_names", spy)
    coded = numpy_backend.generate(grad)
    monkeypatch.undo()
    assert asked == [Names]
    assert coded == numpy_backend.generate(grad)   # (the same text either way: the list form's)
    named, uses = named_vars(grad), use_counts(grad)

    def held(**kwargs) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            names = assign_names(grad, named, set(), uses, **kwargs)
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        del names
        return size
    assert held(coded=True) * 5 < held()


@pytest.mark.parametrize("reserved", [numpy_backend.RESERVED | {"f"}, {"v3", "v2_bar", "v0", "x_bar", "v12_dot_bar"},
                                      ["v5", "v5", "int", f"v{10 ** 12}", "v01", "v7_", "t3"], set()])
def test_reserved_split_is_each_name_matched(reserved):
    """reserved_split (kept per set: generate passes the same names at every call)
    holds each reserved name where matching it alone would: of the v12 form (its
    kind and index), or by text; whatever the iterable, and the same answer again."""
    texts, indexed = name_codes.reserved_split(reserved)
    want_indexed = sorted((name, m[2] or "v", int(m[1])) for name in set(reserved)
                          if (m := name_codes.HELD_BY_INDEX.match(name)))
    assert sorted(indexed) == want_indexed
    assert sorted(texts) == sorted(set(reserved) - {name for name, _, _ in indexed})
    assert name_codes.reserved_split(frozenset(reserved)) is name_codes.reserved_split(list(reserved))


def test_joined_holds_a_chunks_arrays_besides_its_answer():
    """Names.joined holds, besides two copies of its answer (the chunks' bytes, joined,
    then the str), no more than a chunk's index arrays: under 1 MB whatever the number
    of names (at 2¹⁵ names a chunk they were 2.4 MB: generate's peak of memory at 10⁴
    operations)."""
    rng = np.random.default_rng(0)
    n = 60_000
    top = 3 * n
    kinds = rng.choice([1, 3], n)
    names = Names(array("i", (kinds * top + rng.integers(0, top, n)).astype(np.int32).tobytes()), top, ["x_bar"])
    names.codes[7] = -1
    gc.collect()
    tracemalloc.start()
    try:
        text = names.joined(np.arange(n))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert text.split("\n")[7] == "x_bar" and len(text.split("\n")) == n
    assert peak - 2 * len(text) < 1 << 20
