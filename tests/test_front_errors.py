"""User mistakes at the front doors, one test each: the error class, and that the
message names what is wrong (and, for text, where). Cases found by hand (the issue
"Trust") and by tests/test_fuzz_parser.py are pinned here.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from exprcompiler import compile_expr, ops, to_trace
from exprcompiler.cli import main as exprc
from exprcompiler.errors import ConversionError, ExprcError, ParseError, ShapeError
from exprcompiler.parse.constants import OPTION_KINDS
from exprcompiler.shapes import user_int

REPO = Path(__file__).resolve().parents[1]
HUGE = "9" * 5000   # beyond Python's 4300-digit limit for int <-> str


def raises(cls, fn, *fragments):
    with pytest.raises(cls) as info:
        fn()
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    return info.value


def parse_error(text, shapes=None, *fragments, col=None):
    err = raises(ParseError, lambda: to_trace(text, shapes), *fragments)
    if col is not None:
        assert (err.line, err.col) == (1, col), err
    return err


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = exprc(list(argv))
    return rc, out.getvalue(), err.getvalue()


def one_line_error(argv, *fragments, rc=2):
    code, out, err = cli(*argv)
    assert code == rc, (code, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


# -- options of builtin functions: by kind, from the op table ---------------------------

def test_every_option_of_the_op_table_has_a_kind():
    options = {name for op in ops.OPS.values() for name, _ in op.keywords}
    assert options <= set(OPTION_KINDS), options - set(OPTION_KINDS)


def test_reshape_without_shape():
    # was KeyError: 'shape' from the shape rule
    parse_error("reshape(x)", {"x": (6,)}, "reshape()", "shape=", col=1)
    parse_error("reshape(x, shape=None)", {"x": (6,)}, "needs the option shape=")


@pytest.mark.parametrize("text, fragments, col", [
    ("reshape(x, shape=True)", ("shape=", "reshape()", "True"), 18),   # was TypeError: not iterable
    ("sum(x, keepdims=3)", ("keepdims=", "True or False", "3"), 17),  # was silently bool(3)
    ("sum(x, axis=True)", ("axis=", "integer", "True"), 13),
    ("softmax(x, axis=False)", ("axis=", "softmax()"), 17),
])
def test_option_of_the_wrong_kind(text, fragments, col):
    parse_error(text, {"x": (2, 3)}, *fragments, col=col)


def test_reshape_shape_may_be_one_integer_as_in_numpy():
    f = compile_expr("reshape(x, shape=6)", shapes={"x": (2, 3)})
    np.testing.assert_array_equal(f(np.arange(6.0).reshape(2, 3)), np.arange(6.0))


@pytest.mark.parametrize("text", ["True + x", "x * None", "y = False; y + x"])
def test_option_values_are_not_numbers(text):
    word = next(w for w in ("True", "False", "None") if w in text)
    parse_error(text, None, f"'{word}'", "option")


def test_option_values_cannot_be_assigned():
    parse_error("True = 1; x", None, "cannot assign to 'True'")


# -- integers: one checked conversion -----------------------------------------------------

@pytest.mark.parametrize("text, shapes, col", [
    (f"x[{HUGE}]", {"x": ("n",)}, 3),                  # was ValueError: Exceeds the limit (4300 digits)
    (f"x[{HUGE}]", {"x": (3,)}, 3),
    (f"x[1:-{HUGE}]", {"x": ("n",)}, 6),
    ("x[" + "9" * 30 + "]", {"x": ("n",)}, 3),           # was accepted: no kernel can index that
    (f"sum(x, axis={HUGE})", {"x": (3,)}, 13),
    (f"reshape(x, shape=({HUGE},))", {"x": (3,)}, 19),
    (f"reshape(x, shape=(3, -{HUGE}))", {"x": (3,)}, 23),
])
def test_integer_too_large(text, shapes, col):
    err = parse_error(text, shapes, "too large", "2**63", col=col)
    assert len(err.one_line()) < 200


def test_user_int():
    assert user_int("0042") == 42 and user_int(np.int64(3)) == 3 and user_int(sp.Integer(-5)) == -5
    assert user_int(2 ** 63 - 1) == 2 ** 63 - 1
    for bad in (HUGE, "9" * 20, 2 ** 63, -2 ** 63, 10 ** 5000, True, 1.0, "1.0", "²", "٣", None):
        assert user_int(bad) is None, bad


def test_huge_float_literal_is_inf_not_an_error():
    assert compile_expr(HUGE + " * x")(1.0) == np.inf


def test_index_of_a_scalar_says_to_declare_it():
    # was "[]: 1 indices for an array of 0 dimensions ()"
    err = raises(ExprcError, lambda: to_trace("sin(x)[0] + y"), "cannot index a scalar", "'x'",
                 "shapes=", "column 7")
    assert isinstance(err, IndexError)


# -- names ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["²", "x" + "1" * 5000, "x٣", "ﬁ", "é"])
def test_odd_names_become_inputs(name):
    # '²' and a 5000-digit suffix broke the natural order of inputs (int() on them)
    trace = to_trace(f"{name} + x2 + x10")
    assert len(trace.inputs) == 3 and trace.input_names.index("x2") < trace.input_names.index("x10")


# -- shapes= ------------------------------------------------------------------------------

@pytest.mark.parametrize("shapes, fragments", [
    ({"x": (10 ** 5000,)}, ("'x'", "digits", "below 2**63")),   # printing it was a ValueError
    ({"x": (-10 ** 5000,)}, ("'x'", "digits")),
    ({"x": (2 ** 63,)}, ("'x'", "below 2**63")),
    ({"x": (True,)}, ("dimension True",)),
    ({"x": ("n m",)}, ("'n m'",)),
    ({1: (3,)}, ("names are strings", "int")),
    ({"q" * 10 ** 5: (3,)}, ("qqq", "...", "not a variable")),
])
def test_bad_shape_declarations(shapes, fragments):
    err = raises(ShapeError, lambda: to_trace("x + 1", shapes), *fragments)
    assert len(str(err)) < 300


def test_shapes_must_be_a_mapping():
    raises(ShapeError, lambda: to_trace("x", [("x", (3,))]), "mapping", "list")


def test_numpy_integers_declare_sizes():
    trace = to_trace("sum(x)", {"x": (np.int64(3),)})
    assert trace.instrs[trace.inputs[0][1]].shape == (3,)
    assert type(trace.instrs[trace.inputs[0][1]].shape[0]) is int


# -- objects that are not expressions -----------------------------------------------------

@pytest.mark.parametrize("obj, fragment", [(3, "int"), (None, "NoneType"), (1e400, "float"),
                                           ([], "empty list"), ([["x"]], "entry 0")])
def test_not_an_expression(obj, fragment):
    err = raises(ConversionError, lambda: to_trace(obj), fragment)
    assert isinstance(err, TypeError)  # as before, for callers that catch TypeError


# -- SymPy ------------------------------------------------------------------------------
x, y = sp.symbols("x y")
BIG = sp.Integer(10) ** 5000


def test_undefined_sympy_function():
    # was AttributeError: the class of f(x) has no module ('NoneType'.startswith)
    raises(ConversionError, lambda: to_trace(sp.Function("f")(x)), "'f'")


@pytest.mark.parametrize("expr, fragments", [
    (BIG * x, ("too large for a float",)),
    (sp.Rational(BIG, 3) * x, ("too large for a float",)),
    (sp.Float("1e400") * x, ("too large for a float",)),   # finite in SymPy: not made inf
    (x ** BIG, ("too large for a float",)),
    (sp.zoo * x, ("ComplexInfinity",)),
    (sp.I * x, ("ImaginaryUnit",)),
    (sp.MatrixSymbol("C", BIG, 3), ("'C'", "below 2**63")),
    (sp.MatPow(sp.MatrixSymbol("A", 3, 3), BIG), ("matrix power", "below 2**63")),
    (MatrixElement(sp.MatrixSymbol("X", sp.Symbol("n"), 3), 2 ** 70, 0), ("index beyond 2**63",)),
    (MatrixElement(sp.MatrixSymbol("X", sp.Symbol("n"), 3), BIG, 0), ("index beyond 2**63",)),
    (sp.MatrixSymbol("B", sp.Symbol("n m"), 3), ("'B'", "'n m'")),
])
def test_sympy_numbers_and_sizes_out_of_range(expr, fragments):
    raises(ConversionError, lambda: to_trace(expr), *fragments)


@pytest.mark.parametrize("expr, value", [
    (sp.Rational(1, BIG) * x, 0.0), (sp.Rational(BIG + 1, BIG) * x, 1.0),
    (sp.Mul(sp.nan, x, evaluate=False), np.nan),
    (sp.oo + x, np.inf),
])
def test_sympy_numbers_at_the_edges(expr, value):
    np.testing.assert_equal(compile_expr(expr)(1.0), value)


@pytest.mark.parametrize("name", ["", " ", "a b", "*/", "x\n", "__debug__", "é", "ﬁ", "None", "\\"])
def test_sympy_symbols_with_odd_names(name):
    s = sp.Symbol(name)
    f = compile_expr(s * y + sp.sin(s))
    assert f(**{name: 0.5, "y": 2.0}) == pytest.approx(1.0 + np.sin(0.5))


# -- the command line ---------------------------------------------------------------------

@pytest.mark.parametrize("name, fragment", [("exp", "'exp'"), ("1abc", "'1abc'"),
                                            ("a\nb", "'a\\nb'"), ("sqrt", "'sqrt'"), ("", "empty")])
def test_export_name_refused_before_anything_is_written(tmp_path, name, fragment):
    one_line_error(["export", "x*x", "-o", f"{tmp_path}/{name}"], "export name", fragment)
    assert list(tmp_path.iterdir()) == []


def test_export_to_a_path_with_a_newline_is_one_line(tmp_path):
    one_line_error(["export", "x*x", "-o", str(tmp_path / "no\nsuch" / "k")], "cannot write", "\\n")


@pytest.mark.parametrize("argv, fragments", [
    (["eval", "x[0]", "--shape", f"x={HUGE}", "--at", "x=[1]"], ("--shape", "too large")),
    (["eval", "x[0]", "--shape", "x=²", "--at", "x=[1]"], ("'²'",)),  # was int('²'): ValueError
    (["eval", "x[0]", "--shape", "x=3", "--at", "x=" + "[" * 10 ** 5 + "]" * 10 ** 5],
     ("--at", "not a list of numbers")),                              # was RecursionError in json
    (["grad", "reshape(x)", "--shape", "x=6"], ("reshape()", "shape=")),
    (["grad", f"x[{HUGE}]", "--shape", "x=n"], ("column 3", "too large")),
    (["grad", "-f", "/no/such\nfile"], ("cannot read", "\\n")),
])
def test_cli_one_line_errors(argv, fragments):
    err = one_line_error(argv, *fragments)
    assert len(err) < 400


def test_cli_stdin_that_cannot_be_read():
    done = _run(["grad", "-"], stdin=subprocess.DEVNULL)   # empty: the parser's message
    assert done.returncode == 2 and b"empty expression" in done.stderr, done.stderr
    done = subprocess.run([sys.executable, "-m", "exprcompiler", "grad", "-"], input=b"x\xff",
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 2 and b"0xFF" in done.stderr and done.stderr.count(b"\n") == 1, done.stderr


def test_cli_bug_is_one_line_with_exit_1(monkeypatch):
    import exprcompiler.cli as cli_module

    def broken(args):
        raise KeyError("shape")
    monkeypatch.setattr(cli_module, "cmd_explain", broken)
    err = one_line_error(["explain", "x"], "internal error", "KeyError", "report", rc=1)
    assert "EXPRC_TRACEBACK=1" in err
    monkeypatch.setenv("EXPRC_TRACEBACK", "1")
    with pytest.raises(KeyError):
        cli("explain", "x")


def _run(argv, stdin=None, **env):
    environ = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "exprcompiler", *argv], capture_output=True,
                          env=environ, timeout=120, stdin=stdin)


def test_cli_output_to_a_closed_pipe_is_quiet():
    # exprc grad ... | head: was a BrokenPipeError traceback
    program = "; ".join(f"a{k} = sin(x{k}) * cos(x{k})" for k in range(400)) + "; " + \
        " + ".join(f"a{k}" for k in range(400))
    done = subprocess.run(f"{sys.executable} -m exprcompiler grad \"{program}\" | true", shell=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr, done.stderr


def test_cli_output_the_terminal_cannot_encode():
    done = _run(["eval", "x**2", "--at", "x=1"], PYTHONIOENCODING="ascii")
    err = done.stderr.decode()
    assert done.returncode == 2 and err.count("\n") == 1 and "--ascii" in err, err
    assert _run(["eval", "x**2", "--at", "x=1", "--ascii"], PYTHONIOENCODING="ascii").returncode == 0


def test_every_error_is_an_exprc_error():
    assert issubclass(ParseError, ExprcError) and issubclass(ConversionError, ExprcError)


def test_two_sympy_symbols_with_one_name_are_refused_not_merged():
    """Dummy('x') twice, or x with and without assumptions, used to become one input:
    a different function, silently."""
    import sympy as sp
    from exprcompiler import compile_grad
    from exprcompiler.errors import ConversionError
    for a, b in [(sp.Dummy("x"), sp.Dummy("x")), (sp.Symbol("x"), sp.Symbol("x", positive=True))]:
        with pytest.raises(ConversionError, match="two different SymPy symbols are both named"):
            compile_grad(a + 2 * b)
    assert compile_grad(sp.Symbol("x") + 2 * sp.Symbol("x"))(1.0) == (3.0, (3.0,))
