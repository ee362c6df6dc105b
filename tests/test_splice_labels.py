"""splice's labels (share_sums(..., numbered=True) and not): the Griewank numbering
of the spliced trace, as columns (labels.py), equal value for value and class for
class to the Labels a numbering made one by one gives."""

from __future__ import annotations

import pytest

from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.parse import parse
from exprcompiler.passes.share_sums import share_sums
from exprcompiler.trace.ir import Label
from exprcompiler.trace.labels import Labels

from test_share_sums import GRIEWANK, sum_program


def griewank(instrs) -> list:
    labels, k_in, k = [], 1 - sum(ins.op == "input" for ins in instrs), 0
    for ins in instrs:
        if ins.op == "input":
            labels.append(Label("v", k_in, base=ins.name))
            k_in += 1
        elif ins.op == "const":
            labels.append(None)
        else:
            k += 1
            labels.append(Label("v", k))
    return labels


def same(a, b) -> bool:
    return (a.instrs, a.labels, a.outputs, a.inputs, a.source) == \
        (b.instrs, b.labels, b.outputs, b.inputs, b.source) and \
        list(map(type, a.labels)) == list(map(type, b.labels))


@pytest.mark.parametrize("text", [GRIEWANK, FAMILIES["random DAG"](3000), FAMILIES["random DAG"](20000),
                                  *(sum_program(seed) for seed in range(300))])
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_numbered_gives_the_labels_made_again(text):
    trace = parse(text)
    shared = share_sums(trace, numbered=True)
    assert same(shared, share_sums(trace))
    assert isinstance(shared.labels, Labels)
    expected = griewank(shared.instrs)
    assert shared.labels == expected and list(map(type, shared.labels)) == list(map(type, expected))
