"""Tests of the string front end (text → tokens → Trace): values against Python
arithmetic, the op table's functions, sharing, error locations, hostile input,
and inputs nested far deeper than Python's recursion limit."""

from __future__ import annotations

import builtins
import math
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from exprcompiler import ops, to_trace
from exprcompiler.errors import ExprcError
from exprcompiler.parse import ParseError, parse
from exprcompiler.parse.lexer import tokenize
from exprcompiler.trace import interpret, verify

ENV = {"x": 1.3, "y": 0.7, "z": -2.1, "x1": 1.5, "x2": 0.5, "α": 0.25}
GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"


def value(text: str, env=None) -> float:
    trace = verify(parse(text))
    (out,) = interpret(trace, ENV if env is None else env)
    return float(out)


def operations(trace) -> list[str]:
    return [ins.op for ins in trace.instrs if ins.op not in ("input", "const")]


def parse_error(text: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(text)
    return info.value


# -- values: precedence and associativity exactly as Python --------------------------
x, y, z = ENV["x"], ENV["y"], ENV["z"]
VALUES = [
    ("-x**2", -(x ** 2)),
    ("2**-x", 2 ** (-x)),
    ("-2**2", -4.0),
    ("(-2)**2", 4.0),
    ("2**-x*3", (2 ** -x) * 3),
    ("2**-y**2", 2 ** (-(y ** 2))),
    ("x**y**2", x ** (y ** 2)),           # ** is right-associative
    ("(x**y)**2", (x ** y) ** 2),
    ("x - y - 2", (x - y) - 2),            # - and / are left-associative
    ("x / y / 2", (x / y) / 2),
    ("x / y * z", (x / y) * z),
    ("x - y + z", (x - y) + z),
    ("x + y * z", x + y * z),
    ("(x + y) * z", (x + y) * z),
    ("-x * y", (-x) * y),
    ("x * -y", x * (-y)),
    ("x - -y", x - (-y)),
    ("--x", x),
    ("---x", -x),
    ("+x", x),
    ("+-+x", -x),
    ("-x ** -y", -(x ** (-y))),
    ("x**2 / -y**3", x ** 2 / -(y ** 3)),
    ("1 + .5 + 1. + 2e-3 + 1E+5 + 2.5e1", 1 + .5 + 1. + 2e-3 + 1E+5 + 2.5e1),
    ("pi * e", math.pi * math.e),
    ("2*pi*x", 2 * math.pi * x),
    ("exp(-x**2/2) / sqrt(2*pi)", math.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)),
    ("sin(x)**2 + cos(x)**2", math.sin(x) ** 2 + math.cos(x) ** 2),
    ("log(x) + x*y - sin(y)", math.log(x) + x * y - math.sin(y)),
    ("maximum(x, y) - minimum(x, y)", max(x, y) - min(x, y)),
    ("α * 4", 1.0),                        # Unicode names
    # straight-line programs
    ("a = x*2; a = a + 1\na*a", (x * 2 + 1) ** 2),
    ("a = x\nb = a*y\nc = b - a\nc / b", (x * y - x) / (x * y)),
    ("# a comment\n\na = x  # trailing comment\n\n  a + 1\n", x + 1),
    ("a = (x +\n     y)\n(a *\n 2)", (x + y) * 2),
    ("a = 1;;; b = a + x;\n b", 1 + x),
    ("t = x*y\nt = sin(t)\nt = t*t\nt", math.sin(x * y) ** 2),
    ("x = 3; x*2", 6.0),                   # an assigned name is not an input
]


@pytest.mark.parametrize("text,expected", VALUES)
def test_values_match_python(text, expected):
    assert value(text) == pytest.approx(expected, rel=1e-15, abs=1e-15)


def test_unary_minus_binds_looser_than_power_but_tighter_than_product():
    # Structure, not only value: -x**2 negates the power; -x*y multiplies a negation.
    assert operations(parse("-x**2")) == ["pow", "neg"]
    assert operations(parse("-x*y")) == ["neg", "mul"]
    assert operations(parse("2**-x")) == ["neg", "pow"]


def _args_for(op):
    # Distinct points inside each argument's sampling domain (asymmetric on purpose,
    # so swapped arguments of maximum/heaviside/xlogy would show).
    return [lo + (hi - lo) * (0.37 + 0.21 * i) for i, (lo, hi) in enumerate(op.domain[:op.arity])]


SCALAR_FUNCTIONS = sorted(n for n, op in ops.FUNCTIONS.items() if op.elementwise)


