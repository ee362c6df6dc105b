"""The statement programs' template functions, compiled once per process
(backends/numpy_templates.py): a second program of the same templates compiles none;
each function's name, file name and lines are those of its template in the joined
templates' text (which linecache holds: NumPy's warnings name that line); the
programs give the compiled function's bits (test_numpy_program, test_numpy_direct_program)."""

from __future__ import annotations

import linecache

import numpy as np
import pytest

from exprcompiler.backends import numpy_backend, numpy_program, numpy_templates
from exprcompiler.code_store import CodeStore
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import random_program
from test_numpy_program import _outcome


@pytest.fixture
def compiles(monkeypatch, tmp_path):
    """The templates numpy_templates compiles (a fresh cache, and an empty code store:
    tests/test_code_store.py)."""
    monkeypatch.setattr(numpy_templates, "_CODES", {})
    monkeypatch.setattr(numpy_templates, "_STORE", CodeStore("templates", tmp_path / "pycode"))
    monkeypatch.setattr(numpy_backend, "TIER_FROM", 0)
    made = []

    def counted(text, *args):   # (the templates not kept yet, in one text)
        made.extend(line for line in text.splitlines() if line.startswith("def "))
        return compile(text, *args)
    monkeypatch.setattr(numpy_templates, "compile", counted, raising=False)
    return made


def _program(seed, n=60):
    source, _, program = numpy_backend.generated(grad_reverse(to_trace(random_program(n, seed=seed))))
    return numpy_backend.load(source, "f", program=program), source


def test_a_template_is_compiled_once(compiles):
    f, _ = _program(1)
    first = len(compiles)
    assert first > 5
    g, _ = _program(1)
    assert len(compiles) == first   # the same program again: nothing compiled
    _program(2, 200)
    assert 0 < len(compiles) - first < first   # another: only the templates not seen yet
    x = [np.linspace(-1, 2, 9)] * f.__code__.co_argcount
    assert _outcome(f, x) == _outcome(g, x)


def test_each_function_is_its_template_in_the_joined_text(compiles):
    # (a return line's template is a line shorter: one in the middle)
    lines = [("_v[_s[_o]] = np.log(_v[_s[_o + 1]]) * _v[_s[_o + 2]]", 3), ("return _v[_s[_o]], _v[_s[_o + 1]]", 2),
             ("_v[_s[_o]] = -_v[_s[_o + 1]]", 2)]
    templates = [numpy_program._template(k, line, holes) for k, (line, holes) in enumerate(lines)]
    text, filename = "".join(templates), "<exprcompiler keyed templates f test>"
    namespace, reference = {"np": np}, {"np": np}
    numpy_templates.template_functions(templates[1:], filename, {})   # (another order first: kept codes)
    functions = numpy_templates.template_functions(templates, filename, namespace)
    exec(compile(text, filename, "exec"), reference)   # what _define compiled before
    for fn in functions:
        code, want = fn.__code__, reference[fn.__name__].__code__
        assert (code.co_name, code.co_qualname, code.co_filename, code.co_firstlineno, code.co_code) == \
            (want.co_name, want.co_qualname, want.co_filename, want.co_firstlineno, want.co_code)
        assert list(code.co_lines()) == list(want.co_lines())
        assert list(code.co_positions()) == list(want.co_positions())
        assert fn.__globals__ is namespace
    # NumPy's warning names the template's line, as linecache holds the joined text
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    values = [None, None, np.zeros(2), np.ones(2)]
    with pytest.warns(RuntimeWarning) as caught, np.errstate(divide="warn"):
        functions[0](values, [1, 2, 3], 0)
    assert caught[0].filename == filename and linecache.getline(filename, caught[0].lineno).strip() == lines[0][0]


def test_past_the_cap_a_program_keeps_its_templates_to_itself(compiles, monkeypatch):
    # (numpy_templates._KEPT reached: the kept codes stay as they are, the new ones serve
    # this program only, and it gives the same bits as when they were kept)
    f, _ = _program(1)
    kept = dict(numpy_templates._CODES)
    monkeypatch.setattr(numpy_templates, "_KEPT", len(kept))
    g, _ = _program(2, 200)
    assert numpy_templates._CODES == kept
    monkeypatch.setattr(numpy_templates, "_KEPT", 4_096)
    h, _ = _program(2, 200)
    assert len(numpy_templates._CODES) > len(kept)
    x = [np.linspace(-1, 2, 9)] * g.__code__.co_argcount
    assert _outcome(g, x) == _outcome(h, x)
