"""The NumPy backend's groups of instructions that share one exp: the sigmoids,
softpluses and logaddexps of the same u (up to sign), as one exp and the calls that
take it or as the rows of one call (_share_exps, _both_signs, _logaddexp_rows, _pair),
and a tanh with its sech2 (_tanh_group). numpy_shares.py's docstring lists the forms.

Where it sits: numpy_shares.shared_exps calls these on the gradient trace's
instructions and merges their entries with numpy_share_pairs'; numpy_render spells
what the entries say.
"""

from __future__ import annotations

from itertools import compress
from operator import itemgetter
from typing import Optional

import numpy as np

from ..trace.render_bulk import OpCodes
from ..ufunc_loops import SIMD


def _tanh_group(instrs, k: int, members: list[int]) -> dict[int, tuple]:
    """shared_exps' entries for the tanh and sech2 of x = k (one of each: the builder
    keeps one instruction per op and argument). Where np.tanh's loop is SIMD
    (ufunc_loops.SIMD), the sech2 is sech2_of_tanh(x, t): np.tanh and 1 - t² at the naive
    form's cost where that is accurate. A tanh before it keeps its own spelling (call
    None: an entry only to be named) and the sech2 takes its variable (exp None: no line
    of its own); a tanh after it, as the derivative of 1 - tanh(x)**2 has it, is computed
    on a line before the sech2 and named there (exp "", as shared_sums' 1 + x). Else both
    come from w = exp(-2|x|): tanh_of_exp, sech2_of_exp."""
    if not SIMD["tanh"]:
        return {i: (k, "exp_neg2abs", "tanh_of_exp" if instrs[i].op == "tanh" else "sech2_of_exp",
                    instrs[i].op == "tanh") for i in members}
    t = next(i for i in members if instrs[i].op == "tanh")
    s = next(i for i in members if instrs[i].op == "sech2")
    if t < s:
        return {t: (t, None, None, True), s: (t, None, "sech2_of_tanh", True)}
    return {s: (t, "", "sech2_of_tanh", True)}


_EXP_USERS = frozenset(("logaddexp", "sigmoid", "softplus"))


def _share_exps(instrs, logaddexp: bool, shared: dict, codes: Optional[OpCodes] = None, outputs=frozenset()) -> None:
    """shared_exps' sigmoid, softplus and logaddexp groups, into `shared` (`codes`:
    op_codes of the instructions, if known; `outputs`: the trace's returned variables)."""
    differences = {}
    for i, ins in enumerate(instrs if logaddexp else ()):
        if ins.op == "sub":
            differences.setdefault(ins.args, i)
    groups: dict[int, list[int]] = {}
    if codes is None:
        members = compress(range(len(instrs)), map(_EXP_USERS.__contains__, map(itemgetter(0), instrs)))   # in C
    else:
        members = np.flatnonzero(codes.among(*_EXP_USERS)).tolist()
    for i in members:
        ins = instrs[i]
        if ins.op == "logaddexp":
            u = differences.get(ins.args, differences.get(ins.args[::-1]))
        else:
            u = ins.args[0]
            u = instrs[u].args[0] if instrs[u].op == "neg" else u
        if u is not None:
            groups.setdefault(u, []).append(i)
    # logaddexp(a, b) with its two partials only: the readers of those sigmoids, one pass
    triples = [m for m in groups.values() if sorted(instrs[i].op for i in m) == ["logaddexp", "sigmoid", "sigmoid"]]
    readers = _readers(instrs, {i for m in triples for i in m if instrs[i].op == "sigmoid"}) if triples else {}
    if readers:   # and the readers of their readers (the partials' inner wheres)
        readers.update(_readers(instrs, {j for users in readers.values() for j in users} - set(readers)))
    slopes = []   # (u, members) of a sigmoid's value and its slope's other sigmoid: _slope_entries
    for u, members in groups.items():
        if len(members) < 2:   # (most: a sigmoid alone; shares nothing)
            continue
        if len(members) == 2 and instrs[members[0]].op == instrs[members[1]].op == "sigmoid" and \
                instrs[members[0]].args != instrs[members[1]].args:
            slopes.append((u, members))
            continue
        ops = {instrs[i].op for i in members}
        if "logaddexp" in ops:
            rows = _logaddexp_rows(instrs, u, members, readers) if len(members) == 3 else {}
            if rows:
                shared.update(rows)
                continue
            calls = {"sigmoid": "sigmoid_e", "softplus": "softplus_e", "logaddexp": "logaddexp_e"}
            mine = {i: (u, "exp_neg_abs", calls[instrs[i].op], True) for i in members}
            for i in members:   # sigmoid(-u) as sigmoid_neg_e(u, e): no array -u
                if instrs[i].op == "sigmoid" and instrs[instrs[i].args[0]].op == "neg":
                    mine[i] = (u, "exp_neg_abs", "sigmoid_neg_e", "inner")
            shared.update(_pair(mine, "sigmoid_e", "sigmoid_neg_e", "sigmoid_pair_e", "k") if len(members) > 1
                          else {})
            continue
        softplus = [instrs[i].args[0] for i in members if instrs[i].op == "softplus"]
        if len(set(softplus)) == 2:   # softplus(u) and softplus(-u): one log1p of e = exp(-|u|)
            shared.update(_both_signs(instrs, u, members, outputs))
            continue
        if not softplus:
            shared.update(_sigmoid_pair(instrs, u, members))
            continue
        k = softplus[0]
        mine = {}
        for i in members:
            same = instrs[i].args[0] == k
            if instrs[i].op == "softplus":
                if same:
                    mine[i] = (k, "exp_quiet", "softplus_of_exp", True)
            else:
                mine[i] = (k, "exp_quiet", "sigmoid_of_exp" if same else "sigmoid_neg_of_exp", False)
        if sorted(share[2] for share in mine.values()) == ["sigmoid_of_exp", "softplus_of_exp"]:
            # a softplus and its derivative alone: one softplus_pair(k), no exp line
            shared.update({i: (k, None, "softplus_pair", False, int(share[2] == "sigmoid_of_exp"))
                           for i, share in mine.items()})
        elif len(mine) > 1:
            shared.update(_pair(mine, "sigmoid_of_exp", "sigmoid_neg_of_exp", "sigmoid_pair_of_exp", False))
    if slopes:
        _slope_entries(instrs, slopes, shared, outputs)


