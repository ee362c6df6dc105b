"""generate reading a trace's columns (trace/columns.py: its ops and arguments as
arrays, which the front end keeps on its trace) instead of every instruction: the
same text as from the instructions, no argument read again, and the columns carried
through the squares' rewrite (x ** 2 as x * x), where no instruction moves. Also the
names' texts made in bulk (name_codes._text) where names of different lengths and
odd names sit side by side."""

from __future__ import annotations

from array import array

import numpy as np
import pytest

from exprcompiler import passes, to_trace
from exprcompiler.backends import name_codes, numpy_backend
from exprcompiler.backends.name_codes import INDEXED_KINDS, Names
from exprcompiler.randexpr import random_program
from exprcompiler.trace import uses as uses_mod
from exprcompiler.trace.columns import made
from exprcompiler.trace.ir import Trace


def _bare(trace: Trace) -> Trace:
    """The same trace without columns."""
    return Trace(trace.instrs, trace.labels, trace.outputs, trace.source, _inputs=trace.inputs)


def _columns_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("keyed", [False, True])
@pytest.mark.parametrize("text", [
    "sin(x) ** 2 + x * y ** 2 - exp(y ** 2) / (1 + x ** 2)",   # squares: columns carried
    "x ** 3 + sin(y) ** 3 * x ** 2",                          # a cube: the instructions move, read again
    "log(1 + x ** 2.5) * y ** 0.5 - x ** y",                   # powers kept
])
def test_the_text_is_the_same_from_the_columns(monkeypatch, text, keyed):
    if keyed:   # (the keyed renderer's path, a long function's)
        monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
        monkeypatch.setattr(numpy_backend, "_KEYED_MARGIN", 0)
    trace = to_trace(text)
    assert trace._columns is not None
    assert numpy_backend.generate(trace) == numpy_backend.generate(_bare(trace))
    grad = passes.grad_reverse(_bare(trace))
    with_columns = Trace(grad.instrs, grad.labels, grad.outputs, _columns=made(grad.instrs))
    assert numpy_backend.generate(with_columns) == numpy_backend.generate(grad)


def test_the_reads_are_the_columns_arguments():
    trace = to_trace("x * sin(y) + x ** 2")
    uses, reads = uses_mod.use_counts_and_reads(trace)
    assert reads is trace._columns.flat   # (not read again)
    want_uses, want_reads = uses_mod.use_counts_and_reads(_bare(trace))
    assert np.array_equal(reads, want_reads) and np.array_equal(uses, want_uses)


@pytest.mark.parametrize("seed", range(3))
def test_the_squares_rewrite_keeps_the_columns_its_instructions_have(seed):
    trace = to_trace(random_program(300, n_vars=3, seed=seed) + " + x1 ** 2 * x2 ** 2")
    prepared, _, _ = numpy_backend._prepared_codes(trace, False)
    assert prepared is not trace and prepared._columns is not None
    assert _columns_equal(prepared._columns, made(prepared.instrs))
    assert trace._columns is None   # (the trace's own read, then not held through generate's peak)
    cubed = to_trace("x1 ** 3 + sin(x2) ** 2")
    prepared, _, _ = numpy_backend._prepared_codes(cubed, False)
    assert len(prepared.instrs) > len(cubed.instrs) and prepared._columns is None


@pytest.mark.parametrize("wide", [False, True])
def test_names_of_every_length_side_by_side(wide, monkeypatch):
    """Each index's digits are written whatever its length, longest first: a short
    name's leading zeros land on the names before it, written again after them."""
    monkeypatch.setattr(name_codes, "_CHUNK", 5)
    top = 10 ** 12 + 7 if wide else 2 * 10 ** 5 + 3
    rng = np.random.default_rng(1)
    codes, want, texts = [], [], []
    for _ in range(400):
        if rng.random() < 0.1:   # a name held by text (an input's, a constant's text)
            texts.append(["x", "u___e9_", "-np.inf", "0.25", "v4_bar_1"][int(rng.integers(5))])
            codes.append(-len(texts))
            want.append(texts[-1])
            continue
        k = int(rng.integers(1, len(INDEXED_KINDS) + 1))
        index = int(10 ** rng.integers(0, 12 if wide else 5) * rng.integers(1, 10)) % top
        codes.append(k * top + index)
        want.append(f"v{index}" if k == 1 else f"v{index}_{INDEXED_KINDS[k - 1]}")
    names = Names(array("q" if wide else "i", codes), top, texts)
    assert names.joined(np.arange(len(codes))) == "\n".join(want)
    assert names.list() == want
