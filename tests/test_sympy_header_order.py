"""frontend._sympy_text: a SymPy expression's header text is SymPy's unsorted printing
(sstr's order="none") at every size: str()'s sorting of terms and factors was most of
a small expression's printing time, and ~40% of its compile_grad's."""

from __future__ import annotations

import random

import sympy as sp
from sympy import Basic, Expr, Mul

from exprcompiler import compile_grad, frontend
from exprcompiler.backends.naming import comment_text

x, y, z = sp.symbols("x y z")
POINT = {x: sp.Rational(3, 7), y: sp.Rational(-5, 11), z: sp.Rational(13, 9)}

# small expressions whose sorted text (str) differs from their unsorted one
SMALL = [x**2 + 2*x + 1, 2*x - 3*y + z/4 - 1, -z + (x + y)**3, sp.I*x + 1, x/(y*z) - 1,
         x*y - 3, -sp.sin(x) - sp.cos(y)*x**3]


def test_a_small_expression_is_shown_unsorted():
    for e in SMALL:
        text = frontend._sympy_text(e)
        assert text == sp.sstr(e, order="none") and text != str(e), e


def test_the_header_printing_sorts_nothing(monkeypatch):
    want = [sp.sstr(e, order="none") for e in SMALL]

    def refuse(*args, **kwargs):
        raise AssertionError("sorted for the header")
    for owner, name in ((Expr, "as_ordered_terms"), (Expr, "as_terms"), (Mul, "as_ordered_factors"),
                        (Expr, "sort_key"), (Basic, "sort_key")):
        monkeypatch.setattr(owner, name, refuse)
    assert [frontend._sympy_text(e) for e in SMALL] == want


def test_the_header_of_a_small_expression_reads_its_unsorted_text():
    e = SMALL[1]
    head = next(line for line in compile_grad(e).source.splitlines() if " of: " in line)
    what, whole = head[2:head.index(" of: ")], sp.sstr(e, order="none")
    assert head == f"# {comment_text(f'{what} of: {whole}', 200)}" and whole != str(e)


def _random_expr(rng: random.Random, depth: int):
    leaves = [x, y, z, sp.Integer(rng.randint(-5, 5)), sp.Rational(rng.randint(1, 7), rng.randint(2, 9)),
              sp.pi, sp.E]   # (no Float: 15 digits do not read back exactly)
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(leaves)
    a, b = _random_expr(rng, depth - 1), _random_expr(rng, depth - 1)
    kind = rng.randrange(8)
    if kind == 0:
        return a + b
    if kind == 1:
        return a - b
    if kind == 2:
        return a * b
    if kind == 3:
        return a / b if b != 0 else a
    if kind == 4:
        return a ** rng.choice([2, 3, -1, sp.Rational(1, 2), sp.Rational(-3, 2)])
    return rng.choice([sp.sin, sp.exp, sp.log, sp.tanh, sp.Abs])(a) + (b if kind == 5 else 0)


def test_the_unsorted_text_is_the_same_formula():
    # faithful: the header's text reads back as the expression it shows
    rng = random.Random(5)
    seen = 0
    for _ in range(50):
        e = _random_expr(rng, 4)
        text = frontend._sympy_text(e)
        if len(text) > frontend.SOURCE_SHOWN or e.has(sp.zoo, sp.nan):
            continue
        back = sp.sympify(text, locals={"x": x, "y": y, "z": z})
        # (equal once read back, or, where SymPy's evaluation regroups it, in value)
        assert back == e or abs(complex((back - e).evalf(30, subs=POINT))) < 1e-20, (text, e)
        seen += 1
    assert seen > 35
