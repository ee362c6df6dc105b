"""Rewrites of a trace before the NumPy backend spells it: small powers as products,
sum_to with static shapes as np.sum over axes, sum(r * r) as a dot.

Where it sits: inside numpy_backend.generated (its _prepared_codes), after the passes
and before naming and rendering; each returns a new Trace (or the same where nothing
applies), values as NumPy computes them (see each one's note on the last bits).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..trace.columns import CODE
from ..trace.ir import Instr, Trace, _new_tuple
from ..trace.render import use_counts
from ..trace.render_bulk import table_codes


def _small_powers(trace: Trace, pows: Optional[list] = None,
                  table: Optional[np.ndarray] = None) -> tuple[Trace, Optional[np.ndarray]]:
    """x**2 as x * x and x**3 as x * x * x. NumPy's power() calls pow for 3, about 20x
    slower on an array (x**3 - 3x at 10⁶ points: 128 ms against 6 ms); for 2 it takes
    the square's fast path on arrays, but on the floats of a one-point call each
    power() costs 0.7 µs against 0.02 µs for a product (Rosenbrock in 10 variables:
    27 µs against 2.3 µs). x * x is what NumPy computes for x**2; the cube differs from
    pow in the last bit at most, as the C backend's does. `pows`: the positions of the
    powers, if known; `table`: the trace's ops as table codes (render_bulk.table_codes),
    if known: then the result's are returned too, made from it (else None)."""
    instrs = trace.instrs
    if pows is None:
        pows = np.flatnonzero(table_codes(instrs) == CODE["pow"]).tolist()
    powers = {}
    exponents = {}   # exponent variable -> 2.0, 3.0 or 0.0 (other): a few constants, shared by many powers
    for i in pows:
        k = instrs[i].args[1]
        value = exponents.get(k)
        if value is None:
            e = instrs[k]
            value = exponents[k] = e.value if e.op == "const" and e.value in (2.0, 3.0) else 0.0
        if value:
            powers[i] = value
    if not powers:
        return trace, table
    if table is not None:   # (each power a product; a cube's square inserted before it)
        table = table.copy()
        table[list(powers)] = CODE["mul"]
        table = np.insert(table, [i for i, k in powers.items() if k == 3.0], CODE["mul"])
    if 3.0 not in powers.values():   # squares only: no instruction moves
        out = list(instrs)
        for i in powers:
            ins = instrs[i]
            x = ins.args[0]
            out[i] = _new_tuple(Instr, ("mul", (x, x), (), ins.shape))
        return Trace(out, trace.labels, trace.outputs, trace.source, _inputs=trace.inputs), table
    out, labels, new = [], [], []
    shift = 0   # instructions inserted so far (one per cube): variables move up by this
    old_labels = trace.labels
    for i, ins in enumerate(instrs):
        args = tuple([new[a] for a in ins.args]) if shift and ins.args else ins.args
        k = powers.get(i)
        if k is not None:
            x = args[0]
            if k == 3.0:
                out.append(Instr("mul", (x, x), (), ins.shape))
                labels.append(None)
                shift += 1
                args = (len(out) - 1, x)
            else:
                args = (x, x)
            ins = Instr("mul", args, (), ins.shape)
        elif args is not ins.args:
            ins = _new_tuple(Instr, (ins.op, args, ins.attrs, ins.shape))
        new.append(len(out))
        out.append(ins)
        labels.append(old_labels[i])
    return Trace(out, labels, [(n, new[v]) for n, v in trace.outputs], trace.source), table


def _static_sums(trace: Trace) -> Trace:
    """sum_to(c, ref) as np.sum(c, axis=...) where the shapes say which axes: the
    leading axes ref lacks (a bias's adjoint, (n, 32) -> (32,)), or the axes where ref
    has 1. The generic helper works at run time from ref's shape and costs a few µs
    more per call, which is a training step's budget."""
    instrs = list(trace.instrs)
    for i, ins in enumerate(instrs):
        if ins.op != "sum_to" or ins.attrs:
            continue
        c, ref = (trace.instrs[a].shape for a in ins.args)
        lead = len(c) - len(ref)
        if lead > 0 and c[lead:] == ref:
            instrs[i] = Instr("sum", ins.args[:1], (("axis", tuple(range(lead))),), ins.shape)
        elif lead == 0:
            ones = tuple(k for k, (dc, dr) in enumerate(zip(c, ref)) if dr == 1 and dc != 1)
            if ones and all(dc == dr for k, (dc, dr) in enumerate(zip(c, ref)) if k not in ones):
                instrs[i] = Instr("sum", ins.args[:1], (("axis", ones), ("keepdims", True)), ins.shape)
    return Trace(instrs, trace.labels, trace.outputs, trace.source)


def _dots(trace: Trace) -> Trace:
    """sum(r * r) of a vector r, the product used nowhere else, as r @ r: one BLAS
    dot instead of a temporary and a reduction (least squares' ½‖Xw − y‖²: 2.5 µs of
    a 15 µs gradient at 500 rows). The product is left without its label, so it gets
    no line. (A dot adds in another order than np.sum: the last bits may differ.)"""
    uses = use_counts(trace)
    instrs, labels = list(trace.instrs), list(trace.labels)
    outputs = {v for _, v in trace.outputs}
    for i, ins in enumerate(trace.instrs):
        if ins.op != "sum" or dict(ins.attrs).get("axis") is not None or dict(ins.attrs).get("keepdims"):
            continue
        p = ins.args[0]
        prod = trace.instrs[p]
        if prod.op == "mul" and prod.args[0] == prod.args[1] and len(prod.shape) == 1 \
                and uses[p] == 1 and p not in outputs:
            instrs[i] = Instr("matmul", prod.args, (), ())
            labels[p] = None
    return Trace(instrs, labels, trace.outputs, trace.source)
