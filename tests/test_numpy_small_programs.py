"""Statement programs of a few hundred lines (numpy_backend.TIER_FROM): a gradient of
10² operations is loaded as its program, compiled on use; its keys are made per
variable below numpy_render.KEYS_AT_ONCE_FROM instructions (the same keys as the bulk
renderer's, so the same text and the same bits), its slot texts by Python below
name_codes._FEW names (the same text as the NumPy passes make) and only when its text
is asked for (program_text.Texts.made_by), and its stub function from a kept code
(numpy_program._stub_function: the code compile() makes)."""

from __future__ import annotations

import inspect
import linecache
import types
from array import array

import numpy as np
import pytest

from exprcompiler.backends import name_codes, numpy_backend, numpy_program, numpy_render, numpy_tier, program_text
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import random_program
from exprcompiler.trace import render_keys
from test_numpy_program import _is_program, _outcome


def _grad(statements: int, seed: int):
    return grad_reverse(to_trace(random_program(statements, seed=seed)))


def _named(trace) -> int:
    trace, _, codes = numpy_backend._prepared_codes(trace, False)
    uses, _ = numpy_backend.use_counts_and_reads(trace)
    return int(np.count_nonzero(numpy_backend.named_array(trace, uses.astype(np.int32), codes)))


def test_a_gradient_of_a_few_hundred_named_variables_is_a_program_until_called():
    grad = _grad(47, seed=1)   # (bench_frontend's text family at 10² operations: 256 named)
    assert numpy_backend.TIER_FROM < _named(grad) < 500
    source, _, program = numpy_backend.generated(grad)
    assert program is not None
    fn = numpy_backend.load(source, "f", program=program)
    compiled = numpy_backend.load(str(source), "f")
    assert _is_program(fn) and not _is_program(compiled) and not numpy_tier.tiered(fn)
    rng = np.random.default_rng(1)
    n_in = len(grad.input_names)
    for args in ([rng.uniform(-2, 2, 7) for _ in range(n_in)], [float(x) for x in rng.uniform(0.1, 1, n_in)]):
        assert _outcome(fn, args) == _outcome(compiled, args)
    # a smaller one is compiled at once
    small = _grad(20, seed=1)
    assert _named(small) <= numpy_backend.TIER_FROM
    assert numpy_backend.generated(small).program is None


@pytest.mark.parametrize("statements, seed", [(10, 0), (47, 1), (90, 2), (160, 3)])
def test_per_variable_keys_are_the_bulk_keys(monkeypatch, statements, seed):
    monkeypatch.setattr(numpy_backend, "TIER_FROM", 0)
    calls = []
    bulk_keys = render_keys.bulk_keys

    def counted(*a, **k):
        calls.append(1)
        return bulk_keys(*a, **k)
    monkeypatch.setattr(render_keys, "bulk_keys", counted)
    made = {}
    for at_once in (0, 10**9):
        monkeypatch.setattr(numpy_render, "KEYS_AT_ONCE_FROM", at_once)
        grad = _grad(statements, seed)
        source, _, program = numpy_backend.generated(grad)
        assert program is not None
        made[at_once] = (str(source), numpy_backend.load(source, "f", program=program), len(grad.instrs))
        assert bool(calls) == (at_once == 0)
        calls.clear()
    (text, bulk, n), (per_variable_text, per_variable, _) = made.values()
    assert per_variable_text == text
    rng = np.random.default_rng(seed)
    args = [np.concatenate([[0.0, -0.0, np.inf, 1e300], rng.uniform(-2, 2, 6)])
            for _ in numpy_backend.generated(_grad(statements, seed)).params]
    assert _outcome(per_variable, args) == _outcome(bulk, args)
    # the default: per variable below the threshold, at once from it
    monkeypatch.undo()
    monkeypatch.setattr(numpy_backend, "TIER_FROM", 0)
    monkeypatch.setattr(render_keys, "bulk_keys", counted)
    numpy_backend.generated(_grad(statements, seed))
    assert bool(calls) == (n >= numpy_render.KEYS_AT_ONCE_FROM)


