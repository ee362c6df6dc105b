"""Reverse mode: the adjoint sweep, and the VJP and gradient passes built on it.

One forward sweep (the primal trace, replayed) and one reverse sweep over it:
each operation's adjoint v̄_i is pushed to its arguments through the op table's
VJP rules (for an elementwise op, its partials: v̄_j += ∂φ_i/∂v_j · v̄_i), summed
over outgoing edges. Nothing is
re-evaluated, and the trace grows linearly. Only *active* variables (those that
depend on a `wrt` input) receive adjoints.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from .. import ops as _ops
from ..trace.ir import Builder, Trace, gc_paused
from .replay import derived, fresh_name, labels_of, replay, scalar_output, seed_input, wrt_vars, zeros_like


def active_set(trace: Trace, seeds: Sequence[int]) -> bytearray:
    active = bytearray(len(trace.instrs))
    for v in seeds:
        active[v] = 1
    for i, ins in enumerate(trace.instrs):
        if not active[i] and any(active[a] for a in ins.args):
            active[i] = 1
    return active


def adjoint_sweep(b: Builder, trace: Trace, vmap: Sequence[int], cotangents: Mapping[int, int],
                  active: bytearray, tag: Optional[str] = None) -> list[Optional[int]]:
    """Adjoints of every active variable of `trace` (replayed into `b` as `vmap`),
    given cotangents of some variables (trace var -> builder var)."""
    adj: list[Optional[int]] = [None] * len(trace.instrs)
    taken = labels_of(trace)
    bar_labels: dict[int, object] = {}   # v -> v̄'s label, made once per variable

    def accumulate(v: int, contribution: int, mark: int) -> None:
        label = bar_labels.get(v, bar_labels)
        if label is bar_labels:
            label = bar_labels[v] = derived(trace.labels[v], "bar", tag, taken)
        total = contribution if adj[v] is None else b.add(adj[v], contribution)
        adj[v] = b.name(total, label, since=mark)

    for v, ct in cotangents.items():
        if adj[v] is None:
            adj[v] = ct
        else:
            accumulate(v, ct, b.mark())
    # In a trace of scalars an elementwise op's VJP is its partial (nothing to sum
    # down to a shape): called directly, a call and two shape lookups less per edge.
    scalar = not any(ins.shape for ins in trace.instrs)
    OPS, instrs = _ops.OPS, trace.instrs
    for i in range(len(instrs) - 1, -1, -1):
        g, ins = adj[i], instrs[i]
        if g is None or ins.op in ("input", "const"):
            continue
        op = OPS[ins.op]
        args = [vmap[a] for a in ins.args]
        # a VJP op_def made from the op's partials: on scalars, the partials themselves
        partials = getattr(op.vjp, "partials", None) if scalar else None
        attrs = dict(ins.attrs) if ins.attrs else {}
        # Last argument first: this reproduces the order of the published tables.
        for j in range(len(ins.args) - 1, -1, -1):
            a = ins.args[j]
            if not active[a]:
                continue
            mark = len(b.instrs)   # b.mark()
            if partials is None:
                c = op.vjp(b, j, g, args, vmap[i], attrs)
            else:
                c = partials[j](b, g, *args, vmap[i]) if partials[j] is not None else None
            if c is not None:  # a rule may find a structural zero (x**0)
                accumulate(a, c, mark)
    return adj


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
    return b.finish(outputs)


def grad_reverse(trace: Trace, wrt: Optional[Sequence[str]] = None) -> Trace:
    """The gradient of a single-output trace: its VJP with the cotangent seeded to 1."""
    name, _ = scalar_output(trace)
    return vjp(trace, wrt, seeds={name: 1.0})
