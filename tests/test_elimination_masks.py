"""Vertex elimination's where() masks with several outputs (passes/elimination.py,
_groups): a value inside a where's branch for one output and read unmasked by
another gets its partial masked on the paths to the first. Held to forward mode
(which the reverse sweeps match, tests/test_where_reverse.py): the reported case on
NumPy, C and the VM, and random multi-output where formulas in every order the API
offers, to rounding where forward mode is finite (not bit for bit: elimination's
products and sums are reassociated: sqrt(sqrt(x)) differs in the last bit, and
1 - a/s - b/s, which cancels to 7e-6, keeps its terms' rounding: 1e-11 relative)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler import compile_expr, compile_jacobian, passes, to_trace
from exprcompiler.api import BACKENDS
from exprcompiler.passes import elimination
from exprcompiler.passes.elimination import ORDERS
from exprcompiler.passes.reverse import active_set
from test_where_reverse import _LEAF, formulas

ALL = sorted(BACKENDS)   # numpy, c (where a compiler is), vm
REPORTED = "t = sqrt(x)\nwhere(y > 0, y*y, t), t + y"


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("mode", ["elimination", "forward", "reverse"])
def test_the_reported_case_masks_the_first_row_only(backend, mode):
    """t = sqrt(x) is in the first output's untaken branch at y = 2 (slope 0 in x),
    and read unmasked by the second (sqrt'(-1): NaN)."""
    with np.errstate(all="ignore"):
        jac = compile_jacobian(REPORTED, wrt=["x", "y"], mode=mode, backend=backend)(-1.0, 2.0)[1]
    assert np.array_equal(jac, [[0.0, 4.0], [np.nan, 1.0]], equal_nan=True)


@pytest.mark.parametrize("order", ORDERS)
def test_the_reported_case_in_every_order(order):
    trace = to_trace(REPORTED)
    with np.errstate(all="ignore"):
        out = compile_expr(passes.jacobian(trace, ["x", "y"], "elimination", order=order))(-1.0, 2.0)
    assert np.array_equal(np.array(out[2:], dtype=float), [0.0, 4.0, np.nan, 1.0], equal_nan=True)


def _grouping(expr: str) -> list:
    trace = to_trace(expr)
    active = active_set(trace, [v for v, ins in enumerate(trace.instrs) if ins.op == "input"])
    return [outs for outs, _ in elimination._groups(trace.instrs, active, [v for _, v in trace.outputs])]


def test_one_graph_unless_the_masks_differ():
    # no where, one output, or outputs that agree on their masks: one graph, as before
    assert _grouping("t = sqrt(x)\nt * y, t + y, exp(t)") == [[0, 1, 2]]
    assert _grouping("where(x > 0, sqrt(x), 0) * y") == [[0]]
    assert _grouping("t = sqrt(x)\nwhere(x > 0, t, 0) + y, where(x > 0, t * y, 1)") == [[0, 1]]
    # t read in a branch by output 0 and outside by 1 and 2: 0 on a graph of its own
    assert _grouping(REPORTED) == [[1], [0]]
    assert _grouping(REPORTED + ", t * y") == [[1, 2], [0]]
    # masks of all outputs together: none (t in the root, y an input); output 0 masks t
    assert _grouping("t = sqrt(x)\nwhere(y > 0, y, t), t + y") == [[1], [0]]
    # outputs 0 and 2 agree with each other, not with output 1
    assert _grouping(REPORTED + ", where(y > 0, y*y, t) * y") == [[1], [0, 2]]


@pytest.mark.parametrize("order", ORDERS)
def test_no_masks_for_all_outputs_but_some_for_one(order):
    """Together the outputs mask nothing (t is read outside the branch, y is an
    input: in no region); alone, the first masks t."""
    expr = "t = sqrt(x)\nwhere(y > 0, y, t), t + y"
    with np.errstate(all="ignore"):
        out = compile_expr(passes.jacobian(to_trace(expr), ["x", "y"], "elimination", order=order))(-1.0, 2.0)
    assert np.array_equal(np.array(out[2:], dtype=float), [0.0, 1.0, np.nan, 1.0], equal_nan=True)


def test_where_free_and_single_output_traces_are_those_of_one_graph(monkeypatch):
    """Where the outputs share one graph the trace is the graph's: the same text as
    the elimination of all outputs together (here: against the same trace built
    with _groups forced to one group; the session's check against HEAD's text: 330
    formulas, changed exactly where _groups makes more than one graph)."""
    exprs = ["t = sin(x) * y\nt * y, t + x, exp(t) / y", "where(x > 0, sqrt(x) * y, y * y)",
             "t = sqrt(x)\nwhere(x > 0, t, 0) + y, where(x > 0, t * y, 1)"]
    def texts():
        return [str(passes.jacobian(to_trace(e), ["x", "y"], "elimination", order=o)) for e in exprs for o in ORDERS]
    got = texts()
    monkeypatch.setattr(elimination, "_groups", lambda instrs, active, ys: [
        (list(range(len(ys))), elimination.region_masks(instrs, active, set(ys)))])
    assert got == texts()


def _numbered(expr: str, numbers) -> str:
    return re.sub("@", lambda _: f"{next(numbers) / 64}", expr)


@st.composite
def programs(draw):
    """t = a where formula; then 2-3 outputs of the same grammar with t as a leaf too
    (t in a branch of one output and read outside by another)."""
    numbers = iter(range(1, 10 ** 6))
    t = _numbered(draw(formulas(2)), numbers)
    leaves = tuple(_LEAF) + ("t", "t", "t")
    outs = [_numbered(draw(formulas(3, leaves)), numbers) for _ in range(draw(st.integers(2, 3)))]
    outs.append(draw(st.sampled_from(["t + y", "t * x", "sqrt(t) + y", "t"])))
    return f"t = {t}\n" + ", ".join(outs) + " + 0 * x * y"


GRID = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
XS = [np.repeat(GRID, len(GRID)), np.tile(GRID, len(GRID))]


@settings(max_examples=60, deadline=None)
@given(programs())
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_random_multi_output_wheres_are_forward_mode_where_it_is_finite(expr):
    trace = to_trace(expr)
    with np.errstate(all="ignore"):
        want = np.asarray(compile_jacobian(expr, wrt=["x", "y"], mode="forward")(*XS)[1], dtype=float)
        finite = np.isfinite(want)
        m = len(trace.outputs)
        for order in ORDERS:
            out = compile_expr(passes.jacobian(trace, ["x", "y"], "elimination", order=order))(*XS)
            got = np.stack([np.broadcast_to(np.asarray(v, dtype=float), XS[0].shape) for v in out[m:]], axis=-1)
            got = got.reshape(len(XS[0]), m, 2)
            # (to rounding: elimination multiplies and sums the partials in another
            # order than the sweeps, see elimination.py, and a sum that cancels keeps
            # the rounding of its terms; a NaN where forward mode is finite fails)
            assert np.allclose(got[finite], want[finite], rtol=1e-9, atol=1e-9), (expr, order)
