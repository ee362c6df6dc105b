"""Freed memory given back to the system between a pipeline's stages (glibc only).

Where it sits: called by a stage just before it makes many small objects after
freeing large arrays (passes/reverse_bulk_layout.py before the bulk sweep's tuples,
backends/numpy_backend.py before the statement program's slot list). NumPy's arrays
of a large trace are malloc's (its mmap threshold rises to the size of the first
large block freed, so later ones land in the heap); freed in the middle of the
heap they stay resident, while the small objects made next go to pymalloc's own
mapped arenas and cannot use those holes: the process's peak RSS was the sum of
both (10^5 text: the bulk sweep's peak 1,100 bytes an operation, ~300 of them free
heap). malloc_trim(0) returns the free pages of every heap (madvise), not only its
top. Elsewhere (another libc, no ctypes) it does nothing.
"""

from __future__ import annotations

# (entries: from about 10^4 operations, where the bulk sweep makes ~2·10^4 new
# instructions and generate's program ~6·10^4 holes: there the freed heap, 1-2 MB, is
# still a large part of the pipeline's peak. At 10^4 operations, bench_frontend's
# bytes an operation with both calls and without (2^17 here), medians of 4-6 fresh
# processes: text 1,135 against 1,220, deep 1,079 against 1,153, SymPy 830 against
# 870; for ~0.3 ms a call and ~0.07 minor faults an operation more. Generate's call
# starts at ~2.5·10^3 operations (3·10^3 text: 1,545-1,588 -> 1,503-1,564); below,
# the arrays freed are a few hundred kB.)
RELEASE_FROM = 1 << 14

_trim = None   # (malloc_trim once looked up; False: none)


def release_freed(size: int) -> None:
    """Gives the heap's free pages back, where `size` (the entries of the stage's
    arrays: the bulk sweep's new positions, generate's holes) is at least
    RELEASE_FROM: below that the pages are few. The cost: the call (~2 ms at 10^5
    text, 0.02 µs an operation; ~0.3 ms at 10^4, 0.03) and the page faults of the
    later stages that use those pages again (10^5 text, CPU, fresh processes: the
    gradient +0.06 µs an operation, generate and load +0.13 with this module's two
    calls)."""
    global _trim
    if size < RELEASE_FROM:
        return
    if _trim is None:
        _trim = _lookup()
    if _trim:
        _trim(0)


def _lookup():
    try:
        import ctypes
        return ctypes.CDLL(None).malloc_trim
    except (ImportError, OSError, AttributeError, TypeError):   # (TypeError: Windows' CDLL(None))
        return False
