"""The NumPy runtime's x*log(x) rows: xlogx_rows(x), the value and the derivative of the
stable form xlogy(x, x) (stability/rules.py "xlogx") from one call, with one reduction a
block where the generated lines took a comparison, two tests of it, a division and
their wheres.

Where it sits: re-exported by runtime.py (generated NumPy code imports it there);
numpy_share_pairs.xlogx_rows finds the trace's value + gradient of xlogy(u, u) and
numpy_render spells its two rows `p1 = xlogx_rows(u)`, `v1 = p1[0]`, `x_bar = p1[1]`.
runtime_blocks._blocked_rows runs it by blocks on large arrays.
"""

from __future__ import annotations

import numpy as np

from .runtime_blocks import _blocked_rows, _real

# (the calls of a generated function's blocks: bound once, not looked up in np each call)
_log, _max = np.log, np.maximum.reduce
_INF = float("inf")


def _xlogx_block(x):
    """xlogx_rows' form for a float array of its own (_blocked's front): x*log(x), and
    where its greatest point is below inf (NaN fails: a NaN, 0 * -inf at x = 0 and any
    x < 0 make one; so do x = inf and an overflow), so every x is in (0, inf), the
    derivative log(x) + 1.0 in log(x)'s array; else _xlogx_mixed's steps."""
    log = _log(x)
    value = x * log
    if _max(value, axis=None) < _INF:
        log += 1.0   # (x / x + log(x) there: x / x is exactly 1.0 for a finite x > 0)
        return value, log
    return _xlogx_mixed(x, log, value)


@_blocked_rows(front=_xlogx_block)
def xlogx_rows(x, out=None):
    """(xlogy(x, x), its derivative): the bits of the generated lines of x*log(x)'s value
    and gradient, `t1 = np.log(x)`, `t2 = x == 0.0`, `v1 = where_rare(t2, 0.0, x * t1)`,
    `x_bar = where_rare_kept(t2, x / x) + t1` (xlogy's two partials, the second's kept
    where: log(x) + 1, -inf at x = ±0; NaN at x = inf, where x / x is), with their
    warnings. A block whose x are all in (0, inf) (one reduction of the value, the
    usual block) takes log(x) + 1.0, the same bits as x / x + log(x) there, with no
    comparison, division or where (_xlogx_block, _blocked's front: a float array of
    its own); the others take the lines' steps. `out`: two arrays."""
    x = _real(x)
    if out is None and x.ndim and x.size and x.dtype.char in "fd":
        return _xlogx_block(x)
    flat = x.reshape(1) if x.ndim == 0 else x   # (arrays for one point too: the wheres write into them)
    log = np.log(flat)
    value, slope = _xlogx_mixed(flat, log, flat * log)
    if out is None:
        return (value[0], slope[0]) if x.ndim == 0 else (value, slope)
    out[0][...] = value
    out[1][...] = slope
    return out


def _xlogx_mixed(x, log, value):
    """The rows of a block with a point outside (0, inf) (a zero, a negative, inf, NaN,
    or an overflow of the value), from log(x) and x * log(x): the generated lines'
    steps, whose wheres set the zeros' value to 0.0 and their x / x (NaN) to 0.0, the
    where of where_rare_kept (0.0 + log(±0) = -inf)."""
    zero = x == 0.0
    ratio = x / x
    if zero.any():
        value[zero] = 0.0
        ratio[zero] = 0.0
    return value, np.add(ratio, log, out=ratio)


__all__ = ["xlogx_rows"]
