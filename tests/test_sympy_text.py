"""frontend._tree_size: an expression's size written out as a tree (as SymPy's
printer sees it), counted over the DAG's distinct nodes, and cut short at `cap`:
exact up to the cap, cap + 1 past it, the walk stopped at the first subtree past it."""

from __future__ import annotations

import sympy as sp
from sympy.core.parameters import evaluate

from exprcompiler import frontend

x, y, z = sp.symbols("x y z")


def _tree(expr) -> int:
    return sum(1 for _ in sp.preorder_traversal(expr))


def test_exact_up_to_the_cap():
    for e in [x, x + y, sp.sin(x * y) + sp.cos(x * y), (x + y) ** 2 * sp.exp(x + y) - z, sp.Max(x, y, z) / 3]:
        assert frontend._tree_size(e, 4000) == _tree(e)
        assert frontend._tree_size(e, _tree(e)) == _tree(e)
        assert frontend._tree_size(e, _tree(e) - 1) == _tree(e)   # (cap + 1: past it)


def test_a_shared_dag_stops_at_its_first_subtree_past_the_cap(monkeypatch):
    with evaluate(False):
        e = x
        for _ in range(40):                 # a tree of ~2**40 nodes
            e = sp.Add(sp.Mul(e, e), 1)
        big = sp.Add(*[sp.sin(x + k) for k in range(3000)], e)   # and 9,000 more distinct nodes (e: walked first)
    read = []
    real_args = sp.Basic.args
    monkeypatch.setattr(sp.Basic, "args", property(lambda self: (read.append(1), real_args.fget(self))[1]))
    assert frontend._tree_size(big, 4000) == 4001
    assert len(read) < 200   # (twice each node of the ~25 levels it takes to pass 4,000: 104; was 8,004)
    assert frontend._sympy_text(big) == "a SymPy expression"


def test_a_numeric_term_is_not_evaluated_to_sort_the_header(monkeypatch):
    # str() sorts an Add's terms, a numeric one by its value: complex((3/2)**(10**12)) ran
    # for minutes in an explore run. The header keeps SymPy's own order instead.
    with evaluate(False):
        e = sp.Add(sp.Pow(sp.Rational(3, 2), sp.Integer(10**12)), sp.sin(x), x)

    def refuse(self):
        raise AssertionError("a term evaluated for the header")
    monkeypatch.setattr(sp.Expr, "__complex__", refuse)
    assert frontend._sympy_text(e) == "(3/2)**1000000000000 + sin(x) + x"
    monkeypatch.undo()
    assert frontend._sympy_text(x**2 + 2*x + 1) == "1 + x**2 + 2*x"   # (unsorted too without a number)
