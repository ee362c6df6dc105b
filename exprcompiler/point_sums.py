"""An elementwise function's outputs summed or averaged over the points of a batch:
`g.sum(x1, x2)` and `g.mean(x1, x2)`, the methods of every compiled object
(compiled.py), with the arguments of `g(x1, x2)`.

Where it sits: beside the call. The result is nested as the call's, each output summed
over the batch's axes (a Jacobian or Hessian keeps its trailing axes): for a gradient,
`(sum of values, (sum of d/dx1, sum of d/dx2))`. Methods rather than a keyword of the
call, because a keyword would take a name away from the inputs (an input may be called
"reduce").

    NumPy inputs   `block_sums`, in this process
    Dask inputs    lazy, through on_dask.reduce_points: each chunk's task runs
                   `block_sums` on its chunk, and a tree reduction adds the chunks' rows

`block_sums` runs the kernel block by block along the batch's first axis, each block
of about BLOCK_NUMBERS output numbers, into a buffer the thread keeps (`kept_buffer`),
and sums each block as it comes (value-and-gradient kernels through their runner, one
sum per block). Against one call and NumPy's sums: the results stay in the caches, and
no fresh memory is touched, whose page faults cost up to 100 us each on a virtual
machine (and in a Dask worker, where the nanny's MALLOC_TRIM_THRESHOLD_ makes glibc map
every allocation above 128 KB afresh), and the memory is one block's, not the batch's.
Measured on Griewank's value and gradient, one thread, 6.25 * 10^6 points, CPU time,
median of 9 on a loaded machine: 66 ms, against 70 ms for the kernel into kept arrays
and NumPy's sums (10 ms of them) and 62 ms for the kernel alone; 92 ms with blocks of
2^16 numbers (the call's overhead, about 40 us a block).

Tensor programs (shapes=) are refused: their outputs have shapes of their own, not one
value per point, and a sum over rows is written in the expression (on Dask data, the
call itself combines the chunks' sums: dask_loss.py).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from .call_args import _as_array
from .compiled import holds_dask
from .errors import ShapeError

BLOCK_NUMBERS = 1 << 18  # output numbers per block (2 MB of float64): measured best of 2^15..2^20


def over_points(compiled, args: tuple, kwargs: dict, how: str):
    """`compiled`'s outputs at the points of args/kwargs, summed (how="sum") or averaged
    ("mean") over the points: NumPy numbers, or Dask arrays (lazy) when an input is one."""
    _refuse_tensor(compiled, how)
    named = compiled.named(args, kwargs)
    if holds_dask((), named):
        from .on_dask import call
        return call(compiled, (), named, reduce=how)
    convert = getattr(compiled, "_as_array", _as_array)  # float32 functions convert to theirs
    arrays = [convert(name, named[name]) for name in compiled.inputs]
    try:
        batch = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shown = ", ".join(f"{name} {a.shape}" for name, a in zip(compiled.inputs, arrays))
        raise ShapeError(f"{how}(): input shapes do not broadcast: {shown}") from None
    points = math.prod(batch)
    if points == 0 and how == "mean":
        raise ValueError(f"mean(): no points to average (the inputs broadcast to shape {batch})")
    if batch == ():  # one point as a batch of one: every kind returns arrays then
        arrays, batch = [a.reshape(1) for a in arrays], (1,)
    cores, spec = output_layout(compiled)
    row = block_sums(compiled, arrays, batch, cores, spec)
    if how == "mean":
        row = row / points
    return unflatten(spec, [part.astype(compiled.dtype)[()] for part in split_row(row, cores)])


def output_layout(compiled) -> tuple[list, object]:
    """(each output's trailing axes, the nesting of the outputs), from a call at one point."""
    leaves, spec = flatten(compiled(*[np.full((1,), 0.5)] * len(compiled.inputs)))
    return [tuple(np.shape(leaf)[1:]) for leaf in leaves], spec


def block_sums(compiled, arrays: list, batch: tuple, cores: list, spec) -> np.ndarray:
    """Every output of `compiled(*arrays)` summed over the batch, flat, one after another
    (float64): block by block along the batch's first axis (see the module)."""
    nd = len(batch)
    width = sum(math.prod(c) for c in cores)
    length = batch[0] if nd else 1
    rows = max(1, BLOCK_NUMBERS // max(math.prod(batch[1:]) * width, 1))
    starts = range(0, length, rows)
    parts = np.zeros((max(len(starts), 1), width))
    # one number per point and output (a value and gradient): the kernel's own runner,
    # without the call's checks (this module made the arrays), and one sum per block
    from .api import Compiled
    into = isinstance(compiled, Compiled)  # out= into kept buffers
    run = compiled._run if into and nd and compiled._plain else None
    if run is not None:
        convert = compiled._as_array
        arrays = [convert(name, a) for name, a in zip(compiled.inputs, arrays)]
    with np.errstate(all="ignore"):  # IEEE results (inf, nan) are summed, as the call returns them
        for k, start in enumerate(starts):
            stop = min(start + rows, length)
            block = arrays if nd == 0 or length == stop - start else \
                [a[start:stop] if a.ndim == nd and a.shape[0] > 1 else a for a in arrays]
            shape = ((stop - start),) + batch[1:] if nd else ()
            if run is not None:
                points = math.prod(shape)
                stacked = kept_buffer(cores, compiled.dtype, width * points)[:width * points].reshape(width, points)
                run(block, shape, [out.reshape(points, 1) for out in stacked])  # the outputs: its rows
                np.sum(stacked, axis=1, dtype=np.float64, out=parts[k])
                continue
            if into:
                outs = kept_outputs(shape, cores, compiled.dtype)
                compiled(*block, out=unflatten(spec, outs))
            else:  # out= it has not (a sparse derivative): its own arrays, one block's
                outs = [np.asarray(leaf) for leaf in flatten(compiled(*block))[0]]
            at = 0
            for out, core in zip(outs, cores):
                size = math.prod(core)
                np.sum(out.reshape(-1, size), axis=0, dtype=np.float64, out=parts[k, at:at + size])
                at += size
    return parts.sum(axis=0)


def split_row(row: np.ndarray, cores: list) -> list:
    """The flat row of `block_sums` as one array per output, of its trailing axes."""
    out, start = [], 0
    for core in cores:
        size = math.prod(core)
        out.append(row[start:start + size].reshape(core))
        start += size
    return out


_KEPT = threading.local()  # per thread: (trailing axes, dtype) -> a flat buffer
KEEP = 2                   # output layouts whose buffer a thread keeps (the last used)


def kept_outputs(batch: tuple, cores: list, dtype) -> list:
    """Arrays of shapes batch + core, one per output, for a call in this thread: views,
    one after another, of a flat buffer the thread keeps for each of its last KEEP
    output layouts (the trailing axes and dtype), as large as the largest block so far
    (so equal blocks and a shorter last one share it). A thread holds on to one block
    per layout."""
    points = math.prod(batch)
    sizes = [points * math.prod(c) for c in cores]
    buffer = kept_buffer(cores, dtype, sum(sizes))
    offsets = np.cumsum([0] + sizes).tolist()
    return [buffer[a:b].reshape(batch + c) for a, b, c in zip(offsets, offsets[1:], cores)]


def kept_buffer(cores: list, dtype, size: int) -> np.ndarray:
    """This thread's flat buffer for the output layout (cores, dtype), of at least
    `size` numbers: the last used, grown when too small (see kept_outputs)."""
    held = _KEPT.__dict__.setdefault("held", {})
    key = (tuple(cores), np.dtype(dtype).str)
    buffer = held.pop(key, None)
    if buffer is None or buffer.size < size:
        while len(held) >= KEEP:
            del held[next(iter(held))]  # the least recently used
        buffer = np.empty(max(size, 1), dtype)
    held[key] = buffer
    return buffer


def flatten(result) -> tuple[list, object]:
    """(leaves, spec) of a result nested in tuples: (value, (g_x, g_y)) ->
    [value, g_x, g_y] and the nesting, for `unflatten`. Results nest two or three
    deep, whatever the expression, so recursion is bounded."""
    if isinstance(result, tuple):
        leaves, specs = [], []
        for item in result:
            sub, spec = flatten(item)
            leaves += sub
            specs.append(spec)
        return leaves, tuple(specs)
    return [result], None


def unflatten(spec, leaves: list):
    it = iter(leaves)

    def build(s):
        return next(it) if s is None else tuple(build(x) for x in s)
    return build(spec)


def _refuse_tensor(compiled, how: str) -> None:
    from .shape_binding import is_tensor_trace
    from .shapes_at_call import ShapesAtCall
    at_call = isinstance(compiled, ShapesAtCall)  # its reductions read arrays: a tensor program
    if at_call or is_tensor_trace(compiled.primal):
        why = "its reductions read arrays whose shapes come from the first call" if at_call else \
            "it has shapes= (its outputs have shapes of their own, not one value per point)"
        raise TypeError(f"{how}() sums an elementwise function over a batch of points, but this function "
                        f"is a tensor program: {why}. Write the {how} over rows in the expression instead, "
                        f"e.g. compile_grad(\"{how}((X @ w - y)**2)\", wrt=[\"w\"], "
                        f"shapes={{\"X\": (\"n\", 5), \"y\": (\"n\",), \"w\": (5,)}}); called with Dask arrays "
                        f"chunked along n, it combines the chunks' {how}s")


__all__ = ["over_points", "output_layout", "block_sums", "split_row", "kept_outputs", "flatten", "unflatten",
           "BLOCK_NUMBERS"]
