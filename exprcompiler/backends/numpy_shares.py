"""The NumPy backend's shared work between a value and its derivative: which
instructions of a trace are computed together (one exp, one call giving two or three
results), decided before numpy_render.NumpyRenderer spells them.

Where it sits: numpy_backend.generated calls shared_exps (and hoist_shared, share_logs,
dead_rows) on the gradient trace before rendering; the runtime helpers named in
FUSED_HELPERS compute what the entries say (runtime_exps.py, runtime_log1p.py,
runtime_tanh.py, runtime_elementwise.py). The groups are found by numpy_share_exps.py
(one exp: sigmoid, softplus, logaddexp; tanh and sech2) and numpy_share_pairs.py
(expm1, log1mexp, log1p's 1 + x), numpy_nary.py (hypot3, logaddexp3); shared_exps
merges their entries, and dead_rows, hoist_shared and share_logs are here.

The patterns:
- `shared_exps`: the sigmoid, softplus and logaddexp of the same u (up to sign) are all
  computed from one exp of u, most of their cost; where a trace holds two or more of them
  (softplus(x) and its gradient sigmoid(x); sigmoid(x) and sigmoid(-x)), the exp is
  computed once on a line of its own, `e1 = exp_quiet(x)`, and each takes it:
  `v1 = softplus_of_exp(x, e1)`, `x_bar = sigmoid_of_exp(e1)` (runtime.py: softplus(x)'s
  and sigmoid(x)'s numbers; sigmoid(-x) within an ulp or two of its own call's); a
  softplus and its sigmoid alone are the rows of one `p1 = softplus_pair(x)`, those
  numbers with one test of x's bounds instead of three reductions of the exp.
  logaddexp's a - b is computed once (`hoist_shared` moves the derivative's up), and
  its partial sigmoid(-(a - b)) is sigmoid_neg_e(t1, e1), without the array -(a - b).
  Without a softplus the exp is of u itself, not -u: 1 - sigmoid(x) rewritten,
  sigmoid(-x), with its derivative's sigmoid(x) is `p1 = sigmoid_pair_of_exp_at(x, e1)`,
  e1 = exp_quiet(x), and -x has no line.
- A sigmoid's value and its derivative alone (the other sigmoid read only by their
  product p, as the gradient of sigmoid(u) has it): `p1 = sigmoid_rows(u)`, the value
  and p, with no exp line, pair or product line (numpy_share_exps._slope_entries; the
  pair's and the product's bits, in place: value and gradient on 10⁶ points about
  20% less time); 1 - sigmoid(u) rewritten, whose derivative is -p:
  `p1 = sigmoid_neg_rows(u)`, the value and -p.
- softplus(u) and softplus(-u) (log(sigmoid(z)) and log(1 - sigmoid(z)) rewritten, the
  binary cross-entropy) share e = exp(-|u|) and one log1p: `p1 = softplus_pair_e(u, e1)`,
  their sigmoids `sigmoid_pair_e(u, e1)`; where each is read only by a neg (log(sigmoid)
  is -softplus(-u)), the negs are the rows, `p1 = neg_softplus_pair_e(u, e1)`, and the
  softpluses and -u have no line (`_both_signs`). Where the group is those two rows and
  the two sigmoids, all four are rows of one `p1 = neg_softplus_sigmoid_rows(u)` (or
  softplus_sigmoid_rows): the same bits, and no e line.
- Two results of one call (`_pair`): where sigmoid(u) and sigmoid(-u) share an exp (a
  sigmoid's value and derivative; logaddexp's two partials), one call computes both, a
  tuple `p1 = sigmoid_pair_of_exp(e1)` (or `sigmoid_pair_e(t1, e1)`), each read by
  index, `v1 = p1[0]`: the two calls' bits, one 1 + E and a call fewer. expm1(x) and the
  exp(x) of its derivative likewise, `p1 = expm1_pair(x)`: where expm1 takes exp(x) - 1,
  the derivative is that exp(x), no pass of its own. logaddexp(a, b) with its two
  partials and nothing else of a - b: `p1 = logaddexp_rows(a, b)`, three rows, and the
  partials' a - b, tie tests and wheres are not written (the helper gives 0.5 at ties; the
  naive form's numbers where that is accurate, the stable form's elsewhere).
- tanh(x) and its derivative sech2(x) (the stable form of 1 - tanh(x)**2): where
  np.tanh's loop is SIMD (ufunc_loops.SIMD), `v1 = np.tanh(x)` and
  `x_bar = sech2_of_tanh(x, v1)`, 1 - t² where that is accurate (np.tanh and two passes:
  the naive form's cost and numbers there); else they share w = exp(-2|x|):
  `e1 = exp_neg2abs(x)`, `v1 = tanh_of_exp(x, e1)`, `x_bar = sech2_of_exp(e1)`; sech2's
  numbers either way, and tanh's within two ulps or so (np.tanh's own where
  |tanh x| < 1/2): an exp and a few passes instead of a scalar np.tanh and an exp.
- log1p(x) and the 1 + x of its derivative 1/(1 + x) share w = 1 + x:
  `w1 = 1.0 + x`, `v1 = log1p_of_sum(x, w1)`, and the derivative divides by w1
  (runtime.log1p's numbers, which computes the same w). log(1 - y) rewritten,
  log1p(0.0 - y), takes w = 1 - y with no 0.0 - y: `w1 = 1.0 - y`,
  `v1 = log1m_of_diff(y, w1)`, log(w1) where that is within a few ulps (the naive
  form's numbers and passes there), log1p's numbers nearer y = 0.
- 1 - exp(x) rewritten, 0.0 - expm1(x), with the exp(x) of its derivative:
  `p1 = neg_expm1_pair(x)`, 1 - exp(x) where expm1 takes exp(x) - 1 (the same bits),
  with no expm1 line.
- Lines that only shared spellings would read (the -x of a sigmoid(-x) that a pair takes
  from exp(x), the expm1 and 0.0 - y above) are not written: `dead_rows`.
- `share_logs`: xlogy(x, y) and the log(y) of its derivative share the log.
- xlogy(u, u) (u*log(u) made stable) with its derivative at the top of the gradient,
  where(u == 0, kept where of u / u) + log(u): `p1 = xlogx_rows(u)`, the two rows from
  one call (runtime_xlogy), the lines' bits with one reduction a block; share_logs
  leaves that xlogy to it, and the comparison, quotient, wheres and log have no line.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Optional

from ..trace.ir import Instr, Trace
from ..trace.ir_trace import instructions
from ..trace.render_bulk import OpCodes
from .numpy_nary import NARY_HELPERS, NARY_OPS, nary_rows
from .numpy_share_exps import _share_exps, _tanh_group
from .numpy_share_pairs import (_expm1_pairs, _log1mexp_pairs, _value_and_slope, plus_zero,
                                 shared_sums, xlogx_rows)


FUSED_HELPERS = ("where_rare", "where_rare_kept", "exp_quiet", "sigmoid_of_exp", "sigmoid_neg_of_exp",
                 "softplus_of_exp", "exp_neg_abs", "sigmoid_e", "sigmoid_neg_e", "softplus_e", "logaddexp_e",
                 "exp_neg2abs", "tanh_of_exp", "sech2_of_exp", "sech2_of_tanh", "log1p_of_sum", "sigmoid_pair_of_exp",
                 "sigmoid_pair_e", "expm1_pair", "neg_expm1_pair", "logaddexp_rows", "log1mexp_pair", "log1mexp_rows",
                 "log1mexp_slopes", "log1m_of_diff", "softplus_pair", "softplus_pair_e", "neg_softplus_pair_e",
                 "sigmoid_pair_of_exp_at", "xlogx_rows", "sigmoid_rows", "sigmoid_neg_rows", "softplus_sigmoid_rows",
                 "neg_softplus_sigmoid_rows", "sigmoid_slopes") + NARY_HELPERS


def shared_exps(trace: Trace, ops: Optional[set[str]] = None, codes: Optional[OpCodes] = None) -> dict[int, tuple]:
    """{instruction: (k, exp helper, call, passes its arguments: True, False, or "inner":
    the argument's own, the u of a sigmoid(-u)[, row])} for the sigmoids,
    softpluses and logaddexps that share one exp of the same u with another (u the
    argument under a neg, if one; for logaddexp(a, b) the trace's a - b or b - a, as its
    derivative sigmoid(a - b) has it); k is the instruction the exp is taken of. Also
    tanh and sech2 of the same x (_tanh_group), and log1p(x) with the 1 + x that comes
    after it (shared_sums; its exp helper is "": the line is `w1 = 1.0 + x`). An entry
    with a row is one of two results of one call (_pair): sigmoid(u) and sigmoid(-u)
    (sigmoid_pair_of_exp), expm1(x) and exp(x) (expm1_pair), log1mexp(x) and its slope
    log1mexp_slope(x), the op table's derivative (log1mexp_slopes; sigmoid_slope(x) and
    sigmoid_slope_slope(x) likewise: sigmoid_slopes), or a user's
    expm1(0.0 - x) beside it (log1mexp_pair; log1mexp_rows where the derivative is 1.0
    over that expm1, a third row).
    Where a logaddexp is among them, e = exp(-|u|) (exp_neg_abs), as logaddexp needs:
    runtime.sigmoid_e, softplus_e, logaddexp_e. Otherwise E = exp(±u) (exp_quiet), ± as
    the softpluses have it: sigmoid(±u) = E/(1 + E), sigmoid(∓u) = 1/(1 + E),
    softplus(±u) = log1p(E): two cheap passes where sigmoid_e takes four (a softplus
    of the other sign keeps its own call). `ops`: the trace's ops, and `codes` its
    op_codes, if known."""
    instrs = instructions(trace)   # (a few items: a trace held as columns makes no tuple of them all)
    if ops is None:   # one pass; the passes below only where they can find something
        ops = set(map(itemgetter(0), instrs))
    shared: dict[int, tuple] = {}
    if ops & {"logaddexp", "sigmoid", "softplus"}:
        _share_exps(instrs, "logaddexp" in ops, shared, codes, {v for _, v in trace.outputs})
    if {"tanh", "sech2"} <= ops:
        tanh: dict[int, list[int]] = {}
        for i, ins in enumerate(instrs):
            if ins.op in ("tanh", "sech2"):
                tanh.setdefault(ins.args[0], []).append(i)
        for k, members in tanh.items():
            if {instrs[i].op for i in members} == {"tanh", "sech2"}:
                shared.update(_tanh_group(instrs, k, members))
    if "log1p" in ops:
        shared.update(shared_sums(trace))
    if "expm1" in ops:
        shared.update(_expm1_pairs(instrs, {v for _, v in trace.outputs}))
        if "log1mexp" in ops:
            shared.update(_log1mexp_pairs(instrs, shared))
    if {"log1mexp", "log1mexp_slope"} <= ops:
        shared.update(_value_and_slope(instrs, shared, "log1mexp", "log1mexp_slope", "log1mexp_slopes"))
    if {"sigmoid_slope", "sigmoid_slope_slope"} <= ops:
        shared.update(_value_and_slope(instrs, shared, "sigmoid_slope", "sigmoid_slope_slope", "sigmoid_slopes"))
    if ops & NARY_OPS:   # hypot3, logaddexp3 and their partials: one rows call (numpy_nary)
        shared.update(nary_rows(instrs))
    if "xlogy" in ops:   # (left by share_logs where these rows take it)
        shared.update(xlogx_rows(instrs))
    return shared


def dead_rows(trace: Trace, shared: dict, uses) -> list[int]:
    """The instructions no line needs: read only by shared spellings that do not read
    them (a pair's rows read their call's result; sigmoid_of_exp reads the exp,
    sigmoid_neg_e the u under its neg, log1m_of_diff and its w line the y of 0.0 - y;
    logaddexp_rows' partials read neither their where's eq nor its sigmoid), not by an
    exp's or a pair call's line, not returned; then what only those read. They are not
    named, so no line is written: the -x of a sigmoid(-x) that a pair computes from
    exp(x), neg_expm1_pair's expm1, logaddexp's a - b and eq where its rows are one call.
    `uses`: use_counts of the trace (a list or an array)."""
    instrs = trace.instrs
    unread: dict[int, int] = {}   # instruction -> its uses that no spelling makes
    kept = set()                  # read by a shared line: an exp's k, a pair call's arguments
    for i, share in shared.items():
        k, exp, call, passes = share[:4]
        if call is None:   # spelled as its op
            continue
        args = instrs[i].args
        if exp:
            kept.add(k)
        if len(share) > 4:   # a row: its call reads k's arguments, k, or k's exp
            kept.update(instrs[k].args if passes == "args" else (k,) if passes == "k" or exp is None else ())
        elif passes is True:
            continue
        elif passes == "inner":   # (the argument's last: the u of -u, the y of 0.0 - y)
            kept.update(instrs[a].args[-1] for a in args)
            if exp == "":   # the w line, 1.0 - y, does not read 0.0 - y either
                unread[args[0]] = unread.get(args[0], 0) + 1
        for a in args:
            unread[a] = unread.get(a, 0) + 1
    kept.update(v for _, v in trace.outputs)   # (read by the return: counted in uses, but said here too)
    dead, stack = [], [a for a, n in unread.items() if n == uses[a]]
    while stack:
        a = stack.pop()
        if a in shared or a in kept or instrs[a].op in ("input", "const"):
            continue
        dead.append(a)
        for b in instrs[a].args:
            unread[b] = unread.get(b, 0) + 1
            if unread[b] == uses[b]:
                stack.append(b)
    return dead


def hoist_shared(trace: Trace) -> Trace:
    """The trace with each shared exp's argument (logaddexp's a - b, which its derivative
    computes only after the value) moved up to just before the exp's first user, where
    its arguments allow: the exp then takes the named difference, which the derivative
    uses again, instead of computing a - b a second time. (numpy_backend._prepared
    calls it where the trace has a logaddexp, the only exp whose k can come later.)"""
    moves: dict[int, int] = {}   # k -> the first member, for a k that comes after it
    for i, (k, exp, *_) in sorted(shared_exps(trace).items()):
        if exp and k > i and k not in moves and all(a < i for a in trace.instrs[k].args):
            moves[k] = i
    if not moves:
        return trace
    before: dict[int, list[int]] = {}
    for k, i in sorted(moves.items()):
        before.setdefault(i, []).append(k)
    order = [j for i in range(len(trace.instrs)) if i not in moves for j in before.get(i, []) + [i]]
    new = {old: n for n, old in enumerate(order)}
    return Trace([trace.instrs[o]._replace(args=tuple(new[a] for a in trace.instrs[o].args)) for o in order],
                 [trace.labels[o] for o in order], [(n, new[v]) for n, v in trace.outputs], trace.source)


def share_logs(trace: Trace) -> Trace:
    """xlogy(x, y), where the trace also takes log(y) (xlogy's own derivative in x is
    log(y)), lowered to where(x == 0, 0.0, x * log(y)) with that one log: the values of
    runtime.xlogy (x * log(y), 0 where x == 0), a log fewer (x*log(x), value and
    gradient: half the time). The log moves up to the xlogy; instructions that become
    identical (x == 0 of the derivative's where) are kept once. (numpy_backend._prepared
    calls it where the trace has an xlogy.) An xlogy(u, u) whose value and derivative
    are the rows of one xlogx_rows call (numpy_share_pairs) is left as it is."""
    instrs = trace.instrs
    logs = {ins.args[0]: i for i, ins in enumerate(instrs) if ins.op == "log"}
    if not any(ins.op == "xlogy" and ins.args[1] in logs for ins in instrs):
        return trace
    rows = xlogx_rows(instrs)   # (the xlogys among them are left to it)
    if rows and not any(ins.op == "xlogy" and ins.args[1] in logs and i not in rows for i, ins in enumerate(instrs)):
        return trace
    out: list[Instr] = []
    labels: list = []
    new: list[int] = []
    seen: dict = {}   # (op, args, attrs) of an unlabelled instruction -> its index in out
    moved = {}        # old index of a log moved up -> its new index

    def emit(ins: Instr, label=None) -> int:
        # a constant by its repr, as the Builder keys it: 0.0 == -0.0 (and their
        # hashes agree), so the where's 0.0 was taken for a -0.0 of the trace
        key = (ins.op, ins.args, repr(ins.attrs) if ins.op == "const" else ins.attrs)
        if label is None and ins.op != "input" and key in seen:
            return seen[key]
        out.append(ins)
        labels.append(label)
        if label is None:
            seen[key] = len(out) - 1
        return len(out) - 1

    for i, ins in enumerate(instrs):
        if i in moved:
            new.append(moved[i])
            continue
        ins = ins._replace(args=tuple(new[a] for a in ins.args))
        j = logs.get(instrs[i].args[1]) if ins.op == "xlogy" and i not in rows else None
        if j is None:
            new.append(emit(ins, trace.labels[i]))
            continue
        x, y = ins.args
        if j < i:
            log = new[j]
        else:   # the log comes up here, with its label if it has one
            log = emit(Instr("log", (y,), (), instrs[j].shape), trace.labels[j])
            moved[j] = log
        zero = emit(Instr("const", (), (("value", 0.0),), ()))
        product = emit(Instr("mul", (x, log), (), ins.shape))
        new.append(emit(Instr("where", (emit(Instr("eq", (x, zero), (), out[x].shape)), zero, product), (),
                              ins.shape), trace.labels[i]))
    return Trace(out, labels, [(n, new[v]) for n, v in trace.outputs], trace.source)


__all__ = ["FUSED_HELPERS", "dead_rows", "hoist_shared", "plus_zero", "share_logs", "shared_exps", "shared_sums"]
