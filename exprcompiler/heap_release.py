"""Freed memory given back to the system between a pipeline's stages, and kept by the
heap while a large call runs (glibc only).

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

At call time (keep_heap: numpy_run's blocks, runtime_blocks' helpers, tensor_call's
new bindings, api's outputs at a new batch shape: call_args.keep_outputs) the trouble
is the other way round.
A block's temporaries (16,384 points: 128 KiB each, glibc's
default mmap threshold) are freed at the end of every block, the top of the heap
then passes M_TRIM_THRESHOLD and is given back (brk), and the next block takes the
same pages again, each a page fault; so are a call's outputs, dropped before the
next call. glibc raises both thresholds itself
when it frees an mmapped chunk larger than the mmap threshold (to its size, and the
trim threshold to twice that), as after any NumPy evaluation that frees a full-size
temporary; a blocked call frees none (that is what its blocks are for), so in a
process that had freed no large array (a fresh one, results kept or given as out=)
every call paid: the gradient of sin(x)*exp(-y) + ... at 10^6 points, 4,449 page
faults a call and 15-40% of its time; at 10^5, 1,000-1,900 and 20-35%. keep_heap frees
one untouched array of the size of a call's own memory (a block's arrays and the
outputs, at most KEEP_MAX), once per process (and again only for a larger one). It
never lowers a threshold and never sets one (no mallopt: a process that chose its
own keeps it, glibc's dynamic thresholds being off there). The price, the same as
after any NumPy code that freed such an array: allocations below that size come
from the heap, and up to twice it (64 MiB at most) of freed memory stays there for
the next call instead of going back to the system, in each malloc arena: each thread
that calls may have its own (a gradient at 10^6 points, three calls on each of 4
threads, results dropped: 105 MiB still held, against 32-42 MiB before keep_heap; on 8
threads 210 against 116).
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

# glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems: freeing a larger chunk does not
# raise the thresholds, so keep_heap frees at most this much, less _SLACK (the chunk's
# size counts malloc's header and NumPy's, rounded up to a page: 32 MiB less 4 KiB
# made a chunk of 32 MiB and 4 KiB, which raised nothing).
KEEP_MAX = 32 << 20
_kept = 0   # (the largest size keep_heap freed: glibc's thresholds are at least that)
_SLACK = 1 << 16   # (a page of 64 KiB, where pages are that large)


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


def keep_heap(nbytes: int) -> None:
    """Frees one array of `nbytes` (at most KEEP_MAX) that nothing touched (np.empty:
    an mmap and a munmap, ~10 µs, no page fault), unless a size as large was freed
    here before: glibc then keeps freed memory up to twice that at the top of its heap
    instead of giving it back at every block (see the module's docstring). The caller
    passes what its call's arrays need kept: numpy_run, a block's locals' arrays and
    the outputs; runtime_blocks, one full-size array; tensor_call (at a new binding
    of shapes), every array of the trace; api (at a new batch shape), the outputs.
    Elsewhere than glibc it costs the same and does nothing else."""
    global _kept
    nbytes = min(int(nbytes), KEEP_MAX)
    if nbytes <= _kept:   # (most calls: one comparison)
        return
    _kept = nbytes
    import numpy as np
    # freed at once: an mmapped chunk above the threshold, of at most KEEP_MAX with its headers
    try:
        np.empty(max(nbytes - _SLACK, 0), dtype=np.uint8)
    except MemoryError:   # (a tight RLIMIT_AS: an optimisation must not fail the call)
        pass
