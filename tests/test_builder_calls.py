"""How the builder's op methods are called (trace.builder_ops): a fast method takes
exactly its op's arguments; other calls go through Builder.apply's general path;
the hash-consing table and the input-size limit stay consistent when a fast method
refuses to build; name()'s copy is the copy _append would make."""

from __future__ import annotations

import pytest

from exprcompiler.errors import InputTooLarge, TraceError
from exprcompiler.trace import ir


def test_apply_sends_other_calls_to_the_general_path():
    b = ir.Builder()
    x, y = b.input("x"), b.input("y")
    with pytest.raises(TraceError, match="takes 2 arguments"):
        b.apply("add", x)
    with pytest.raises(TraceError, match="takes 1 arguments"):
        b.apply("sin", x, y)
    with pytest.raises(TraceError, match="not defined"):
        b.apply("mul", x, 99)
    assert b.apply("add", x, y) == b.add(x, y) == b.op_call("add")(b, y, x)
    assert b.apply("sin", x) == b.sin(x)
    # numbers become constants on either path
    assert b.apply("mul", 2.0, x) == b.mul(2.0, x) == b.mul(b.const(2.0), x)
    with pytest.raises(TypeError):   # the method itself takes exactly its op's arguments
        b.add(x, y, x)


@pytest.mark.parametrize("unary", [False, True])
def test_the_limit_leaves_no_key_to_a_variable_never_built(unary):
    b = ir.Builder(max_ops=3)
    x, y = b.input("x"), b.input("y")
    b.sin(x)
    make = (lambda: b.exp(y)) if unary else (lambda: b.mul(x, y))
    for _ in range(2):   # again: still refused, not a number past the end
        with pytest.raises(InputTooLarge):
            make()
    assert len(b.instrs) == 3 and all(v < 3 for v in b._memo.values())
    assert b.sin(x) == 2   # built before the limit: found, not refused


def test_name_copies_as_append_would():
    b = ir.Builder()
    x, two = b.input("x"), b.const(2.0)
    named = b.name(two, ir.Label("c", 1))
    assert b.instrs[named].op == "copy" and b.labels[named] == ir.Label("c", 1)
    assert b.const_value(named) == 2.0 and b.source_of(named) == two
    assert b.const_value(b.mul(named, b.const(3.0))) == 6.0   # folds through the copy
    s = b.sin(x)
    again = b.name(b.name(s, ir.Label("s", 1)), ir.Label("t", 2))
    assert b.source_of(again) == s and b.sin(again) == b.sin(s)   # hash-consed through copies
    # a fresh unnamed temporary is named in place
    mark = b.mark()
    e = b.exp(x)
    assert b.name(e, ir.Label("e", 1), since=mark) == e and b.labels[e] == ir.Label("e", 1)
    # the copy's flags are its source's and COPY (what the op methods look at)
    ref = ir.Builder()
    rx, rtwo = ref.input("x"), ref.const(2.0)
    rnamed = ref._append(ir.Instr("copy", (rtwo,), (), ()), ir.Label("c", 1))
    assert b._flags[named] == ref._flags[rnamed] and (b._copies[named], b._consts[named]) == (
        ref._copies[rnamed], ref._consts[rnamed])
