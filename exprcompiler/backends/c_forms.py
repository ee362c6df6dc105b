"""C backend, the trace as a C kernel and the tape VM compute it: one rule for both, so
that both give the same bits. x**2 becomes x*x (`squares`, also the tensor kernels'
rule); `c_forms` adds the shared forms, ops that C computes from the steps of another op
of the same value where a kernel has both (a value and its derivative): expm1 and exp
from one argument reduction, sinh and cosh likewise, arcsinh's and arccosh's slope
terms from the value's own steps (and expm1(0.0 - x) beside log1mexp(x): its slope is
the op log1mexp_slope, which C computes by xc_log1mexp's steps without this pass),
log(1 - x) from 1 - x; and hypot's partials hypot_slope(x, y, h) as x / h where h is
the kernel's own hypot (`hypot_quotients`, the NumPy backend's too), and hypot3's partials
hypot3_guard(hypot3_slope0(x, y, z), h, s) as where(r == 0, 0, over_norm(x, h, s)) likewise;
and sigmoid(u) * sigmoid(-u), sigmoid's slope, as sigmoid_slope_shared(u), from the exp
and division of the kernel's sigmoid(u) (_sigmoid_slopes). Each shared form is an op of the
op table that is not callable by name (ops.py: expm1_shared, ..., log1m_shared),
with a NumPy reference and its C helper in c_exp.py / c_special.py.

Where it sits: generate_c (c_backend.py) and the tape VM's encoder (vm_backend.py) apply
c_forms to the trace they are given, after the passes; c_tensor applies squares.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import chain

from ..trace.ir import Instr, Trace


def squares(trace: Trace) -> Trace:
    """x**2 as x*x: what NumPy computes for an array (its power() takes that fast
    path), exact, and far cheaper than a call to pow (Rosenbrock's value in 100
    variables: 5.3 µs with pow, 1.4 µs without)."""
    return _forms(trace, False)


def c_forms(trace: Trace) -> Trace:
    """The trace as the C kernel and the tape VM compute it, one rule for both so that
    both give the same bits: x**2 as x*x (squares), and expm1 and exp of one value (expm1
    and its derivative) as expm1_shared and exp_shared, which c_exp computes from one
    argument reduction that gcc does once, sinh and cosh of one value likewise (sinh_shared
    and cosh_shared), the terms of log1mexp's, arcsinh's and arccosh's derivatives that
    C takes from the value's own steps (_slopes), and log1p(0.0 - x) from 1 - x
    (_log1m), xlogy's partial's where of a where without the inner one
    (_zero_at_zero), and sigmoid(u) * sigmoid(-u) as sigmoid_slope_shared(u)
    (_sigmoid_slopes). Alone, expm1 and exp keep their own faster forms (c_exp's xc_expm1,
    libmvec's exp). Both this and squares divide hypot's partials by the kernel's own
    hypot (hypot_quotients)."""
    return _forms(trace, True)


# Ops computed from one argument reduction where a kernel has both of one value (c_forms):
# op -> its family (the pair)
_PAIRED = {"exp": 0, "expm1": 0, "sinh": 1, "cosh": 1}


def _forms(trace: Trace, shared: bool) -> Trace:
    instrs = list(trace.instrs)
    exps: dict = {}   # (family, value) -> the instructions of the pair of it (through copies)
    for i, ins in enumerate(instrs):
        op = ins.op
        if op == "pow":
            e = instrs[ins.args[1]]
            if e.op == "const" and e.value == 2.0:
                instrs[i] = Instr("square", ins.args[:1], ins.attrs, ins.shape)
        elif shared and op in _PAIRED:
            exps.setdefault((_PAIRED[op], _copied(instrs, ins.args[0])), []).append(i)
    for group in exps.values():
        if len({instrs[i].op for i in group}) == 2:
            for i in group:
                ins = instrs[i]
                instrs[i] = Instr(ins.op + "_shared", ins.args, ins.attrs, ins.shape)
    _hypot_quotients(instrs)   # (before _slopes, which may make its hypot(1.0, x) hypot1_shared)
    if shared:
        _slopes(instrs)
        _log1m(instrs)
        _erfc_gaussians(instrs)   # erfc(u) beside exp(-square(u)): erfc_shared(u)
        _zero_at_zero(instrs)
        _sigmoid_slopes(instrs, trace.outputs)
    return Trace(instrs, trace.labels, trace.outputs, trace.source)


# the ops that hypot_quotients rewrites
QUOTIENT_OPS = frozenset(("hypot_slope", "hypot3_guard"))


def hypot_quotients(trace: Trace) -> Trace:
    """The trace with each hypot_slope(x, y, h) whose h is the kernel's hypot of x and y
    (1 where 0) as the quotient x / h (_hypot_quotients), and hypot3's partials likewise
    (hypot3_quotients); the NumPy backend's rewrite (numpy_backend._prepared_ops), the
    same trace where there is none."""
    if not any(ins.op in QUOTIENT_OPS for ins in trace.instrs):
        return trace
    instrs = list(trace.instrs)
    _hypot_quotients(instrs)
    return Trace(instrs, trace.labels, trace.outputs, trace.source)


def hypot3_quotients(instrs: list, guards=None) -> None:
    """In place: hypot3's partials (ops_special._over_norm3) as they were before they
    were ops: hypot3_guard(q, h, s) whose h = where(r == 0.0, 1.0, r), r a hypot3, as
    where(r == 0.0, 0.0, q), and each hypot3_slope<k> of r's arguments (in its order,
    through copies) as over_norm(its argument k, h, s), with that guard's h and s: the same
    instructions in the same places, so the first derivative's code and bits are
    over_norm's. A slope of a kernel without such a guard keeps its own form
    (c_nary.xc_hypot3_slope0...: over_norm's steps on a hypot3 of its own)."""
    hints: dict = {}   # hypot3's arguments, sorted -> (h, s)
    if guards is None:   # (the guards' places, where the caller has them)
        guards = [i for i, ins in enumerate(instrs) if ins.op == "hypot3_guard"]
    for i in guards:
        ins = instrs[i]
        q, h, s = ins.args
        r = _norm_behind(instrs, h, "hypot3")
        if r is not None:
            zero = instrs[_copied(instrs, h)].args[0]   # (r == 0.0: the where's own test)
            instrs[i] = Instr("where", (zero, instrs[_copied(instrs, zero)].args[1], q), ins.attrs, ins.shape)
            hints.setdefault(tuple(_copied(instrs, a) for a in instrs[r].args), (h, s))
    if not hints:
        return
    for i, ins in enumerate(instrs):
        k = _SLOPES.get(ins.op)
        if k is not None:
            hs = hints.get(tuple(_copied(instrs, a) for a in ins.args))
            # (only after h and s: a slope that a derivative of the slope op itself made
            # before them, reading a guard its own second sweep made, keeps its form)
            if hs is not None and max(hs) < i:
                instrs[i] = Instr("over_norm", (ins.args[k],) + hs, ins.attrs, ins.shape)


_SLOPES = {"hypot3_slope0": 0, "hypot3_slope1": 1, "hypot3_slope2": 2}   # op -> its numerator


def _hypot_quotients(instrs: list) -> None:
    """In place: hypot_slope(x, y, h) (hypot's partial x/hypot, ops_special) as x / h where
    h = where(r == 0.0, 1.0, r) and r = hypot(x, y) or hypot(y, x) (through copies), as
    hypot's gradient makes it: the instructions and bits hypot's first derivative had
    before it was an op (within the where that gives 0 at r = 0; at r = 0, x / h is x,
    ±0). The op's own form (c_special.xc_hypot_slope) computes hypot itself. Then
    hypot3's partials likewise (hypot3_quotients)."""
    guards = []
    for i, ins in enumerate(instrs):
        if ins.op != "hypot_slope":
            if ins.op == "hypot3_guard":
                guards.append(i)
            continue
        x, y, h = (_copied(instrs, v) for v in ins.args)
        r = _norm_behind(instrs, h, "hypot")
        if r is not None and tuple(_copied(instrs, v) for v in instrs[r].args) in ((x, y), (y, x)):
            instrs[i] = Instr("div", (ins.args[0], ins.args[2]), ins.attrs, ins.shape)
    if guards:
        hypot3_quotients(instrs, guards)


def _norm_behind(instrs: list, h: int, op: str):
    """r where h is where(r == 0.0, 1.0, r) and r an `op` (through copies), as the
    gradients of hypot and hypot3 make their divisor (ops_special); else None."""
    w = instrs[_copied(instrs, h)]
    if w.op != "where" or not _is_const(instrs, w.args[1], 1.0):
        return None
    r = _copied(instrs, w.args[2])
    test = instrs[_copied(instrs, w.args[0])]
    if (instrs[r].op == op and test.op == "eq" and _copied(instrs, test.args[0]) == r
            and _is_const(instrs, test.args[1], 0.0)):
        return r
    return None


def _log1m(instrs: list) -> None:
    """In place: log1p(0.0 - x) (log(1 - x) rewritten) as log1m_shared(x), and after it
    1.0 + (0.0 - x), its derivative's denominator, as 1.0 - x (the same bits: 0.0 - x is
    exact), so that the gradient divides by the value's own 1 - x: gcc computes 1.0 / u
    once for both (c_special.xc_log1m_shared)."""
    of = set()
    for i, ins in enumerate(instrs):
        if ins.op == "log1p":
            x = _negated(instrs, ins.args[0])
            if x is not None:
                instrs[i] = Instr("log1m_shared", (x,), ins.attrs, ins.shape)
                of.add(x)
        elif ins.op == "add" and of:
            for k in (0, 1):
                x = _negated(instrs, ins.args[1 - k]) if _is_const(instrs, ins.args[k], 1.0) else None
                if x in of:
                    instrs[i] = Instr("sub", (ins.args[k], x), ins.attrs, ins.shape)
                    break


def _zero_at_zero(instrs: list) -> None:
    """In place: where(x == 0, where(t == t, t + 0.0, 0.0), t) as where(x == 0, 0.0, t)
    where t = x / y, x * y or y * x (xlogy's partial in x: x*log(x)'s gradient). At x = +-0
    t is +-0 or NaN, so the inner where is +0.0 there: the same bits, without two
    comparisons, a select and an addition (value and gradient of x*log(x) on [0.1, 3],
    16,384 points in cache: 1.09-1.10x -> 0.99-1.02x the naive form, load 11)."""
    def node(v):
        return instrs[_copied(instrs, v)]

    for i, ins in enumerate(instrs):
        if ins.op != "where":
            continue
        c, w, t = (_copied(instrs, a) for a in ins.args)
        cond, inner, tv = instrs[c], instrs[w], instrs[t]
        if cond.op != "eq" or inner.op != "where" or tv.op not in ("div", "mul"):
            continue
        zeros = [k for k in (0, 1) if node(cond.args[k]).op == "const" and node(cond.args[k]).value == 0.0]
        x = _copied(instrs, cond.args[1 - zeros[0]]) if zeros else None
        operands = [_copied(instrs, a) for a in tv.args]
        if x is None or x not in (operands[:1] if tv.op == "div" else operands):
            continue
        e, a, z = (_copied(instrs, v) for v in inner.args)
        plus = instrs[a]
        if (instrs[e].op == "eq" and [_copied(instrs, v) for v in instrs[e].args] == [t, t] and plus.op == "add"
                and _is_const(instrs, z, 0.0) and any(_copied(instrs, plus.args[k]) == t
                                                      and _is_const(instrs, plus.args[1 - k], 0.0) for k in (0, 1))):
            instrs[i] = Instr("where", (ins.args[0], z, ins.args[2]), ins.attrs, ins.shape)


def _sigmoid_slopes(instrs: list, outputs) -> None:
    """In place: sigmoid(u) * sigmoid(-u) (either order; -u a negation, or 0.0 - u) as
    sigmoid_slope_shared(u), with u the argument of the factor the kernel reads elsewhere (its
    value: sigmoid's derivative v (1 - v) became v sigmoid(-x) by the stability rule
    one_minus_sigmoid, 1 - sigmoid(x)'s is sigmoid(-x) sigmoid(x)): C takes it from that
    sigmoid's exp and division (c_exp.xc_sigmoid_slope_shared), one division where the
    product had two. (The op sigmoid_slope, the rule sigmoid_pair's, is another form: w·(1 -
    w), w = e/(1 + e), e = exp(-|u|), whose division its derivative shares, where no
    sigmoid(u) is.)"""
    sigmoids = {i for i, ins in enumerate(instrs) if ins.op == "sigmoid"}
    if len(sigmoids) < 2:
        return
    # instruction -> how many instructions and outputs read it (through copies)
    reads = Counter(_copied(instrs, a) for a in chain((a for ins in instrs for a in ins.args), (v for _, v in outputs)))

    def negation(v: int):   # the value v negates (through copies), or None
        n = instrs[_copied(instrs, v)]
        return _copied(instrs, n.args[0]) if n.op == "neg" else _negated(instrs, v)

    for i, ins in enumerate(instrs):
        if ins.op != "mul":
            continue
        p, q = (_copied(instrs, a) for a in ins.args)
        if p not in sigmoids or q not in sigmoids:
            continue
        a, b = (_copied(instrs, instrs[k].args[0]) for k in (p, q))
        if negation(b) != a and negation(a) != b:
            continue
        # the factor read elsewhere (the value), else the first
        keep = q if reads.get(q, 0) > 1 and reads.get(p, 0) <= 1 else p
        instrs[i] = Instr("sigmoid_slope_shared", instrs[keep].args, ins.attrs, ins.shape)


def _negated(instrs, v: int):
    """The value x (through copies) when v = 0.0 - x, else None."""
    n = instrs[_copied(instrs, v)]
    return _copied(instrs, n.args[1]) if n.op == "sub" and _is_const(instrs, n.args[0], 0.0) else None


def _slopes(instrs: list) -> None:
    """In place: the derivative's own terms of log1mexp(x), arcsinh(x) and arccosh(x) as
    ops that C computes from the value's steps (c_special), where the trace has the value
    too: expm1(0.0 - x) (log1mexp's slope was -1/expm1(0.0 - x); a user's, now) as expm1_neg_shared(x),
    hypot(1.0, x) as hypot1_shared(x), sqrt(x - 1)·sqrt(x + 1) as acosh_root_shared(x)."""
    of = {op: {_copied(instrs, ins.args[0]) for ins in instrs if ins.op == op}
          for op in ("log1mexp", "arcsinh", "arccosh")}
    if not any(of.values()):
        return

    def node(v):
        return instrs[_copied(instrs, v)]

    for i, ins in enumerate(instrs):
        x = None
        if ins.op == "expm1" and of["log1mexp"]:
            if _negated(instrs, ins.args[0]) in of["log1mexp"]:
                x, op = node(ins.args[0]).args[1], "expm1_neg_shared"
        elif ins.op == "hypot" and of["arcsinh"]:
            for k in (0, 1):
                if _is_const(instrs, ins.args[k], 1.0) and _copied(instrs, ins.args[1 - k]) in of["arcsinh"]:
                    x, op = ins.args[1 - k], "hypot1_shared"
        elif ins.op == "mul" and of["arccosh"]:
            p, q = node(ins.args[0]), node(ins.args[1])
            if p.op == "sqrt" and q.op == "sqrt":
                u, w = _minus_one(instrs, p.args[0]), _plus_one(instrs, q.args[0])
                if u is not None and w is not None and u == w and u in of["arccosh"]:
                    x, op = u, "acosh_root_shared"
        if x is not None:
            instrs[i] = Instr(op, (x,), ins.attrs, ins.shape)


def _minus_one(instrs, v: int):
    """The value x (through copies) when v = x - 1.0, else None."""
    n = instrs[_copied(instrs, v)]
    return _copied(instrs, n.args[0]) if n.op == "sub" and _is_const(instrs, n.args[1], 1.0) else None


def _plus_one(instrs, v: int):
    """The value x (through copies) when v = x + 1.0 or 1.0 + x, else None."""
    n = instrs[_copied(instrs, v)]
    if n.op != "add":
        return None
    for k in (0, 1):
        if _is_const(instrs, n.args[k], 1.0):
            return _copied(instrs, n.args[1 - k])
    return None


def _is_const(instrs, v: int, value: float) -> bool:
    """v is the scalar constant `value` (through copies), +0.0 not -0.0: 0.0 - x is -x but
    at x = +0.0."""
    c = instrs[_copied(instrs, v)]
    return c.op == "const" and c.value == value and math.copysign(1.0, c.value) == math.copysign(1.0, value)


def _erfc_gaussians(instrs: list) -> None:
    """In place: erfc(u) as erfc_shared(u) where the kernel also computes exp(-square(u))
    (of the same u, through copies: erfc's or erf's derivative), which c_erfc's xc_erfc
    computes as well, so that gcc computes it once for both. Alone, erfc keeps libmvec's."""
    gaussians = set()
    for ins in instrs:
        if ins.op == "exp":
            neg = instrs[_copied(instrs, ins.args[0])]
            if neg.op == "neg":
                square = instrs[_copied(instrs, neg.args[0])]
                if square.op == "square":
                    gaussians.add(_copied(instrs, square.args[0]))
    for i, ins in enumerate(instrs):
        if ins.op == "erfc" and _copied(instrs, ins.args[0]) in gaussians:
            instrs[i] = Instr("erfc_shared", ins.args, ins.attrs, ins.shape)


def _copied(instrs, v: int) -> int:
    """The value that v is a copy of (through copies of copies), or v."""
    while instrs[v].op == "copy":
        v = instrs[v].args[0]
    return v


__all__ = ["QUOTIENT_OPS", "c_forms", "hypot3_quotients", "hypot_quotients", "squares"]
