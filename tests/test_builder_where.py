"""The builder's fast path for where() (trace.builder_ops._ternary_method) builds exactly
what the general path (Builder._apply) builds: the same instructions, hash-consing
keys, constants, copies, flags and errors, on random calls (constant and variable
conditions, equal branches, nested wheres, copies, numbers of every type, tensors,
shapes that do not broadcast, arguments out of range, the input-size limit), and the
same gradients of where formulas. Not timed (benchmarks/bench_where.py)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from exprcompiler import to_trace
from exprcompiler.errors import InputTooLarge
from exprcompiler.passes import grad_reverse
from exprcompiler.trace import builder, builder_ops, ir

_NUMBERS = (0.0, -0.0, 1.0, -1.0, 2.5, math.nan, math.inf, True, False, np.float64(0.5), 3)


def _general(b, c, x, y):
    return b._apply("where", (c, x, y), {})


def _state(b):
    # repr: a NaN constant is not == another NaN; an Instr or a plain tuple (after
    # Builder.plain_tuples, which the general path does not read) is the same instruction
    return repr(([tuple(ins) for ins in b.instrs], b.labels, bytes(b._flags), b._consts, b._copies, b._memo, b._scalar_consts))


def _run(seed: int, where, tensors: bool, plain: bool = False, max_ops=None):
    """A random program of where calls and the operations around them, on a new
    builder; `where` makes each where. Returns (the builder's state, what each call
    gave or raised)."""
    rnd = random.Random(seed)
    b = ir.Builder(max_ops=max_ops)
    if plain:
        b.plain_tuples()
    vs = [b.input(name) for name in ("x", "y", "z")]
    if tensors:
        vs += [b.input("u", (3,)), b.input("w", (2,)), b.input("m", (2, 3))]
    vs.append(b.const(0.0))
    out = []

    def arg():
        k = rnd.randrange(10)
        if k == 0:
            return rnd.choice(_NUMBERS)
        if k == 1 and rnd.random() < 0.2:
            return rnd.choice((-1, len(b.instrs) + rnd.randrange(3)))   # not a variable
        return rnd.choice(vs[-8:]) if rnd.random() < 0.5 else rnd.choice(vs)

    for _ in range(rnd.randrange(5, 40)):
        step = rnd.randrange(8)
        try:
            if step == 0:   # a condition
                v = b.gt(rnd.choice(vs), rnd.choice(vs))
            elif step == 1:   # a copy (a named line)
                v = b.name(rnd.choice(vs), ("v", len(b.instrs)))
            elif step == 2:
                v = b.neg(rnd.choice(vs))
            elif step == 3:   # equal branches
                x = arg()
                v = where(b, arg(), x, x)
            elif step == 4:   # a constant condition
                v = where(b, rnd.choice(_NUMBERS[:7]), arg(), arg())
            elif step == 5:   # a mask, as reverse mode makes it
                v = where(b, arg(), arg(), 0.0) if rnd.random() < 0.5 else where(b, arg(), 0.0, arg())
            else:   # nested wheres, repeated ones (hash-consed)
                v = where(b, arg(), arg(), arg())
            out.append(v)
            if type(v) is int:
                vs.append(v)
        except Exception as e:   # the same error, with the same text, from either path
            out.append((type(e).__name__, str(e)))
    return _state(b), out


@pytest.mark.parametrize("tensors", [False, True])
def test_random_where_calls_build_what_the_general_path_builds(tensors):
    errors = 0
    for seed in range(300):
        fast = _run(seed, ir.Builder.where, tensors)
        general = _run(seed, _general, tensors)
        assert fast == general, seed
        errors += sum(type(v) is tuple for v in fast[1])
    assert errors   # (the programs do meet bad arguments and shapes)


def test_apply_and_op_call_take_the_fast_path_too():
    assert ir.Builder.where is builder_ops._FAST_METHODS.wide("where")
    assert ir.Builder.op_call("where") is ir.Builder.where
    for seed in range(100):
        want = _run(seed, _general, True)
        assert _run(seed, lambda b, *a: b.apply("where", *a), True) == want
        assert _run(seed, lambda b, *a: b.op_call("where")(b, *a), True) == want


def test_plain_tuples_and_the_input_size_limit():
    hit = False
    for seed in range(100):
        assert _run(seed, ir.Builder.where, False, plain=True) == _run(seed, _general, False, plain=True)
        fast = _run(seed, ir.Builder.where, False, max_ops=12)
        assert fast == _run(seed, _general, False, max_ops=12)
        hit |= any(type(v) is tuple and v[0] == InputTooLarge.__name__ for v in fast[1])
    assert hit


def test_keys_shared_with_the_general_path():
    b = ir.Builder()
    x, y = b.input("x"), b.input("y")
    c = b.gt(x, y)
    v = b.where(c, x, 0.0)
    assert _general(b, c, x, 0.0) == v and b.where(b.name(c, "c"), b.name(x, "x1"), 0.0) == v
    w = _general(b, c, y, x)
    assert b.where(c, y, x) == w and b.where(c, x, y) != w
    assert b.const_value(b.where(1.0, 2.0, 3.0)) == 2.0 and b.const_value(b.where(0.0, 2.0, 3.0)) == 3.0
    assert b.const_value(b.where(math.nan, 2.0, 3.0)) == 2.0   # (NaN is nonzero)
    n = len(b.instrs)
    assert b.where(1.0, x, y) == b.where(1.0, x, y) == n and b.where(c, x, x) == n + 1   # built as written
    assert [ins.op for ins in b.instrs[n:]] == ["where", "where"]


def _where_formulas(count: int):
    rnd = random.Random(7)
    leaves = ["x", "y", "z", "2.0", "0.5", "-1.0"]
    conds = ["x > 0", "y < z", "x > y", "z >= 0.5", "1.0", "0.0"]

    def expr(depth):
        if depth == 0 or rnd.random() < 0.25:
            return rnd.choice(leaves)
        k = rnd.randrange(6)
        a, c = expr(depth - 1), expr(depth - 1)
        if k < 3:
            return f"where({rnd.choice(conds)}, {a}, {c})"
        if k == 3:
            return f"where({rnd.choice(conds)}, {a}, {a})"
        return rnd.choice(["sqrt(abs({}) + 1.0) * {}", "log(1.0 + ({})**2) - {}", "exp(-({})) + {}"]).format(a, c)
    return [f"{expr(4)} + x * y * z" for _ in range(count)]


def test_gradients_of_where_formulas_are_the_general_paths(monkeypatch):
    formulas = _where_formulas(60)

    def everything():
        out = []
        for text in formulas:
            trace = to_trace(text)
            grad = grad_reverse(trace)
            out.append(repr((trace.instrs, trace.labels, grad.instrs, grad.labels, grad.outputs)))
        return out

    fast = everything()
    with monkeypatch.context() as m:
        general = builder_ops._general_method("where")
        m.setattr(ir.Builder, "where", general)
        m.setattr(builder, "_FAST_METHODS", builder_ops._FastMethods(enabled=False))
        assert ir.Builder.op_call("where") is not builder_ops._FAST_METHODS.wide("where")
        assert everything() == fast


def test_zero_constants_found_by_their_keys():
    # (Builder.const finds ±0.0 by a key made once: the key the general path makes)
    b = ir.Builder()
    zero, minus = b.const(0.0), b.const(-0.0)
    assert zero != minus and b.const(0.0) == zero and b.const(-0.0) == minus and b.const(0) == zero
    assert b._memo[("const", repr(0.0), ())] == zero and b._memo[("const", repr(-0.0), ())] == minus
    assert b.const(0.0, (2,)) not in (zero, minus)
    b.release()   # (no longer shares: a new zero, as before)
    assert b.const(0.0) == len(b.instrs) - 1 != zero
