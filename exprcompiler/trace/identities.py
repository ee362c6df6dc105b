"""The trace builder's local identities: x + (-0.0) -> x, 1.0·x -> x, -(-x) -> x, ...

Where it sits: the Builder (trace/builder.py, and its op methods in builder_ops.py)
consults IDENTITIES before it appends an instruction, so every front end and pass
builds simplified traces. Each rule sees the builder (its instructions, constants
and sources), never changes it except through b.apply / b.const, and returns the
variable the operation equals or None. FIRES_ON says, as data, where each rule may
fire (the constants and negations it reads), for checks made without calling it.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional


# What the identities (and constant folding) look at, kept by the builder as one byte
# per variable (Builder._flags): whether it names a constant, a negation, or another
# variable (a copy), and whether it is not a scalar. Every rule below fires only when
# an argument is a constant or names a negation, so an operation on scalars with
# none of these flags is built as written (and, having no copies, is keyed by its
# own arguments): the builder's fast path skips the rules for it.
CONST, NEG, COPY, SHAPED = 1, 2, 4, 8


def _signed_zero(value: Optional[float], sign: float) -> bool:
    """Whether a constant is the zero of this sign (1.0: +0.0, -1.0: -0.0)."""
    return value == 0.0 and math.copysign(1.0, value) == sign


# -- the builder's identities --------------------------------------------------------
# One function per op: (builder, args, their constant values or None, result shape,
# attrs) -> the variable the operation equals, or None to build it. Zeros drop out
# only where IEEE agrees for both signs of x: x + (-0.0) and x - 0.0 are x, and
# -0.0 - x is -x; but x + 0.0 is +0.0 at x = -0.0, and 0.0 - x is +0.0 at x = 0.0,
# where -x is -0.0 (1/(x + 0) must stay +inf).

def _keep(b, var: int, shape: tuple) -> Optional[int]:
    """An identity may drop the other operand only if shapes agree."""
    return var if b.instrs[var][3] == shape else None   # (its shape: by position, as in the fast path)


def _negated(b, var: int) -> Optional[int]:
    """x when `var` names -x (through copies), else None."""
    return b.instrs[b._copies.get(var, var)][1][0] if b._flags[var] & NEG else None


def _pull_negation(b, opname: str, args) -> Optional[int]:
    """-(a)·b -> -(a·b), in derivative passes: exact, and lets rules' signs cancel;
    named lines (v̄_3 = −v̄_4) stay as they are."""
    flags = b._flags
    if not b.pull_negations or not (flags[args[0]] | flags[args[1]]) & NEG:
        return None
    instrs = b.instrs
    for i in (0, 1):
        if not flags[args[i]] & NEG:
            continue
        s = b.source_of(args[i])
        src = instrs[s]
        if b.labels[s] is None and src[3] == instrs[args[i]][3]:   # (shapes)
            inner = [src[1][0] if k == i else args[k] for k in (0, 1)]
            return b.apply("neg", b.apply(opname, *inner))
    return None


def _id_add(b, args, consts, shape, attrs):
    # (the cheap tests inline, the calls only where they can hold: the builder's fast
    # path calls this for every sum with a constant or negated argument)
    c0, c1 = consts
    if c1 == 0.0 and _signed_zero(c1, -1.0):
        return _keep(b, args[0], shape)
    if c0 == 0.0 and _signed_zero(c0, -1.0):
        return _keep(b, args[1], shape)
    flags = b._flags
    if flags[args[1]] & NEG:
        return b.apply("sub", args[0], _negated(b, args[1]))
    if flags[args[0]] & NEG:
        return b.apply("sub", args[1], _negated(b, args[0]))
    return None


def _id_sub(b, args, consts, shape, attrs):
    if _signed_zero(consts[1], 1.0):
        return _keep(b, args[0], shape)
    if _signed_zero(consts[0], -1.0) and shape == b.instrs[args[1]][3]:
        return b.apply("neg", args[1])
    x = _negated(b, args[1])
    if x is not None:
        return b.apply("add", args[0], x)
    return None


def _id_mul(b, args, consts, shape, attrs):
    pull = b.pull_negations   # (derivative passes only: front ends keep what was written)
    for i in (0, 1):
        c = consts[i]
        if c is None:
            continue
        other = args[1 - i]
        if c == 1.0:
            return _keep(b, other, shape)
        if c == -1.0 and shape == b.instrs[other][3]:
            return b.apply("neg", other)
        # (_scale_constant's first test, here: most are not products)
        if pull and b.instrs[b._copies.get(other, other)][0] == "mul":
            folded = _scale_constant(b, c, other, shape)
            if folded is not None:
                return folded
    if pull and (b._flags[args[0]] | b._flags[args[1]]) & NEG:   # (_pull_negation's first test)
        return _pull_negation(b, "mul", args)
    return None


def scales_exactly(c: float) -> bool:
    """Whether _scale_constant folds a factor c: a finite nonzero power of two (scaling
    by one is exact). passes/reverse_bulk_fold.py asks the same of the bulk sweep's
    products."""
    return c != 0.0 and math.isfinite(c) and math.frexp(c)[0] in (0.5, -0.5)


def _scale_constant(b, c, var, shape):
    """c·(k·x) as (c·k)·x when c is a power of two: scaling by one is exact, so both
    give the same bits (up to over- and underflow of k·x itself, which the folded form
    avoids). A derivative's 0.5·(2·r) of a ½‖r‖² becomes r."""
    src = b.instrs[b._copies.get(var, var)]   # (the cheaper test first: most are not products)
    if src[0] != "mul" or src[3] != shape:
        return None
    if not scales_exactly(c):
        return None
    for i, j in ((0, 1), (1, 0)):
        k = b._consts.get(src[1][i])
        if k is not None and math.isfinite(c * k):
            return b.apply("mul", b.const(c * k), src[1][j])
    return None


