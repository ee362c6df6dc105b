"""How often each variable of a trace is read, and so which variables the renderer
names (a line or statement of their own) and which it inlines into their one use.

Where it sits: read by the renderer (render.py) and the backends before they
render (naming, the NumPy and C backends), and by passes that count uses
(share_sums). Counts are NumPy's, over every argument at once: no Python loop
over the trace.
"""

from __future__ import annotations

from itertools import chain, repeat
from operator import is_not, itemgetter
from typing import Optional, Union

import numpy as np

from .columns import kept
from .ir import Trace
from .ir_trace import instructions
from .labels import Labels
from .render_bulk import OpCodes, op_codes


def use_counts(trace: Trace) -> list[int]:
    """How many times each variable is read: as an argument, and as an output."""
    return use_count_array(trace).tolist()


def use_count_array(trace: Trace) -> np.ndarray:
    """use_counts as a NumPy array (for passes that index it with arrays)."""
    return use_counts_and_reads(trace)[0]


def use_counts_and_reads(trace: Trace, take: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """use_count_array, and every instruction's arguments in one flat array, in
    order (what it counts; name_reads.last_reads takes it instead of reading them again;
    read-only where it is the trace's columns'). `take`: the trace's columns, read
    here, are no longer kept on it (for their last reader, generate: its peak and
    what is held after it do not include them beside its own arrays)."""
    # counted by NumPy from one C loop over every argument (Counter's dict: 2x, a Python loop: 10x),
    # or from the arguments' array that the trace's maker kept on it (columns.py: read-only), which
    # spares that loop (at 10⁶ operations a gradient's tuples are cache misses: 0.35 µs an operation)
    cols = kept(trace, take)
    # (int32: generate holds it through assign_names)
    reads = cols.flat if cols is not None else np.fromiter(chain.from_iterable(map(itemgetter(1), trace.instrs)),
                                                           dtype=np.int32)
    return uses_of(reads, trace), reads


def uses_of(reads: np.ndarray, trace: Trace) -> np.ndarray:
    """use_count_array from `reads`, the trace's arguments in one flat array (for a
    pass that has read them already)."""
    uses = np.bincount(reads, minlength=len(instructions(trace)))
    outputs = trace.outputs
    if len(outputs) < _AT_FROM:   # (np.add.at's fixed cost is that of a few items' +=)
        for _, v in outputs:
            uses[v] += 1
    else:
        np.add.at(uses, [v for _, v in outputs], 1)
    return uses


_AT_FROM = 8   # (outputs: from this many, counted by np.add.at)


def named_vars(trace: Trace, uses: Union[list[int], np.ndarray, None] = None) -> list[bool]:
    """True where a variable gets its own line/statement; False where it is inlined.
    `uses`: use_counts(trace), if known."""
    return named_array(trace, uses).tolist()


def named_array(trace: Trace, uses: Union[list[int], np.ndarray, None] = None,
                codes: Optional[OpCodes] = None) -> np.ndarray:
    """named_vars as a NumPy array of bools: every labelled variable, every input and
    copy, every variable read more than once, and the outputs, but constants (arrays:
    no loop in Python). `codes`: op_codes of the trace's ops, if known."""
    n = len(instructions(trace))
    uses = use_count_array(trace) if uses is None else np.asarray(uses)
    if codes is None:
        codes = op_codes(list(map(itemgetter(0), trace.instrs)))
    labels = trace.labels
    named = labels.named() if isinstance(labels, Labels) else np.fromiter(map(is_not, labels, repeat(None)), bool, n)
    named |= uses > 1
    named |= codes.among("input", "copy")
    named[[v for _, v in trace.outputs]] = True
    named &= ~codes.among("const")
    return named

