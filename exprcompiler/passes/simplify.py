"""Simplification: constant folding, safe identities and dead-code elimination.

Folding and identities live in the builder, so simplifying is replaying a trace
into a fresh builder and finishing it (which drops dead code). `specialize`
substitutes constants for inputs first (e.g. a cotangent seed ȳ = 1).
"""

from __future__ import annotations

from typing import Mapping, Sequence, Union

from ..trace.ir import Builder, Trace, gc_paused
from .replay import replay


@gc_paused()
def simplify(trace: Trace) -> Trace:
    b = Builder()
    vmap = replay(b, trace)
    return b.finish([(n, vmap[v]) for n, v in trace.outputs], source=trace.source)


@gc_paused()
def specialize(trace: Trace, values: Mapping[str, float]) -> Trace:
    """Replace the inputs named in `values` by constants, then simplify."""
    b = Builder()
    env = {name: b.const(value, trace.instrs[dict(trace.inputs)[name]].shape)
           for name, value in values.items()}
    vmap = replay(b, trace, env)
    return b.finish([(n, vmap[v]) for n, v in trace.outputs], source=trace.source)


@gc_paused()
def select(trace: Trace, outputs: Union[str, Sequence[str]]) -> Trace:
    """The trace of some of `trace`'s outputs (by name), without the code only the
    others need: `select(grad_trace, "x1.bar")` is ∂f/∂x1 alone, which can be
    differentiated again. Every input stays, in order, so signatures do not change."""
    names = [outputs] if isinstance(outputs, str) else list(outputs)
    have = dict(trace.outputs)
    missing = [n for n in names if n not in have]
    if missing or not names:
        raise ValueError(f"select: {', '.join(missing) or 'no output'} is not an output "
                         f"(outputs: {', '.join(have)})")
    b = Builder()
    vmap = replay(b, trace)
    return b.finish([(n, vmap[have[n]]) for n in names], input_order=list(trace.input_names),
                    source=trace.source)