def _sigmoid_pair(instrs, u: int, members: list[int]) -> dict[int, tuple]:
    """The entries of sigmoids of u and -u alone: the rows of one
    sigmoid_pair_of_exp(E), E = exp_quiet(u) (sigmoid_pair_of_exp_at(u, E) where the
    first, the value, is sigmoid(-u): 1 - sigmoid(u) rewritten). E is of u itself, not
    -u: sigmoid(-u) and its derivative's sigmoid(u) then need no array -u; sigmoid(-u)
    is exp(-u) where exp(u) overflows, as the call of -u gives it."""
    at = instrs[members[0]].args[0] != u
    mine = {i: (u, "exp_quiet", "sigmoid_of_exp" if instrs[i].args[0] == u else "sigmoid_neg_of_exp", False)
            for i in members}
    pair = ("sigmoid_pair_of_exp_at", "k") if at else ("sigmoid_pair_of_exp", False)
    return _pair(mine, "sigmoid_of_exp", "sigmoid_neg_of_exp", *pair)


def _slope_entries(instrs, slopes: list, shared: dict, outputs) -> None:
    """Into `shared`, for each (u, [sigmoid(±u), sigmoid(∓u)]) of `slopes`: where the
    second is read only by the product p of the two (a sigmoid's derivative), the rows
    of one sigmoid_rows(u): the value and p (sigmoid(u) first), or of one
    sigmoid_neg_rows(u): the value and the -p that alone reads p (sigmoid(-u) first:
    1 - sigmoid(u) rewritten, whose derivative is -p). The other sigmoid, p and -u then
    have no line (dead_rows), nor the exp: the helper takes u, and computes in place
    the pair's and the product's bits. Else the pair (_sigmoid_pair)."""
    readers = _readers(instrs, {m for _, members in slopes for m in members})
    products = {j for _, members in slopes for j in readers[members[1]]}
    readers.update(_readers(instrs, products))
    for u, (value, other) in slopes:
        neg = instrs[value].args[0] != u
        p = readers[other][0] if len(readers[other]) == 1 else None
        row = p if p is not None and other not in outputs and instrs[p].op == "mul" \
            and sorted(instrs[p].args) == sorted((value, other)) else None
        if neg and row is not None:
            row = readers[p][0] if len(readers[p]) == 1 and p not in outputs and instrs[readers[p][0]].op == "neg" \
                else None
        if row is None:
            shared.update(_sigmoid_pair(instrs, u, [value, other]))
            continue
        call = "sigmoid_neg_rows" if neg else "sigmoid_rows"
        shared.update({value: (u, None, call, False, 0), row: (u, None, call, False, 1)})


