"""The expression loop's shortcuts (parse/parser.py) must build what the longer way
builds, and report what it reports:

* a unary call closed in the loop itself (sin(x): close()'s common case, without its
  call), whose refused builder call is located at the function's name, as close()
  locates it;
* a left chain (x + y - z) tried only where its next operand is known and an operator
  of its precedence follows that operand, so an operator at a window's end (the
  window's "" next) neither chains nor reads past the window;
* the statement plans not asked where they are idle in the window (plans.py), but
  asked again in the next window, where they may run.

The oracle is the same text read in one window (lexer.WINDOW large), or with plans
switched off (Plans.run returns None)."""

from __future__ import annotations

import pytest

from exprcompiler.errors import ExprcError, ShapeError
from exprcompiler.parse import lexer, parse, parser
from exprcompiler.parse.plans import Plans


def outcome(text: str, shapes=None):
    """The trace (instructions, labels, outputs), or the error's class and message."""
    try:
        t = parse(text, shapes)
        return repr((t.instrs, t.labels, t.outputs))
    except ExprcError as err:
        return type(err).__name__, str(err)


# Chains of known operands broken at every place, calls closed by ')' with one argument
# and with several, ';' between statements (no newline: one line, so windows end
# after operators as well as before them).
PROGRAM = "; ".join([
    "a = x + y - z", "b = a + x * y - z / a", "c = sin(a) + cos(b) - a + b",
    "d = (a + b) * (c - a) / (b + c)", "e = max(a, b) + hypot(a, b, c) - exp(-d)",
    "f = a - b - c - d - e + x + y + z", "g = -f + +e * 2 - 1.5 + f ** 2 ** -e",
    "h = (x < y) + (a >= b) * c", "h + g",
])


@pytest.mark.parametrize("window", [1, 2, 3, 5, 8, 13, 40])
def test_windows_that_end_anywhere_in_a_chain_change_nothing(monkeypatch, window):
    whole = outcome(PROGRAM)
    monkeypatch.setattr(lexer, "WINDOW", window)
    assert outcome(PROGRAM) == whole


@pytest.mark.parametrize("window", [1, 2, 4])
def test_an_operator_just_before_a_windows_end(monkeypatch, window):
    # the operator is a window's last token: its next token is the window's "" (the chain's
    # test reads nothing past it)
    text = "a = x +" + " " * 30 + "y + z\nb = a *" + " " * 30 + "a / x\nb - a"
    whole = outcome(text)
    assert not isinstance(whole, tuple)
    monkeypatch.setattr(lexer, "WINDOW", window)
    assert outcome(text) == whole


def test_a_refused_unary_call_points_at_its_name(monkeypatch):
    """The builder refuses sin (as it would a shape): the error is located at 'sin', as
    close() locates it (at the call's name, not at its ')')."""
    def refuse(*args):
        raise ShapeError("refused here")

    class Refusing(parser._Methods):
        def __missing__(self, opname):
            if opname == "sin":
                self[opname] = refuse
                return refuse
            return super().__missing__(opname)

    monkeypatch.setattr(parser, "_Methods", Refusing)
    for text, col in [("y = x * 2\ny + sin(x)", 5), ("y = x * 2\n(y + 1) *   sin(x + y)", 13),
                      ("y = x * 2\ny + sin(\n  x)", 5)]:
        with pytest.raises(ShapeError) as err:
            parse(text)
        assert str(err.value).startswith(f"line 2, column {col}: refused here"), str(err.value)


def test_a_unary_call_builds_as_the_builder_does():
    t = parse("u = sin(x) * cos(x)\nv = sin(x) + exp(u)\nu - v")
    assert [ins.op for ins in t.instrs if ins.op not in ("input", "const")] == \
        ["sin", "cos", "mul", "exp", "add", "sub"]


def long_program(n: int) -> str:
    """A text of n statements of a few forms (the plans replay them) after a head of
    statements that all differ (the plans idle in the first window)."""
    head = [f"h{k} = x{k % 7} * {k + 1} + sin(x{(k + 3) % 7})" for k in range(40)]
    body = [f"t{k} = log(2 + sin(h{k % 40})) * t{k - 1}" if k else "t0 = h0 + h1" for k in range(n)]
    return "\n".join(head + body + [f"t{n - 1} + h39"])


@pytest.mark.parametrize("window", [64, 600, 1 << 14])
def test_plans_asked_again_in_the_next_window(monkeypatch, window):
    text = long_program(400)
    monkeypatch.setattr(lexer, "WINDOW", window)
    with monkeypatch.context() as m:
        m.setattr(Plans, "run", lambda self, p: None)
        oracle = outcome(text)
    replayed = []
    run = Plans.run

    def counting(self, p):
        done = run(self, p)
        replayed.append(self.replayed)
        return done
    monkeypatch.setattr(Plans, "run", counting)
    assert outcome(text) == oracle
    assert replayed and replayed[-1] > 100   # (the body's statements were replayed)
