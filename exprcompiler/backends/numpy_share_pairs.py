"""The NumPy backend's pairs that are not a shared exp: expm1(x) with the exp(x) of its
derivative (_expm1_pairs), log1mexp(x) with the expm1(0.0 - x) or the slope of its
derivative (_log1mexp_pairs, _value_and_slope), sigmoid_slope(x) with its derivative
(_value_and_slope), each two or three rows of one call,
log1p(x) with its derivative's 1 + x (shared_sums), and xlogy(u, u) with its
derivative (xlogx_rows). numpy_shares.py's docstring lists the forms.

Where it sits: numpy_shares.shared_exps calls these on the gradient trace's
instructions and merges their entries with numpy_share_exps'; numpy_render spells
what the entries say.
"""

from __future__ import annotations

import numpy as np

from ..trace.ir import Instr, Trace
from .numpy_share_exps import _readers


def _expm1_pairs(instrs, outputs: set) -> dict[int, tuple]:
    """shared_exps' entries for expm1(x) and the exp(x) of its derivative (the op
    table's): one expm1_pair(x), whose derivative row costs no pass where the value is
    exp(x) - 1 (runtime_log1p.expm1_pair); or, where the expm1 is read only by a
    0.0 - expm1(x) (1 - exp(x) rewritten), that and the exp from one neg_expm1_pair(x),
    1 - exp(x) there, and the expm1 has no line (dead_rows)."""
    exps = {ins.args[0]: j for j, ins in enumerate(instrs) if ins.op == "exp"}
    mine = {i: ins.args[0] for i, ins in enumerate(instrs) if ins.op == "expm1" and ins.args[0] in exps}
    readers: dict[int, list[int]] = {i: [] for i in mine}
    for j, ins in enumerate(instrs):
        for a in ins.args:
            if a in readers:
                readers[a].append(j)
    pairs = {}
    for i, x in mine.items():
        j = readers[i][0] if len(readers[i]) == 1 and i not in outputs else None
        if j is not None and instrs[j].op == "sub" and instrs[j].args[1] == i and plus_zero(instrs[instrs[j].args[0]]):
            pairs[j] = (x, None, "neg_expm1_pair", False, 0)
            pairs[exps[x]] = (x, None, "neg_expm1_pair", False, 1)
        else:
            pairs[i] = (x, None, "expm1_pair", False, 0)
            pairs[exps[x]] = (x, None, "expm1_pair", False, 1)
    return pairs


def plus_zero(ins: Instr) -> bool:
    """Whether the instruction is the constant +0.0."""
    return ins.op == "const" and ins.value == 0.0 and np.signbit(ins.value) == 0


def _log1mexp_pairs(instrs, shared: dict) -> dict[int, tuple]:
    """shared_exps' entries for log1mexp(x) and the expm1(0.0 - x) its derivative
    -1/expm1(-x) divides by (the op table's): one log1mexp_pair(x), the value from that
    expm1 with no branch where NumPy's loops are SIMD (within a few ulps of the two
    calls', and as accurate), else the two calls' bits from one split of the points
    (runtime_elementwise.log1mexp_pair). An expm1 that another pair takes already is
    left to it. Where the derivative is 1.0 / expm1(0.0 - x) (a log1mexp at the top of
    the function, whose adjoint is the seed 1.0), that quotient is a third row of one
    log1mexp_rows(x) call: the value's own 1/t where it is -log1p(1/t), so that the
    gradient costs no division of its own."""
    minus = {}   # x -> the expm1 of +0.0 - x
    for m, ins in enumerate(instrs):
        if ins.op == "expm1" and m not in shared:
            d = instrs[ins.args[0]]
            if d.op == "sub":
                if plus_zero(instrs[d.args[0]]):
                    minus.setdefault(d.args[1], m)
    pairs = {}
    for i, ins in enumerate(instrs):
        x = ins.args[0] if ins.op == "log1mexp" else None
        if x in minus and i not in shared:
            pairs[i] = (x, None, "log1mexp_pair", False, 0)
            pairs[minus.pop(x)] = (x, None, "log1mexp_pair", False, 1)
    if pairs:
        _reciprocal_rows(instrs, pairs)
    return pairs


def _value_and_slope(instrs, shared: dict, value: str, slope: str, helper: str) -> dict[int, tuple]:
    """shared_exps' entries for an op `value`(x) and its derivative `slope`(x) (the op
    table's), both of the same x: the two rows of one `helper`(x) call. log1mexp with
    log1mexp_slope (log1mexp_slopes, runtime_elementwise: the slope -1/t from the value's
    own steps, the 1/t that the value is -log1p of where NumPy's loops are SIMD, so that a
    gradient costs no expm1 and no division of its own), sigmoid_slope with
    sigmoid_slope_slope (sigmoid_slopes, runtime_tanh: both from one tanh(x/2), where
    each alone would take its own)."""
    slopes = {ins.args[0]: j for j, ins in enumerate(instrs) if ins.op == slope and j not in shared}
    pairs = {}
    for i, ins in enumerate(instrs):
        if ins.op == value and ins.args[0] in slopes and i not in shared:
            x = ins.args[0]
            pairs[i] = (x, None, helper, False, 0)
            pairs[slopes.pop(x)] = (x, None, helper, False, 1)
    return pairs


