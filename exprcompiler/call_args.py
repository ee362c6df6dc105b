"""The arguments of a call to a compiled function, checked: names (the user's, and
x_dot / y_bar for seeds), numbers or arrays of numbers, and `out=` arrays — what
api.Compiled does before a kernel runs and after it returns, in one place.
"""

from __future__ import annotations

import contextvars
import math
import threading
from typing import Any, Optional, Sequence

import numpy as np

from .backends.naming import param_alias
from .dtypes import check_out_dtype, real
from .heap_release import keep_heap

_MISSING = object()


def _all_floats(args: tuple, n: int) -> bool:
    if len(args) != n:
        return False
    for a in args:
        if type(a) is not float:
            return False
    return True


def _numbers(args, kwargs, inputs) -> Optional[list]:
    """The arguments as a list of floats in input order when every input is given as
    one Python float (or an np.float64, or a small int), positionally or all by name; else None."""
    if kwargs:
        if args or len(kwargs) != len(inputs):
            return None
        try:
            args = [kwargs[name] for name in inputs]
        except KeyError:
            return None
    elif len(args) != len(inputs):
        return None
    values = []
    for a in args:
        if type(a) is float:
            values.append(a)
        elif type(a) is np.float64 or (type(a) is int and -2**53 <= a <= 2**53):
            values.append(float(a))  # x[k] of a float64 array is an np.float64: J(*x) stays quick
        else:
            return None
    return values

def _public_names(trace_names: Sequence[str], user_names: Sequence[str]) -> tuple[str, ...]:
    """User inputs keep their own names, whatever they are ('.' included: SymPy
    allows it); seeds of derivative traces (x.dot, y.bar) are called x_dot, y_bar,
    with underscores added if a user name is taken."""
    user = set(user_names)
    taken = set(user)
    names = []
    for n in trace_names:
        if n not in user:
            n = param_alias(n)
            while n in taken:
                n += "_"
            taken.add(n)
        names.append(n)
    return tuple(names)


COMPLEX = "complex values are not supported"


def not_real(value: Any) -> Optional[str]:
    """Why converting `value` to float64 would lose part of it (imaginary parts, a
    mask), or None: for the conversions that do not go through _as_array (at()'s
    packed vectors)."""
    if isinstance(value, np.ma.MaskedArray) and np.ma.is_masked(value):
        # (np.asarray keeps the values under the mask, and the results would have none)
        return "a masked array with masked values; pass value.filled(...) or the unmasked values"
    try:
        complex_ = np.iscomplexobj(value)
    except (TypeError, ValueError):  # (ragged or not numbers: the conversion says so)
        return None
    return COMPLEX if complex_ else None


def _as_array(name: str, value: Any) -> np.ndarray:
    if type(value) is np.ndarray and value.dtype == np.float64:
        return value  # the common case, checked cheaply
    def wrong(what: str) -> TypeError:
        return TypeError(f"input {name!r}: expected a real number or an array of numbers, got {what}")
    if value is None or isinstance(value, (str, bytes)):
        raise wrong(type(value).__name__)
    why = not_real(value) if isinstance(value, np.ma.MaskedArray) else None
    if why:
        raise TypeError(f"input {name!r}: {why}")
    try:
        raw = np.asarray(value)
    except ValueError:  # ragged nested lists
        raise wrong("a ragged sequence") from None
    if raw.dtype == object and type(value) is int:  # (past 64 bits NumPy keeps it as an object)
        try:
            return np.asarray(float(value))
        except OverflowError:
            # (its digits not shown: str() of one past 4,300 digits raises ValueError)
            raise TypeError(f"input {name!r}: an integer of {value.bit_length()} bits is too large for a "
                            f"float64 (at most about 1.8e308)") from None
    if raw.dtype.kind == "c":   # (not_real's test, read off the dtype already made)
        raise TypeError(f"input {name!r}: {COMPLEX}")
    if raw.dtype.kind not in "biuf":
        raise wrong(f"an array of {raw.dtype}" if raw.ndim else type(value).__name__)
    return raw.astype(np.float64, copy=False)


