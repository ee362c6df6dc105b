"""A keyed statement program's fixed parts, made once per process: a format's
template and number of holes, and what a header binds, come from the per-process caches
of numpy_program.load_statements with the function, its tracebacks and its source
unchanged; a header of _head's imports is never compiled, in a fresh process either."""

from __future__ import annotations

import inspect
import traceback

import numpy as np
import pytest

from exprcompiler.backends import numpy_backend, numpy_program
from exprcompiler.backends.program_text import format_holes
from exprcompiler.frontend import to_trace
from test_numpy_direct_program import _generated, _three_ways

def test_the_direct_programs_frames_are_the_read_back_programs():
    # the stub's frame too: each frame's line and columns
    trace = to_trace("y = x - x\nz = log(y) * x + sin(x)\nw = z * cos(x) + x\nw * tan(w) - x")
    source, _, program = _generated(trace, point=True)
    functions = _three_ways(source, program)
    direct, text = functions[:2]
    for attr in ("__name__", "__qualname__", "__module__", "__defaults__", "__kwdefaults__", "__doc__", "__dict__"):
        assert getattr(direct, attr) == getattr(text, attr)
    assert inspect.signature(direct) == inspect.signature(text) and inspect.getsource(direct) == inspect.getsource(text)
    frames = []
    for fn in functions[:2]:
        with pytest.raises(ValueError) as err:
            fn(1.5)
        frames.append([(f.lineno, f.end_lineno, f.colno, f.end_colno, f.name, f.line)
                       for f in traceback.extract_tb(err.value.__traceback__) if f.name == "f"])
    assert frames[0] == frames[1] and len(frames[0]) == 2
    assert frames[0][0][0] == str(source).count("\n") and frames[0][0][5].startswith("return ")


@pytest.mark.parametrize("fmt", ["    {} = np.sin({}) * {}", "    {} = {{}}", "    {} = f({{{}}})", "    {} = {}{{",
                                 "    {} = {{{{{}}}}}", "    return {}, {{}}"])
def test_a_formats_holes_are_counted_as_str_format_reads_them(fmt):
    holes, rest = numpy_program._keyed_template(fmt)
    assert holes == format_holes(fmt)
    assert rest == numpy_program._template(0, fmt.strip().format(*map(numpy_program._hole, range(holes))),
                                           holes)[len("def t0"):]


def test_headers_of_other_comments_share_one_code(monkeypatch):
    # a description is a comment line: the same imports, the same code, each file's name its own
    monkeypatch.setattr(numpy_program, "_HEADERS", {})
    trace = to_trace("y = sin(x) * x\ny + exp(x)")
    fns = []
    for description in ("first", "second {x}"):
        source, _, program = _generated(trace, description=description)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
            fns.append(numpy_backend.load(source, "f", program=program))
        assert f"# {description}" in str(source)
    assert len(numpy_program._HEADERS) == 1
    assert fns[0].__code__.co_filename != fns[1].__code__.co_filename
    assert fns[0](0.5) == fns[1](0.5) and fns[0].__globals__["np"] is fns[1].__globals__["np"]


def test_a_fresh_processs_header_is_not_compiled(monkeypatch, tmp_path):
    # a process that meets a header first binds its imports without compiling it (nor
    # reading its code from the store: numpy_templates.header_values)
    from exprcompiler.backends import numpy_templates
    from exprcompiler.code_store import CodeStore
    trace = to_trace("y = sin(x) * x\ny + exp(x) + sigmoid(z)")
    compiled = []

    def counted(text, *args):
        compiled.append(text)
        return compile(text, *args)
    for module in (numpy_program, numpy_templates):
        monkeypatch.setattr(module, "compile", counted, raising=False)
    fns = []
    for process in range(2):
        compiled.clear()
        monkeypatch.setattr(numpy_program, "_HEADERS", {})
        monkeypatch.setattr(numpy_templates, "_STORE", CodeStore("templates", tmp_path / "pycode"))
        source, _, program = _generated(trace, description="a {comment}")
        with pytest.MonkeyPatch.context() as m:
            m.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
            fns.append(numpy_backend.load(source, "f", program=program))
        numpy_templates._STORE.save()   # (as the process exits)
        headers = [text for text in compiled if "import numpy" in text]
        assert headers == []
    for fn in fns:
        assert fn.__globals__["np"] is np and fn.__code__.co_filename.startswith("<exprcompiler f #")
    assert fns[0](0.5, 2.0) == fns[1](0.5, 2.0)