def _reciprocal_rows(instrs, pairs: dict) -> None:
    """_log1mexp_pairs' third rows: each pair's first division of the constant 1.0 by its
    t row becomes row 2 of a log1mexp_rows call (the three rows' entries renamed)."""
    rows = {i: share[0] for i, share in pairs.items() if share[4] == 1}   # t -> x
    found = {}   # x -> the division
    for j, ins in enumerate(instrs):
        if ins.op == "div" and ins.args[1] in rows and _one(instrs, ins.args[0]):
            found.setdefault(rows[ins.args[1]], j)
    for i, (x, exp, _, passes, row) in list(pairs.items()):
        if x in found:
            pairs[i] = (x, exp, "log1mexp_rows", passes, row)
    for x, j in found.items():
        pairs[j] = (x, None, "log1mexp_rows", False, 2)


def _one(instrs, a: int) -> bool:
    """Whether variable a is the constant 1.0 (or a copy of it: the seed of an adjoint)."""
    while instrs[a].op == "copy":
        a = instrs[a].args[0]
    return instrs[a].op == "const" and instrs[a].value == 1.0


def shared_sums(trace: Trace) -> dict[int, tuple]:
    """{log1p instruction: (k, "", "log1p_of_sum", True)} where k, 1 + x or x + 1, comes
    later in the trace than log1p(x) (its derivative's, in either mode), so that every use
    of k follows the line that computes it there. Where x is 0.0 - y (log(1 - y)
    rewritten) read by those two alone, (k, "", "log1m_of_diff", "inner"): w = 1.0 - y
    is computed on its line, the log takes y and w, and 0.0 - y has no line (dead_rows)."""
    instrs = trace.instrs
    one = {i for i, ins in enumerate(instrs) if ins.op == "const" and ins.value == 1.0}
    sums = {}
    for k, ins in enumerate(instrs):
        if ins.op == "add" and len(ins.args) == 2 and (ins.args[0] in one) != (ins.args[1] in one):
            sums.setdefault(ins.args[1] if ins.args[0] in one else ins.args[0], []).append(k)
    shared = {}
    for i, ins in enumerate(instrs):
        if ins.op == "log1p":
            later = [k for k in sums.get(ins.args[0], ()) if k > i]
            if later:
                shared[i] = (later[0], "", "log1p_of_sum", True)
    differences = {}   # 0.0 - y -> its log1p
    for i in shared:
        d = instrs[i].args[0]
        if instrs[d].op == "sub" and plus_zero(instrs[instrs[d].args[0]]):
            differences[d] = i
    if differences:   # (rare: the readers of those only)
        readers = _readers(instrs, set(differences))
        outputs = {v for _, v in trace.outputs}
        for d, i in differences.items():
            if sorted(readers[d]) == [i, shared[i][0]] and d not in outputs:
                shared[i] = (shared[i][0], "", "log1m_of_diff", "inner")
    return shared


def xlogx_rows(instrs) -> dict[int, tuple]:
    """shared_exps' entries for xlogy(u, u) (u*log(u) made stable: stability/rules.py
    "xlogx") and its derivative as reverse mode writes it at the top of the gradient
    (the seed 1.0: no product), add(where(u == 0.0, where(d == d, d + 0.0, 0.0), d),
    log(u)) with d = u / u: both rows of one `p1 = xlogx_rows(u)` (runtime_xlogy), the
    same bits with one reduction a block where the lines took a comparison, two tests of
    it and a division. The partials' own order only (the quotient's where first: with
    two NaNs the sum is the first's), and +0.0 constants. dead_rows drops the lines
    that only the derivative read."""
    pairs = {}
    values = {ins.args[0]: i for i, ins in enumerate(instrs) if ins.op == "xlogy" and ins.args[0] == ins.args[1]}
    for j, ins in enumerate(instrs):
        if ins.op != "add" or not values:
            continue
        w, log = (instrs[a] for a in ins.args)
        if log.op != "log" or log.args[0] not in values or w.op != "where":
            continue
        u = log.args[0]
        zero, kept, d = (instrs[a] for a in w.args)
        if (zero.op == "eq" and zero.args[0] == u and plus_zero(instrs[zero.args[1]])
                and d.op == "div" and d.args == (u, u) and kept.op == "where" and _kept_nan(instrs, kept, w.args[2])):
            pairs[values[u]] = (u, None, "xlogx_rows", False, 0)
            pairs[j] = (u, None, "xlogx_rows", False, 1)
    return pairs


def _kept_nan(instrs, where: Instr, d: int) -> bool:
    """Whether `where` is where(d == d, d + 0.0, 0.0), +0.0 both (the kept where of
    xlogy's partial in y: 0.0 where d is NaN)."""
    same, plus, zero = (instrs[a] for a in where.args)
    return (same.op == "eq" and same.args == (d, d) and plus.op == "add" and plus.args[0] == d
            and plus_zero(instrs[plus.args[1]]) and plus_zero(zero))