def _id_div(b, args, consts, shape, attrs):
    if consts[1] == 1.0:
        return _keep(b, args[0], shape)
    return _pull_negation(b, "div", args)


def _id_pow(b, args, consts, shape, attrs):
    return _keep(b, args[0], shape) if consts[1] == 1.0 else None


def _id_neg(b, args, consts, shape, attrs):
    if not b._flags[args[0]] & NEG:
        return None
    src = b.instrs[b.source_of(args[0])]
    return src[1][0] if src[3] == shape else None


def _id_reshaping(b, args, consts, shape, attrs):
    # nothing to broadcast, sum or reshape
    return args[0] if b.instrs[args[0]][3] == shape and not attrs.get("axis") else None


def _id_transpose(b, args, consts, shape, attrs):
    return args[0] if len(shape) < 2 else None   # x.T of a scalar or a vector is x, as in NumPy


IDENTITIES = {"add": _id_add, "sub": _id_sub, "mul": _id_mul, "div": _id_div, "pow": _id_pow,
               "neg": _id_neg, "broadcast_to": _id_reshaping, "sum_to": _id_reshaping,
               "reshape": _id_reshaping, "transpose": _id_transpose}


class Fires(NamedTuple):
    """Where an op's rule above may fire, as data: for the checks that settle many
    operations at once without calling it (builder_load._surely_as_written, in
    NumPy over a whole trace). Outside these cases the rule returns None (an op
    without an entry: anywhere). tests/test_identity_data.py holds every rule to
    what its entry says, so a new case in a rule needs its entry here."""

    constants: tuple    # a constant argument of one of these values (compared by ==: 0.0 is either zero)
    const_at: tuple     # ... at one of these positions
    negated_at: tuple   # an argument that names a negation, at one of these positions
    pulled: bool        # with pull_negations, it may fire elsewhere too (not settled by this entry)


FIRES_ON = {"add": Fires((0.0,), (0, 1), (0, 1), False),
            "sub": Fires((0.0,), (0, 1), (1,), False),
            "mul": Fires((1.0, -1.0), (0, 1), (), True),
            "div": Fires((1.0,), (1,), (), True),
            "pow": Fires((1.0,), (1,), (), False),
            "neg": Fires((), (), (0,), False)}
