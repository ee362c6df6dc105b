"""identities.FIRES_ON, the data that says where each builder rule may fire, held to
the rules themselves: for every argument pattern outside what an entry says (a
constant of another value, an argument that is not negated, at each position),
the rule returns None and builds nothing, and the op's method builds the operation
as written. builder_load settles instructions in NumPy by this data
(_surely_as_written), so a rule that fires where its entry does not say would let
the load keep what the replay rewrites."""

from __future__ import annotations

import itertools
import math

import pytest

from exprcompiler import ops as _ops
from exprcompiler.trace import identities, ir
from exprcompiler.trace.identities import FIRES_ON, IDENTITIES

VALUES = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -2.0, 3.0, math.inf, -math.inf, math.nan]


def _pool(b):
    """name -> variable: inputs, constants, a negation, products, a named copy."""
    x, y = b.input("x"), b.input("y")
    pool = {"x": x, "y": y, "-x": b.neg(x), "x*y": b.mul(x, y), "2*x": b.mul(b.const(2.0), x),
            "copy of -y": b.name(b.neg(y), ir.Label("v", 7))}
    for v in VALUES:
        pool[f"const {v!r}"] = b.const(v)
    return pool


def _may_fire(b, fires, args) -> bool:
    if fires.pulled and b.pull_negations:
        return True
    for k in fires.const_at:
        value = b.const_value(args[k])
        if value is not None and any(value == c for c in fires.constants):
            return True
    return any(b._flags[args[k]] & identities.NEG for k in fires.negated_at)


def violations(pull: bool) -> list:
    """The (op, arguments) where a rule fires, or its method does not build as
    written, though FIRES_ON says its rule cannot fire there."""
    found = []
    for name, fires in FIRES_ON.items():
        arity = _ops.OPS[name].arity
        b = ir.Builder(pull_negations=pull)
        pool = _pool(b)
        for names in itertools.product(pool, repeat=arity):
            args = tuple(pool[n] for n in names)
            consts = tuple(b.const_value(a) for a in args)
            if None not in consts or _may_fire(b, fires, args):
                continue   # (folded, or the data says it may fire)
            n = len(b.instrs)
            if IDENTITIES[name](b, args, consts, (), {}) is not None or len(b.instrs) != n:
                found.append((name, names, "rule"))
                continue
            var = b.apply(name, *args)
            ins = b.instrs[var]
            written = tuple(b.source_of(a) for a in args)
            built = tuple(b.source_of(a) for a in ins.args)
            if ins.op != name or sorted(built) != sorted(written) or (name not in ("add", "mul") and built != written):
                found.append((name, names, "method"))
    return found


def test_every_entry_is_a_rule():
    assert set(FIRES_ON) <= set(IDENTITIES)
    for name, fires in FIRES_ON.items():
        arity = _ops.OPS[name].arity
        assert all(0 <= k < arity for k in (*fires.const_at, *fires.negated_at))


@pytest.mark.parametrize("pull", [False, True])
def test_rules_fire_only_where_their_entry_says(pull):
    assert violations(pull) == []


def test_a_rule_that_fires_elsewhere_is_caught(monkeypatch):
    # (the check can fail: x**2 -> x*x, a rule FIRES_ON does not know)
    rule = IDENTITIES["pow"]

    def squares(b, args, consts, shape, attrs):
        if consts[1] == 2.0:
            return b.mul(args[0], args[0])
        return rule(b, args, consts, shape, attrs)
    monkeypatch.setitem(IDENTITIES, "pow", squares)
    assert ("pow", ("x", "const 2.0"), "rule") in violations(False)
