"""Rewrites of a trace before the NumPy backend spells it: small powers as products,
sum_to with static shapes as np.sum over axes, sum(r * r) as a dot.

Where it sits: inside numpy_backend.generated (its _prepared_codes), after the passes
and before naming and rendering; each returns a new Trace (or the same where nothing
applies), values as NumPy computes them (see each one's note on the last bits).
"""

from __future__ import annotations

from collections import deque
from itertools import compress, repeat
from operator import itemgetter
from typing import Optional

import numpy as np

from ..trace.column_instrs import ColumnInstrs
from ..trace.columns import CODE, Columns, frozen
from ..trace.ir import Instr, Trace, _new_tuple
from ..trace.ir_trace import instructions, renumbered
from ..trace.labels import as_labels
from ..trace.render import use_counts
from ..trace.render_bulk import table_codes

_ARGS, _SHAPE = itemgetter(1), itemgetter(3)   # (an instruction's fields)
_FIRST, _SECOND = itemgetter(0), itemgetter(1)


def _small_powers(trace: Trace, pows: Optional[np.ndarray] = None,
                  table: Optional[np.ndarray] = None) -> tuple[Trace, Optional[np.ndarray]]:
    """x**2 as x * x and x**3 as x * x * x. NumPy's power() calls pow for 3, about 20x
    slower on an array (x**3 - 3x at 10⁶ points: 128 ms against 6 ms); for 2 it takes
    the square's fast path on arrays, but on the floats of a one-point call each
    power() costs 0.7 µs against 0.02 µs for a product (Rosenbrock in 10 variables:
    27 µs against 2.3 µs). x * x is what NumPy computes for x**2; the cube differs from
    pow in the last bit at most, as the C backend's does. `pows`: the positions of the
    powers (ints), if known; `table`: the trace's ops as table codes
    (render_bulk.table_codes), if known: then the result's are returned too, made from
    it (else None)."""
    instrs = instructions(trace)
    if pows is None:
        pows = np.flatnonzero(table_codes(trace.instrs) == CODE["pow"])
    pows = np.asarray(pows, np.int64)
    if isinstance(instrs, ColumnInstrs):   # (held as columns: their exponents read there)
        exponents = instrs.argument(pows, 1).tolist()
        value = {k: _exponent(instrs[k]) for k in set(exponents)}
        kinds = set(value.values())
        if not kinds - {0.0}:
            return trace, table
        if kinds == {2.0}:
            return _column_squares(trace, instrs, pows, table)
        instrs = trace.instrs
    at = pows.tolist()
    # (read by C-level maps, not a loop: a 10⁶-operation gradient has 10⁵ powers, and
    # reading their tuples, scattered in memory, is most of this rewrite's time)
    powers = list(map(instrs.__getitem__, at))
    args = list(map(_ARGS, powers))
    exponents = list(map(_SECOND, args))   # variables: a few constants, shared by many powers
    value = {k: _exponent(instrs[k]) for k in set(exponents)}
    kinds = set(value.values())
    if not kinds - {0.0}:
        return trace, table
    cubes = []
    if len(kinds) > 1 or 3.0 in kinds:   # (only the powers of 2 and 3 change; a cube moves the rest)
        exponents = list(map(value.__getitem__, exponents))
        at, powers, args, exponents = (list(compress(column, exponents))
                                       for column in (at, powers, args, exponents))
        pows = np.array(at, np.int64)
        cubes = list(compress(at, map((3.0).__eq__, exponents)))
    if table is not None:   # (each power a product; a cube's square inserted before it)
        table = _squared_table(table, pows)
        if cubes:
            table = np.insert(table, cubes, CODE["mul"])
    if cubes:
        return _with_cubes(trace, at, exponents, cubes), table
    # squares only: no instruction moves. (The list set in place, then copied into the
    # Trace's tuple: a tuple made in one pass over the runs between the powers was ~10%
    # faster at 3·10⁶ instructions, slower below 10⁶.)
    xs = list(map(_FIRST, args))
    squares = map(_new_tuple, repeat(Instr), zip(repeat("mul"), zip(xs, xs), repeat(()), map(_SHAPE, powers)))
    out = list(instrs)
    deque(map(out.__setitem__, at, squares), maxlen=0)
    return Trace(out, trace.labels, trace.outputs, trace.source, _inputs=trace.inputs), table


