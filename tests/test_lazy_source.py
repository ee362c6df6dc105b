"""A long generated NumPy function's text is made only when asked for
(backends/program_text.py): generate and load of a statement program format no text;
`.source` (Compiled, Kernel, Artifact), linecache's lines (tracebacks, inspect) and the
eager text of the same trace are the same bytes; a traceback formats its one line."""

from __future__ import annotations

import gc
import inspect
import linecache
import sys
import traceback

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import numpy_backend, program_text
from exprcompiler.backends.program_text import LazySource, Lines
from exprcompiler.backends.registry import BACKENDS
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import random_program


@pytest.fixture
def counted_formats(monkeypatch):
    """The number of whole texts formatted (program_text.formatted, as numpy_backend
    and LazySource call it), with a statement program above 1,000 lines."""
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 1_000)
    calls = []
    real = program_text.formatted

    def counting(*args):
        calls.append(len(args[2]))
        return real(*args)
    monkeypatch.setattr(program_text, "formatted", counting)
    monkeypatch.setattr(numpy_backend, "formatted", counting)
    return calls


def _eager(trace, **kw) -> str:
    """The text of `trace` rendered as text lines and compiled (no program, no keys)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(numpy_backend, "PROGRAM_ABOVE", 10**9)
        source, _, program = numpy_backend.generated(trace, lazy=False, **kw)   # (not compiled on use)
    assert program is None and type(source) is str
    return source


def test_no_text_is_made_until_asked_for(counted_formats):
    program = random_program(2_500, seed=4)
    g = compile_grad(program)
    lazy = g._text
    assert type(lazy) is LazySource and lazy._text is None and lazy.line_count() > 5_000
    x = np.linspace(0.2, 0.9, 7)
    g(*[x + k for k in range(len(g.inputs))])   # loaded, blocked (block_for), run
    g(*[0.3 + 0.1 * k for k in range(len(g.inputs))])   # the one-point variant: generated, loaded
    assert counted_formats == [] and lazy._text is None
    text = g.source
    assert counted_formats == [len(lazy.program.numbered)] and type(text) is str
    assert g.source is text and len(counted_formats) == 1   # made once
    assert text.count("\n") == lazy.line_count()
    assert numpy_backend.block_for(lazy) == numpy_backend.block_for(text)


def test_kernel_and_artifact_give_the_text(counted_formats):
    grad = grad_reverse(to_trace(random_program(800, seed=1)))
    backend = BACKENDS["numpy"]
    artifact = backend.generate(grad, func_name="f", description="")
    assert type(artifact.text) is LazySource and artifact.program is not None
    kernel = backend.load(artifact, type("Signature", (), {"tensor": True, "trace": grad})())
    assert counted_formats == []
    assert artifact.source == kernel.source == _eager(grad) and type(kernel.source) is str


def test_lines_are_the_texts_lines(counted_formats, monkeypatch):
    grad = grad_reverse(to_trace(random_program(600, seed=2)))
    source, _, program = numpy_backend.generated(grad, description="a {brace} x}")
    lines = Lines(source)
    k = len(lines)
    picked = [0, 1, program.start, program.start + 1, k // 2, k - 2, k - 1, -1, -k]
    shown = [lines[j] for j in picked] + lines[3:40] + lines[k - 5:]
    assert counted_formats == [] and source._text is None
    every = _eager(grad, description="a {brace} x}").splitlines(True)
    assert shown == [every[j] for j in picked] + every[3:40] + every[k - 5:]
    assert list(lines) == lines[:] == every and len(every) == k
    with pytest.raises(IndexError):
        lines[k]
    monkeypatch.setattr(program_text, "_SLICE_FROM_TEXT", 100)   # long slices: cut from the whole text
    assert lines[:] == every and lines[5:300] == every[5:300] and lines[-300::7] == every[-300::7]
    assert counted_formats == [len(program.numbered)]


def test_a_traceback_shows_its_line_without_the_text(counted_formats):
    g = compile_grad(random_program(2_500, seed=4))
    try:
        g._fn(*[np.ones(3)] * (len(g.inputs) - 1), np.ones(4))   # a broadcasting error inside the program
    except ValueError:
        shown = traceback.format_exc()
        frame = traceback.extract_tb(sys.exc_info()[2])[-1]
    else:
        pytest.fail("expected a broadcasting error")
    assert counted_formats == [] and g._text._text is None
    assert frame.filename.startswith("<exprcompiler f_grad #") and frame.name == "f_grad"
    assert frame.line and frame.line in shown
    assert linecache.getline(frame.filename, frame.lineno).strip() == frame.line
    assert g.source.splitlines()[frame.lineno - 1].strip() == frame.line   # the text's own line there


def test_inspect_shows_the_function_of_the_text(counted_formats):
    g = compile_grad(random_program(800, seed=3))
    shown = inspect.getsource(g._fn)
    assert shown.startswith("def f_grad(") and g.source.endswith(shown)
    assert inspect.getsourcelines(g._fn)[1] == g._text.program.start + 1


def test_the_linecache_entry_goes_with_the_function(counted_formats):
    g = compile_grad(random_program(800, seed=5))
    filename = g._fn.__code__.co_filename
    assert type(linecache.cache[filename][2]) is Lines
    del g
    gc.collect()
    assert filename not in linecache.cache
