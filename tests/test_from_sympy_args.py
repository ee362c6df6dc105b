"""from_sympy reads a node's arguments from SymPy's `_args` tuple only for classes whose
`args` is Basic's: a class that defines its own `args` is read through it, as before.
(A function head's subclass is not converted at all: its ops are keyed by class.)"""

from __future__ import annotations

import sympy as sp

from exprcompiler.parse.from_sympy import from_sympy
from exprcompiler.trace.check import interpret

x, y = sp.symbols("x y")


class _Swapped(sp.Add):
    """An Add whose args property gives its terms in the other order."""

    @property
    def args(self):
        return self._args[::-1]


def _op_args(trace, op):
    """The input names an instruction `op` reads, in order."""
    names = {v: nm for nm, v in trace.inputs}
    return [tuple(names.get(a, a) for a in ins.args) for ins in trace.instrs if ins.op == op]


def test_an_add_with_its_own_args_is_read_through_them():
    trace = from_sympy(_Swapped(x, y, evaluate=False))
    assert _op_args(trace, "add") == [("y", "x")]


def test_plain_nodes_read_their_arguments_in_order():
    trace = from_sympy(sp.Add(x, y, evaluate=False) * sp.atan2(y, x))
    assert _op_args(trace, "add") == [("x", "y")]
    assert _op_args(trace, "arctan2") == [("y", "x")]
    assert interpret(trace, {"x": 1.0, "y": 2.0})[0] == 3.0 * float(sp.atan2(2.0, 1.0))
