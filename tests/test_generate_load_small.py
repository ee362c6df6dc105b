"""Fixed costs of generating and loading a short NumPy function: a header comment
escaped from its description's first characters only (naming.comment_text); a text
compiled once per process (numpy_backend._compiled: a formula loaded again, a
one-point variant's guard of the same inputs and outputs), each load its own
function; the one-point variant made from what its batch function's generate kept
(numpy_backend._point_from), the same text and program as generated alone.
"""

from __future__ import annotations

import inspect
import random
import re
import traceback

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import naming, numpy_backend, numpy_render
from exprcompiler.backends.naming import comment_text


def _reference(text: str, limit: int, c: bool) -> str:
    """comment_text as it was before the cut: every character escaped, then cut."""
    char = naming._c_char if c else naming._py_char
    flat = "".join(map(char, text.strip().replace("\r\n", "\n").replace("\n", "; ")))
    if len(flat) > limit:
        flat = flat[:limit - 3] + "..."
    return re.sub(naming._SPLIT_C, " ", flat) if c else naming._SPLIT_PY.sub(" ", flat)


@pytest.mark.parametrize("c", [False, True])
def test_comment_text_same_as_escaping_the_whole_text(c):
    rng = random.Random(7)
    alphabet = ["a", " ", "\n", "\r", "\r\n", "é", "\x00", "*", "/", "?", "\\", "coding", ":", "=", "\t", "€"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        limit = rng.randrange(4, 30)
        assert comment_text(text, limit, c=c) == _reference(text, limit, c), (text, limit)


@pytest.mark.parametrize("c", [False, True])
def test_comment_text_escapes_no_more_than_it_shows(monkeypatch, c):
    text = "x * y + " * 100_000
    want = _reference(text, 200, c)
    seen = []
    name = "_c_char" if c else "_py_char"
    escape = getattr(naming, name)
    monkeypatch.setattr(naming, name, lambda ch: seen.append(ch) or escape(ch))
    out = comment_text(text, 200, c=c)
    assert out == want and len(out) == 200
    assert len(seen) <= 201


def _counting(monkeypatch) -> list:
    made = []

    def counted(source, filename, mode):
        made.append(source)
        return compile(source, filename, mode)
    monkeypatch.setattr(numpy_backend, "compile", counted, raising=False)
    return made


def test_a_text_loaded_again_is_not_compiled_again(monkeypatch):
    trace = compile_grad("sin(x) * y").trace
    made = _counting(monkeypatch)
    source, params = numpy_backend.generate(trace, func_name="f")
    f = numpy_backend.load(source, "f")
    g = numpy_backend.load(source, "f", values={"extra": 1.0})
    assert made == [source]
    assert f is not g and f.__globals__ is not g.__globals__ and "extra" in g.__globals__
    x, y = np.array([0.5, 2.0]), np.array([3.0, -1.0])
    for a, b in zip(f(x, y), g(x, y)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert inspect.getsource(g) == source[source.index("def f("):]


def test_a_recompiled_text_keeps_its_traceback_lines(monkeypatch):
    _counting(monkeypatch)
    source, _ = numpy_backend.generate(compile_grad("log(x) * y").trace, func_name="f")
    numpy_backend.load(source, "f")
    g = numpy_backend.load(source, "f")
    with pytest.raises(TypeError) as info:
        g("a", 1.0)
    assert any("np.log" in line for line in traceback.format_tb(info.value.__traceback__))


def test_the_guard_of_a_program_variant_is_compiled_once_per_inputs_and_outputs(monkeypatch):
    # a one-point variant run as a statement program is guarded by a short function
    # whose text depends only on the inputs and the outputs' nesting
    monkeypatch.setattr(numpy_backend, "TIER_FROM", 0)
    made = _counting(monkeypatch)
    f = compile_grad("log(x) * y + exp(y)")
    g = compile_grad("sin(x) / y - x * y")
    assert f(2.0, 3.0)[1] == pytest.approx((3.0 / 2.0, np.log(2.0) + np.exp(3.0)))
    assert g(2.0, 3.0)[1] == pytest.approx((np.cos(2.0) / 3.0 - 3.0, -np.sin(2.0) / 9.0 - 2.0))
    guards = [text for text in made if numpy_backend.UNGUARDED in text]
    assert len(guards) == 1
    # where math refuses, each answers with its own NumPy function
    with np.errstate(all="ignore"):
        assert np.isnan(f(-1.0, 3.0)[0]) and np.isinf(g(2.0, 0.0)[0])


# ---- a one-point variant made from its batch function's lines or program (numpy_backend._point_from)

_EXPRS = [
    "sin(x) * y + exp(y) - sqrt(x * y)",
    "log(x) * y + exp(y)",
    "abs(x - y) ** 2.5 + arctan2(x, y) * hypot(x, y) + erf(x) * erfc(y)",
    "log1p(x * x) + expm1(y) / (1 + x**2) + tanh(x) * cosh(y) - sinh(x * y)",
    "arcsin(x / 3) + arccos(y / 3) + arctan(x) + arcsinh(y) + arctanh(x / 4) + log2(y) + log10(x) + tan(x)",
    "arccosh(1 + x * x) * x ** y + x ** 3 + 1 / y ** 2",
    "t = sin(x) * y; u = t * t + cos(t); u * exp(-t) + x",
    "sigmoid(x) * softplus(y) + logaddexp(x, y)",   # logaddexp: the variant is generated itself
    "xlogy(x, y) + x",                               # xlogy: likewise
    "sigmoid(x) * softplus(y) * tanh(x) + sigmoid(y)",
]


def _fields(generated) -> tuple:
    source, params, program = generated
    if program is None:
        return source, params
    return (str(source), params, program.formats, list(program.numbered), program.slots, program.size,
            program.params, program.constants, program.texts.joined, program.texts.holes, program.start,
            program.head)


def _traces():
    from exprcompiler.frontend import to_trace
    from exprcompiler.passes import grad_reverse
    from exprcompiler.bench.suite_scaling import deep_program, random_dag
    yield from (grad_reverse(to_trace(e)) for e in _EXPRS)
    yield from (grad_reverse(to_trace(random_dag(n, seed=s))) for n, s in ((20, 1), (60, 2), (150, 3)))
    yield grad_reverse(to_trace(deep_program(40)))
    yield to_trace("sin(x) * y; exp(x) + y; x")   # three outputs
    yield grad_reverse(to_trace("sin(fallback) * y + exp(y)"))   # an input named as the guard's value
    yield grad_reverse(to_trace("sin(x) * unguarded + sqrt(x)"))


@pytest.mark.parametrize("above, bulk", [(0, False), (0, True), (None, False)])
def test_functions_made_with_markers_are_the_functions_made_without(monkeypatch, above, bulk):
    # the batch function and its one-point variant made from what it kept (`keep`,
    # `made_from`): the same texts and programs as each made alone
    if above is not None:   # (every function of plain lines a program compiled on use)
        monkeypatch.setattr(numpy_backend, "TIER_FROM", above)
    if bulk:   # (the keys of the whole trace at once: render_bulk)
        monkeypatch.setattr(numpy_render, "KEYS_AT_ONCE_FROM", 0)
    checked = kept = 0
    for trace in _traces():
        n = len(trace.outputs)
        keep = []
        batch = numpy_backend.generated(trace, func_name="f_grad", description="d", keep=keep)
        plain = numpy_backend.generated(trace, func_name="f_grad", description="d")
        assert _fields(batch) == _fields(plain)
        kept += len(keep)
        nests = [None, tuple(range(n))] + ([(0, tuple(range(1, n)))] if n > 2 else []) \
            + ([tuple(reversed(range(n)))] if n > 1 else [])
        for returns in nests:
            for made_from in keep:
                point = numpy_backend.generated(trace, func_name="f_grad", description="d", returns=returns,
                                                point=True, guarded=True, like=batch.program, made_from=made_from)
                alone = numpy_backend.generated(trace, func_name="f_grad", description="d", returns=returns,
                                                point=True, guarded=True)
                assert _fields(point) == _fields(alone)
                checked += 1
    assert kept >= 8 and checked >= 25


@pytest.mark.parametrize("above", [0, None])
def test_the_variant_is_made_without_rendering_the_trace_again(monkeypatch, above):
    if above is not None:   # (a program compiled on use; else the text, compiled)
        monkeypatch.setattr(numpy_backend, "TIER_FROM", above)
    g = compile_grad("sin(x) * y + exp(y) - sqrt(x * y) + log(x) * y")
    rendered = []
    renderer = numpy_backend.NumpyRenderer
    monkeypatch.setattr(numpy_backend, "NumpyRenderer", lambda *a, **k: rendered.append(1) or renderer(*a, **k))
    value, grad = g(2.0, 3.0)
    assert rendered == []
    x, y = 2.0, 3.0
    assert value == pytest.approx(np.sin(x) * y + np.exp(y) - np.sqrt(x * y) + np.log(x) * y)
    assert grad == pytest.approx((np.cos(x) * y - 0.5 * np.sqrt(y / x) + y / x,
                                  np.sin(x) + np.exp(y) - 0.5 * np.sqrt(x / y) + np.log(x)))
    for _ in range(3):   # (the variant is g's direct call from then on)
        assert g(x, y) == (value, grad)
    # (a program's variant is guarded from outside, a compiled one has its own `try`)
    variant = inspect.getsource(g._direct.__globals__.get(numpy_backend.UNGUARDED, g._direct))
    assert "math.sqrt(" in variant and "math.log(" in variant and "np." not in variant


@pytest.mark.parametrize("above", [0, None])
def test_an_input_named_like_the_guards_values_gets_the_variant_made_alone(monkeypatch, above):
    if above is not None:
        monkeypatch.setattr(numpy_backend, "TIER_FROM", above)
    g = compile_grad("sin(fallback) * unguarded + exp(unguarded)")
    a, b = 0.7, 1.3
    value, grad = g(a, b)
    assert value == pytest.approx(np.sin(a) * b + np.exp(b))
    assert grad == pytest.approx((np.cos(a) * b, np.sin(a) + np.exp(b)))
