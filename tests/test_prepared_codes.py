"""generate's op codes (numpy_backend._prepared_codes): read once from the ops' table
codes, and after the small powers' rewrite made from that table (a square's power a
product, a cube's square inserted), not read again: the same OpCodes as op_codes of
the rewritten trace's ops, whatever rewrites ran."""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler import passes, to_trace
from exprcompiler.backends import numpy_backend
from exprcompiler.randexpr import random_program
from exprcompiler.trace.render_bulk import op_codes

CASES = {
    "squares": "x**2 * y + sin(x)**2",
    "cubes": "x**3 + y**3 * x**2 + exp(x)**3 - x**2.5",
    "xlogy": "xlogy(x, y) + log(y) + x**3",
    "logaddexp": "logaddexp(x, y)**3 + x**2",
    "no-powers": "sin(x) * cos(y)",
}


def _traces():
    for name, text in CASES.items():
        primal = to_trace(text)
        yield name, primal
        yield f"{name}-grad", passes.grad_reverse(primal)
    for seed in range(3):
        yield f"random-{seed}", passes.grad_reverse(to_trace(random_program(200, seed=seed)))


TRACES = dict(_traces())


@pytest.mark.parametrize("point", [False, True])
@pytest.mark.parametrize("name", list(TRACES))
def test_the_codes_are_the_rewritten_traces(name, point):
    trace, ops, codes = numpy_backend._prepared_codes(TRACES[name], point)
    want = op_codes([ins.op for ins in trace.instrs])
    assert codes.names == want.names and np.array_equal(codes.code, want.code)
    assert ops == set(want.names)
    again = numpy_backend._prepared(TRACES[name], point)[0]
    assert (trace.instrs, list(trace.labels), trace.outputs) == (again.instrs, list(again.labels), again.outputs)
