"""The parser's window-level reading (parse/window_forms.py, plan_code.py) and the
expression loop's chains (x + y - z applied as read): neither may change a trace or an
error (class, message, line, column). The oracle is the same parser with plans and
chains switched off, over texts with ';', blank lines, comments, CRLF, statements
that end the text or a window, and windows of a few characters."""

from __future__ import annotations

import random

import pytest

from exprcompiler.errors import ExprcError
from exprcompiler.parse import lexer, parse, parser, plan_code, plans
from exprcompiler.parse.plans import Plans
from exprcompiler.parse.window_forms import ASSIGN, NEWLINE, SLOT, Window, codes_of


@pytest.fixture(autouse=True, params=["third sighting", "window count"])
def policy(request, monkeypatch):
    """When a form gets its plan (plans.WORTH, RECORD_AT): so that these short texts get
    plans, at a form's third sighting, or at its first where its window holds two."""
    worth, record_at = (10**9, 3) if request.param == "third sighting" else (2, 10**9)
    monkeypatch.setattr(plans, "WORTH", worth)
    monkeypatch.setattr(plans, "RECORD_AT", record_at)


def outcome(text: str, shapes=None):
    try:
        t = parse(text, shapes)
        return repr((t.instrs, t.labels, t.outputs))
    except ExprcError as err:
        return type(err).__name__, str(err), getattr(err, "line", None), getattr(err, "col", None)


def plain_outcome(monkeypatch, text: str, shapes=None):
    """The outcome without plans and without chains: every token through the stacks."""
    with monkeypatch.context() as m:
        m.setattr(Plans, "run", lambda self, p: None)
        m.setattr(parser, "_LEFT_CHAINS", {})
        return outcome(text, shapes)


REPEATED = "".join(f"t{k} = sin(t{k - 1}) * x + t{k - 1}\n" for k in range(1, 8))
TEXTS = [
    "t0 = x * y\n" + REPEATED + "t7",
    "t0 = x * y\n" + REPEATED,                               # ends with an assignment
    "t0 = x * y\n" + REPEATED + "t8 = t7 * y",
    "t0 = x * y; " + REPEATED.replace("\n", "; ", 3) + "t7",  # ';' between, then lines
    "t0 = x * y\n" + REPEATED.replace("\n", "\n\n# a comment\n", 2) + "t7",
    "t0 = x * y\r\n" + REPEATED.replace("\n", "\r\n") + "t7",
    "t0 = x * y\n" + REPEATED + "t8 = sin(t7) * x + q\nt8",      # a first use in a known form
    "t0 = x * y\n" + REPEATED + "t8 = sin(t7) * x +\nt8",        # a form the parser refuses
    "t0 = x * y\n" + REPEATED + "x = sin(t7) * x + t7\nx",       # an input assigned
    "t0 = x * y\n" + REPEATED + "pi = sin(t7) * x + t7\npi",     # a constant assigned
    "t0 = x * y\n" + REPEATED + "2 = sin(t7) * x + t7\nt7",      # a number assigned
    "t0 = x * y\n" + REPEATED + "t8 = sin(t7) * x + (t7\n)\nt8",  # a newline in parentheses
    "t0 = x * y\n" + REPEATED + "t8 = sin(t7) * x + t7; t9 = sin(t8) * x + t8\nt9",
    "a = x + y + z - w + 1 - 2.5\nb = a * x * y / z * a\na - b - a + b",
    "a = x + y * z + w\nb = a - x ** 2 - y\nc = a / b / x * y\nc < b + a",
    "a = x + y + (z + w) + sin(x) - -y\na + a + $",
    "a = x + y +\n z\na",
    "a = (x + y + z\n + w)\na",
    "sum = x + y + z\nsum",
]


@pytest.mark.parametrize("window", [3, 17, lexer.WINDOW])
@pytest.mark.parametrize("text", TEXTS)
def test_forms_and_chains_change_nothing(monkeypatch, text, window):
    monkeypatch.setattr(lexer, "WINDOW", window)
    assert outcome(text) == plain_outcome(monkeypatch, text)


