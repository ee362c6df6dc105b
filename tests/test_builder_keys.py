"""The builder's hash-consing keys (trace.builder_ops.op_key): one int per operation
on one or two variables below the keys' radix, a tuple otherwise; the fast methods,
the general path (Builder._apply) and the bulk load (builder_load) make the same key
for the same operation, so each finds what the others built."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.trace import ir
from exprcompiler.trace.builder_load import load
from exprcompiler.trace.builder_ops import KEY_RADIX, key_code, op_key
from exprcompiler.trace.identities import CONST, NEG

_R = KEY_RADIX
_NUMBERS = st.one_of(st.integers(0, 50), st.integers(_R - 50, _R + 50), st.integers(0, 3 * _R))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["sin", "exp", "sub", "div", "maximum", "pow"]),
                          st.lists(_NUMBERS, min_size=1, max_size=2)), min_size=2, max_size=6))
def test_keys_tell_operations_apart(operations):
    # an int wherever every argument is below the radix, a tuple otherwise, and
    # two keys are equal only for one op name on the same arguments
    keys = {}
    for opname, sources in operations:
        key = op_key(opname, tuple(sources))
        assert isinstance(key, int) == all(s < _R for s in sources)
        keys.setdefault(key, set()).add((opname, tuple(sources)))
    assert all(len(ops) == 1 for ops in keys.values())


def test_keys_at_the_radix_and_of_both_arities():
    assert op_key("sub", (0, _R - 1)) != op_key("sub", (1, 0))   # the radix leaves no overlap
    assert op_key("sub", (_R - 1, _R - 1)) < key_code("sub", 2) + _R * _R
    assert op_key("sub", (_R, 0)) == ("sub", _R, 0) and op_key("sin", (_R,)) == ("sin", _R)
    # one op name taking one or two arguments has a code for each
    assert op_key("add", (5,)) != op_key("add", (5, 0)) and key_code("add", 1) != key_code("add", 2)


def _ops_on(b: ir.Builder, xs, steps, apply):
    """The variables after `steps` applied, and each step's (op name, arguments)."""
    vars_, calls = list(xs), []
    for opname, i, j in steps:
        args = (vars_[i % len(vars_)], vars_[j % len(vars_)]) if opname in ("add", "mul", "sub", "div") \
            else (vars_[i % len(vars_)],)
        calls.append((opname, args))
        vars_.append(apply(b, opname, *args))
    return vars_, calls


_STEPS = st.lists(st.tuples(st.sampled_from(["add", "mul", "sub", "div", "sin", "neg", "exp"]),
                            st.integers(0, 30), st.integers(0, 30)), max_size=40)


def _fresh():
    b = ir.Builder(pull_negations=True)
    xs = [b.input(nm) for nm in "xyz"] + [b.name(b.input("w"), "w2"), b.const(2.0)]
    return b, xs


def _fast(b, opname, *args):
    return getattr(b, opname)(*args)


def _general(b, opname, *args):
    return b._apply(opname, args, {})


@settings(max_examples=150, deadline=None)
@given(steps=_STEPS, mixed=st.lists(st.booleans(), min_size=40, max_size=40))
def test_fast_and_general_paths_make_one_key(steps, mixed):
    # each operation built once by the fast method and once by the general path, in
    # either order, is one variable; and a builder made by either path alone, or by
    # both mixed, holds the same keys (on copies, negations, constants, commuted args)
    b1, xs1 = _fresh()
    v1 = _ops_on(b1, xs1, steps, _fast)
    b2, xs2 = _fresh()
    v2 = _ops_on(b2, xs2, steps, _general)
    b3, xs3 = _fresh()
    pick = itertools.cycle(mixed)
    v3 = _ops_on(b3, xs3, steps, lambda b, *a: (_fast if next(pick) else _general)(b, *a))
    assert v1 == v2 == v3
    assert repr(b1.instrs) == repr(b2.instrs) == repr(b3.instrs)
    assert b1._memo == b2._memo == b3._memo
    calls = v1[1]
    for b, other in ((b1, _general), (b2, _fast)):   # again, the other way: found, nothing appended
        n = len(b.instrs)
        for opname, args in calls:
            assert other(b, opname, *args) == _fast(b, opname, *args)
            if opname in ("add", "mul") and not (b._flags[args[0]] | b._flags[args[1]]) & (CONST | NEG):
                # (commuted: where no identity rewrites it first, -a + -b is a different sub)
                assert other(b, opname, *args[::-1]) == _fast(b, opname, *args)
        assert len(b.instrs) == n


@settings(max_examples=60, deadline=None)
@given(steps=_STEPS)
def test_a_builder_at_the_keys_radix_goes_on_through_the_general_path(steps):
    # past Builder._keyroom the fast methods leave every call to the general path:
    # the same variables, instructions and keys as below it
    b1, xs1 = _fresh()
    b2, xs2 = _fresh()
    b2._keyroom = 3
    assert _ops_on(b1, xs1, steps, _fast) == _ops_on(b2, xs2, steps, _fast)
    assert repr(b1.instrs) == repr(b2.instrs) and b1._memo == b2._memo


def test_the_bulk_load_makes_the_methods_keys():
    # load's keys (NumPy, all at once) are the ones the methods would look up: every
    # operation of the loaded trace, applied again, is found, not appended
    for trace in (to_trace("sin(x) * y + (x + y) * cos(y) - exp(x * y) / y"),
                  grad_reverse(to_trace("x * y * sin(x) + (y - x) ** 2"))):
        b = ir.Builder(pull_negations=True)
        assert load(b, trace)
        n = len(b.instrs)
        for i, ins in enumerate(trace.instrs):
            if ins.op not in ("input", "const", "copy"):
                assert getattr(b, ins.op)(*ins.args) == i
                if ins.op in ("add", "mul"):
                    assert getattr(b, ins.op)(*ins.args[::-1]) == i
        assert len(b.instrs) == n


def test_new_ops_met_by_threads_at_once_get_codes_of_their_own(monkeypatch):
    """key_code hands out each (op, number of arguments) its own code even when
    threads meet new ones at once (a shared code would make one op's operations
    another's). The count of codes so far is made slow, so that without the lock
    every thread would read the same count before any stores its code."""
    import threading
    import time
    from exprcompiler.trace import builder_ops
    monkeypatch.setattr(builder_ops, "_KEY_CODES", {})

    def slow_len(x):
        n = len(x)
        time.sleep(0.01)   # (the count read, not yet stored: another thread runs)
        return n
    monkeypatch.setattr(builder_ops, "len", slow_len, raising=False)
    start = threading.Barrier(4)

    def meet(name):
        start.wait()
        builder_ops.key_code(name, 1)
    threads = [threading.Thread(target=meet, args=(f"xc_op_{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = builder_ops._KEY_CODES
    assert len(codes) == 4 and len(set(codes.values())) == 4