def _both_signs(instrs, u: int, members: list[int], outputs) -> dict[int, tuple]:
    """_share_exps' entries for a group with softplus(u) and softplus(-u) (log(sigmoid(z))
    and log(1 - sigmoid(z)) rewritten, the binary cross-entropy's terms): both rows of one
    softplus_pair_e(u, e), e = exp(-|u|), sharing one log1p (and softplus_e's bits), and
    the sigmoids of ±u from the same e (sigmoid_pair_e); -u has no line where only these
    read it (dead_rows). Where each softplus is read only by a neg (-softplus(∓u), as
    log(sigmoid(±u)) is rewritten), those negs are the rows of one neg_softplus_pair_e
    (the same bits, without their passes), and the softpluses have no line. Where the
    group is those two rows and the two sigmoids (a cross-entropy's value and gradient),
    the four are the rows of one call of u, (neg_)softplus_sigmoid_rows: the same bits,
    and e has no line or array of its own."""
    mine, negs = {}, {}
    softplus = [i for i in members if instrs[i].op == "softplus"]
    readers = _readers(instrs, set(softplus))
    if all(len(readers[i]) == 1 and instrs[readers[i][0]].op == "neg" and i not in outputs for i in softplus):
        negs = {i: readers[i][0] for i in softplus}
    for i in members:
        negated = instrs[i].args[0] != u   # (the argument is u or -u)
        if i in negs:
            mine[negs[i]] = (u, "exp_neg_abs", "neg_softplus_pair_e", "k", int(negated))
        elif instrs[i].op == "softplus":
            mine[i] = (u, "exp_neg_abs", "softplus_pair_e", "k", int(negated))
        else:
            mine[i] = (u, "exp_neg_abs", "sigmoid_neg_e" if negated else "sigmoid_e", "inner" if negated else True)
    mine = _pair(mine, "sigmoid_e", "sigmoid_neg_e", "sigmoid_pair_e", "k")
    calls = [share[2] for share in mine.values() if len(share) > 4]
    if len(calls) == len(mine) == 4 and calls.count("sigmoid_pair_e") == 2 and len(set(calls)) == 2:
        # all four rows of two calls of e: the rows of one call of u, which computes e
        call = "neg_softplus_sigmoid_rows" if "neg_softplus_pair_e" in calls else "softplus_sigmoid_rows"
        return {i: (u, None, call, False, share[4] + 2 * (share[2] == "sigmoid_pair_e")) for i, share in mine.items()}
    return mine


def _readers(instrs, wanted: set[int]) -> dict[int, list[int]]:
    """{i: the instructions that read i} for the instructions `wanted`."""
    readers: dict[int, list[int]] = {i: [] for i in wanted}
    for j, ins in enumerate(instrs):
        for a in ins.args:
            if a in readers:
                readers[a].append(j)
    return readers


def _logaddexp_rows(instrs, u: int, members: list[int], readers: dict) -> dict:
    """shared_exps' entries for logaddexp(a, b) and its two partials, where those are all
    the group holds: the rows 0, 1, 2 of one logaddexp_rows(a, b) (its value, ∂/∂a, ∂/∂b;
    0.5 at ties, as the derivative's wheres give), each partial the where(eq(a, b),
    where(eq(u, u), s, 0.5), s) of s = sigmoid(±u) that alone reads s and its inner
    where (`readers`: _readers' of the sigmoids and of their readers), whose lines
    (and u's, and the eqs': dead_rows) are then not written. Else {}."""
    lae = next((i for i in members if instrs[i].op == "logaddexp"), None)
    if lae is None or any(i not in readers for i in members if i != lae):
        return {}
    a, b = instrs[lae].args
    entries = {lae: (lae, None, "logaddexp_rows", "args", 0)}
    for i in members:
        if i == lae:
            continue
        users = readers[i]
        if len(users) != 2 or any(instrs[j].op != "where" for j in users):
            return {}
        inner, w = users   # (the inner where comes first: the outer reads it)
        c, kept, other = instrs[w].args
        if kept != inner or other != i or not _is_eq(instrs, c, {a, b}) \
                or not _is_eq(instrs, instrs[inner].args[0], {u}) or instrs[inner].args[1] != i \
                or not _is_const(instrs, instrs[inner].args[2], 0.5) or readers[inner] != [w]:
            return {}
        negated = instrs[instrs[i].args[0]].op == "neg"
        first = instrs[u].args == (a, b)   # sigmoid(u) is ∂/∂a where u = a - b
        entries[w] = (lae, None, "logaddexp_rows", "args", 1 if first != negated else 2)
    return entries if len(entries) == 3 and {e[4] for e in entries.values()} == {0, 1, 2} else {}


def _is_eq(instrs, c: int, args: set) -> bool:
    """Whether instruction c is eq of the variables `args` (one for eq(u, u))."""
    return instrs[c].op == "eq" and set(instrs[c].args) == args


def _is_const(instrs, c: int, value: float) -> bool:
    return instrs[c].op == "const" and instrs[c].value == value


def _pair(mine: dict, first: str, second: str, call: str, passes=False) -> dict:
    """`mine` (shared_exps' entries of one group) with its one `first` and one `second`
    (calls of the same exp) as the rows 0 and 1 of one `call` of the exp (and of k
    before it, `passes` "k"): a pass and a call fewer."""
    rows = {name: [i for i, share in mine.items() if share[2] == name] for name in (first, second)}
    if len(rows[first]) != 1 or len(rows[second]) != 1:
        return mine
    for row, name in enumerate((first, second)):
        i = rows[name][0]
        mine[i] = mine[i][:2] + (call, passes, row)
    return mine