SHAPED = [
    # a chain refused by the builder: the error at the operator the stacks give it
    ("a = x + x + y + x\na", {"x": (3,), "y": (4,)}),
    ("a = x * x / y * x\na", {"x": (3,), "y": (4,)}),
    ("u = y\na = x + x\nb = a + x\nc = b + y\nd = c + x\nd", {"x": (3,), "y": (4,)}),
]


@pytest.mark.parametrize("text, shapes", SHAPED)
def test_refused_chains_and_plans_report_as_before(monkeypatch, text, shapes):
    got = outcome(text, shapes)
    assert got == plain_outcome(monkeypatch, text, shapes)
    assert got[0] == "ShapeError"


def random_program(rng: random.Random, statements: int) -> str:
    forms = ["{} + {} - {}", "{} * sin({}) + {}", "log(2 + {}) - {} / {}", "-({} - {}) ** 2",
             "{} + {} * {} + {}", "({} + {}) * ({} - {})", "{} / {} / {}", "{}"]
    names = ["x", "y", "1", "2.5"]
    lines = []
    for k in range(statements):
        form = rng.choice(forms)
        sep = rng.choice(["\n"] * 6 + ["; ", "\n\n", "  # c\n"])
        lines.append(f"t{k} = " + form.format(*(rng.choice(names) for _ in range(form.count("{}")))) + sep)
        names.append(f"t{k}")
    return "".join(lines) + " + ".join(names[-4:])


@pytest.mark.parametrize("seed", range(6))
def test_random_programs(monkeypatch, seed):
    rng = random.Random(seed)
    text = random_program(rng, 150)
    monkeypatch.setattr(lexer, "WINDOW", rng.choice([5, 40, lexer.WINDOW]))
    assert outcome(text) == plain_outcome(monkeypatch, text)


def test_a_window_s_forms():
    codes = codes_of({"+": "+", "sin": "sin", "(": "(", ")": ")"})
    toks = ["a", "=", "sin", "(", "x", ")", "\n", "b", "=", "a", "+", "x", ";", "c", "=", "b", "\n", "d", ""]
    w = Window(toks, codes, set(toks))
    plus, sin, open_, close = codes["+"], codes["sin"], codes["("], codes[")"]
    assert w.codes == bytes((SLOT, ASSIGN, sin, open_, SLOT, close, NEWLINE,
                             SLOT, ASSIGN, SLOT, plus, SLOT, SLOT, SLOT, ASSIGN, SLOT, NEWLINE, SLOT, SLOT))
    whole = list(w.seek(0))
    assert whole == [w.codes[0:6], w.codes[7:16], None]   # the last line is not whole
    assert list(w.seek(13)) == [w.codes[13:16], None]     # after the ';'
    assert list(w.seek(17)) == [None]
    assert list(w.seek(7)) == [w.codes[7:16], None]       # (back: the cursor starts again)
    # without the lexer's distinct tokens, the same codes
    assert Window(toks, codes).codes == w.codes


def test_plan_functions_hold_no_user_text():
    name = "zz_user_name_4711"
    text = "".join(f"{name}{k} = sin({name}{k - 1}) * {name}x + 3.25\n" for k in range(1, 9)) + f"{name}8"
    before = set(plan_code._CODES)
    p = parser._Parser(text, {}, False, 10_000)
    p.program()
    assert p.plans.replayed >= 4
    for fn in p.plans.ready.values():
        code = fn.__code__
        texts = [*code.co_names, *code.co_varnames, *(c for c in code.co_consts if isinstance(c, str))]
        assert not any(name in t or "3.25" in t for t in texts)
        assert set(code.co_names) <= {"g", "kn", "free", "NT", "STOP"}
        assert all(c is None or type(c) is int or c == "A" for c in code.co_consts)
        assert fn.__globals__["__builtins__"] == {}
    assert len(plan_code._CODES) - len(before) <= len(p.plans.ready)
