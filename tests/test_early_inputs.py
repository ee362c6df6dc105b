"""The parser declares the inputs its first window reads before anything else
(parse/early_inputs.py), so that the finish moves nothing. The guess must change
nothing but where the builder makes the inputs: the same trace or the same error as
a parse that declares each input where it is first read, whether the guess is right,
misses inputs (first read in a later window) or takes a name that is never read."""

from __future__ import annotations

import pytest
from conftest import spy

from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.errors import ExprcError
from exprcompiler.parse import lexer, parse, parser
from exprcompiler.parse.early_inputs import read_names
from exprcompiler.randexpr import random_program
from exprcompiler.trace.ir import natural_key

from test_parse_windows import TEXTS as WINDOW_TEXTS
from test_share_sums import sum_program

TEXTS = [
    *WINDOW_TEXTS,
    "x10 + x2 * x1",
    "gamma * gamma(x)",            # gamma: a function that may also be a variable
    "sum(X, axis\n=0) + axis",      # an option's name where the guess cannot see '='
    "sum(X, axis\n=0) + y",         # ... and never read: guessed, not an input
    "A.T @ x + T",                 # T read, and an attribute
    "a = b + 1; b = 2; a",         # b read before it is assigned
    "pi * e * x",                  # constants, not inputs
    "y * f * x",                   # the output is not named after an input
    "a = x\n a = 2\n a",
    "x = x + 1\n x",
    *(random_program(30, seed=seed) for seed in range(6)),
    *(sum_program(seed) for seed in range(6)),
]
SHAPES = {"x": (3,), "A": (3, 3), "X": (2, 3)}


def outcome(text: str):
    """Everything the trace holds, or the error's class, message, line and column."""
    shapes = SHAPES if any(c in text for c in "[@") or "axis" in text or "shape" in text else None
    try:
        t = parse(text, shapes)
    except ExprcError as err:
        return type(err).__name__, str(err), getattr(err, "line", None), getattr(err, "col", None)
    return t.instrs, t.labels, t.outputs, t.inputs, t.source, str(t)


@pytest.mark.parametrize("window", [lexer.WINDOW, 1, 4, 16, 64])
def test_the_guess_changes_nothing(monkeypatch, window):
    monkeypatch.setattr(lexer, "WINDOW", window)
    guessed = [outcome(text) for text in TEXTS]
    monkeypatch.setattr(parser, "read_names", lambda toks, not_a_name, more: [])
    assert [outcome(text) for text in TEXTS] == guessed


def builder_at_finish(monkeypatch, text: str, shapes=None):
    """The parser's builder as it is finished."""
    seen = spy(monkeypatch, parser, "trace_from_builder")
    parse(text, shapes)
    return seen[0]


@pytest.mark.parametrize("text", [
    FAMILIES["random DAG"](2000),                  # several windows, inputs read in the first
    FAMILIES["deep"](300),
    "t = sin(x5) * x3\n u = t + x10\n u * x1",
    "sum(X, axis=0) @ w + mean(X.T, axis=1) @ v",   # declared shapes
])
def test_inputs_come_first_in_natural_order(monkeypatch, text):
    shapes = {"X": (4, 3), "w": (3,), "v": (3,)} if "@" in text else None
    b = builder_at_finish(monkeypatch, text, shapes)
    names = sorted(b._inputs, key=natural_key)
    assert list(b._inputs) == names
    assert [b._inputs[n] for n in names] == list(range(len(names)))
    assert [ins.op for ins in b.instrs[:len(names)]] == ["input"] * len(names)


def test_a_wrong_guess_is_not_an_input(monkeypatch):
    # axis is guessed (its '=' is past a newline) but only ever an option
    b = builder_at_finish(monkeypatch, "sum(X, axis\n=0) + y", {"X": (2, 3)})
    assert sorted(b._inputs) == ["X", "y"]
    assert "axis" not in parse("sum(X, axis\n=0) + y", {"X": (2, 3)}).input_names


def test_an_input_first_read_later_is_declared_where_read(monkeypatch):
    monkeypatch.setattr(lexer, "WINDOW", 8)
    text = "a = sin(x1) * x1\nb = a * a + a\nc = b * x2\nc"
    b = builder_at_finish(monkeypatch, text)
    assert list(b._inputs) == ["x1", "x2"] and b._inputs["x2"] > 1
    assert list(parse(text).input_names) == ["x1", "x2"]


def test_read_names():
    toks = lexer.Scanner("a = sin(x2) + x10 * pi; f(b, axis=1)\n c = a.T + T\n").window()
    # (T, read once and once an attribute, is left to the parser)
    assert read_names(toks, parser._NOT_TARGET, False) == ["b", "x2", "x10"]
    # the window's last token may be assigned in the next window: not guessed
    assert read_names(["x", "+", "t5", ""], parser._NOT_TARGET, True) == ["x"]
    assert read_names(["x", "+", "t5", ""], parser._NOT_TARGET, False) == ["t5", "x"]
