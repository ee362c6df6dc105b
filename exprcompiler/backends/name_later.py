"""A short statement program without names: its slots, and its names made with its text.

Where it sits: numpy_backend.generated makes a function of plain lines of more than
TIER_FROM named variables a statement program (numpy_program.Program) that
numpy_tier compiles on use. Such a program runs on slots, not names: its names are
wanted only for its text, which a reader (`.source`, a traceback) or the compile on
use asks for, and many functions are called a few times and never read. So its
holes' texts are numbered per variable (`Texts.holes`), and `later_texts` runs
assign_names when the text is first asked for, with what generated would have passed
it: the same names, so the same text. The parameters' names (the `def` line) are
found without it (`input_names`), and the slots the program runs on (`run_slots`)
follow no name: a variable takes the slot of its first argument where that one is
read there only, so that its array is dropped as the next is stored, and its memory
taken again while still in the CPU's cache (as a compiled function's does where a
name is rebound). Per name (assign_names' aliases: an adjoint's accumulation) it had
a third more slots; per variable it ran 2-25% slower at 1,000 to 16,384 points than
per name; so, 4-29% faster (text and deep gradients of 10² and 10³ operations, CPU
medians in one process).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .. import ops as _ops
from ..trace.ir import Trace
from ..trace.ir_trace import instructions
from ..trace.render_bulk import OpCodes
from .naming import asked_name, assign_names


def input_names(trace: Trace, reserved: frozenset) -> Optional[list]:
    """The inputs' names as assign_names gives them, in trace.inputs' order, without
    it; None where that takes the naming pass. Its loop names the variables in the
    trace's order, and a variable takes the name it asks for unless that name is
    reserved or held already: so where the inputs are the trace's first variables
    and ask for distinct names, none reserved, each has its own."""
    inputs = [v for _, v in trace.inputs]
    if inputs != list(range(len(inputs))):
        return None
    labels, instrs, tags = trace.labels, instructions(trace), {}
    names = [asked_name(labels[v], reserved, True, tags, instrs[v]) for v in inputs]
    if len(set(names)) < len(names) or not reserved.isdisjoint(names):
        return None
    return names


def run_slots(named: np.ndarray, slotted: np.ndarray, uses: np.ndarray, reads: np.ndarray,
              codes: OpCodes) -> Optional[tuple[np.ndarray, int]]:
    """Per slotted variable (`slotted`: the named ones and the constants, in order) the
    slot the program runs it in, and the number of slots; None where an op's arity is
    not known. A named variable takes its first argument's slot where that one is
    named, no input nor constant, and read once (by it: the statement reads its
    arguments before it stores), else a slot of its own; numbered in order."""
    arities = [0 if name in ("input", "const") else _ops.OPS[name].arity for name in codes.names]
    if min(arities, default=0) < 0:
        return None
    n = len(named)
    # (np.add.accumulate and any() for np.cumsum and np.array_equal, whose Python
    # layers are a fixed cost: at 10² operations this takes 0.75-0.9 of the time)
    arity = np.array(arities, np.int64)[codes.code]
    ends = np.add.accumulate(arity)
    if n and int(ends[-1]) != len(reads):
        return None
    first = np.zeros(n, np.int64)
    has = arity > 0
    first[has] = reads[(ends - arity)[has]]
    own = np.arange(n)
    takes = has & named & named[first] & (uses[first] == 1) & ~codes.among("input", "const")[first]
    parent = np.where(takes, first, own)
    while True:   # (each variable to the first of its chain: a few steps, the chain's length's log)
        up = parent[parent]
        if not (up != parent).any():
            break
        parent = up
    roots = np.zeros(n, bool)
    roots[slotted] = True
    roots &= parent == own
    rank = np.add.accumulate(roots, dtype=np.intp)
    rank -= 1
    return rank[parent[slotted]], int(np.count_nonzero(roots))


def later_texts(trace: Trace, named: np.ndarray, reserved: frozenset, uses: np.ndarray, reads: np.ndarray,
                codes: OpCodes, slotted: np.ndarray, constants: dict) -> Callable[[], str]:
    """What makes the texts of a program's holes, by variable (`slotted`, in order),
    joined by newlines (for program_text.Texts.made_by): `constants`, variable -> its
    text; the other arguments, what generated would have passed assign_names (the
    same names: its result depends on nothing else)."""
    def make() -> str:
        names = assign_names(trace, named, reserved, uses, None, reads, coded=True, codes=codes)
        for v, text in constants.items():
            names.set_text(v, text)
        return names.joined(slotted)
    return make


__all__ = ["input_names", "later_texts", "run_slots"]
