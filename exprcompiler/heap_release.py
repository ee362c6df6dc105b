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

RELEASE_FROM = 1 << 17   # (entries: below this the freed arrays are a few MB at most)

_trim = None   # (malloc_trim once looked up; False: none)


def release_freed(size: int) -> None:
    """Gives the heap's free pages back, where `size` (the entries of the stage's
    arrays: the bulk sweep's new positions, generate's holes) is at least
    RELEASE_FROM: below that the pages are few. The cost: the call (~2 ms at 10^5
    text, 0.02 µs an operation) and the page faults of the later stages that use
    those pages again (10^5 text, CPU, fresh processes: the gradient +0.06 µs an
    operation, generate and load +0.13 with this module's two calls)."""
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
