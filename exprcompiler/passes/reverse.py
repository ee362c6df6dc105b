"""Reverse mode: the adjoint sweep, and the VJP and gradient passes built on it.

One forward sweep (the primal trace, replayed) and one reverse sweep over it:
each operation's adjoint v̄_i is pushed to its arguments through the op table's
VJP rules (for an elementwise op, its partials: v̄_j += ∂φ_i/∂v_j · v̄_i), summed
over outgoing edges. Nothing is
re-evaluated, and the trace grows linearly. Only *active* variables (those that
depend on a `wrt` input) receive adjoints.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Mapping, Optional, Sequence

from .. import ops as _ops
from ..trace.ir import Builder, Trace, gc_paused
from .replay import derived, fresh_name, labels_of, replay, scalar_output, seed_input, wrt_vars, zeros_like


def active_set(trace: Trace, seeds: Sequence[int]) -> bytearray:
    active = bytearray(len(trace.instrs))
    for v in seeds:
        active[v] = 1
    for i, ins in enumerate(trace.instrs):
        if not active[i]:
            for a in ins.args:
                if active[a]:
                    active[i] = 1
                    break
    return active


def adjoint_sweep(b: Builder, trace: Trace, vmap: Sequence[int], cotangents: Mapping[int, int],
                  active: bytearray, tag: Optional[str] = None) -> list[Optional[int]]:
    """Adjoints of every active variable of `trace` (replayed into `b` as `vmap`),
    given cotangents of some variables (trace var -> builder var)."""
    instrs, labels = trace.instrs, trace.labels
    adj: list[Optional[int]] = [None] * len(instrs)
    taken = labels_of(trace)
    bar_labels: list = [_UNSET] * len(instrs)   # v -> v̄'s label, made once per variable
    add, name, built = b.add, b.name, b.instrs

    for v, ct in cotangents.items():
        if adj[v] is None:
            adj[v] = ct
        else:
            mark = len(built)
            label = bar_labels[v] = derived(labels[v], "bar", tag, taken)
            adj[v] = name(add(adj[v], ct), label, mark)
    # In a trace of scalars an elementwise op's VJP is its partial (nothing to sum
    # down to a shape): called directly, a call and two shape lookups less per edge.
    scalar = not any(map(_SHAPE_OF, instrs))
    rules: dict = {}   # op name -> (OpDef, its partials on scalars or None), once per op kind
    for i in range(len(instrs) - 1, -1, -1):
        g = adj[i]
        if g is None:
            continue
        ins = instrs[i]
        rule = rules.get(ins.op)
        if rule is None:
            op = _ops.OPS[ins.op]
            rule = rules[ins.op] = (op, getattr(op.vjp, "partials", None) if scalar else None)
        op, partials = rule
        if op.is_leaf:
            continue
        arg_vars = ins.args
        args = list(map(vmap.__getitem__, arg_vars))
        out = vmap[i]
        # Last argument first: this reproduces the order of the published tables.
        for j in range(len(arg_vars) - 1, -1, -1):
            a = arg_vars[j]
            if not active[a]:
                continue
            mark = len(built)   # b.mark()
            if partials is None:
                c = op.vjp(b, j, g, args, out, dict(ins.attrs) if ins.attrs else {})
            else:
                c = partials[j](b, g, *args, out) if partials[j] is not None else None
            if c is None:  # a rule may find a structural zero (x**0)
                continue
            # v̄_a += c, named v̄_a
            label = bar_labels[a]
            if label is _UNSET:
                label = bar_labels[a] = derived(labels[a], "bar", tag, taken)
            total = c if adj[a] is None else add(adj[a], c)
            adj[a] = total if label is None else name(total, label, mark)
    return adj


_UNSET = object()
_SHAPE_OF = itemgetter(3)   # an instruction's shape


@gc_paused()
def vjp(trace: Trace, wrt: Optional[Sequence[str]] = None, *, seeds: Optional[Mapping[str, float]] = None) -> Trace:
    """Trace of (outputs, adjoints of the `wrt` inputs) from (inputs, output cotangents).

    Cotangent inputs are named `y.bar` and adjoint outputs `x.bar`. With `seeds`
    ({output name: constant}) a cotangent is that constant instead of an input —
    `seeds={"y": 1.0}` gives the gradient."""
    wrt_list = wrt_vars(trace, wrt)
    b = Builder(pull_negations=True)
    vmap = replay(b, trace)
    cotangents: dict[int, int] = {}
    taken = labels_of(trace)
    for name, v in trace.outputs:
        if seeds is not None and name in seeds:
            ct = b.name(b.const(seeds[name], trace.instrs[v].shape), derived(trace.labels[v], "bar", taken=taken))
        else:
            ct = seed_input(b, trace, name, v, "bar", taken)
        if v in cotangents:
            ct = b.add(cotangents[v], ct)
        cotangents[v] = ct
    adj = adjoint_sweep(b, trace, vmap, cotangents, active_set(trace, [v for _, v in wrt_list]))
    outputs = [(name, vmap[v]) for name, v in trace.outputs]
    taken = {name for name, _ in outputs}
    outputs += [(fresh_name(f"{name}.bar", taken), adj[v] if adj[v] is not None else zeros_like(b, trace, v, vmap))
                for name, v in wrt_list]
    b.release()
    return b.finish(outputs)


def grad_reverse(trace: Trace, wrt: Optional[Sequence[str]] = None) -> Trace:
    """The gradient of a single-output trace: its VJP with the cotangent seeded to 1."""
    name, _ = scalar_output(trace)
    return vjp(trace, wrt, seeds={name: 1.0})
