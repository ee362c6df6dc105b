"""The Renderer's keys (its `slots`: statement texts with a hole per named variable and
constant) are its texts, hole for hole: each statement's key formatted with the
texts of its holes is the statement the text renderer writes, and so is each inlined
variable's. The keys are made once per shape (an op and its operands' keys and
precedences) and found again for every other variable of that shape; a variable
whose key is one hole keeps its slot as an int (Renderer._render_keys), which
`holes` gives as a tuple like any other."""

import pytest

from exprcompiler import compile_grad, passes, to_trace
from exprcompiler.backends import numpy_backend
from exprcompiler.backends.numpy_render import NumpyRenderer
from exprcompiler.randexpr import random_program
from exprcompiler.trace.ir import Instr, Label, Trace
from exprcompiler.trace.render import Renderer, named_vars, use_counts
from test_numpy_render import CASES


def _traces():
    for seed in range(4):
        primal = to_trace(random_program(50, n_vars=3, seed=seed))
        yield f"grad-{seed}", passes.grad_reverse(primal)
        yield f"jvp-{seed}", passes.jvp(primal)
    yield "hessian", passes.hessian(to_trace(random_program(20, n_vars=2, seed=9)))
    for k, (expr, shapes) in enumerate(CASES[:4]):   # masks, where, sums over axes: NumpyRenderer's own
        yield f"case-{k}", compile_grad(expr, shapes=shapes).trace
    # a constant of each sign, in and out of an inlined term, and a copy of each
    x = Instr("input", (), (("name", "x"),))
    c, m = Instr("const", (), (("value", 2.0),)), Instr("const", (), (("value", -3.0),))
    instrs = [x, c, m, Instr("mul", (0, 2)), Instr("sub", (1, 3)), Instr("copy", (2,)), Instr("pow", (0, 5)),
              Instr("copy", (3,)), Instr("add", (6, 7)), Instr("neg", (2,)), Instr("mul", (8, 9))]
    labels = [Label("v", 0, "x"), None, None, None, Label("v", 1), None, Label("v", 2), None, Label("v", 3),
              None, Label("v", 4)]
    yield "constants", Trace(instrs, labels, [("y", 10), ("z", 4)])


TRACES = list(_traces())


def _patterns(trace):
    """The renderer's own `named`, and one that also inlines every other copy and
    single-use labelled variable (a copy of one hole is one hole)."""
    uses = use_counts(trace)
    named = named_vars(trace, uses)
    yield "named_vars", named
    outputs = {v for _, v in trace.outputs}
    fewer = [k and not (i % 2 and uses[i] == 1 and i not in outputs and ins.op not in ("input", "matmul"))
             for i, (k, ins) in enumerate(zip(named, trace.instrs))]
    yield "fewer", fewer


@pytest.mark.parametrize("what, trace", TRACES, ids=[w for w, _ in TRACES])
@pytest.mark.parametrize("renderer", [Renderer, NumpyRenderer])
def test_keys_are_the_texts(what, trace, renderer):
    trace, _ = numpy_backend._prepared(trace, False)
    for pattern, named in _patterns(trace):
        names = [f"n{i}" if k else None for i, k in enumerate(named)]
        slots = list(range(len(named)))   # a slot per variable: a hole's text is its variable's
        texts = renderer(trace, numpy_backend.SPELLING, names.__getitem__, named=named, rhs_all="    ")
        keys = renderer(trace, numpy_backend.SPELLING, None, named=named, rhs_all="    ", slots=slots)
        hole_text = [keys.constants.get(i, name) for i, name in enumerate(names)]
        formats = list(keys.keys)
        for i, number in enumerate(keys.rhs_texts):
            assert (number is None) == (texts.rhs_texts[i] is None), (pattern, i)
            if number is not None:
                assert formats[number].format(*map(hole_text.__getitem__, keys.line_holes[i])) \
                    == texts.rhs_texts[i], (pattern, i)
        for i in range(len(named)):
            holes = keys.holes[i]
            assert type(holes) is tuple and all(type(h) is int for h in holes)
            text, prec = keys.expr(i)
            assert (text.format(*map(hole_text.__getitem__, holes)), prec) == texts.expr(i), (pattern, i)


def test_keys_are_made_once_per_shape(monkeypatch):
    """A gradient of 300 operations has some thousand statements of a few dozen shapes:
    the fast forms' texts are made once per shape, not per variable."""
    trace = passes.grad_reverse(to_trace(random_program(300, seed=3)))
    named = named_vars(trace)
    made = []
    fast_text = Renderer._fast_text
    monkeypatch.setattr(Renderer, "_fast_text", lambda self, op, args: made.append(op) or fast_text(self, op, args))
    keys = Renderer(trace, numpy_backend.SPELLING, None, named=named, rhs_all="    ",
                    slots=list(range(len(named))))
    statements = sum(number is not None for number in keys.rhs_texts)
    assert statements > 600 and len(made) < statements / 8
    assert len(keys.keys) <= len(made)


def test_keys_need_whole_statements():
    trace = to_trace("sin(x) * y")
    with pytest.raises(ValueError, match="rhs_all"):
        Renderer(trace, numpy_backend.SPELLING, None, rhs_all=True, slots=list(range(len(trace.instrs))))