class _Entered(threading.local):
    run = None   # this thread's Context.run, once made (see quiet)


def entered_elsewhere(err: RuntimeError) -> bool:
    """Whether Context.run raised `err` itself (the Context is being run by another
    thread): then no frame of the function it was given is in its traceback."""
    return err.__traceback__.tb_next is None


def quiet(fn):
    """`fn` run as under np.errstate(all="ignore"): IEEE results (inf, nan) are
    returned, not warned about, whatever error state the caller has set.

    errstate sets NumPy's error-state context variable and resets it after. Measured
    on the least-squares gradient (500×100, one BLAS thread, CPU time, interleaved):
    about +1.5 µs over the bare kernel on a busy machine. Instead, fn runs in a
    Context (Context.run: +0.4 µs on the same measure) made at the first call: a copy
    of the caller's with the variable set to the caller's state with every error
    ignored (its buffer size and callback kept). A Context is run by one thread at a
    time: while one thread runs it, Context.run raises RuntimeError in any other,
    before fn runs (entered_elsewhere), and that thread runs fn in one of its own, made
    the same way at its first such call. The shared Context comes first: with a
    Context per thread found through a threading.local at every call, +3.0 µs over
    the bare kernel, with the shared one +1.9 µs (the two-layer network's gradient,
    median of 5000 calls each alternated with the bare kernel's, busy machine: a
    lookup after a kernel has filled the caches costs more than its instructions).
    fn must not call itself back. Reading the caller's state
    at each call to follow a later np.setbufsize cost another +0.5 µs: the buffer size
    of the first call stays (it changes the speed of buffered loops, and under
    "ignore" no error mode or callback is used). fn runs NumPy, which reads no other
    context variable, so the copy being older than the caller's context does not
    matter. Where a NumPy lacks that variable (before 2.0), the errstate decorator."""
    try:
        from numpy._core.umath import _extobj_contextvar as state, _make_extobj
    except ImportError:
        return np.errstate(all="ignore")(fn)
    local = _Entered()
    shared: list = [None]   # the shared Context's run, made at the first call

    def make():
        context = contextvars.copy_context()
        context.run(state.set, _make_extobj(all="ignore"))
        return context.run

    def first():  # two threads may both make one: either is kept
        shared[0] = make()
        return shared[0]

    def enter():
        local.run = make()
        return local.run

    def quiet_fn(*args):
        try:
            return (shared[0] or first())(fn, *args)
        except RuntimeError as err:
            if not entered_elsewhere(err):
                raise
        return (local.run or enter())(fn, *args)
    quiet_fn.__name__, quiet_fn.__doc__ = getattr(fn, "__name__", "quiet"), fn.__doc__
    # for a caller that inlines these steps (call_plan: one frame less on every call)
    quiet_fn.steps = (shared, first, local, enter, fn)
    return quiet_fn


def _check_out_flat(out) -> list:
    flat: list = []
    stack = [out]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat


def _check_out(out, shapes: list, inputs: list, dtype=None) -> list:
    """The arrays of `out=`, flattened from their nesting, checked against the shapes
    of the results (a gradient's: the batch's; a Jacobian's: batch + (m, n)) and the
    function's dtype (None: float64) before any is written. An array the kernel could
    not write as it is (strided, read-only, misaligned) is refused, not written through
    a temporary: the kernel writes straight into the caller's memory, and a hidden copy
    would cost as much as not passing out= at all."""
    flat = _check_out_flat(out)
    if len(flat) != len(shapes):
        raise ValueError(f"out=: expected {len(shapes)} array{'s' if len(shapes) > 1 else ''} "
                         f"(one per result), got {len(flat)}")
    for k, (o, shape) in enumerate(zip(flat, shapes)):
        where = f"out= array {k}"
        if not isinstance(o, np.ndarray):
            raise TypeError(f"{where}: expected a NumPy array, got {type(o).__name__}")
        if dtype is not None:  # a float32 function: its dtype, said apart from the shape
            check_out_dtype(k, o, dtype)
        if o.dtype != real(dtype) or o.shape != shape:
            raise ValueError(f"{where}: expected {real(dtype).name} of shape {shape}, "
                             f"got {o.dtype} of shape {o.shape}")
        flags = o.flags
        if not (flags.c_contiguous and flags.writeable):
            raise ValueError(f"{where}: must be C-contiguous and writable")
        if not flags.aligned:  # (a C kernel writes it through a pointer to its type)
            raise ValueError(f"{where}: must be aligned (its address a multiple of {o.itemsize} bytes, as "
                             f"every array NumPy allocates is): pass np.empty_like(it), then copy")
        for j, other in enumerate(flat[:k]):
            if np.may_share_memory(o, other):
                raise ValueError(f"{where} overlaps out= array {j}")
        for a in inputs:
            # the same array in and out is fine (each point is read before it is
            # written); a shifted overlap would read results as inputs
            if np.may_share_memory(o, a) and not (a.shape == o.shape and
                                                  a.__array_interface__["data"] == o.__array_interface__["data"]
                                                  and a.strides == o.strides):
                raise ValueError(f"{where} overlaps an input without being the same array")
    return flat


