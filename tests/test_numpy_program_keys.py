"""How the statement program (backends/numpy_program.py) cuts a text into statements
and tokens: the keys are cut at ` = ` (a statement's right-hand side, then the next
target), so every text whose lines are not one plain name, ` = `, an expression must
be refused and compiled; signed names are two tokens, so the table of other tokens
stays small however many names are negated; names cross chunks."""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler.backends import numpy_backend, numpy_program
from test_numpy_program import _is_program, _outcome, _program_and_compiled


def _source(body: list[str], params: str = "x, y", returns: str = "v1") -> str:
    return f"import numpy as np\n\n\ndef f({params}):\n" + "".join(f"    {ln}\n" for ln in body) + \
        f"    return {returns}\n"


def _same(source: str, *args) -> None:
    program, compiled = _program_and_compiled(source)
    assert _outcome(program, args) == _outcome(compiled, args)


@pytest.mark.parametrize("body, returns", [
    (["v1 = x * y", "v2, v3 = x, y", "v4 = v2 + v3"], "v4"),             # a tuple target
    (["v1 = x * y", "v2 = v1 - x", "v2.shape = (3,)", "v3 = v2 * 2.0"], "v3"),   # an attribute target
    (["v1 = x * y", "v2 = v3 = v1 + 1.0", "v4 = v2 + v3", "v4 += x"], "v4"),     # two ` = ` and none
    (["v1 = x * y", "v2 = np.sum(v1, axis = 0)", "v3 = v2 + x"], "v3"),          # a spaced keyword
])
def test_a_line_that_is_not_name_equals_expression_is_compiled(body, returns, monkeypatch):
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
    fn = numpy_backend.load(_source(body, returns=returns), "f")
    assert not _is_program(fn)
    x, y = np.linspace(0.5, 1.5, 3), np.linspace(-1.0, 2.0, 3)
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 10**9)
    np.testing.assert_array_equal(fn(x, y), numpy_backend.load(_source(body, returns=returns), "f")(x, y))


def test_signed_names_and_literals_give_the_compiled_bits():
    body = ["v1 = -x", "v2 = -1.0 * y", "v3 = x ** -2.0", "v4 = np.exp(-(v1 + v2))", "v5 = v4 * 1e-05",
            "v6 = -v5 - -v3", "v7 = v6 - 1.5e+20 * -v1", "v8 = np.maximum(-v7, -0.0)"]
    source = _source(body, returns="v8, -v7, -v1")
    for args in ((0.7, -0.3), (np.array([0.0, -0.0, 2.0, np.inf]), np.array([1.0, -1.0, 0.5, np.nan]))):
        with np.errstate(all="ignore"):
            _same(source, *args)


def test_negated_names_add_no_token_kinds(monkeypatch):
    # -v1 ... -v3000 were 3000 distinct tokens, each with its own entry; now `-` and a name
    n = 3000
    body = ["v1 = x + y"] + [f"v{k} = -v{k - 1} * 0.5 + x" for k in range(2, n + 1)]
    lines = _source(body, returns=f"v{n}").splitlines(True)
    program = numpy_program._Statements(("x", "y"), numpy_program._KNOWN | {"np"})
    monkeypatch.setattr(numpy_program, "_Statements", lambda *a: program)
    assert numpy_program.load_program(lines, "f", "<test>", {})
    assert len(program.text_of) < 20 and len(program.slot_of) == n + 2


@pytest.mark.parametrize("chunk", [1, 2, 5, 64])
def test_names_cross_chunks_and_adjoints_reuse_them(chunk, monkeypatch):
    # a primal value read far later, an adjoint name rebound in place, a chunk of one line
    monkeypatch.setattr(numpy_program, "CHUNK", chunk)
    n = 40
    body = ["v1 = np.sin(x)"] + [f"v{k} = v{k - 1} * y + np.cos(v{k // 2})" for k in range(2, n + 1)]
    body += ["v1_bar = x * 0.0"] + [f"v1_bar = v1_bar + np.cos(v{k}) * v{n + 1 - k}" for k in range(1, n + 1)]
    source = _source(body, returns=f"v{n}, v1_bar")
    _same(source, 0.3, 1.1)
    _same(source, np.linspace(-2, 2, 7), np.linspace(0.1, 3, 7))


def test_a_name_neither_taken_nor_assigned_is_compiled(monkeypatch):
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
    fn = numpy_backend.load(_source(["v1 = x * z", "v2 = v1 + y"], returns="v2"), "f")
    assert not _is_program(fn)
    with pytest.raises(NameError):
        fn(1.0, 2.0)
