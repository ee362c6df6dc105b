"""Many small test cases in one trace, so that one C build checks them all.

A cold C build costs about 0.1 s of compiler CPU however small its kernel (measured:
102 one-case tensor kernels 11.6 s, the same cases as 3 merged kernels 4.5 s), so the
suites that compare the C backend with NumPy case by case compile one kernel per kind
for a whole list of cases and check each case's outputs of it. Case k's inputs and
outputs are renamed c<k>_<name>: each output, and its derivatives, depends on its own
case alone (the builder shares nothing between cases but constants).
"""

from __future__ import annotations

import re

from exprcompiler.frontend import to_trace
from exprcompiler.passes.replay import replay
from exprcompiler.trace.ir import Builder, trace_from_builder


def own_dims(k: int, shapes: dict) -> dict:
    """`shapes` with case k's dimension names made its own (n -> c<k>_n), so that each
    case binds its sizes independently of the others'."""
    return {name: tuple(f"c{k}_{d}" if isinstance(d, str) else d for d in shape)
            for name, shape in shapes.items()}


def merged(cases, separate_dims: bool = False, summed: bool = False):
    """One trace of every (program, shapes) case. `separate_dims`: each case its own
    dimension names (own_dims); otherwise equal names are one dimension, bound alike.
    `summed`: one output y, the sum of the cases' scalar outputs, whose gradient, HVP
    and Hessian with respect to case k's inputs are case k's own (the inputs are
    disjoint, and the adjoint of a sum is the sum's own)."""
    b = Builder()
    outputs = []
    for k, (program, shapes) in enumerate(cases):
        trace = to_trace(program, own_dims(k, shapes) if separate_dims and shapes else shapes)
        env = {name: b.input(f"c{k}_{name}", trace.instrs[v].shape) for name, v in trace.inputs}
        vmap = replay(b, trace, env)
        outputs += [(f"c{k}_{name}", vmap[v]) for name, v in trace.outputs]
    return trace_from_builder(b, summed_outputs(b, outputs) if summed else outputs)


def summed_outputs(b: Builder, outputs: list) -> list:
    """[("y", the sum of every output)]: one scalar output whose derivatives with
    respect to disjoint inputs are each output's own."""
    total = outputs[0][1]
    for _, v in outputs[1:]:
        total = b.add(total, v)
    return [("y", total)]


def case_of(name: str) -> int:
    """The case an input or output of a merged trace's kernel belongs to (c3_x,
    c3_y.bar, c3_y_dot...)."""
    return int(re.match(r"c([0-9]+)_", name)[1])


def own_name(name: str) -> str:
    """The name in its own case (c3_x.bar -> x.bar)."""
    return name.split("_", 1)[1]
