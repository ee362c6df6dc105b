"""Piecewise conditions kept as built: the SymPy namespace trace/to_sympy.py hands the
op table's ``sympy=`` forms.

A comparison becomes ``Piecewise((1.0, x < y), (0.0, True))`` and ``where(c, a, b)``
``Piecewise((a, Ne(c, 0)), (b, True))``. When a condition itself holds a Piecewise (a
comparison of a sum of comparisons, a where of a where), SymPy's ExprCondPair folds it
and rewrites the fold as an ITE, whose coverage check calls ``as_set`` — SymPy's
inequality solver, `periodicity` and `simplify` on trigonometric arguments: seconds to
minutes, and the fold alone doubles in size with each Piecewise folded in. It does so
with evaluation off too (there, with a Piecewise in the fold's condition again, it
recursed until Python's limit). So such a Piecewise is built as the subclass here, whose pairs keep
the condition exactly as built: the same mathematics (SymPy reads the Piecewise inside
the condition when it substitutes numbers), its size linear in the trace. Its ``func``
is itself, so ``diff``, ``subs``, ``xreplace`` rebuild it the same way; printers and
`lambdify` see a Piecewise (the class keeps the name). A Piecewise whose conditions hold
none stays SymPy's own, as before.

``c != 0`` of a 0/1 comparison ``Piecewise((1.0, B), (0.0, True))`` is ``B`` itself, so
``where(x < y, a, b)`` is ``Piecewise((a, x < y), (b, True))`` without a fold (the form
SymPy's fold reached, through the solver).
"""

from __future__ import annotations

import sympy
from sympy.core.parameters import global_parameters
from sympy.functions.elementary.piecewise import ExprCondPair as _SymPyPair


class ExprCondPair(_SymPyPair):
    """(expr, cond) with `cond` as given (SymPy's folds a Piecewise in it)."""

    def __new__(cls, expr, cond):
        return _pair(cls, expr, cond)


class Piecewise(sympy.Piecewise):
    """A Piecewise whose conditions may hold Piecewises, built by `build`."""

    def __new__(cls, *args, evaluate=None):
        return build(cls, args, evaluate)


def _pair(cls, expr, cond):
    cond = sympy.true if cond == True else sympy.false if cond == False else cond  # noqa: E712
    if not isinstance(cond, sympy.logic.boolalg.Boolean):
        raise TypeError(f"a Piecewise condition must be a Boolean, not {type(cond).__name__}")
    return sympy.Tuple.__new__(cls, sympy.sympify(expr), cond)


def build(cls, args, evaluate=None):
    """A Piecewise of class `cls` (SymPy's or the one above) from (expr, cond) pairs,
    without SymPy's walks of the conditions (its `has` and `replace` read a DAG as a
    tree: exponential in its depth). Evaluation (when on) is SymPy's structural part:
    False pairs dropped, nothing after a True one, equal neighbouring values merged
    (their conditions or-ed), a lone True pair its value — so the derivative of a 0/1
    comparison, ``((0, c), (0, True))``, is 0."""
    pair_cls = ExprCondPair if cls is Piecewise else _SymPyPair
    merge = global_parameters.evaluate if evaluate is None else evaluate
    pairs: list = []
    for arg in args:
        pair = _pair(pair_cls, *getattr(arg, "args", arg))
        if pair.cond is sympy.false:
            continue
        if merge and pairs and _same(pairs[-1].expr, pair.expr):
            pair = _pair(pair_cls, pair.expr, sympy.Or(pairs.pop().cond, pair.cond))
        pairs.append(pair)
        if pair.cond is sympy.true:
            break
    if not pairs:
        raise ValueError("a Piecewise needs a condition that can hold")
    if len(pairs) == 1 and pairs[0].cond is sympy.true:
        return pairs[0].expr
    return sympy.Basic.__new__(cls, *pairs)


def _same(a, b) -> bool:
    return a is b or (hash(a) == hash(b) and a == b)   # (hashes first: == compares trees)


class Namespace:
    """SymPy, with Piecewise and Ne as the module docstring says; one per to_sympy
    call, as it remembers which subexpressions hold a Piecewise (a DAG walked once,
    where SymPy's `has` walks it as a tree)."""

    def __init__(self):
        self._holds: dict = {}   # id -> (node, whether it holds a Piecewise); node kept so ids stay unique

    def __getattr__(self, name):
        return getattr(sympy, name)

    def holds_piecewise(self, expr) -> bool:
        memo = self._holds
        stack = [expr]
        while stack:
            node = stack[-1]
            if id(node) in memo:
                stack.pop()
                continue
            if isinstance(node, sympy.Piecewise):
                memo[id(node)] = (node, True)
                stack.pop()
                continue
            todo = [a for a in getattr(node, "args", ()) if id(a) not in memo]
            if todo:
                stack.extend(todo)
                continue
            memo[id(node)] = (node, any(memo[id(a)][1] for a in getattr(node, "args", ())))
            stack.pop()
        return memo[id(expr)][1]

    def Piecewise(self, *pairs, evaluate=None):  # noqa: N802 (SymPy's name)
        pairs = [getattr(p, "args", p) for p in pairs]
        folds = any(isinstance(c, sympy.Basic) and self.holds_piecewise(c) for _, c in pairs)
        return build(Piecewise if folds else sympy.Piecewise, pairs, evaluate)

    def Ne(self, lhs, rhs, **kw):  # noqa: N802 (SymPy's name)
        # (structurally: an assumption query on an unevaluated tree recurses with its depth)
        condition = indicator_condition(lhs) if sympy.sympify(rhs) is sympy.S.Zero else None
        return sympy.Ne(lhs, rhs, **kw) if condition is None else condition

    @staticmethod
    def real_root(arg, n):
        """The real n-th root of a real value (the trace's values are real), for odd n
        sign(x)·|x|^(1/n) — SymPy's value of its real_root there; SymPy's own builds a
        Piecewise on im(x) first, whose condition it folds (the solver again, or with
        evaluation off a recursion without end) when x holds a Piecewise."""
        if n % 2 == 1:
            return sympy.sign(arg) * sympy.Abs(arg) ** sympy.Rational(1, n)
        return sympy.real_root(arg, n)


def indicator_condition(expr):
    """B when `expr` is Piecewise((v, B), (0, True)) with a nonzero number v, or a
    product of such (their conditions and-ed); else None."""
    if isinstance(expr, sympy.Mul):
        conditions = [indicator_condition(factor) for factor in expr.args]
        return None if any(c is None for c in conditions) else sympy.And(*conditions)
    if not isinstance(expr, sympy.Piecewise) or len(expr.args) != 2:
        return None
    (value, condition), (zero, otherwise) = expr.args
    if otherwise is sympy.true and zero.is_Number and zero.is_zero and value.is_Number \
            and value.is_zero is False:
        return condition
    return None


__all__ = ["ExprCondPair", "Namespace", "Piecewise", "indicator_condition"]
