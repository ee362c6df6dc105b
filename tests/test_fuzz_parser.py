"""Fuzzing the front doors: whatever text, shapes or SymPy expression a user gives,
exprcompiler either compiles it or raises one of its own errors (an `ExprcError`),
within a second — never a KeyError, a RecursionError or a raw ValueError from
Python — and the CLI answers 0, or 2 with one line on stderr.

The generators:
  * token soup: random strings over an alphabet weighted toward the language's tokens
    (names, numbers, operators, brackets, function names from the op table, keyword
    options), with a share of unicode, control characters and malformed numbers;
  * mutations of valid formulas (the README's and the tests' examples): tokens
    inserted, deleted, swapped, duplicated, replaced or renamed, two formulas spliced;
  * `shapes=` declarations for the names in the text, mostly sensible, sometimes not;
  * random SymPy trees and matrix expressions, including nodes we do not support, huge
    integers and rationals, 1e400, nan/zoo/oo and Symbols with odd names;
  * EXPR, --shape and --at of the `exprc` commands.

The default (derandomized) profile runs 200 cases per property, about 10 s for the
file; `pytest tests/test_fuzz_parser.py --hypothesis-profile=explore` runs 1000 new
ones per property, and `--hypothesis-show-statistics` shows how many ran and how far
they got (the events: refused by which error, compiled). Cases that found a crash
are pinned in tests/test_front_errors.py.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import time

import pytest
import sympy as sp
from conftest import TooSlow, within
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from exprcompiler import compile_expr, ops, to_trace
from exprcompiler.cli import main as exprc
from exprcompiler.errors import ExprcError

pytestmark = pytest.mark.filterwarnings("ignore")  # overflow/divide warnings are not errors here

BUDGET = 1.0          # seconds of CPU per case, the whole front door included
# Twice the profile's count: 200 per property in CI (derandomized, about 10 s for the
# file), 1000 under --hypothesis-profile=explore (new cases each run).
FUZZ = settings(max_examples=2 * settings.default.max_examples, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# -- the alphabet -----------------------------------------------------------------------
FUNCTIONS = sorted(ops.FUNCTIONS) + ["dot", "sinn", "diag", "index", "size_ratio", "f"]
NAMES = ["x", "y", "z", "x1", "x2", "X", "w", "W", "b", "a", "n", "T", "e", "pi", "y1",
         "True", "False", "None", "axis", "keepdims", "shape", "_", "__debug__", "v1",
         "é", "ﬁ", "x٣", "α", "lambda", "int", "exp"]
NUMBERS = ["0", "1", "2", "3", "0.5", ".5", "1.", "1e3", "1e-3", "1e400", "1e-400", "1e",
           "2E+", "9" * 25, "9" * 4400, "0" * 30, "1_0", "0x1", "1j", "007"]
OPERATORS = ["+", "-", "*", "/", "**", "@", "<", "<=", ">", ">=", "==", "!=", "=", ".T", ".",
             ":", "::", "-1", "*-"]
PUNCTUATION = ["(", ")", "(", ")", "[", "]", ",", ",", ";", "\n", "\r\n", "\r", " ", " ",
               "\t", "# c\n"]
OPTIONS = ["axis=", "axis=0", "axis=1", "axis=-1", "axis=(0, 1)", "axis=True", "axis=None",
           "keepdims=True", "keepdims=3", "shape=", "shape=(3, -1)", "shape=(-1,)", "shape=2",
           "shape=(", "x=", "=1"]
ODD = ["^", "×", "−", "{", "}", "'", '"', "\\", "$", "\x00", "\x0b", "\x1b", "\x85", "\u2028",
       "\u00a0", "\ufeff", "²", "𝑥", "\udcff", "\U0010ffff", "\u0301"]

TOKEN = st.one_of(
    st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from(NUMBERS),
    st.sampled_from(OPERATORS), st.sampled_from(OPERATORS), st.sampled_from(PUNCTUATION),
    st.sampled_from(PUNCTUATION), st.sampled_from(FUNCTIONS).map(lambda f: f + "("),
    st.sampled_from(OPTIONS), st.sampled_from(ODD), st.characters(max_codepoint=0x2FFFF),
)
token_soup = st.lists(TOKEN, max_size=40).map("".join)

# Valid formulas, each with the shapes it was written for (None: scalars).
LSQ = {"X": ("n", 3), "w": (3,), "y": ("n",)}
SEEDS = [
    ("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))", None),
    ("log(x1) + x1*x2 - sin(x2)", None),
    ("f1 = x*y; f2 = sin(x); f1 + f2", None),
    ("r = sqrt(x**2 + y**2); r*cos(y), r*sin(x), x*y", None),
    ("-x**2 + 2**-y * max(x, y) - min(x, 1) / abs(z)", None),
    ("where(x > 0, x, 0) + heaviside(x, 0.5) + xlogy(x, y) + (x != y)", None),
    ("sigmoid(x) * softplus(y) + relu(x - y) + tanh(arctan(x)) + log1p(expm1(y))", None),
    ("0.5 * sum((X @ w - y)**2)", LSQ),
    ("r = X @ w - y; 0.5 * sum(r**2)", LSQ),
    ("sum(softplus(-y * (X @ w)))", LSQ),
    ("sum(100 * (x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)", {"x": ("n",)}),
    ("h = relu(W1 @ x + b1)\nout = tanh(W2 @ h + b2)\n0.5 * sum((out - y)**2)",
     {"W1": (5, 3), "b1": (5,), "W2": (2, 5), "b2": (2,), "x": (3,), "y": (2,)}),
    ("sum(x, axis=0, keepdims=True) + mean(x, axis=-1, keepdims=True) + max(x)", {"x": (2, 3)}),
    ("logsumexp(x) + sum(softmax(x, axis=0)) + norm(x) + sum(outer(v, v))", {"x": (3,), "v": (2,)}),
    ("sum(reshape(A, shape=(3, -1)) @ A.T[0:2, ::2].T) + sum(transpose(A)[1, :])", {"A": (2, 3)}),
    ("sum(stack(a, b, axis=1)) + sum(concatenate(a, b, axis=0)) + dot(a, b)", {"a": (3,), "b": (3,)}),
    ("H1 = sigmoid(W1 @ X)\nH2 = sigmoid(W2 @ H1)\nsum((Y - sigmoid(W3 @ H2))**2)",
     {"W1": (5, 4), "W2": (3, 5), "W3": (2, 3), "X": (4, "n"), "Y": (2, "n")}),
]
_PIECE = re.compile(r"\*\*|[<>=!]=|\.T\b|[^\W\d]\w*|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|\s+|.", re.S)


def pieces(text: str) -> list[str]:
    return _PIECE.findall(text)


@st.composite
def mutants(draw):
    """A seed formula, changed by one to four token edits or spliced with another."""
    k = draw(st.integers(0, len(SEEDS) - 1))
    text, shapes = SEEDS[k]
    toks = pieces(text)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 4]))):
        edit = draw(st.sampled_from(["insert", "delete", "swap", "duplicate", "replace", "splice",
                                     "rename", "renumber"]))
        i = draw(st.integers(0, len(toks)))
        j = draw(st.integers(0, len(toks)))
        if edit == "insert":
            toks.insert(i, draw(TOKEN))
        elif edit == "delete" and toks:
            del toks[min(i, len(toks) - 1)]
        elif edit == "swap" and toks:
            a, b = min(i, len(toks) - 1), min(j, len(toks) - 1)
            toks[a], toks[b] = toks[b], toks[a]
        elif edit == "duplicate":
            lo, hi = sorted((i, j))
            toks[lo:lo] = toks[lo:hi]
        elif edit == "replace" and toks:
            toks[min(i, len(toks) - 1)] = draw(TOKEN)
        elif edit in ("rename", "renumber"):  # keeps the formula well formed, more often than not
            kind = r"[^\W\d]\w*" if edit == "rename" else r"[0-9.]+"
            spots = [k for k, t in enumerate(toks) if re.fullmatch(kind, t)]
            if spots:
                new = st.sampled_from(NAMES + FUNCTIONS) if edit == "rename" else st.sampled_from(NUMBERS)
                toks[spots[i % len(spots)]] = draw(new)
        elif edit == "splice":
            other_text, other_shapes = SEEDS[draw(st.integers(0, len(SEEDS) - 1))]
            other = pieces(other_text)
            toks = toks[:i] + other[min(j, len(other)):]
            if other_shapes:
                shapes = {**(shapes or {}), **other_shapes}
    text = "".join(toks)
    if shapes:  # only names still in the text: an unknown one is declared()'s job
        present = set(re.findall(r"[^\W\d]\w*", text))
        shapes = {k: v for k, v in shapes.items() if k in present} or None
    return text, shapes


DIM = st.one_of(st.sampled_from([1, 2, 3, 4, "n", "m"]), st.sampled_from([1, 2, 3, 4, "n", "m"]),
                st.sampled_from([0, -1, "n-1", "", " ", "n m", True, 2.5, None, 10 ** 30, 2 ** 63]))
SHAPE = st.one_of(st.lists(DIM, max_size=3).map(tuple), st.sampled_from([3, "n", (), None, "ab", [2, 3]]))


@st.composite
def declared(draw, text: str, base=None):
    """shapes= for some of the names in `text` (keeping or changing `base`), sometimes
    for a name that is not there, sometimes none at all."""
    names = sorted(set(re.findall(r"[^\W\d]\w*", text)) - set(ops.FUNCTIONS) - {"T"})
    shapes = dict(base or {})
    for name in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)) if names else []:
        shapes[name] = draw(SHAPE)
    if draw(st.integers(0, 9)) == 0:
        shapes[draw(st.sampled_from(["q", "", "x y", "1"]))] = draw(SHAPE)
    return shapes or None


def front_door(expr, shapes=None) -> None:
    """The property: to_trace, then compile_expr on the NumPy backend, succeed or raise
    an ExprcError, within the budget. The outcome is counted as a hypothesis event
    (--hypothesis-show-statistics shows how many cases got how far)."""
    with within(BUDGET):
        try:
            to_trace(expr, shapes)
        except ExprcError as err:
            event(f"refused: {type(err).__name__}")
            return
        try:
            compile_expr(expr, shapes=shapes)
            event("compiled")
        except ExprcError as err:
            event(f"traced, compile refused: {type(err).__name__}")


@pytest.fixture(scope="module", autouse=True)
def warm():
    """Imports and first compilations happen once, outside the budget of a case."""
    compile_expr("sin(x) + sum(w)", shapes={"w": (2,)})
    exprc(["explain", "x"])


@FUZZ
@given(token_soup)
@example("reshape(x)")
@example("x[" + "9" * 5000 + "]")
def test_token_soup(text):
    front_door(text, None)


@FUZZ
@given(st.data(), token_soup)
def test_token_soup_with_shapes(data, text):
    front_door(text, data.draw(declared(text)))


@FUZZ
@given(st.data(), mutants())
def test_mutated_formulas(data, case):
    text, shapes = case
    if data.draw(st.booleans()):  # half keep the seed's shapes, half get random ones
        shapes = data.draw(declared(text, shapes))
    front_door(text, shapes)


# -- SymPy ------------------------------------------------------------------------------
# Trees are drawn as recipes (nested tuples of names) and built in the test: a recipe
# prints readably in a failure report, where a SymPy integer of 5000 digits cannot be
# printed at all (Python's int-to-str limit, which SymPy's printer runs into).
BIG = sp.Integer(10) ** 5000
SYMBOLS = ["x", "y", "", " ", "a b", "*/", "x\n", "__debug__", "é", "ﬁ", "fi", "None", "f",
           "x.bar", "\\", "\x00", "1", "x1"]
NUMBERS_SP = {
    "0": sp.Integer(0), "1": sp.Integer(1), "-3": sp.Integer(-3), "1/3": sp.Rational(1, 3),
    "2.5": sp.Float(2.5), "BIG": BIG, "-BIG": -BIG, "BIG/3": sp.Rational(BIG, 3),
    "-BIG/7": sp.Rational(-BIG, 7), "1/BIG": sp.Rational(1, BIG), "(BIG+1)/BIG": sp.Rational(BIG + 1, BIG),
    "1e400": sp.Float("1e400"), "-1e400": sp.Float("-1e400"), "1e-400": sp.Float("1e-400"),
    "2**70": sp.Integer(2) ** 70, "nan": sp.nan, "zoo": sp.zoo, "oo": sp.oo, "-oo": -sp.oo,
    "pi": sp.pi, "E": sp.E, "I": sp.I, "GoldenRatio": sp.GoldenRatio, "1/2": sp.S.Half,
    "true": sp.true,
}
UNARY = {
    "sin": sp.sin, "cos": sp.cos, "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "Abs": sp.Abs,
    "sign": sp.sign, "tanh": sp.tanh, "asin": sp.asin, "atan": sp.atan, "floor": sp.floor,
    "gamma": lambda a: sp.gamma(a, evaluate=False), "f": sp.Function("f"), "relu": sp.Function("relu"), "Heaviside": sp.Heaviside,
    "neg": lambda a: -a, "inv": lambda a: 1 / a, "Max0": lambda a: sp.Max(a, 0, evaluate=False),
    "Integral": lambda a: sp.Integral(a, sp.Symbol("x")), "pow BIG": lambda a: sp.Pow(a, BIG, evaluate=False),
    "pow -1": lambda a: sp.Pow(a, -1, evaluate=False), "mul -1": lambda a: sp.Mul(-1, a, evaluate=False),
    "Max1": lambda a: sp.Max(a), "Heaviside1": lambda a: sp.Heaviside(a, 1),
}
BINARY = {
    "Add": lambda a, b: sp.Add(a, b, evaluate=False), "Mul": lambda a, b: sp.Mul(a, b, evaluate=False),
    "Pow": lambda a, b: sp.Pow(a, b, evaluate=False), "+": lambda a, b: a + b, "*": lambda a, b: a * b,
    "**": lambda a, b: sp.Pow(a, b, evaluate=_small_power(a, b)), "-": lambda a, b: a - b, "/": lambda a, b: a / b, "Max": sp.Max,
    "Min": sp.Min, "atan2": sp.atan2, "Heaviside": sp.Heaviside, "Lt": sp.Lt,
    "Piecewise": lambda a, b: sp.Piecewise((a, b > 0), (b, True)),
    "g": lambda a, b: sp.Function("g")(a, b), "log": lambda a, b: sp.log(a, b),
    "Dummy+": lambda a, b: a + sp.Dummy("x") * b,
}
SYMPY_RECIPE = st.recursive(
    st.one_of(st.tuples(st.just("symbol"), st.sampled_from(SYMBOLS)),
              st.tuples(st.just("number"), st.sampled_from(sorted(NUMBERS_SP))),
              st.tuples(st.just("integer"), st.integers(-10 ** 30, 10 ** 30)),
              st.tuples(st.just("float"), st.floats())),
    lambda inner: st.one_of(st.tuples(st.sampled_from(sorted(UNARY)), inner),
                            st.tuples(st.sampled_from(sorted(BINARY)), inner, inner)),
    max_leaves=12)


def _small_power(a, b) -> bool:
    """Whether SymPy may evaluate a**b: not for numbers, nor for a large exponent
    ((2*x)**BIG is distributed as 2**BIG * x**BIG)."""
    return not (a.is_Number and b.is_Number) and (_symbolic(b) or bool(b.is_Rational and abs(b) <= 8))


def _symbolic(node) -> bool:
    """Whether a Symbol occurs in `node`, read off its tree: SymPy's free_symbols of an
    Integral substitutes into the integrand with evaluation on, which computes a number
    bomb below it (in C, outside any time budget: an explore run sat there 29 minutes)."""
    return any(isinstance(p, sp.Symbol) for p in sp.preorder_traversal(node))


def _numeric_power_bomb(node) -> bool:
    """A node holding an unevaluated number-only power whose exponent has a large
    numerator or denominator: the next node that evaluates it (Max compares, floor
    rounds, Mul combines powers of 2, free_symbols substitutes into an Integral)
    computes a number of 10**5000 digits or its BIG-th root, in C, where no signal
    stops it."""
    return any(p.is_Pow and p.exp.is_Rational and (abs(p.exp.p) > 64 or p.exp.q > 64)
               and not _symbolic(p.base) for p in sp.preorder_traversal(node))


def build_sympy(recipe):
    """The SymPy expression of a recipe; a node SymPy refuses to build (a comparison
    with nan, ...) is replaced by its first argument."""
    head, *rest = recipe
    if head == "symbol":
        return sp.Symbol(rest[0])
    if head == "number":
        return NUMBERS_SP[rest[0]]
    if head == "integer":
        return sp.Integer(rest[0])
    if head == "float":
        return sp.Float(rest[0])
    args = [build_sympy(r) for r in rest]
    try:
        # SymPy evaluates numbers exactly (floor(2**BIG), BIG**(1/BIG)): among numbers
        # only, nothing is evaluated, and whatever still takes long is dropped.
        with within(2 * BUDGET), sp.evaluate(any(map(_symbolic, args))):
            node = (UNARY if len(args) == 1 else BINARY)[head](*args)
    except Exception:  # (TooSlow included)
        return args[0]
    return args[0] if _numeric_power_bomb(node) else node


@FUZZ
@given(SYMPY_RECIPE)
@example(("f", ("symbol", "x")))
@example(("*", ("number", "BIG"), ("symbol", "")))
def test_sympy_expressions(recipe):
    front_door(build_sympy(recipe))


_ELEMENT = sp.matrices.expressions.matexpr.MatrixElement
MATRICES = {
    "X": sp.MatrixSymbol("X", sp.Symbol("n"), 3), "w": sp.MatrixSymbol("w", 3, 1),
    "A": sp.MatrixSymbol("A", 3, 3), "''": sp.MatrixSymbol("", 3, 3), "*/": sp.MatrixSymbol("*/", 3, 1),
    "I": sp.Identity(3), "0": sp.ZeroMatrix(3, 3), "B(n m)": sp.MatrixSymbol("B", sp.Symbol("n m"), 3),
    "D(m)": sp.MatrixSymbol("D", sp.Symbol("m"), sp.Symbol("m")),
}
MATRIX_BUILDS = {
    "a*b": lambda a, b: a * b, "a+b": lambda a, b: a + b, "a.T*b": lambda a, b: a.T * b,
    "Trace(a*b)": lambda a, b: sp.Trace(a * b), "a**BIG": lambda a, b: sp.MatPow(a, BIG),
    "a**3": lambda a, b: sp.MatPow(a, 3), "Inverse(a)": lambda a, b: sp.Inverse(a),
    "a∘b": lambda a, b: sp.HadamardProduct(a, b), "a∘∘BIG": lambda a, b: sp.HadamardPower(a, BIG),
    "a[BIG, 0]": lambda a, b: _ELEMENT(a, BIG, 0), "a[-1, 0]": lambda a, b: _ELEMENT(a, -1, 0),
    "a[2**70, 0]": lambda a, b: _ELEMENT(a, 2 ** 70, 0), "(a.T*b)[0, 0]": lambda a, b: (a.T * b)[0, 0],
    "sin.(a)": lambda a, b: a.applyfunc(sp.sin), "DiagonalOf(a)": lambda a, b: sp.DiagonalOf(a),
    "a*1e400": lambda a, b: a * sp.Float("1e400"), "a*nan": lambda a, b: a * sp.nan,
}


@FUZZ
@given(st.sampled_from(sorted(MATRICES)), st.sampled_from(sorted(MATRICES)),
       st.sampled_from(sorted(MATRIX_BUILDS)))
def test_sympy_matrix_expressions(a, b, build):
    try:
        expr = MATRIX_BUILDS[build](MATRICES[a], MATRICES[b])
    except Exception:  # SymPy's own shape checks
        assume(False)
    front_door(expr)


# -- the CLI ----------------------------------------------------------------------------
COMMANDS = [["grad"], ["grad", "--target", "c"], ["grad", "--mode", "forward"], ["trace"],
            ["explain"], ["graph"], ["eval", "--at", "x=1,y=2,x1=1.5,x2=0.5"],
            ["trace", "--at", "x=1,y=2"], ["hessian", "--at", "x=1"], ["jacobian", "--at", "x=1,y=2"],
            ["export", "-o", "{tmp}/k"], ["grad", "--wrt", "x"], ["grad", "--shape", "x=3"],
            ["eval", "--shape", "x=n", "--at", "x=[1,2]"], ["export", "-o", "{tmp}/exp"]]


def check_cli(argv) -> None:
    """The CLI's property: status 0, or 2 with exactly one line on stderr; within four
    budgets, since a command compiles and may differentiate twice (hessian)."""
    out, err = io.StringIO(), io.StringIO()
    with within(4 * BUDGET), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = exprc(argv)
    err = err.getvalue()
    event(f"exit {rc}")
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        assert err.startswith("exprc: error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err


@FUZZ
@given(st.one_of(token_soup, mutants().map(lambda case: case[0])), st.sampled_from(COMMANDS))
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_cli(text, command):
    with tempfile.TemporaryDirectory() as tmp:
        check_cli([command[0], text] + [a.format(tmp=tmp) for a in command[1:]])


OPTION_TEXT = st.lists(st.one_of(st.sampled_from(["x", "w", "=", ",", "[", "]", "1", "2.5", "-1", "n",
                                                   "9" * 5000, "²", "nan", "1e999", " ", "\n", "'"]),
                                   st.characters(max_codepoint=0x2FFF)), max_size=12).map("".join)
SHAPE_OPTION = st.one_of(OPTION_TEXT, OPTION_TEXT.map("w=".__add__), st.sampled_from(["w=3", "w=n", "w=2,n"]))
AT_OPTION = st.one_of(OPTION_TEXT, st.builds("x={},w={}".format, st.one_of(OPTION_TEXT, st.just("1.5")),
                                             st.sampled_from(["[1,2,3]", "[1]", "[[1,2,3]]", "[]", "[1,2,3",
                                                              "[1e999, nan, -0]", "1"])))


@FUZZ
@given(SHAPE_OPTION, AT_OPTION, st.sampled_from(["eval", "trace", "hessian", "jacobian"]))
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_cli_options(shape, at, command):
    """--shape and --at as fuzzed text, on an expression that uses what they name."""
    check_cli([command, "sum(w) * x", "--shape", shape, "--at", at])


def test_budget_stops_a_hang():
    """The budget really interrupts a case that does not finish."""
    with pytest.raises(TooSlow):
        with within(0.2):
            t = time.process_time()
            while time.process_time() - t < 5:
                pass
