"""Jacobian accumulation by vertex elimination (Griewank & Walther, ch. 9-10).

Where it sits: passes.jacobian's third mode beside the tangent and adjoint sweeps.
A sweep pushes a tangent or an adjoint through the whole trace once per input or
per output, and forms again products that another sweep already formed. Here the
trace is linearized once and the Jacobian accumulated on that graph:

* every active edge i -> j (v_j uses v_i, v_i depends on a `wrt` input, v_j reaches
  an output) carries the local partial c_ji = ∂φ_j/∂v_i: the op table's `partials`
  applied to the seed 1, as the reverse pass applies them to an adjoint;
* each output gets an identity copy vertex, so an output that another output uses
  is eliminated like any intermediate while its own row stays;
* eliminating an intermediate j adds c_kj·c_ji to c_ki for each pred i and succ
  k, and drops j; when only the `wrt` inputs and the output copies are left,
  c_{y,x} is ∂y/∂x, and a missing edge is a structural zero.

An edge is held as (scale, variable): the signs and constant factors of the partials
(-sin x, x/300, 2·x) ride on the edge as a float instead of becoming neg/mul
instructions at every product, and reach the trace once, in the entry. On the
10-link pendulum that takes the derivative part of the trace (forward order) from
949 to 694 operations. The scales are multiplied in another order than the sweeps
multiply the same factors: the entries agree with theirs to rounding, not bit for bit.

The order: Markowitz (fewest |preds|·|succs| first, recomputed as fill-in changes the
graph, ties to the earliest variable), forward (trace order: each vertex's row is
complete before it is pushed on, which keeps a sum of products factored) and reverse
(the adjoint sweeps' order) all run, and the one whose trace has the fewest
operations is kept (`order=` runs one alone).
Measured (benchmarks/bench_elimination.py): on random programs Markowitz is about
25% smaller than forward order; on the pendulum forward order is 18-20% smaller,
as Markowitz distributes u²·(a·b − c·d) into u²·a·b − u²·c·d; where m is small
against the trace (3000 statements, m = 4) reverse order wins. The smallest of the
three was below both sweep modes on all 42 random programs, the tall and wide
shapes and the pendulum at 3-20 links, by 0.5-30%.

What the orders cost: in forward order a vertex's preds are all `wrt` inputs when it
is eliminated, so the pass forms at most n products per edge (the work of n tangent
sweeps); in reverse order its succs are all output copies, at most m per edge (m
adjoint sweeps). On random programs (n = 6, 300 to 10^4 statements) forward order
grows linearly, as the sweeps do, in 0.8-1.5x their time; but on a wide function it
is as slow as forward mode (n = 500, m = 2: 30 s, reverse order 0.8 s). Markowitz
order has no such bound. compile_jacobian's mode="auto" therefore runs one order,
forward up to n = 2m, else reverse (jacobians.elimination_order), and keeps its trace
when it has fewer operations than the sweeps'. Fewer operations give a faster kernel,
by less than their count: the 20-link pendulum's C one-point entry runs 14% fewer
instructions with 26% fewer operations than the reverse sweeps' (callgrind:
benchmarks/bench_jacobian_modes.py --callgrind).

where() masks (reverse_masks.region_masks): a partial inside a branch is masked where
the branch is not taken. Which region a value is in depends on the outputs that read
it (t = sqrt(x) in where(y > 0, y*y, t), t + y: in the first output's branch, read
unmasked by the second), so the outputs whose regions differ on the values they reach
are eliminated on graphs of their own (_groups), in one builder; a trace without
where, or with one output, is one graph as before.

Products and sums go through the trace Builder: unit partials are free, constants
fold, and a product two eliminations form is one instruction. Scalar traces only.
"""

from __future__ import annotations

import heapq
from typing import Callable, Optional, Sequence

from .. import ops as _ops
from ..trace.ir import Builder, Trace
from .reverse import active_set
from .reverse_masks import carrying, masked, region_masks

ORDERS = ("best", "markowitz", "forward", "reverse")

Edge = tuple  # (scale: float, variable or None for the constant `scale`)

# A scale kept on an edge stays within [1/BOUND, BOUND]. Taking a factor out of an
# instruction reassociates the products and sums it is in; with factors of any size
# that can overflow or underflow where the sweeps do not (1e-200·exp(x) + 1e200·x
# would give s·(v + t/s) = 1e-200·(e + inf)). Within these bounds a result differs
# from the sweeps' only by rounding, or within a factor of BOUND of the overflow
# threshold, where forward and reverse mode differ from each other too.
BOUND = 2.0 ** 64


