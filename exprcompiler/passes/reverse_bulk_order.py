"""Stable argsorts of integer keys for the bulk reverse sweep, faster than NumPy's own.

Where it sits: the bulk sweep (passes/reverse_bulk.py and its layout) groups
instructions by kind and edges by argument or template, each group in its original
order: np.argsort(keys, kind="stable"). NumPy's stable sort of 32- and 64-bit ints
is a merge sort (timsort), ~4x slower than its plain sort at 10^6 keys, while of 8-
and 16-bit ints it is a radix sort, linear. So keys of a small range are sorted as
16-bit ints, and others, where they fit, as one 64-bit composite (key, position):
the positions make every composite distinct, so the plain (unstable) sort gives
the stable order. At 10^6 text (CPU): the edges by argument (1.4·10^6 int32 keys)
67 -> ~20 ms, the instructions by kind 42 -> ~12 ms.
"""

from __future__ import annotations

import numpy as np

_RADIX_RANGE = 1 << 16   # (keys of at most this many values: sorted as uint16)


def stable_order(keys: np.ndarray) -> np.ndarray:
    """np.argsort(keys, kind="stable") for a 1-d array of integers (an intp array)."""
    n = len(keys)
    if n < 2:
        return np.arange(n, dtype=np.intp)
    lo, hi = int(keys.min()), int(keys.max())
    span = hi - lo + 1
    if span <= _RADIX_RANGE:
        return np.argsort((keys - lo).astype(np.uint16), kind="stable")
    shift = (n - 1).bit_length()   # (the position in the low bits: a mask, not a division, takes it out)
    if span << shift >= 1 << 63:   # (the composite would overflow: NumPy's merge sort)
        return np.argsort(keys, kind="stable")
    composite = keys.astype(np.int64)
    composite -= lo
    composite <<= shift
    composite |= np.arange(n, dtype=np.int64)
    composite.sort()
    composite &= (1 << shift) - 1
    return composite
