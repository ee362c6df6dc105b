"""splice takes the labels of a front end's trace (share_sums(..., numbered=True))
instead of making them again: they must be primal_labels of the spliced trace, the
same objects' values and class, wherever the first change falls, with constants
after it and with more or fewer operations than the trace had."""

from __future__ import annotations

import random

import pytest

from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.parse import parse
from exprcompiler.passes import splice as splice_mod
from exprcompiler.passes.share_sums import share_sums
from exprcompiler.trace.columns import columns, op_code_bytes
from exprcompiler.trace.ir import Instr, Label, primal_labels

from test_share_sums import GRIEWANK, sum_program


def same(a, b) -> bool:
    return (a.instrs, a.labels, a.outputs, a.inputs, a.source) == \
        (b.instrs, b.labels, b.outputs, b.inputs, b.source) and \
        list(map(type, a.labels)) == list(map(type, b.labels))


@pytest.mark.parametrize("text", [GRIEWANK, FAMILIES["random DAG"](3000), FAMILIES["random DAG"](20000),
                                  *(sum_program(seed) for seed in range(300))])
def test_numbered_gives_the_labels_made_again(text):
    trace = parse(text)
    assert same(share_sums(trace, numbered=True), share_sums(trace))


def fake_out(trace, start: int, rng) -> list:
    """The trace's instructions up to `start`, then operations and constants."""
    tail = []
    for _ in range(rng.randint(0, 2 * (len(trace.instrs) - start) + 3)):
        tail.append(Instr("const", (), (("value", 2.0),), ()) if rng.random() < 0.2
                    else Instr("sin", (start - 1,), (), ()))
    return list(trace.instrs[:start]) + tail


def test_labels_against_primal_labels():
    rng = random.Random(5)
    trace = parse("a = sin(x) + 2.5\nb = a * y - 3.5\nc = exp(b) * a + z\nc * b")
    code = columns(trace).code
    n_in = len(trace.inputs)
    for _ in range(500):
        start = rng.randint(n_in + 1, len(trace.instrs))
        out = fake_out(trace, start, rng)
        labels = splice_mod._labels(trace, out, start, code, op_code_bytes(out[start:]))
        assert labels == primal_labels(out)
        assert all(label is None or type(label) is Label for label in labels)


def test_many_constants_after_the_change():
    trace = parse("a = sin(x) + 2.5\nb = a * y\nb * a")
    code = columns(trace).code
    start = len(trace.instrs) - 1
    out = list(trace.instrs[:start]) + [Instr("const", (), (("value", float(k)),), ())
                                        for k in range(splice_mod._FEW_CONSTS + 1)] + [trace.instrs[-1]]
    assert splice_mod._labels(trace, out, start, code, op_code_bytes(out[start:])) == primal_labels(out)