def _column_squares(trace: Trace, instrs: ColumnInstrs, pows: np.ndarray,
                    table: Optional[np.ndarray]) -> tuple[Trace, Optional[np.ndarray]]:
    """_small_powers of a trace held as columns (`instrs`) whose powers (`pows`) are
    all squares: a trace held as the squared columns (no tuple made; the primal's
    squares as tuples in their places), and the result's table where `table` is given."""
    cols = instrs.cols
    squares = squared_columns(cols, _squared_table(cols.code if table is None else table, pows), pows)
    head = instrs.head
    in_head = pows[pows < len(head)].tolist()
    new = Trace(instrs.squared(squares, {i: _square(head[i]) for i in in_head}), trace.labels, trace.outputs,
                trace.source, _inputs=trace.inputs, _columns=squares)
    return new, None if table is None else squares.code


def _squared_table(table: np.ndarray, pows: np.ndarray) -> np.ndarray:
    """`table` (op-table codes) with the powers at `pows` products."""
    table = table.copy()
    table[pows] = CODE["mul"]
    return table


def _square(power: Instr) -> Instr:
    """x * x for x ** 2."""
    x = power.args[0]
    return _new_tuple(Instr, ("mul", (x, x), (), power.shape))


def squared_columns(cols: Columns, table: np.ndarray, pows: np.ndarray) -> Optional[Columns]:
    """The Columns of _small_powers' trace of a trace of columns `cols` (its powers at
    `pows`; `table`: the result's op codes): its squares' (x * x for x ** 2: no
    instruction moved, a square's second argument its first), so that its arguments
    are not read again (uses.use_counts_and_reads); None where a cube moved the
    instructions after it."""
    if len(table) != len(cols.code):
        return None
    squared = pows[table[pows] == CODE["mul"]]
    at = cols.starts(narrow=True)[squared]   # (where their arguments start)
    flat = cols.flat.copy()
    flat[at + 1] = flat[at]
    return frozen(table, cols.counts, flat)


def _exponent(e: Instr) -> float:
    """What _small_powers makes of a power with exponent `e`: 2.0 or 3.0 for that
    constant, else 0.0 (the power stays)."""
    if e.op != "const" or e.value not in (2.0, 3.0):
        return 0.0
    return 3.0 if e.value == 3.0 else 2.0


def _with_cubes(trace: Trace, pows: list, exponents: list, cubes: list) -> Trace:
    """_small_powers' trace where some powers are cubes (`cubes`, of `pows`, each
    with its exponent, 2.0 or 3.0): a cube's square is inserted before it, so every
    variable from the first cube on moves up by the cubes before it, and is made
    again with its arguments renumbered."""
    instrs = trace.instrs
    n, first = len(instrs), cubes[0]
    moved = np.zeros(n, np.int64)
    moved[cubes] = 1
    new_at = np.arange(n) + np.cumsum(moved)
    new_of = new_at.tolist()
    out = list(instrs[:first])
    out += renumbered(instrs[first:], new_of)
    squares = []
    for i, e in zip(pows, exponents):
        ins = out[i]
        x = ins.args[0]
        if e == 3.0:
            squares.append(Instr("mul", (x, x), (), ins.shape))
            out[i] = Instr("mul", (new_of[i] - 1, x), (), ins.shape)
        else:
            out[i] = Instr("mul", (x, x), (), ins.shape)
    # the result's positions: old variable v at new_of[v], the squares (after the old
    # ones in out, and in the labels as unlabelled) before their cubes
    order = np.empty(n + len(cubes), np.intp)
    order[new_at] = np.arange(n)
    order[new_at[cubes] - 1] = np.arange(n, n + len(cubes))
    out += squares
    return Trace(tuple(map(out.__getitem__, order.tolist())),
                 as_labels(trace.labels).extended([None] * len(cubes), order),
                 [(name, new_of[v]) for name, v in trace.outputs], trace.source,
                 _inputs=tuple((name, new_of[v]) for name, v in trace.inputs))


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