def _names(n: int, seed: int) -> name_codes.Names:
    """Names of every kind and of indexes of 1 to 7 digits, some held by text."""
    rng = np.random.default_rng(seed)
    top = 10**7
    kinds = rng.integers(1, len(name_codes.INDEXED_KINDS) + 1, n)
    indexes = rng.integers(0, top, n) // 10 ** rng.integers(0, 7, n)
    names = name_codes.Names(array("i" if seed % 2 else "q", (kinds * top + indexes).tolist()), top, [])
    for v in range(0, n, 5):
        names.set_text(v, ["x", "t3", "v4_bar_1", "é_1", "1.5e-07", "-np.inf"][v % 6])
    return names


@pytest.mark.parametrize("n, seed", [(1, 0), (7, 1), (250, 2), (399, 3)])
def test_names_made_one_at_a_time_are_the_numpy_passes_names(monkeypatch, n, seed):
    names = _names(n, seed)
    variables = np.random.default_rng(seed).permutation(n)
    joined = {}
    for few in (0, 10**9):
        monkeypatch.setattr(name_codes, "_FEW", few)
        joined[few] = names.joined(variables)
    assert joined[0] == joined[10**9]
    assert joined[0].split("\n") == [names[v] for v in variables.tolist()]


def _compiled_stub(lines, start):
    return next(c for c in numpy_program._stub(lines, start, "<f>").co_consts if type(c) is types.CodeType)


@pytest.mark.parametrize("params", ["", "x", "x, y_bar, v3"])
def test_the_stub_is_made_as_compile_makes_it(params):
    """A program's stub function (what inspect and tracebacks see) made from a kept code
    is the code compile() makes of the def line, the blank lines and the return line,
    whatever the return line's distance (the location table's one-line and long forms)."""
    for gap in (*range(0, 70), 4095, 4096, 70_000):
        for start in (0, 5):
            lines = ["#\n"] * start + [f"def g({params}):\n"] + ["    v = 1.0\n"] * gap + ["    return v\n"]
            made = numpy_program._stub_function(lines, start, "<f>", "g")
            assert made is not None and made == _compiled_stub(lines, start)
    for line in ("def g(x, x):\n", "def g(x,y):\n", "def g(*x):\n", "def g(x=1.0):\n", "def g(if):\n",
                 "def h(x):\n", "def g(x) -> None:\n"):
        assert numpy_program._stub_function([line, "    return 1.0\n"], 0, "<f>", "g") is None


def test_a_programs_function_is_its_stubs():
    grad = _grad(47, seed=1)
    source, _, program = numpy_backend.generated(grad)
    fn = numpy_backend.load(source, "f", program=program)
    want = _compiled_stub(linecache.getlines(fn.__code__.co_filename), program.start)
    assert fn.__code__ == want.replace(co_filename=fn.__code__.co_filename)
    assert fn.__module__ == "exprcompiler.generated" and fn.__qualname__ == fn.__name__ == "f"
    assert inspect.getsource(fn) == str(source)[str(source).index("def f("):]


def test_a_programs_slot_texts_are_made_when_its_text_is_asked_for():
    grad = _grad(47, seed=2)
    source, _, program = numpy_backend.generated(grad)
    assert program.texts._joined is None   # (its names' codes only)
    fn = numpy_backend.load(source, "f", program=program)
    assert program.texts._joined is None   # (a program's load reads no text)
    line = linecache.getlines(fn.__code__.co_filename)[program.start + 1]   # one statement, formatted
    assert str(source) == numpy_backend.generate(grad)[0] and line in str(source)
    assert program.texts._joined is not None and program.texts._make is None


@pytest.mark.parametrize("n, seed", [(7, 1), (399, 3), (5000, 4)])
def test_deferred_names_are_the_joined_names(n, seed):
    names = _names(n, seed)
    variables = np.random.default_rng(seed).permutation(n)[:n // 2 + 1]
    make = names.deferred(variables)
    want = names.joined(variables)
    names.codes[variables[0]] = names.codes[variables[-1]]   # (its codes were copied: later changes not seen)
    assert make() == want
    texts = program_text.Texts.made_by(make)
    assert texts[len(variables) - 1] == want.split("\n")[-1] and texts.joined == want
