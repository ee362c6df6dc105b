"""The blocked running and the small shared pieces of the NumPy runtime's elementwise
helpers: _blocked (a helper run block by block on large arrays, and its `front`, the
form a generated function's block takes; _blocked_rows, for one with two results), the
float conversions every helper starts and ends with, and _redo (a helper's fix-up at a
few points).

Where it sits: imported by runtime_elementwise.py, runtime_exps.py, runtime_log1p.py,
runtime_nary.py and runtime_tanh.py (the helpers that runtime.py re-exports); nothing here is
imported by generated code.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from .heap_release import keep_heap

_LN2 = 0.6931471805599453
_BLOCK = 1 << 16   # elements: a block's temporaries (512 KiB each) stay in the caches (2^15, 2^17: no better)
_BIG = 2 * _BLOCK   # elements from which a helper runs by blocks (_blocked)
_ndarray = np.ndarray


def _blocked(helper=None, rows: int = 0, front=None, on: int = 0):
    """helper(*args), run on blocks of _BLOCK elements (where arrays arrive whole: tensor
    programs and the interpreter; a compiled elementwise function calls the helpers on
    numpy_backend.numpy_runner's blocks of BLOCK points already, below the threshold)
    where its array arguments are large C-contiguous arrays of one shape (the others
    are scalars), into one new array: the helpers make several passes with
    temporaries, and on 10⁶ points each full-size
    temporary costs a pass through main memory and its first-touch page faults, which the
    block's temporaries, reused from the cache, do not (value + gradient of the stable
    forms: 25-30% less time). The same numbers: each helper gives a point the same value
    whatever the other points are (a reduction finding no special value in a block only
    skips a fix-up there). A helper with an `out` parameter writes its result there (a
    block of the result, of its arguments' precision); the others' are copied there.
    `rows`: the helper's result is a tuple of that many arrays (results one call
    computes together, _blocked_rows), its `out` a tuple of their blocks.

    `front`: the helper's form for a float array of its own, a generated function's
    block (most calls): front(*args) where args[`on`] is a float64 or float32 array of
    at least one dimension and one point, below _BIG points, and no out= is given;
    helper(*args) for the others (scalars, out=, a large array's blocks). Both forms
    give the same bits (front only skips steps). The test is the wrapper's first step
    and the wrapper takes the helper's own arguments (_front), so such a call pays
    nothing else (the general wrapper's call and loop cost a block 0.3-3 µs; six
    helpers held a test of their own in front of it). With no helper, a decorator."""
    if helper is None:
        return functools.partial(_blocked, rows=rows, front=front, on=on)
    takes_out = "out" in inspect.signature(helper).parameters

    @functools.wraps(helper)
    def run(*args, **out):
        if out:   # a caller's out=: that caller runs by blocks
            return helper(*args, **out)
        for a in args:   # (_big's first loop, inline: most calls are a generated function's blocks)
            if isinstance(a, np.ndarray) and a.size >= _BIG:
                break
        else:
            return helper(*args)
        return _by_blocks(helper, args, rows, takes_out)
    return run if front is None else _front(helper, run, front, on)


def _front(helper, run, front, on: int):
    """_blocked's wrapper `run` behind the test for `front` (see _blocked), as a function
    of the helper's own arguments (one, or two with the array second: the helpers that
    have a front), not *args and **out: the call costs no tuple, dict or second call.
    A functools.partial `front` binds leading arguments in C (no Python frame)."""
    if on == 0:
        def one(x, out=None):
            if out is None and type(x) is _ndarray and x.ndim and 0 < x.size < _BIG and x.dtype.char in "fd":
                return front(x)
            return run(x) if out is None else run(x, out=out)
        wrapper = one
    elif on == 1:
        def two(u, x, out=None):
            if out is None and type(x) is _ndarray and x.ndim and 0 < x.size < _BIG and x.dtype.char in "fd":
                return front(u, x)
            return run(u, x) if out is None else run(u, x, out=out)
        wrapper = two
    else:
        raise ValueError(f"_blocked: a front for argument {on} (0 or 1 only)")
    wrapper.front = front   # (for tests: the form a block takes)
    return functools.wraps(helper)(wrapper)


def _by_blocks(helper, args, rows: int, takes_out: bool):
    """_blocked's run of helper on blocks, where _big finds arrays to block (else
    helper(*args))."""
    big = _big(args)
    if big is None:
        return helper(*args)
    dtype = np.result_type(*(a for a in args if a is not None), 1.0)
    # (glibc keeps the blocks' temporaries in its heap, as after the unblocked helper's
    # first full-size temporary: heap_release.keep_heap; else each block faults them in)
    keep_heap(big[0].size * dtype.itemsize)
    outs = [np.empty(big[0].shape, dtype=dtype) for _ in range(rows or 1)]
    flat_outs = [o.reshape(-1) for o in outs]
    flat = [a.reshape(-1) if isinstance(a, np.ndarray) and a.ndim else a for a in args]
    for start in range(0, big[0].size, _BLOCK):
        blocks = [a[start:start + _BLOCK] if isinstance(a, np.ndarray) and a.ndim else a for a in flat]
        if rows:
            helper(*blocks, out=tuple(o[start:start + _BLOCK] for o in flat_outs))
        elif takes_out:
            helper(*blocks, out=flat_outs[0][start:start + _BLOCK])
        else:
            flat_outs[0][start:start + _BLOCK] = helper(*blocks)
    return tuple(outs) if rows else outs[0]


def _blocked_rows(helper=None, front=None, on: int = 0):
    """_blocked for a helper with two results, a tuple of two arrays (a value and its
    derivative, or two partials, that one call computes together). Not the rows of one
    array: allocating it cost exp(x) - 1's value and gradient 10% of the blocks' own
    time, 2% at 10⁶ points. `front`, `on`: _blocked's."""
    return _blocked(helper, rows=2, front=front, on=on)


def _big(args) -> list | None:
    """The array arguments where a helper runs by blocks on them (_blocked), else None:
    first a loop that finds no large array (a generated function's blocks, most calls:
    a tenth of a µs, where the test below took a µs of a helper's 3-4 µs of calling)."""
    for a in args:
        if isinstance(a, np.ndarray) and a.size >= _BIG:
            break
    else:
        return None
    big = [a for a in args if isinstance(a, np.ndarray) and a.ndim]
    if big[0].size < _BIG or not all(a.shape == big[0].shape and a.flags.c_contiguous for a in big):
        return None
    return big


def _real(x, other=1.0):
    if type(x) is np.ndarray and type(other) is float and x.dtype.char in "fd":   # (most calls: no result_type)
        return x
    return np.asarray(x, dtype=np.result_type(x, other, 1.0))   # float32 stays float32


def _scalar(r):
    return r[()] if r.ndim == 0 else r


def _redo(r, mask, f, *xs):
    """r[mask] = f(*(x[mask] for x in xs)) (arrays of r's shape), by flat indices: NumPy's
    boolean gather and scatter each cost more than a pass of np.take and np.put together,
    and an indexed assignment into r's flat view half of np.put (1,260 points of a block
    of 16,384: 1.9 µs against 4.0)."""
    at = np.flatnonzero(mask)
    _scatter(r, at, f(*(x.take(at) for x in xs)))


def _scatter(r, at, got) -> None:
    """r.flat[at] = got: through r's flat view where r is C-contiguous (a view of its own
    memory), np.put elsewhere."""
    if r.flags.c_contiguous:
        r.reshape(-1)[at] = got
    else:
        r.put(at, got)
