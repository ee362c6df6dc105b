"""The small-formula path (issue 14, 10² operations): what the SymPy front end's header
printer (parse/sympy_text.py) spares, and that it prints the same text.

A SymPy DAG written out as a tree repeats its shared nodes: the cut printer prints
each node once and takes its text again (a memo by object), finds a class's print
method and its precedence once, and still gives SymPy's own text, cut.
"""

from __future__ import annotations

import random

import pytest
import sympy as sp
from sympy.core.parameters import evaluate

from exprcompiler import frontend
from exprcompiler.bench.suite_scaling import random_dag
from exprcompiler.parse import sympy_text
from exprcompiler.trace.to_sympy import to_sympy

x, y, z = sp.symbols("x y z")
LIMITS = (20, 100, 160, frontend.SOURCE_SHOWN)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _dags():
    """SymPy DAGs of 20-60 operations (the bench's SymPy family: unevaluated binary Add
    and Mul, shared subexpressions as shared objects), small enough to print whole."""
    for seed in range(8):
        for n in (20, 40, 60):
            expr, = to_sympy(frontend.to_trace(random_dag(n, seed=seed)), evaluate=False)
            if frontend._tree_size(expr, 4000) <= 4000:
                yield expr


def _odd_ones():
    """What the printer's choices read: signs, quotients, powers with negative and
    rational exponents, floats inside and outside, unevaluated products whose
    factors are numbers, a user's function and a subclass of a known one, shared
    nodes under a minus sign."""
    f = sp.Function("f")

    class mysin(sp.sin):   # (a subclass of a known function: its own name)
        pass

    s = sp.sin(x) * sp.exp(-y)   # shared below
    yield s - s ** 2 + 1 / s - sp.sqrt(s) + 1 / sp.sqrt(s)
    yield sp.Float(1.5) * x + sp.Float(-0.25) * s - sp.Float(3.0)
    yield sp.Rational(3, 7) * x ** sp.Rational(-2, 3) - sp.Rational(1, 2) * s
    yield f(x, s) + f(s) ** 2 - mysin(x) * mysin(s)
    with evaluate(False):
        yield sp.Mul(sp.Integer(2), s, sp.Pow(s, -1), sp.Float(0.5))
        yield sp.Add(-s, s, sp.Mul(-1, s), sp.Pow(x + y, -2))
        yield sp.Mul(sp.S.One, x, sp.Integer(3)) + sp.Mul(-2, s, s)
    shared = [x + y]
    for k in range(6):   # a chain whose tree doubles at each level
        shared.append(sp.cos(shared[-1]) * shared[-1] - sp.Float(0.5) * shared[-1] ** 2)
    yield shared[-1]
    yield sp.atan2(s, x) + sp.Max(x, s, y) + sp.Piecewise((s, x > 0), (x, True))


@pytest.mark.parametrize("order", ["none", None])
def test_the_cut_text_is_sympys(order):
    checked = cut = 0
    for e in list(_dags()) + list(_odd_ones()):
        whole = sp.sstr(e, order=order)
        for limit in LIMITS:
            assert sympy_text.shown(e, order, limit) == _cut(whole, limit), (order, limit, whole[:80])
            checked += 1
            cut += len(whole) > limit
    assert checked > 80 and cut > 60   # (most of them are cut)


def test_a_shared_node_is_printed_once(monkeypatch):
    # a chain whose tree doubles at each level: 2^12 uses of its first node, one printing
    base = sp.sin(x)
    node = base
    for _ in range(12):
        node = sp.Add(node, node * y, evaluate=False)
    printed = []
    real = sp.printing.str.StrPrinter._print_Function

    def counted(self, expr, **kwargs):
        printed.append(expr)
        return real(self, expr, **kwargs)
    monkeypatch.setattr(sp.printing.str.StrPrinter, "_print_Function", counted)
    text = sympy_text.shown(node, "none", 10_000)   # (the whole text: nothing cut)
    monkeypatch.undo()
    assert printed == [base]
    assert text == _cut(sp.sstr(node, order="none"), 10_000)


def test_a_class_is_dispatched_once(monkeypatch):
    # Printer._print's walk over a node's MRO for its print method: once per class,
    # not per node (a 10²-operation DAG printed to its first 256 characters: ~100 nodes)
    from sympy.printing.printer import Printer
    walks = []
    real = Printer._print

    def counted(self, e, **kwargs):
        walks.append(type(e))
        return real(self, e, **kwargs)
    monkeypatch.setattr(Printer, "_print", counted)
    monkeypatch.setattr(sympy_text, "_PRINTER", None)   # (a printer made over the counted one)
    expr, = to_sympy(frontend.to_trace(random_dag(100, seed=3)), evaluate=False)
    sympy_text.shown(expr, "none", frontend.SOURCE_SHOWN)   # (the classes met: known)
    walks.clear()
    other, = to_sympy(frontend.to_trace(random_dag(100, seed=4)), evaluate=False)
    text = sympy_text.shown(other, "none", frontend.SOURCE_SHOWN)
    assert walks == []
    monkeypatch.undo()
    assert text == frontend._sympy_text(other)


def test_made_nodes_do_not_take_a_freed_ones_text():
    # _print_Mul makes powers for a quotient's denominator and drops them: their ids
    # are reused by the next ones it makes, which must be printed, not looked up
    rng = random.Random(5)
    syms = sp.symbols("a0:8")
    with evaluate(False):
        for _ in range(40):
            factors = [sp.Pow(rng.choice(syms), -rng.randint(1, 4)) for _ in range(rng.randint(2, 5))]
            e = sp.Add(*[sp.Mul(rng.choice(syms), *factors[:k + 1]) for k in range(len(factors))])
            for limit in (40, frontend.SOURCE_SHOWN):
                assert sympy_text.shown(e, "none", limit) == _cut(sp.sstr(e, order="none"), limit)


def test_the_tree_size_counts_uses():
    s = sp.sin(x) * y
    e = sp.Add(s, s * z, evaluate=False)   # Mul(sin(x), y): 4 nodes; Mul(y, z, sin(x)): 5
    assert frontend._tree_size(e, 4000) == 10
    assert frontend._tree_size(e, 4) == 5 and frontend._tree_size(x, 4000) == 1
    chain = x
    for _ in range(40):   # a tree of ~2^40 nodes, 81 distinct: stops at the cap
        chain = sp.Add(chain, chain * y, evaluate=False)
    assert frontend._tree_size(chain, 4000) == 4001
