"""Room on CPython's frame stack for the pipeline: a guard on the public compile_*
entry points (api.py), not part of any stage.

CPython 3.11 and 3.12 keep Python frames in 16 KB data-stack chunks and free a chunk
as soon as the frame at its base returns (python/cpython#142183; 3.13 keeps one spare
chunk). A hot loop whose callee's frame is the first in a new chunk therefore pays an
mmap and a munmap per call. Where that happens depends on how deep the user's caller
sits (a notebook cell, a pytest test, a framework), so the same compile is slow at a
few caller depths only: compile_grad on a 10³ (10⁴) operation text formula, called
from depths 0-199, was up to 2.6× (2.0×) slower at 6 (9) of them; its stages alone
up to 3.7× (from_sympy), 4.2× (to_trace), 2.4× (grad_reverse). With the guard: none
over 1.3×.

`fresh_chunk(fn)` runs fn above a frame larger than a chunk. Such a frame never fits
in what is left of the current chunk, so it opens a fresh one of 32 KB, and fn's
frames start at the same place in it whatever the caller's depth. The ~15 KB left
there hold the whole pipeline (its frames reach at most ~4.6 KB above compile_grad
on the text, deep and SymPy formulas of 10³-10⁴ operations), so no call inside it
opens a chunk (benchmarks/bench_call_depth.py measures the result). It costs one
chunk's mmap and munmap a call: 6 µs alone, but ~50 µs of compiling "x*y" (~550 µs)
on a virtual machine, where what follows a munmap runs slower. Averaged over caller
depths 0-199, the guarded compile is 1-2% slower below ~100 operations and faster
from there on, and no depth is slow (unguarded: 1.3-2.7× at 5-11 of the 200).
Elsewhere (Python 3.13+, other implementations) it returns fn itself.
"""

from __future__ import annotations

import functools
import sys

SLOTS = 2100  # 8 bytes each: more than a 16 KB chunk (DATA_STACK_CHUNK_SIZE) holds


def _calling(fn):
    def in_fresh_chunk(*args, **kwargs):
        return fn(*args, **kwargs)
    return in_fresh_chunk


# The frame's size is its code's: locals, evaluation stack and a few fixed slots. A
# larger co_stacksize than the code uses only reserves room, and the stack, unlike
# locals, is not cleared when the frame starts: the frame costs a chunk's mmap and
# munmap and no 16 KB of writes (6 µs a call; 11 µs with 2,100 locals instead).
_CODE = _calling(None).__code__.replace(co_stacksize=SLOTS)


def needed() -> bool:
    """Whether this interpreter frees a data-stack chunk when its base frame returns."""
    return sys.implementation.name == "cpython" and (3, 11) <= tuple(sys.version_info[:2]) < (3, 13)


def fresh_chunk(fn):
    """Decorator: fn called at a fixed place in a fresh data-stack chunk (see the module);
    its name, docstring and signature kept (functools.wraps). fn itself where the
    interpreter does not need it."""
    if not needed():
        return fn
    guarded = _calling(fn)
    guarded.__code__ = _CODE  # the same code, one frame larger than a chunk
    return functools.wraps(fn)(guarded)
