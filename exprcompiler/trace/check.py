"""`verify` (the trace checker) and `interpret` (the reference evaluator).

`interpret` evaluates any trace with the op table's NumPy evaluators; it is the
oracle every backend is tested against. `verify` is run on every pass's output in
the tests: each variable defined before use, arities and shapes consistent.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .. import ops as _ops
from ..errors import TraceError
from .ir import Trace, result_shape


def verify(trace: Trace) -> Trace:
    """Raise `TraceError` naming the first malformed instruction; return the trace."""
    if len(trace.labels) != len(trace.instrs):
        raise TraceError("labels and instructions differ in length")
    seen_inputs = set()
    for i, ins in enumerate(trace.instrs):
        op = _ops.OPS.get(ins.op)
        if op is None:
            raise TraceError(f"v{i}: unknown op {ins.op!r}")
        if not op.takes(len(ins.args)):
            raise TraceError(f"v{i}: {ins.op} has {len(ins.args)} arguments, needs {op.arity}")
        for a in ins.args:
            if not 0 <= a < i:
                raise TraceError(f"v{i}: argument v{a} used before it is defined")
        if ins.op == "input":
            if ins.name is None or ins.name in seen_inputs:
                raise TraceError(f"v{i}: input without a name or declared twice ({ins.name!r})")
            seen_inputs.add(ins.name)
        elif ins.op == "const":
            if not isinstance(ins.value, float):
                raise TraceError(f"v{i}: constant without a float value")
        else:
            expected = result_shape(ins.op, [trace.instrs[a].shape for a in ins.args], dict(ins.attrs))
            if expected != ins.shape:
                raise TraceError(f"v{i}: {ins.op} has shape {ins.shape}, its arguments give {expected}")
    names = set()
    for name, v in trace.outputs:
        if not 0 <= v < len(trace.instrs):
            raise TraceError(f"output {name!r} refers to undefined v{v}")
        if name in names:
            raise TraceError(f"output {name!r} appears twice")
        names.add(name)
    return trace


def interpret(trace: Trace, env: Mapping[str, object], *, all_values: bool = False):
    """Evaluate `trace` on the inputs in `env` (name -> float or array).

    Returns a tuple of outputs in `trace.outputs` order, or with `all_values=True`
    the list of every variable's value (for printing tables with numbers).
    """
    values: list = [None] * len(trace.instrs)
    with np.errstate(all="ignore"):
        for i, ins in enumerate(trace.instrs):
            if ins.op == "input":
                if ins.name not in env:
                    raise TraceError(f"no value given for input {ins.name!r}")
                values[i] = np.asarray(env[ins.name], dtype=np.float64)
            elif ins.op == "const":
                values[i] = np.float64(ins.value)
            else:
                values[i] = np.asarray(_ops.OPS[ins.op].evaluate(*(values[a] for a in ins.args),
                                                                 **dict(ins.attrs)), dtype=np.float64)
    if all_values:
        return values
    return tuple(values[v] for _, v in trace.outputs)