def batch_shape(arrays: list, names) -> tuple:
    """The batch of a call of a function of scalars: its inputs' shapes broadcast (all
    equal, the usual call: that shape, without np.broadcast_shapes' ~1.4 µs)."""
    shape = arrays[0].shape if arrays else ()
    for a in arrays:
        if a.shape != shape:
            break
    else:
        return shape
    try:
        return np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shown = ", ".join(f"{name} {a.shape}" for name, a in zip(names, arrays))
        raise ValueError(f"input shapes do not broadcast: {shown}") from None


def own(results, arrays) -> tuple:
    """`results` with each that is an input array itself, or the same array as an
    earlier result, copied. The NumPy backend returns what the generated function
    returns, and d(x*y)/dy is `x` itself: a caller who updates a gradient in place
    (g *= lr) must not change its inputs or another result. A copy only where one
    aliases."""
    if len(set(map(id, (*results, *arrays)))) == len(results) + len(arrays):
        return results   # (most calls: no object twice, one set made in C)
    out = list(results)
    for k, r in enumerate(out):
        if type(r) is np.ndarray and (any(r is a for a in arrays) or any(r is q for q in out[:k])):
            out[k] = r.copy()
    return type(results)(out)


def _fit(result, batch: tuple, dtype=None):
    arr = np.asarray(result, dtype=real(dtype))
    if arr.shape != batch:
        arr = np.array(np.broadcast_to(arr, batch))
    return float(arr) if batch == () else arr


def keep_outputs(batch: tuple, suffixes, dtype, kept: int) -> int:
    """At api.Compiled's call with a batch of a new shape and no out=: glibc keeps the
    call's new outputs (`suffixes`: their shapes past the batch's) in its heap once
    freed (heap_release.keep_heap with their bytes; it does nothing for a size it kept
    before). Returns the most points kept for: `kept`, or the batch's if more. Else,
    in a process that had freed no large array (one that never ran a NumPy evaluation
    that size: a C kernel's caller), outputs dropped before the next call were given
    back (their total above the trim threshold, twice the largest array freed) and
    made again as new pages. A C gradient of two variables (three outputs), results
    dropped, fresh processes taking turns (load 5-10): 10⁵ points 554 page faults a
    call -> 0, 1.25 -> 0.60 ms (0.48x); 10⁶ 1,319 -> 0, 8.75 -> 6.30 ms (0.72x);
    n <= 10³ within noise. The per-call price is api's comparison of the batch with
    the last one's (callgrind, the old and new api.Compiled.__call__ taking turns in
    one process: +190-300 of a C gradient's 120k instructions a call at 10 points,
    of 177k at 10³: 0.2%). (A dense C Jacobian's own entry, dense_point.py, makes its outputs in C
    after its second call: outputs that large raise glibc's thresholds themselves,
    no fault a call at 10⁵ before or after.)"""
    n = math.prod(batch)
    if n <= kept:
        return kept
    keep_heap(n * sum(math.prod(sfx) for sfx in suffixes) * np.dtype(real(dtype)).itemsize)
    return n