def _fits(scale: float) -> bool:
    return 1.0 / BOUND <= abs(scale) <= BOUND


def _split(b: Builder, var: int, scale: float = 1.0) -> Edge:
    """`var` as scale·v, with negations and constant factors taken into the scale."""
    while True:
        c = b.const_value(var)
        if c is not None:
            return scale * c, None
        var = b.source_of(var)
        ins = b.instrs[var]
        if ins.op == "neg":
            scale, var = -scale, ins.args[0]
        elif ins.op in ("mul", "div") and b.const_value(ins.args[1]) is not None:
            c = b.const_value(ins.args[1])
            c = scale * c if ins.op == "mul" else scale / c
            if not _fits(c):
                return scale, var
            scale, var = c, ins.args[0]
        elif ins.op == "mul" and b.const_value(ins.args[0]) is not None:
            c = scale * b.const_value(ins.args[0])
            if not _fits(c):
                return scale, var
            scale, var = c, ins.args[1]
        else:
            return scale, var


def _mul(b: Builder, e: Edge, f: Edge) -> Edge:
    (s, v), (t, w) = e, f
    if v is None and w is None:
        return s * t, None   # constants: the builder folds them so too
    if not _fits(s * t):   # each factor on its own instruction instead
        return _split(b, b.mul(_materialize(b, e), _materialize(b, f)))
    if v is None or w is None:
        return s * t, (w if v is None else v)
    for a, r in ((v, w), (w, v)):
        # a·(c/y) as c·(a/y): one division, as the sweeps apply a rule to their seed,
        # not 1/y (div's partial at the seed 1) and then a product
        ins = b.instrs[r]
        if ins.op == "div" and b.const_value(ins.args[0]) is not None \
                and _fits(s * t * b.const_value(ins.args[0])):
            return _split(b, b.div(a, ins.args[1]), s * t * b.const_value(ins.args[0]))
    return _split(b, b.mul(v, w), s * t)


def _add(b: Builder, e: Edge, f: Edge) -> Edge:
    (s, v), (t, w) = e, f
    if v == w:
        if v is None or _fits(s + t):
            return s + t, v
        return _split(b, b.mul(s + t, v))  # 0·v is kept: it is NaN where v is inf
    if v is None:
        (s, v), (t, w) = f, e
    if s == 0.0 or not _fits(t / s):   # no factor to take out
        return _split(b, b.add(_materialize(b, (s, v)), _materialize(b, (t, w))))
    if w is None:
        return _split(b, b.add(v, t / s), s)
    if s == t or s == -t:
        return _split(b, (b.add if s == t else b.sub)(v, w), s)
    return _split(b, b.add(v, b.mul(t / s, w)), s)


def _materialize(b: Builder, e: Edge) -> int:
    s, v = e
    if v is None:
        return b.const(s)
    return v if s == 1.0 else b.neg(v) if s == -1.0 else b.mul(s, v)


def _graph(b: Builder, trace: Trace, vmap: Sequence[int], active: Sequence[int], outs: Sequence[int],
           masks: dict, memo: Optional[dict] = None) -> tuple[list[dict], bytearray]:
    """(preds, vertex): preds[j] = {i: c_ji} over the active vertices that reach one
    of the outputs `outs` (indices into trace.outputs), then one identity copy per
    output of `outs` (numbered len(trace) + its place in `outs`). An argument used
    twice (x·x) gets the sum of its two partials. `masks`: region_masks' answer for
    these outputs (_groups); `memo`: the masked partials of the builder's other graphs."""
    instrs, outputs = trace.instrs, [trace.outputs[k] for k in outs]
    vertex = bytearray(len(instrs))
    for _, v in outputs:
        vertex[v] = active[v]
    for j in range(len(instrs) - 1, -1, -1):
        if vertex[j]:
            for a in instrs[j].args:
                if active[a]:
                    vertex[a] = 1
    one = b.const(1.0)
    # A path through a where's branch not taken has the where's partial 0, but a
    # partial inside the branch may be NaN there (sqrt'(-1)) and 0·NaN is NaN: each
    # partial inside a branch is masked to 0 where the branch is not taken
    # (reverse_masks.py), so that such a path's product is 0.
    preds: list[dict] = [{} for _ in instrs]
    for j, ins in enumerate(instrs):
        if not vertex[j] or ins.op == "input":
            continue
        op = _ops.OPS[ins.op]
        args = [vmap[a] for a in ins.args]
        partials = getattr(op.vjp, "partials", None)
        edges = preds[j]
        for k, a in enumerate(ins.args):
            if not vertex[a]:
                continue
            if partials is None:
                c = op.vjp(b, k, one, args, vmap[j], dict(ins.attrs))
            else:
                c = partials[k](b, one, *args, vmap[j]) if partials[k] is not None else None
            if c is not None:  # a rule may find a structural zero (x**0)
                if j in masks:
                    if memo is None:
                        c = masked(b, c, masks[j], vmap)
                    else:   # (another group's graph may have masked this partial so: the flags of a union cost n²)
                        key = (c, masks[j])
                        got = memo.get(key)
                        c = memo[key] = got if got is not None else masked(b, c, masks[j], vmap)
                c = _split(b, c)
                edges[a] = c if a not in edges else _add(b, edges[a], c)
    for _, v in outputs:
        preds.append({v: (1.0, None)} if vertex[v] else {})
    return preds, vertex


