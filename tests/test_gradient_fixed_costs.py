"""What a small gradient's fixed costs were cut to keep: Griewank numbering told
where the inputs are (labels.numbered), the finish's dead code with outputs named
more than once, and gc_paused as a `with` block and as a decorator."""

import gc

import numpy as np
import pytest

from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.trace import ir
from exprcompiler.trace.columns import CODE, made
from exprcompiler.trace.finish import _live
from exprcompiler.trace.labels import Labels, numbered
from test_splice_labels import griewank   # (the Griewank numbering, made one label at a time)

Instr = ir.Instr


def _instrs(spec) -> list:
    """Instructions from (op, args) pairs; an input's name is "x<position>"."""
    out = []
    for i, (op, args) in enumerate(spec):
        attrs = (("name", f"x{i}"),) if op == "input" else (("value", 2.0),) if op == "const" else ()
        out.append(Instr(op, tuple(args), attrs, ()))
    return out


# inputs first (a front end's), after constants, after operations, and none
SPECS = [
    [("input", ()), ("input", ()), ("sin", (0,)), ("mul", (1, 2))],
    [("const", ()), ("input", ()), ("mul", (0, 1)), ("input", ()), ("add", (2, 3))],
    [("input", ()), ("sin", (0,)), ("const", ()), ("input", ()), ("mul", (1, 3)), ("input", ()), ("add", (4, 5))],
    [("const", ()), ("const", ()), ("add", (0, 1))],
]


@pytest.mark.parametrize("spec", SPECS)
def test_numbering_told_where_the_inputs_are_is_the_numbering_found(spec):
    instrs = _instrs(spec)
    code = np.array([CODE[ins.op] for ins in instrs], np.uint8)
    inputs = [i for i, ins in enumerate(instrs) if ins.op == "input"]
    names = [instrs[i].name for i in inputs]
    told, found = numbered(code, names, inputs), numbered(code, names)
    expected = griewank(instrs)
    assert list(told) == list(found) == expected
    assert told.kinds == found.kinds and told.odd == found.odd
    # an input's index is 0 wherever it stands; an operation's its number
    assert [told.indexes[i] for i in inputs] == [0] * len(inputs)
    assert [told.indexes[i] for i, lab in enumerate(expected) if lab is not None and lab.index > 0] == \
        [lab.index for lab in expected if lab is not None and lab.index > 0]
    assert ir.primal_labels(instrs) == expected


def test_a_front_end_trace_and_its_gradient_are_numbered_as_before():
    trace = to_trace("a = sin(x2) * 2.0; b = a + x1 * a; b / (x2 - 3.0)")
    assert isinstance(trace.labels, Labels) and list(trace.labels) == griewank(trace.instrs)
    grad = grad_reverse(trace)
    assert [str(lab) for lab in grad.labels if lab is not None and lab.kind == "bar"]   # (v̄ labels made)


def _reachable(instrs, outputs) -> bytearray:
    live = bytearray(len(instrs))
    stack = list(outputs)
    while stack:
        v = stack.pop()
        if not live[v]:
            live[v] = 1
            stack.extend(instrs[v].args)
    return live


@pytest.mark.parametrize("with_flat", [False, True])
@pytest.mark.parametrize("start", [0, 2])
def test_dead_code_with_outputs_named_twice(with_flat, start):
    instrs = _instrs([("input", ()), ("input", ()), ("sin", (0,)), ("cos", (1,)), ("mul", (2, 3)),
                      ("exp", (4,)), ("log", (3,)), ("neg", (6,))])
    outputs = [4, 4, 3]   # (exp, log and neg unused: dead; 4 named twice)
    flat = None
    if with_flat:
        cols = made(instrs)
        flat = cols.flat[int(cols.counts[:start].sum()):]
    live = _live(instrs, outputs, start, flat)
    expected = _reachable(instrs, outputs)
    expected[:start] = b"\x01" * start
    assert live == expected


def test_gc_paused_as_a_decorator_keeps_the_function_and_restores_the_collector():
    @ir.gc_paused()
    def stage(x):
        """A stage."""
        assert not gc.isenabled()
        if x:
            raise ValueError(x)
        return 1

    assert stage.__name__ == "stage" and stage.__doc__ == "A stage."
    assert gc.isenabled()
    assert stage(0) == 1 and gc.isenabled()
    with pytest.raises(ValueError):
        stage(1)
    assert gc.isenabled()
    gc.disable()
    try:
        stage(0)
        assert not gc.isenabled()   # (off before: left off)
        with ir.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
