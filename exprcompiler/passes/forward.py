"""Forward mode: the tangent sweep, and the JVP and forward-gradient passes built on it.

Each operation's tangent is the op table's JVP rule applied to its arguments'
tangents; for an elementwise op that is v̇_i = Σ_j ∂φ_i/∂v_j · v̇_j, summed over
incoming edges. Structural zeros (`None`) are skipped, so no `0 * x` is
ever emitted. The result is a trace: printable, compilable, differentiable.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from .. import ops as _ops
from ..trace.ir import Builder, Trace, gc_paused
from .replay import (derived, fresh_name, labels_of, replay, replay_instr, scalar_output, seed_input, wrt_vars,
                     zeros_like)


def tangent_sweep(b: Builder, trace: Trace, vmap: list[int], seeds: Mapping[int, int],
                  tag: Optional[str] = None) -> list[Optional[int]]:
    """Tangents of every variable of `trace` (replayed into `b` as `vmap`), given the
    tangents `seeds` of some of its variables (trace var -> builder var).

    Where `vmap` stops short of the whole trace, the sweep replays the rest as it
    goes, so each v_i is followed by its v̇_i: forward mode as one sweep."""
    tan: list[Optional[int]] = [None] * len(trace.instrs)
    taken = labels_of(trace)
    for v, s in seeds.items():
        tan[v] = s
    for i, ins in enumerate(trace.instrs):
        if i == len(vmap):
            vmap.append(replay_instr(b, trace, i, vmap))
        if ins.op in ("input", "const") or i in seeds:
            continue
        op = _ops.OPS[ins.op]
        args = [vmap[a] for a in ins.args]
        mark = b.mark()
        acc = None if all(tan[a] is None for a in ins.args) else \
            op.jvp(b, [tan[a] for a in ins.args], args, vmap[i], dict(ins.attrs))
        if acc is not None:
            if b.shape(acc) != ins.shape:  # a scalar's tangent spread over a broadcast
                acc = b.broadcast_to(acc, vmap[i])
            acc = b.name(acc, derived(trace.labels[i], "dot", tag, taken), since=mark)
        tan[i] = acc
    return tan


@gc_paused()
def jvp(trace: Trace, wrt: Optional[Sequence[str]] = None) -> Trace:
    """Trace of (outputs, output tangents) from (inputs, tangents of the `wrt` inputs).
    Tangent inputs are named `x.dot`, tangent outputs `y.dot`."""
    b = Builder(pull_negations=True)
    vmap = replay(b, trace, stop=len(trace.inputs))  # inputs come first in every trace
    seeds = {}
    for name, v in wrt_vars(trace, wrt):
        seeds[v] = seed_input(b, trace, name, v, "dot", labels_of(trace))
    tan = tangent_sweep(b, trace, vmap, seeds)
    outputs = [(name, vmap[v]) for name, v in trace.outputs]
    taken = {name for name, _ in outputs}
    outputs += [(fresh_name(f"{name}.dot", taken), tan[v] if tan[v] is not None else zeros_like(b, trace, v, vmap))
                for name, v in trace.outputs]
    return b.finish(outputs)


@gc_paused()
def grad_forward(trace: Trace, wrt: Optional[Sequence[str]] = None) -> Trace:
    """The gradient of a single-output trace by one tangent sweep per `wrt` input
    (seed 1 on that input). Outputs: the value, then `x.bar` for each input."""
    yname, y = scalar_output(trace)
    b = Builder(pull_negations=True)
    vmap = replay(b, trace)
    outputs = [(yname, vmap[y])]
    taken = {yname}
    for name, v in wrt_vars(trace, wrt):
        if trace.instrs[v].shape != ():
            raise NotImplementedError(f"a forward-mode gradient with respect to {name!r} (shape "
                                      f"{trace.instrs[v].shape}) needs one sweep per element; use "
                                      f"mode='reverse', or compile_jvp for directional derivatives")
        tan = tangent_sweep(b, trace, vmap, {v: b.const(1.0)}, tag=name)
        outputs.append((fresh_name(f"{name}.bar", taken), tan[y] if tan[y] is not None else zeros_like(b, trace, y, vmap)))
    return b.finish(outputs)