@pytest.mark.parametrize("name", SCALAR_FUNCTIONS)
def test_every_function_is_callable_by_name(name):
    op = ops.FUNCTIONS[name]
    args = _args_for(op)
    names = ["x", "z", "w"][:op.arity]
    trace = verify(parse(f"{name}({', '.join(names)})"))
    assert operations(trace) == [name]
    with np.errstate(all="ignore"):
        expected = float(op.evaluate(*map(np.float64, args)))
    (got,) = interpret(trace, dict(zip(names, args)))
    assert float(got) == pytest.approx(expected, rel=1e-15)
    # With constant arguments the builder folds the call: still no error, same value.
    folded = parse(f"{name}({', '.join(repr(a) for a in args)})")
    assert operations(folded) == []
    assert float(interpret(folded, {})[0]) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("name", SCALAR_FUNCTIONS)
def test_every_function_checks_its_arity(name):
    arity = ops.FUNCTIONS[name].arity
    plural = "argument" if arity == 1 else "arguments"
    if name in ("hypot", "logaddexp"):   # (any number from 2: test_hypot_and_logaddexp_of_many_arguments)
        err = parse_error(f"{name}(x)")
        assert err.message == f"{name}() takes {arity} or more {plural} (1 given)"
    else:
        err = parse_error(f"{name}({', '.join(['x'] * (arity + 1))})")
        assert err.message == f"{name}() takes {arity} {plural} ({arity + 1} given)"
    assert (err.line, err.col) == (1, 1)