def _reach(instrs: Sequence, active: Sequence[int], y: int) -> list[int]:
    """The active variables with a path of adjoint-carrying edges to y (y too)."""
    seen = {y} if active[y] else set()
    stack = list(seen)
    while stack:
        ins = instrs[stack.pop()]
        for j in carrying(_ops.OPS[ins.op], len(ins.args)) if ins.op != "input" else ():
            a = ins.args[j]
            if active[a] and a not in seen:
                seen.add(a)
                stack.append(a)
    return list(seen)


def _groups(instrs: Sequence, active: Sequence[int], ys: Sequence[int]) -> list[tuple[list[int], dict]]:
    """[(outputs, masks)]: the outputs (indices into ys) eliminated on one graph, and
    the region masks (region_masks) of its partials.

    A value's region depends on which outputs read it: t = sqrt(x) in
    where(y > 0, y*y, t), t + y is in the first output's branch but in no region of
    the second, which reads it unmasked. On one graph for both, t's partial would be
    unmasked on the path to the first output too (NaN at x = -1, where its slope is
    0). The reverse sweep for output k masks by the regions seeded from y_k alone.
    An entry of output k is a sum over paths to y_k, which meet only the variables
    that reach y_k; so output k may sit on a graph whose masks, on those variables,
    are its own regions' (it fits them), whatever the masks elsewhere.

    The outputs that fit the masks of all outputs share one graph (all of them, in a
    trace without where or with one output: the trace as before). The others are
    put, in trace order, with the first group whose outputs' own masks agree with
    theirs on the variables both reach; a group's masks (of its outputs together)
    are checked, and an output that does not fit them gets a graph of its own."""
    masks = region_masks(instrs, active, set(ys))
    everyone = list(range(len(ys)))
    if len(ys) == 1 or "where" not in (ins.op for ins in instrs):
        return [(everyone, masks)]
    own = [region_masks(instrs, active, {y}) for y in ys]
    reach = [set(_reach(instrs, active, y)) for y in ys]

    def agree(ma: dict, k: int, mb: dict, l: int) -> bool:
        """ma and mb agree on the variables that reach both y_k and y_l."""
        both = reach[k] if k == l else reach[k] & reach[l]
        return all(ma.get(v) == mb.get(v) for v in {*ma, *mb} if v in both)

    fit = [k for k in everyone if agree(masks, k, own[k], k)]
    groups = [(fit, masks)] if fit else []
    together: list[list[int]] = []
    for k in everyone:
        if k in fit:
            continue
        for g in together:
            if all(agree(own[k], k, own[l], l) for l in g):
                g.append(k)
                break
        else:
            together.append([k])
    for g in together:
        if len(g) > 1:
            masks = region_masks(instrs, active, {ys[k] for k in g})
            fit = [k for k in g if agree(masks, k, own[k], k)]
            if fit:
                groups.append((fit, masks))
            g = [k for k in g if k not in fit]
        groups.extend(([k], own[k]) for k in g)
    return groups


class _Elimination:
    """The graph being eliminated: preds[k][i] = c_ki, succs[i] the ks (dicts as
    ordered sets, so every walk is deterministic)."""

    def __init__(self, b: Builder, preds: list[dict]):
        self.b = b
        self.preds = [dict(p) for p in preds]
        self.succs: list[dict] = [{} for _ in preds]
        for j, edges in enumerate(self.preds):
            for i in edges:
                self.succs[i][j] = None

    def cost(self, j: int) -> int:
        return len(self.preds[j]) * len(self.succs[j])

    def eliminate(self, j: int) -> None:
        b, preds, succs = self.b, self.preds, self.succs
        ins_j = preds[j]
        for k in succs[j]:
            row = preds[k]
            ckj = row.pop(j)
            for i, cji in ins_j.items():
                term = _mul(b, ckj, cji)
                row[i] = term if i not in row else _add(b, row[i], term)
                succs[i][k] = None
        for i in ins_j:
            del succs[i][j]
        preds[j], succs[j] = {}, {}


