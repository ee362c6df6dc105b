"""Fixed costs of generate + load at 10² operations (issue 14), and the modules the NumPy
backend's text pieces and one-point variant moved to: a keyed statement program's
header binds its imports without compile() or exec (numpy_templates.header_values:
what the header's exec binds, the same objects), and where it cannot (another text,
a helper the runtime lacks) the header runs as before; a program's head is taken from
the program, not formatted again line by line; template_functions given the keys
makes what it makes without them. Random formulas: the same source, the same bits as
the compiled text and as the one-point variant made without its batch function's
parts (numpy_point._point_from)."""

from __future__ import annotations

import inspect
import linecache

import numpy as np
import pytest

from exprcompiler.backends import numpy_backend, numpy_lines, numpy_point, numpy_program, numpy_templates
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import random_program
from test_numpy_program import _is_program, _outcome

SEEDS = range(12)


def _grad(seed: int, n: int = 50):
    return grad_reverse(to_trace(random_program(n, seed=seed)))


def _program(trace, **kw):
    source, params, program = numpy_backend.generated(trace, func_name="f", **kw)
    assert program is not None   # (more than TIER_FROM named variables: a program compiled on use)
    return source, params, program


def _header_run(head: str) -> dict:
    """What the header's exec binds (as numpy_program._header_code's code does)."""
    namespace: dict = {}
    exec(compile(head, "<header>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("seed", SEEDS)
def test_a_programs_header_binds_what_its_exec_binds(seed, monkeypatch):
    source, _, program = _program(_grad(seed))

    def refused(*args):
        raise AssertionError("the header compiled or run")
    monkeypatch.setattr(numpy_program, "_header_code", refused)   # (the general path: not taken)
    fn = numpy_backend.load(source, "f", program=program)
    want = _header_run(program.head[:program.head.rfind("\n") + 1])
    got = fn.__globals__
    assert set(want) <= set(got) and all(got[name] is value for name, value in want.items())


def test_the_formulas_headers_import_runtime_helpers():
    # (the helpers' branch of header_values is what the tests above take)
    heads = [_program(_grad(seed))[2].head for seed in SEEDS]
    assert sum("from exprcompiler.runtime import " in head for head in heads) >= len(heads) // 2


@pytest.mark.parametrize("seed", SEEDS)
def test_programs_give_the_compiled_texts_bits(seed):
    trace = _grad(seed)
    source, params, program = _program(trace)
    text = str(source)
    assert text == numpy_backend.generate(trace, func_name="f")[0]   # the same source as the text path
    fn = numpy_backend.load(source, "f", program=program)
    assert _is_program(fn)
    compiled = numpy_backend.load(text, "f")   # (no program: the text compiled)
    assert not _is_program(compiled)
    rng = np.random.default_rng(seed)
    for x in ([rng.uniform(-2, 2, 7) for _ in params], [float(v) for v in rng.uniform(0.1, 1.5, len(params))]):
        assert _outcome(fn, x) == _outcome(compiled, x)


def test_a_header_of_another_form_runs_as_before():
    assert numpy_templates.header_values("# c\nimport numpy as np\nimport os\n\n\n", {}, 8) is None
    assert numpy_templates.header_values("import numpy as np\nfrom exprcompiler.runtime import no_such_helper\n",
                                         {}, 8) is None
    assert numpy_templates.header_values("from exprcompiler.runtime import sigmoid as np\n", {}, 8) is None
    bound = numpy_templates.header_values("# {x}\nimport numpy as np\nimport math\n"
                                          "from exprcompiler.runtime import sigmoid\n\n\n", {}, 8)
    assert dict(bound) == {k: v for k, v in _header_run("import numpy as np\nimport math\n"
                                                        "from exprcompiler.runtime import sigmoid\n").items()
                           if k != "__builtins__"}


def test_a_header_the_fast_path_refuses_is_run():
    # (a helper the runtime lacks: the header's own ImportError, as before)
    source, _, program = _program(_grad(3))
    head = program.head.replace("import numpy as np", "import numpy as np\nfrom exprcompiler.runtime import nope")
    odd = program._replace(head=head, start=head.count("\n"))
    with pytest.raises(ImportError):
        numpy_backend.load(numpy_backend.LazySource(odd), "f", program=odd)


def test_a_description_with_braces_and_comments_keeps_the_source():
    trace = _grad(5)
    source, params, program = _program(trace, description="a {b} }} # {{ c")
    fn = numpy_backend.load(source, "f", program=program)
    text = numpy_backend.generate(trace, func_name="f", description="a {b} }} # {{ c")[0]
    assert str(source) == text and inspect.getsource(fn) == text[text.index("def f("):]
    lines = linecache.getlines(fn.__code__.co_filename)
    assert "".join(lines) == text and fn.__globals__["np"] is np


def test_template_functions_given_keys_make_the_same_functions():
    lines = [("_v[_s[_o]] = np.log(_v[_s[_o + 1]]) * _v[_s[_o + 2]]", 3), ("return _v[_s[_o]], _v[_s[_o + 1]]", 2),
             ("_v[_s[_o]] = -_v[_s[_o + 1]]", 2)]
    templates = [numpy_program._template(k, line, holes) for k, (line, holes) in enumerate(lines)]
    keys = [text[text.index("("):] for text in templates]
    a = numpy_templates.template_functions(templates, "<exprcompiler keyed templates f x>", {})
    b = numpy_templates.template_functions(templates, "<exprcompiler keyed templates f x>", {}, keys)
    for f, g in zip(a, b):
        assert (f.__name__, f.__code__.co_name, f.__code__.co_firstlineno, f.__code__.co_filename,
                f.__code__.co_code) == (g.__name__, g.__code__.co_name, g.__code__.co_firstlineno,
                                        g.__code__.co_filename, g.__code__.co_code)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_one_point_variant_from_its_batch_functions_parts(seed):
    # (numpy_point._point_from, through generated's made_from: the text and program of
    # generated alone; loaded as load_point loads it, the same bits)
    for n in (8, 50):   # a compiled function's lines, a program's
        trace = _grad(seed, n)
        kept: list = []
        numpy_backend.generated(trace, func_name="f", keep=kept)
        if not kept:
            continue
        made = numpy_backend.generated(trace, func_name="f_point", point=True, guarded=True, made_from=kept[0])
        alone = numpy_backend.generated(trace, func_name="f_point", point=True, guarded=True)
        assert str(made.source) == str(alone.source) and made.params == alone.params

        def fallback(*args):
            return [np.nan] * len(trace.outputs)
        returns = 0 if len(trace.outputs) == 1 else tuple(range(len(trace.outputs)))
        f = numpy_backend.load_point(made.source, "f_point", fallback, returns, program=made.program)
        g = numpy_backend.load_point(alone.source, "f_point", fallback, returns, program=alone.program)
        x = [float(v) for v in np.random.default_rng(seed).uniform(0.1, 1.5, len(made.params))]
        assert _outcome(f, x) == _outcome(g, x)


def test_names_found_where_they_were():
    # (the pieces moved to numpy_lines and numpy_point are the backend's names too)
    for name in ("BATCH", "MATH", "RESERVED", "SPELLING", "POINT_SPELLING", "FALLBACK", "UNGUARDED", "Generated",
                 "_keeps_inputs", "_head", "_reserved", "_keyed_lines", "_slot_list", "_respelled", "_slots",
                 "_text_lines", "_guarded"):
        assert getattr(numpy_backend, name) is getattr(numpy_lines, name)
    assert numpy_backend._point_from is numpy_point._point_from
    assert len(inspect.getsource(numpy_backend).splitlines()) <= 500
