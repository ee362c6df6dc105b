"""The statement program that numpy_backend.generated makes from the trace itself (no
text read back: backends/numpy_program.load_statements): the Renderer's keys formatted
with their holes' texts are the text lines it renders otherwise, byte for byte; the
program loaded from it gives the bits, the source and the tracebacks of the compiled
function and of the program read back from the text; a reused name is one slot; the
backend's Artifact carries it from generate to load."""

from __future__ import annotations

import pickle
import traceback
from itertools import accumulate

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import numpy_backend, numpy_program
from exprcompiler.backends.program_text import format_holes
from exprcompiler.backends.numpy_render import NumpyRenderer
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import random_program
from test_numpy_program import _is_program, _outcome
from test_numpy_render import CASES, _inputs


def _renderers(trace, point=False):
    """The batch spelling's renderer of `trace` as generate makes it, with texts and with
    keys (Renderer's `slots`), and the slots."""
    trace, ops = numpy_backend._prepared(trace, point)
    uses = numpy_backend.use_counts(trace)
    named = numpy_backend.named_vars(trace, uses)
    aliases = {}
    names = numpy_backend.assign_names(trace, named, numpy_backend.RESERVED | {"f"}, uses, aliases)
    slots = [aliases.get(i, i) for i in range(len(trace.instrs))]
    spell = numpy_backend.POINT_SPELLING if point else numpy_backend.SPELLING
    common = dict(named=named, shared={}, taken=numpy_backend.RESERVED, uses=uses, rhs_all="    ")
    texts = NumpyRenderer(trace, spell, names.__getitem__, **common)
    keys = NumpyRenderer(trace, spell, names.__getitem__, slots=slots, **common)
    return texts, keys, names, slots


def _traces():
    yield from (grad_reverse(to_trace(random_program(60, seed=seed))) for seed in range(4))
    yield from (compile_grad(expr, shapes=shapes).trace for expr, shapes in CASES[:4])   # masks, where, sums


@pytest.mark.parametrize("point", [False, True])
def test_keys_formatted_with_their_holes_are_the_text_lines(point):
    for trace in _traces():
        if numpy_backend.shared_exps(*numpy_backend._prepared(trace, point)):
            continue   # (rendered as texts: not plain lines)
        texts, keys, names, _ = _renderers(trace, point)
        hole_text = names.copy()
        for i, text in keys.constants.items():
            hole_text[i] = text
        lines = list(filter(None, texts.rhs_texts))
        statements = [i for i, number in enumerate(keys.rhs_texts) if number is not None]
        formats = list(keys.keys)   # (numbered at first sight)
        assert len(statements) == len(lines)
        for line, i in zip(lines, statements):
            assert formats[keys.rhs_texts[i]].format(*(hole_text[s] for s in keys.line_holes[i])) == line


def _generated(trace, **kw):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
        return numpy_backend.generated(trace, **kw)


def _three_ways(source, program, func_name="f"):
    """The function loaded from `program`, read back from the text, and compiled."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
        m.setattr(numpy_program, "load_program", None)   # the direct path reads no text back
        m.setattr(numpy_backend, "load_program", None)
        direct = numpy_backend.load(source, func_name, program=program)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
        text = numpy_backend.load(source, func_name)
    compiled = numpy_backend.load(source, func_name)
    assert _is_program(direct) and _is_program(text) and not _is_program(compiled)
    return direct, text, compiled


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("point", [False, True])
def test_the_direct_program_gives_the_compiled_bits(seed, point):
    grad = grad_reverse(to_trace(random_program(50, seed=seed)))
    source, _, program = _generated(grad, point=point)
    assert program is not None and str(source) == numpy_backend.generate(grad, point=point)[0]
    direct, text, compiled = _three_ways(source, program)
    rng = np.random.default_rng(seed)
    batch = [np.concatenate([[0.0, -0.0, np.inf, np.nan], rng.uniform(-2, 2, 5)]) for _ in grad.input_names]
    for args in ([float(b[-1]) for b in batch], [float(b[0]) for b in batch]) + (() if point else (batch,)):
        assert _outcome(direct, args) == _outcome(compiled, args) == _outcome(text, args)


@pytest.mark.parametrize("expr, shapes", CASES[1:4])   # (CASES[0] has a matmul: its dot is no plain line)
def test_the_direct_program_of_a_tensor_gradient(expr, shapes):
    g = compile_grad(expr, shapes=shapes)
    source, _, program = _generated(g.trace)
    assert program is not None
    direct, _, compiled = _three_ways(source, program)
    args = [_inputs(shapes)[k] for k in g.inputs]
    assert _outcome(direct, args) == _outcome(compiled, args)


def test_a_shared_exp_is_not_plain_and_reads_the_text_back():
    g = compile_grad("sum(logaddexp(v, u) + sigmoid(v - u))", shapes={"v": (8,), "u": (8,)})
    assert _generated(g.trace).program is None


def test_a_failing_statement_raises_from_its_generated_line():
    # log(x - x) at a one-point call: math refuses, from the statement's own line
    trace = to_trace("y = x - x\nz = log(y) * x + sin(x)\nz")
    source, _, program = _generated(trace, point=True)
    frames = []
    for fn in _three_ways(source, program):
        with pytest.raises(ValueError) as err:
            fn(1.5)
        assert err.value.__context__ is None or err.value.__suppress_context__
        frames.append(traceback.extract_tb(err.value.__traceback__)[-1])
    # (the program's text is not made: its file is named by a count, not the text's digest)
    assert len({(f.lineno, f.name, f.line) for f in frames}) == 1
    assert all(f.filename.startswith("<exprcompiler f ") for f in frames)
    assert "log" in frames[0].line


def test_a_reused_name_is_one_slot():
    grad = grad_reverse(to_trace(random_program(40, seed=1)))
    source, _, program = _generated(grad)
    names = program.texts
    # (every statement's slots one after another, as many as its format's holes: its target's first)
    widths = [format_holes(program.formats[t]) for t in program.numbered[:-1]]
    targets = [program.slots[at] for at in accumulate(widths[:-1], initial=0)]
    # one slot per distinct name assigned, and some adjoint's name is assigned twice
    assert len(set(targets)) == len({names[s] for s in targets}) < len(targets)
    assert all(names[s] is not None and names[s].isidentifier() for s in targets)


def test_the_artifact_carries_the_program_to_load(monkeypatch):
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
    direct = []   # (load takes the program or reads the text back: one or the other)
    load_statements = numpy_backend.load_statements
    monkeypatch.setattr(numpy_backend, "load_statements", lambda *a: direct.append(a[2]) or load_statements(*a))
    g = compile_grad(random_program(30, seed=2))
    assert _is_program(g._fn)
    x = [0.3, 0.7, 1.1, -0.4, 0.9, 1.3][:len(g.inputs)]
    g(*np.array(x)[:, None])
    g(*x)   # the one-point variant (math's functions), generated with its program at the first call
    assert len(direct) == 2
    again = pickle.loads(pickle.dumps(g))
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 10**9)
    compiled = compile_grad(random_program(30, seed=2))
    assert _outcome(g, x) == _outcome(compiled, x) == _outcome(again, x)
