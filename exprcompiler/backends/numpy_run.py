"""Running a generated NumPy function on a batch: block by block where the batch is
large (each block's temporaries stay in cache, and a long function's arrays within
MEMORY), its outputs flattened into one list.

Memory of the blocked calls (see heap_release.py's docstring for why): a call has glibc
keep its memory in the heap once freed (heap_release.keep_heap: a block's temporaries
and the outputs), else each block takes its temporaries as new pages again (in a
process that never freed a large array: a gradient at 10⁶ points, 4,449 page faults a
call, 15-40% of its time), and each call its outputs (results dropped before the next
call: 24 MB, ~1,000-1,500 faults, ~5-10%). No number changes: the same function on
the same blocks.

Where it sits: after numpy_backend.load (the function), under backends/registry.py's
runner for backend="numpy"; block_for reads the generated source's line count.
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np

from ..heap_release import KEEP_MAX, keep_heap
from .numpy_program import _RUNNER
from .program_text import LazySource, lines_in


# Points per block on large batches: each block's temporaries stay in cache. Measured
# on the Griewank gradient at 10⁶ points: 47 ms in one piece, 30 ms in blocks of 16384.
BLOCK = 16384
# Bytes of block-sized arrays one call may hold at once. A generated function keeps
# every statement's array until it returns (its locals, or a statement program's
# slots), so a large trace holds about one array per line: the gradient of a
# 10⁵-operation random program (about 3·10⁵ lines) called on 10⁴ points in one piece
# reached 12.9 GB of memory and took 59 s; in blocks of MEMORY / (8 bytes × lines)
# points, 447 here, 0.97 GB and 24 s. A quarter of that budget (blocks of 111) held
# 0.42 GB but took 66 s: each block pays about a µs of Python per line. Below 8,192
# lines the block is BLOCK. (backend="vm" runs that call in 3.7 s in 0.33 GB.)
MEMORY = 1 << 30


def block_for(source: Union[str, LazySource]) -> int:
    """Points per block for a generated function: BLOCK, or fewer where its lines'
    arrays of BLOCK points would hold more than MEMORY (at least 64). (A LazySource
    knows its lines' count: its text is not made.)"""
    lines = lines_in(source)
    return max(64, min(BLOCK, MEMORY // (8 * max(1, lines))))


class PlanEntry:
    """What a call plan needs to call the generated function itself, with nothing of
    `run` in between (call_plan.batch_plan, made by api.Compiled): the function, and
    the nesting of its results (call_plan.structure), which `run` records at its first
    call in one piece."""

    structure = False   # (not known yet: None is one bare result)
    kind = "numpy"      # (call_plan.batch_plan's keyword)

    def __init__(self, fn, block: int):
        self.fn, self.block = fn, block

    def entry(self, arrays, batch: tuple):
        """The batch, for arrays of these shapes, where `run` would call the function
        on them in one piece and the batch has a point; else None."""
        n = math.prod(batch)
        return batch if batch != () and 0 < n < 2 * self.block else None


def numpy_runner(fn, block: int = BLOCK):
    """run(arrays, batch, blocks=None) -> one array per output: batches of 2 * `block`
    points or more block by block (block_for); `blocks`, when given, are arrays
    (points, w) whose columns take the outputs in turn (see backends/registry.py)."""
    plan = PlanEntry(fn, block)

    def run(arrays: list, batch: tuple, blocks=None) -> list:
        outs = None if blocks is None else [b[:, j] for b in blocks for j in range(b.shape[1])]
        if math.prod(batch) >= 2 * block:
            return _blocked(fn, arrays, batch, outs, block)
        got = fn(*arrays)
        if plan.structure is False:
            plan.structure = _structure(got)
        res = _flatten((got,))
        if outs is None:
            return res
        for o, r in zip(outs, res):
            # (an array of the batch's shape as it is: broadcast_to costs ~1.5 µs an output)
            o[...] = r.reshape(-1) if type(r) is np.ndarray and r.shape == batch else \
                np.broadcast_to(r, batch).reshape(-1)
        return outs
    run.plan = plan
    return run


def _blocked(fn, arrays: list, batch: tuple, outs=None, block: int = BLOCK) -> list:
    """Evaluate `fn` block by block over the flattened batch, into `outs` (flat arrays)
    or freshly allocated ones. First has glibc keep a call's memory in its heap
    (heap_release.keep_heap): a block's arrays (_arrays_of) and the outputs."""
    n = math.prod(batch)
    flat_in = [a.reshape(()) if a.size == 1 else np.broadcast_to(a, batch).reshape(-1)
               for a in arrays]
    for start in range(0, n, block):
        stop = min(start + block, n)
        res = _flatten((fn(*(x[start:stop] if x.ndim else x for x in flat_in)),))
        if start == 0:   # (before the outputs are made: then they are the heap's too)
            size = max((getattr(r, "itemsize", 8) for r in res), default=8)
            keep_heap((block * _arrays_of(fn) + n * len(res)) * size)
        if outs is None:
            outs = [np.empty(n) for _ in res]
        for o, r in zip(outs, res):
            o[start:stop] = r
    return [o.reshape(batch) for o in outs]


def _arrays_of(fn) -> int:
    """How many block-sized arrays a generated function holds at most, all of them at
    the end of a block: one per local name (each holds one array at a time), or, for
    a statement program (numpy_program: a stub calling its runner, with more lines
    than anything keep_heap keeps), as many as keep_heap keeps at most."""
    code = getattr(fn, "__code__", None)
    if code is None or _RUNNER in code.co_names:
        return KEEP_MAX
    return code.co_nlocals


def _structure(results):
    """call_plan.structure of a generated function's results, or "deep" where a result
    is nested deeper than a plan unpacks (a tuple in a tuple in the results)."""
    from ..call_plan import structure
    if isinstance(results, tuple) and any(isinstance(r, tuple) and any(isinstance(i, tuple) for i in r)
                                          for r in results):
        return "deep"
    return structure(results)


def _flatten(items) -> list:
    out = []
    for it in items:
        if isinstance(it, tuple):
            out.extend(_flatten(it))
        else:
            out.append(it)
    return out


__all__ = ["BLOCK", "MEMORY", "block_for", "numpy_runner"]
