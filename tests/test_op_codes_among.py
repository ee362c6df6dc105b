"""trace.render_bulk.OpCodes.among: per instruction, whether its op is one of the names
asked, as the names say (a comparison per name asked, not a gather through a table)."""

from __future__ import annotations

import numpy as np

from exprcompiler.parse import parse
from exprcompiler.passes import grad_reverse
from exprcompiler.trace.render_bulk import op_codes, op_codes_of_table, table_codes


def test_among_is_each_instructions_op_in_the_names():
    g = grad_reverse(parse("t = sin(x) * y + exp(-x / y)\nt**2 - log(1 + t)"))
    ops = [ins.op for ins in g.instrs]
    for codes in (op_codes(ops), op_codes_of_table(table_codes(g.instrs))):
        for names in [("input",), ("input", "copy"), ("mul", "add", "const", "sin"), (), ("tanh",),
                      ("tanh", "neg"), tuple(set(ops))]:
            got = codes.among(*names)
            assert got.dtype == bool and got.shape == (len(ops),)
            assert got.tolist() == [op in names for op in ops], names
    assert op_codes([]).among("add").tolist() == []
    assert np.array_equal(op_codes(["add"] * 3).among("add", "add"), [True] * 3)