def _forward_order(g: _Elimination, inner: list[int]) -> None:
    for j in inner:
        g.eliminate(j)


def _reverse_order(g: _Elimination, inner: list[int]) -> None:
    for j in reversed(inner):
        g.eliminate(j)


def _markowitz_order(g: _Elimination, inner: list[int]) -> None:
    pending = bytearray(len(g.preds))
    for j in inner:
        pending[j] = 1
    heap = [(g.cost(j), j) for j in inner]
    heapq.heapify(heap)
    while heap:
        c, j = heapq.heappop(heap)
        if not pending[j] or c != g.cost(j):
            continue   # stale: j was eliminated, or pushed again with its new cost
        pending[j] = 0
        around = (*g.preds[j], *g.succs[j])
        g.eliminate(j)
        for v in around:   # their degrees changed; nobody else's did
            if pending[v]:
                heapq.heappush(heap, (g.cost(v), v))


class LiveOperations:
    """The operations of a builder that some of its variables need, as Trace.size
    counts them after `finish` keeps those variables (inputs, constants and copies do
    not count), counted as roots are added: a builder only appends, so the count of
    the roots so far never falls, and is a lower bound on any trace finished with more."""

    def __init__(self, b: Builder):
        self.b = b
        self.seen = bytearray()
        self.count = 0

    def add(self, roots) -> int:
        instrs, seen = self.b.instrs, self.seen
        seen.extend(bytes(len(instrs) - len(seen)))   # room for what the builder appended since
        stack = []
        for r in roots:
            if not seen[r]:
                seen[r] = 1
                stack.append(r)
        count = 0
        while stack:
            ins = instrs[stack.pop()]
            count += ins.op not in ("input", "const", "copy")
            for a in ins.args:
                if not seen[a]:
                    seen[a] = 1
                    stack.append(a)
        self.count += count
        return self.count


_RUNS = {"markowitz": _markowitz_order, "forward": _forward_order, "reverse": _reverse_order}


def eliminated(trace: Trace, xs: Sequence[tuple[str, int]], order: str,
               start: Callable[[], tuple[Builder, list]]
               ) -> tuple[Builder, list[int], dict[tuple[int, int], Optional[int]]]:
    """(builder, vmap, entries): `trace` replayed into a new builder as `vmap` (what
    `start()` gives: passes.jacobian.Replayed), and
    {(i, j): ∂y_i/∂x_j as a builder variable, or None for a structural zero} for its
    outputs and the inputs `xs`. With order="best" each order runs in a builder of its
    own and the smallest result is kept: built alone, its instructions stay in the
    order its elimination made them (sharing one builder, a later order's products
    sit where an earlier one first made them: 7-12% slower C on the 10-link pendulum)."""
    if order not in ORDERS:
        raise ValueError(f"unknown elimination order {order!r} (use {', '.join(map(repr, ORDERS))})")
    shaped = next((ins for ins in trace.instrs if ins.shape), None)
    if shaped is not None:
        raise NotImplementedError(f"mode='elimination' needs a trace of scalars (this one has a {shaped.op} "
                                  f"of shape {shaped.shape}): use mode='forward' or mode='reverse'")
    wrt = {v for _, v in xs}
    n = len(trace.instrs)
    active = active_set(trace, list(wrt))
    groups = _groups(trace.instrs, active, [v for _, v in trace.outputs])
    best = None
    for name in (_RUNS if order == "best" else (order,)):
        b, vmap = start()
        entries = {}
        memo = {} if len(groups) > 1 else None
        for outs, masks in groups:   # (one graph, all outputs, unless where's masks differ)
            preds, vertex = _graph(b, trace, vmap, active, outs, masks, memo)
            g = _Elimination(b, preds)
            _RUNS[name](g, [j for j in range(n) if vertex[j] and j not in wrt])
            for place, k in enumerate(outs):
                row = g.preds[n + place]
                for j, (_, xv) in enumerate(xs):
                    entries[k, j] = _materialize(b, row[xv]) if xv in row else None
        entries = dict(sorted(entries.items()))
        if order != "best":
            return b, vmap, entries
        roots = [vmap[v] for _, v in trace.outputs] + [v for v in entries.values() if v is not None]
        size = LiveOperations(b).add(roots)
        if best is None or size < best[0]:
            best = size, (b, vmap, entries)
    return best[1]


__all__ = ["eliminated", "LiveOperations", "ORDERS"]