@pytest.mark.parametrize("n", range(2, 9))
def test_hypot_and_logaddexp_of_many_arguments(n):
    """hypot(x1, ..., xn) and logaddexp(...) as Python's math.hypot: the op of three
    arguments, then one more per two arguments more (the binary op for two)."""
    names = [f"x{k}" for k in range(n)]
    values = [0.75 * k - 2.0 for k in range(n)]
    for name, want, three in (("hypot", math.hypot(*values), "hypot3"),
                              ("logaddexp", math.log(math.fsum(math.exp(v) for v in values)), "logaddexp3")):
        trace = to_trace(f"{name}({', '.join(names)})")
        expected_ops = [name] if n == 2 else [three] + [three] * ((n - 3) // 2) + [name] * ((n - 3) % 2)
        assert operations(trace) == expected_ops
        (got,) = interpret(trace, dict(zip(names, values)))
        assert float(got) == pytest.approx(want, rel=4e-16 * n)


def test_operators_that_are_not_functions_cannot_be_called():
    for name in ("add", "neg", "input", "const", "copy"):  # (pow is callable, as an alias: pow(x, y))
        assert name not in ops.FUNCTIONS
        assert "unknown function" in parse_error(f"{name}(x)").message


# -- the trace: sharing, inputs, outputs ------------------------------------------------
def test_griewank_builds_the_textbook_trace():
    # parse() adds left to right as Python does; the front end's share_sums pass
    # then reuses x1/x2 - exp(x2) inside the first factor.
    assert operations(parse(GRIEWANK)) == ["div", "sin", "add", "exp", "sub", "sub", "mul"]
    trace = verify(to_trace(GRIEWANK))
    assert trace.input_names == ("x1", "x2")
    assert trace.output_names == ("y",)
    # v1 = x1/x2, v2 = sin v1, v3 = exp x2, v4 = v1 - v3, v5 = v2 + v4, v6 = v5 * v4:
    # x1/x2 and exp(x2) are built once, and x1/x2 - exp(x2) is reused in the sum.
    assert operations(trace) == ["div", "sin", "exp", "sub", "add", "mul"]
    assert trace.size == 6
    (y,) = interpret(trace, {"x1": 1.5, "x2": 0.5})
    assert float(y) == pytest.approx(2.016646669, abs=1e-9)


def test_griewank_as_a_program_gives_the_same_trace():
    program = "u = x1/x2\ns = sin(u)\nw = exp(x2)\na = s + u - w\nb = u - w\na*b"
    assert operations(to_trace(program)) == operations(to_trace(GRIEWANK))


def test_sums_keep_pythons_order_when_nothing_is_shared():
    # a + b + c is (a + b) + c: the first add takes the first two terms.
    trace = parse("x + y + z")
    first = next(ins for ins in trace.instrs if ins.op == "add")
    assert [trace.instrs[a].name for a in first.args] == ["x", "y"]
    # x + x + x is (x + x) + x: a chain's own partial sums are not "shared".
    trace = parse("x + x + x")
    last = trace.instrs[trace.outputs[0][1]]
    assert [trace.instrs[a].op for a in last.args] == ["add", "input"]


def test_sum_regrouping_respects_signs():
    # x - y + z == x - (y - z): the shared y - z is computed once.
    text = "(x - y + z) * (y - z)"
    assert operations(to_trace(text)) == ["sub", "sub", "mul"]
    assert value(text) == pytest.approx((x - y + z) * (y - z), rel=1e-14)


def test_repeated_subexpressions_are_shared():
    trace = parse("sin(x*y) + cos(x*y) * sin(x*y)")
    assert operations(trace).count("mul") == 2      # x*y once, the product once
    assert operations(trace).count("sin") == 1


def test_inputs_are_free_names_in_natural_order():
    assert parse("x10 + x2 + b + a").input_names == ("a", "b", "x2", "x10")
    assert parse("t = a * 2\nt + c").input_names == ("a", "c")
    # A name used only in an unused assignment is still a parameter.
    assert parse("t = q\n1").input_names == ("q",)


def test_output_is_y_unless_y_is_an_input():
    assert parse("x + 1").output_names == ("y",)
    assert parse("y + 1").output_names == ("f",)
    assert parse("y = x + 1\ny").output_names == ("y",)  # y assigned, not an input


@pytest.mark.parametrize("text, names", [
    ("x*y; sin(x) - y", ("y1", "y2")),
    ("x\ny", ("y1", "y2")),
    ("a = x*y\na, 2*a", ("y1", "y2")),
    ("a = x\nsin(a)\nb = a*a\nb, cos(b), a", ("y1", "y2", "y3", "y4")),
    ("y1 + y2, y1", ("f1", "f2")),
])
def test_every_bare_expression_is_an_output(text, names):
    trace = parse(text)
    assert trace.output_names == names
    env = {n: 0.5 + k for k, n in enumerate(trace.input_names)}
    values = interpret(trace, env)
    assert len(values) == len(names)


def test_several_outputs_in_order_with_values():
    trace = parse("a = x*y; a, sin(a); a - 1")
    assert [float(v) for v in interpret(trace, {"x": 2.0, "y": 3.0})] == [6.0, math.sin(6.0), 5.0]


@pytest.mark.parametrize("text, message", [
    ("a = x, y", "unexpected ','"),
    ("x,", "expected an expression"),
    ("x, y\na = x", "the program must end with an expression"),
])
def test_output_list_errors(text, message):
    with pytest.raises(ParseError, match=message):
        parse(text)
    assert parse("y * f").output_names == ("out",)


def test_constants_are_not_inputs():
    trace = parse("pi + e + x")
    assert trace.input_names == ("x",)
    assert value("pi + e", {}) == pytest.approx(math.pi + math.e)


def test_lexer_positions_and_parenthesized_newlines():
    toks = []
    for tok in tokenize("a = (1.5 +\n  b)\nc ** 2"):
        toks.append((tok.kind, tok.text, tok.line, tok.col))
        if tok.kind == "eof":
            break
    assert toks == [
        ("name", "a", 1, 1), ("=", "=", 1, 3), ("(", "(", 1, 5), ("number", "1.5", 1, 6),
        ("+", "+", 1, 10), ("name", "b", 2, 3), (")", ")", 2, 4), ("newline", "\n", 2, 5),
        ("name", "c", 3, 1), ("**", "**", 3, 3), ("number", "2", 3, 6), ("eof", "", 3, 7),
    ]


# -- errors: message, line, column ----------------------------------------------------
ERRORS = [
    ("", "empty expression", 1, 1),
    ("  # only a comment\n\n", "empty expression", 1, 1),
    ("x +", "expected an expression after '+'", 1, 4),
    ("x * (y - )", "expected an expression after '-'", 1, 10),
    ("a = ", "expected an expression after '='", 1, 5),
    ("x)", "unmatched ')'", 1, 2),
    ("(x + 1))", "unmatched ')'", 1, 8),
    ("2 * (x + 1", "'(' was never closed", 1, 5),
    ("sin(cos(x)", "'(' was never closed", 1, 4),
    ("(x;", "'(' was never closed", 1, 1),
    ("x $ y", "unexpected character '$'", 1, 3),
    ("x.y", "expected 'T' after '.'", 1, 3),
    ("x[1:2:3:4]", "a slice has at most two ':'", 1, 8),
    ("x[a]", "expected an integer after '['", 1, 3),
    ("x[1", "'[' was never closed", 1, 2),
    ("sum(x, axs=0)", "sum() has no option 'axs' (options: axis, keepdims)", 1, 8),
    ("sum(x, 0)", "sum() takes 1 argument (2 given); pass options by keyword (axis=..., keepdims=...)", 1, 1),
    ("sum(x, axis=y)", "expected an integer after 'axis', found 'y'", 1, 13),
    ("x ^ 2", "unexpected character '^'; use '**' for powers", 1, 3),
    ("(x, y)", "unexpected ','", 1, 3),
    ("x y", "missing operator between 'x' and 'y'", 1, 3),
    ("2x", "missing operator between '2' and 'x'", 1, 2),
    ("(x)(y)", "missing operator between ')' and '('", 1, 4),
    ("sinn(x)", "unknown function 'sinn' (did you mean 'sin'?)", 1, 1),
    ("1 + qqqq(x)", "unknown function 'qqqq'", 1, 5),
    ("sin(x, y)", "sin() takes 1 argument (2 given)", 1, 1),
    ("maximum(x)", "maximum() takes 2 arguments (1 given)", 1, 1),
    ("sin()", "sin() takes 1 argument (0 given)", 1, 1),
    ("maximum(x,)", "expected an expression after ','", 1, 11),
    ("()", "empty parentheses: expected an expression inside '()'", 1, 2),
    ("sin + 1", "'sin' is a function; call it as sin(...)", 1, 1),
    ("sin = 3\nsin", "cannot assign to 'sin' (a function)", 1, 1),
    ("x = 1\npi = 3\npi", "cannot assign to constant 'pi'", 2, 1),
    ("a = x\nb = a", "the program must end with an expression", 2, 1),
    ("x = y = 1\nx", "unexpected '='", 1, 7),
    ("1e+ 2", "invalid number '1e+': the exponent has no digits", 1, 1),
    ("y = a*2\na = 3\ny", "'a' is used before it is assigned", 1, 5),
    ("x = x + 1\nx", "'x' is used before it is assigned", 1, 5),
    ("* x", "expected an expression, found '*'", 1, 1),
]


@pytest.mark.parametrize("text,message,line,col", ERRORS)
def test_error_message_and_location(text, message, line, col):
    err = parse_error(text)
    assert err.message.startswith(message)
    assert (err.line, err.col) == (line, col)
    assert isinstance(err, ExprcError) and isinstance(err, ValueError)


def test_error_on_line_3_of_a_program_draws_a_caret():
    err = parse_error("a = x1 + 1\nb = a * x2\nc = a $ b\nc")
    assert (err.line, err.col) == (3, 7)
    assert err.source_line == "c = a $ b"
    head, shown, caret = str(err).splitlines()
    assert head == "line 3, column 7: unexpected character '$'"
    assert shown.index("$") == caret.index("^")


def test_error_after_an_unclosed_paren_on_an_earlier_line_hints_at_it():
    err = parse_error("a = 1\nb = (a +\n  2\nc = 3\nc")
    assert (err.line, err.col) == (4, 1)
    assert err.message == ("missing operator between '2' and 'c' "
                           "(is the '(' on line 2, column 5 closed?)")
    assert err.source_line == "c = 3"


def test_windows_line_ends_count_as_one_line():
    err = parse_error("a = x\r\nb = a +\r\nb")
    assert (err.line, err.col) == (2, 8)
    assert err.source_line == "b = a +"


# -- hostile text ------------------------------------------------------------------------
HOSTILE = [
    "__import__('os').system('echo pwned')",
    "__import__(\"os\").system(\"echo pwned\")",
    "x.__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 1",
    "[1]",
    "{'a': 1}",
    "'x'",
    "x \\\n + 1",
    "exec('import os')",
    "eval('1')",
    "open('/etc/passwd')",
    "os.system('ls')",
    "x if y else z",
    "x; import os",
    "x = 1\nimport os\nx",
    "f'{x}'",
    "x[0]",
    "x @ y",
    "x % 2",
    "x // 2",
    "x:=1",
    "`x`",
    "\x00",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_rejected_without_side_effects(text, monkeypatch):
    calls = []

    def record(name):
        def fake(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} called while parsing")
        return fake

    with monkeypatch.context() as m:
        for module, attr in ((os, "system"), (os, "popen"), (subprocess, "Popen"),
                             (builtins, "eval"), (builtins, "exec"), (builtins, "compile"),
                             (builtins, "open")):
            m.setattr(module, attr, record(attr))
        with pytest.raises(ExprcError):  # a ParseError, or a ShapeError for x[0] / x @ y on scalars
            parse(text)
    assert calls == []


def test_the_front_end_never_evaluates_text():
    # Principle 7: our own tokenizer and parser; no eval/exec/compile/ast/sympify.
    forbidden = re.compile(r"(?<![\w.])(eval|exec|compile)\s*\(|\bimport\s+ast\b|\bfrom\s+ast\b"
                           r"|sympify|parse_expr")
    folder = Path(__file__).resolve().parents[1] / "exprcompiler" / "parse"
    for name in ("lexer.py", "parser.py", "__init__.py"):
        assert not forbidden.search((folder / name).read_text(encoding="utf-8")), name


def test_only_parse_errors_escape_on_random_text():
    # Token soup: whatever the text, parse returns a Trace or raises one of our errors
    # (a ParseError, or a ShapeError / index error for x @ y or x[0] on scalars).
    rng = np.random.default_rng(0)
    pieces = ["x", "y", "2", ".5", "1e", "(", ")", "+", "-", "*", "/", "**", ",", ";", "\n",
              "=", "sin(", "maximum(", "pi", "#", "@", ".", "'", " ", "[", "]", ":", ".T", "<",
              "sum(", "axis=", "stack("]
    for _ in range(3000):
        text = "".join(rng.choice(pieces, size=rng.integers(0, 10)))
        try:
            parse(text, {"y": (3,)})
        except ExprcError:
            pass


# -- no recursion on user depth, linear time ---------------------------------------------
DEPTH = 100_000


def test_deep_parentheses():
    text = "(" * DEPTH + "x" + ")" * DEPTH
    assert value(text, {"x": 2.0}) == 2.0


@pytest.mark.slow  # (CI runs it with -m slow; the README's run stays under 3 minutes)
def test_deep_calls():
    text = "sin(" * DEPTH + "x" + ")" * DEPTH
    trace = parse(text)
    assert trace.size == DEPTH
    expected = 0.5
    for _ in range(DEPTH):
        expected = math.sin(expected)
    assert float(interpret(trace, {"x": 0.5})[0]) == pytest.approx(expected, rel=1e-12)


def test_deep_unary_minus():
    assert value("-" * DEPTH + "x", {"x": 2.0}) == 2.0
    assert value("-" * (DEPTH + 1) + "x", {"x": 2.0}) == -2.0


@pytest.mark.slow  # (CI runs it with -m slow; the README's run stays under 3 minutes)
def test_deep_power_tower():
    trace = parse("x" + "**x" * DEPTH)
    assert trace.size == DEPTH
    assert float(interpret(trace, {"x": 1.0})[0]) == 1.0
    # right-associative: the innermost power is x**x at the end of the text
    assert value("x" + "**x" * 3, {"x": 1.5}) == pytest.approx(1.5 ** (1.5 ** (1.5 ** 1.5)))


@pytest.mark.parametrize("text,message", [
    ("(" * DEPTH + "x", "'(' was never closed"),
    ("sin(" * DEPTH + "x", "'(' was never closed"),
    ("(" * DEPTH + "x" + ")" * (DEPTH + 1), "unmatched ')'"),
    ("(" * DEPTH + ")" * DEPTH, "empty parentheses"),
], ids=["open-parens", "open-calls", "extra-close", "empty-nest"])
def test_deep_unbalanced_input_fails_cleanly(text, message):
    assert parse_error(text).message.startswith(message)


@pytest.mark.slow   # ~9 s for the eight: CI runs them with the slow tests
@pytest.mark.parametrize("make", [
    lambda n: "@" * n,
    lambda n: "x+" * (n // 2),
    lambda n: "x " * (n // 2),
    lambda n: "(" * n,
    lambda n: ")" * n,
    lambda n: "1" * (n - 1) + "e",
    lambda n: "a" * (n - 3) + "(x)",
    lambda n: "sin(" * (n // 4),
], ids=["bad-chars", "trailing-plus", "no-operators", "open-parens", "close-parens",
        "bad-number", "long-unknown-function", "open-calls"])
def test_a_million_characters_of_junk_fails_fast(make):
    text = make(10 ** 6)
    with pytest.raises(ParseError) as info:  # refused at this size (its work is linear in the
        parse(text)                            # length: counted in tests/test_parser_work.py)
    assert len(info.value.one_line()) < 200  # messages quote long tokens shortened


def test_new_function_names_stay_variable_names_where_not_called():
    """gamma, erf, floor... became functions after formulas had used them as names:
    called, they are the functions; otherwise inputs (or assigned names), as before.
    The older functions still refuse a bare use (`sin * 2` forgot its argument)."""
    assert parse("gamma * x").input_names == ("gamma", "x")
    assert parse("gamma(x) + gamma").input_names == ("gamma", "x")
    assert parse("erf = 2 * x\nerf(erf)").input_names == ("x",)
    with pytest.raises(ParseError, match="'sin' is a function; call it as sin"):
        parse("sin * 2")
    with pytest.raises(ParseError, match="cannot assign to 'exp'"):
        parse("exp = 1\nexp")
