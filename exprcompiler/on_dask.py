"""Compiled functions called with Dask arrays: the same call, run chunk by chunk on a
Dask scheduler (threads, or a `distributed` cluster), returning Dask arrays, lazily.

Where it sits: after the backends. A compiled object (api.Compiled and the others of
compiled.py) whose arguments hold a Dask array hands the call here (`holds_dask`,
then `call`). Nothing is generated here: each chunk runs the same compiled kernel
through its ordinary NumPy call, and Dask does the scheduling, data movement and
recomputation after a lost worker (kernels are pure, so recomputing is safe).

    elementwise traces   every output chunked like the broadcast inputs
                         (`dask.array.apply_gufunc`); Jacobians and Hessians add their
                         trailing axes, one chunk each; or, with reduce="sum" or
                         "mean" (the public g.sum(...), g.mean(...): point_sums.py),
                         each output summed over the points inside each chunk's
                         task (`reduce_points`: no chunk of results is returned,
                         stored or freshly allocated)
    tensor traces        the inputs share a named dimension (the rows, "n"), chunked;
                         each output is either row-wise (chunked along its "n" axis)
                         or a sum or a mean over the rows, combined by a tree
                         reduction: see dask_loss.py

How the kernel travels: `Shipped` holds the compiled object's recipe (the trace and
the compile_* arguments, see recipe.py), pickled; each worker process rebuilds it once
(kept by hash: every later task of that kernel finds it), and the C
library is found in the on-disk cache or compiled once; a worker that cannot compile
C (no compiler on its PATH) runs the NumPy kernel of the same trace instead and says
so once (the same recipe with backend="numpy"; `NumpyFallbackWarning`, and an
"exprcompiler" event for the client). Kernels
run on one thread: the chunks are the parallelism (Dask's nanny sets OMP_NUM_THREADS=1 on workers, which
the C runner honours; for the threaded scheduler the shipped copy is compiled with
threads=1 unless the user chose a count).

Dask is imported only when an argument is a Dask object: `holds_dask` (compiled.py's,
re-exported) reads type names and runs on the call path of every compiled function.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
import warnings
import weakref
from collections import Counter

import numpy as np

from .call_args import _as_array
from .compiled import holds_dask  # the call path's own test (type names; no import of Dask)
from .errors import CompileError, ShapeError
from .point_sums import block_sums, flatten, output_layout, split_row, unflatten
from .recipe import rebuild


class DaskChunkWarning(UserWarning):
    """An input was rechunked to line up with another, which moves data between chunks."""


def call(compiled, args: tuple, kwargs: dict, *, reduce=None, split_every=None):
    """`compiled(*args, **kwargs)` with Dask arrays among the arguments: the results
    nested as the NumPy call returns them, each a Dask array (nothing is computed).

    For tensor traces (see dask_loss.py): `reduce="sum"` or `"mean"` says how outputs
    without the rows dimension combine over chunks (None: found by a check on random
    data, and refused when it cannot be verified). For elementwise functions, `reduce=`
    asks for each output summed (or averaged) over the points instead of the arrays
    (what g.sum(...) and g.mean(...) call):
    `call(g, (x1, x2), {}, reduce="sum")` is `(value.sum(), (g1.sum(), g2.sum()))`
    (a Jacobian keeps its trailing axes), reduced inside each chunk's task (see
    `reduce_points`). `split_every`: the fan-in of the reduction tree (when None,
    Dask's default, or FAN_IN for an elementwise function's sums)."""
    from .shapes_at_call import ShapesAtCall
    from .shape_binding import is_tensor_trace
    if isinstance(compiled, ShapesAtCall):
        # its shapes would come from the whole arrays, with no named dimension to split
        # over, and a per-chunk call would reduce each chunk alone: a wrong answer
        raise ShapeError("this function's shapes come from its first call (no shapes= given), so it has no "
                         "named dimension to split Dask chunks over; compile it with shapes= naming the "
                         "rows, e.g. shapes={'x': ('n',), 'y': ('n',)}")
    named = compiled.named(args, kwargs)
    for name, value in named.items():
        if holds_dask((value,), {}) and not _is_dask_array(value):
            raise TypeError(f"input {name!r}: a {type(value).__module__}.{type(value).__name__}; "
                            f"exprcompiler runs on dask.array arrays (a DataFrame: .to_dask_array(lengths=True))")
        if _is_dask_array(value) and value.dtype.kind not in "biuf":
            raise TypeError(f"input {name!r}: a Dask array of {value.dtype}; expected real numbers")
        if _is_dask_array(value) and any(np.isnan(c) for cs in value.chunks for c in cs):
            raise ShapeError(f"input {name!r}: its chunk sizes are unknown ({show_chunks(value.chunks)}); "
                             f"call .compute_chunk_sizes() on it first")
    if reduce not in (None, "sum", "mean"):
        raise ValueError(f"reduce must be 'sum', 'mean' or None (found from the function), got {reduce!r}")
    if is_tensor_trace(compiled.primal):
        from .dask_loss import over_rows
        return over_rows(shipped(compiled), compiled, named, reduce=reduce, split_every=split_every)
    if reduce is not None:
        return reduce_points(shipped(compiled), compiled, named, reduce, split_every)
    return map_points(shipped(compiled), compiled, named)


def _is_dask_array(value) -> bool:
    import dask.array as da
    return isinstance(value, da.Array)


# --------------------------------------------------------------------- shipping

_BUILT: dict = {}              # digest -> the compiled object, rebuilt once in this process
_BUILT_LOCK = threading.Lock()
REBUILDS: Counter = Counter()  # digest -> times this process unpickled it (tests read it)
_SHIPPED = weakref.WeakKeyDictionary()  # compiled object -> its Shipped, in the caller's process


class Shipped:
    """A compiled function as it travels in a Dask graph: its recipe (what its pickle
    holds: the compile_* function's key, the trace, the other arguments), pickled, and
    that pickle's hash. Dask tokenizes it by the hash, and a worker rebuilds it once:
    later tasks, and later graphs with the same kernel, find it in `_BUILT`. In the
    calling process (the threaded scheduler) it runs the object it was made from."""

    def __init__(self, blob: bytes, digest: str, local=None, *, weak: bool = False):
        self.blob, self.digest = blob, digest
        # the caller's object itself is held weakly: _SHIPPED maps it to this, and a
        # strong reference back would keep it alive forever
        self._held = None if weak else local
        self._ref = weakref.ref(local) if weak else None

    def __reduce__(self):
        return Shipped, (self.blob, self.digest)

    def __dask_tokenize__(self):
        return ("exprcompiler.on_dask.Shipped", self.digest)

    @property
    def compiled(self):
        if self._held is not None:
            return self._held
        local = self._ref() if self._ref is not None else None
        if local is not None:
            return local
        with _BUILT_LOCK:  # the worker's threads wait for one rebuild, not one each
            built = _BUILT.get(self.digest)
            if built is None:
                key, primal, args, kwargs = pickle.loads(self.blob)
                try:
                    built = rebuild(key, primal, args, kwargs)
                except CompileError as err:  # no C compiler here (or it failed): NumPy, said once
                    kwargs = {k: v for k, v in kwargs.items() if k != "threads"}  # the NumPy backend takes none
                    built = rebuild(key, primal, args, {**kwargs, "backend": "numpy"})
                    _notice(err)
                _BUILT[self.digest] = built
                REBUILDS[self.digest] += 1
        self._held = built
        return built


class NumpyFallbackWarning(UserWarning):
    """A worker could not build a C kernel and runs the NumPy kernel instead."""


FALLBACKS: list = []  # the notices this process gave (one per reason; the tests read it)


def _notice(err: Exception) -> None:
    """Says that this process runs the NumPy kernel instead of C, the first time each
    reason occurs in it: a warning (in the worker's log) and, on a distributed worker,
    an event the client can read with `client.get_events("exprcompiler")`."""
    reason = str(err).splitlines()[0].split(";")[0]
    if reason not in FALLBACKS:
        FALLBACKS.append(reason)
        notice = f"exprcompiler: this process cannot build C kernels ({reason}); running the NumPy kernel instead"
        warnings.warn(notice, NumpyFallbackWarning, stacklevel=2)
        try:
            from distributed import get_worker
            get_worker().log_event("exprcompiler", {"worker": get_worker().address, "notice": notice})
        except (ImportError, ValueError):
            pass  # not on a distributed worker: the warning is the notice


def shipped(compiled) -> Shipped:
    """The Shipped form of `compiled` (made once per compiled object): a one-thread
    copy on the C backend, pickled."""
    ship = _SHIPPED.get(compiled)
    if ship is None:
        one = _one_thread(compiled)
        _, recipe = one.__reduce__()  # (rebuild, (key, trace, args, kwargs)): recipe.Picklable
        blob = pickle.dumps(recipe)
        ship = Shipped(blob, hashlib.sha256(blob).hexdigest(), one, weak=one is compiled)
        _SHIPPED[compiled] = ship
    return ship


def moves_data(have: tuple, want: tuple) -> bool:
    """Whether rechunking one axis from `have` to `want` merges pieces of different
    chunks (moving data between tasks or workers), rather than only cutting chunks."""
    cuts = set(np.cumsum(want).tolist())
    return any(c not in cuts for c in np.cumsum(have).tolist())  # a chunk's end inside a new chunk


def _one_thread(compiled):
    """`compiled` made again with threads=1 (C backend, no thread count chosen):
    Dask's threads or workers are the parallelism, and a kernel starting its own
    OpenMP team inside each would oversubscribe the cores. The library is the same
    (the thread count is an argument of the C function), so this finds it in the cache."""
    if compiled.backend != "c" or compiled.threads is not None:
        return compiled  # the user's choice stands
    return compiled.with_threads(1)


# ------------------------------------------------------- elementwise functions

def _points(compiled, named: dict):
    """(the inputs as aligned Dask arrays or 0-d NumPy ones, the broadcast batch shape,
    each output's trailing axes, the nesting of the outputs)."""
    names = list(compiled.inputs)
    values = [named[n] for n in names]
    arrays = [v if _is_dask_array(v) else _as_array(n, v) for n, v in zip(names, values)]
    try:
        batch = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shown = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays))
        raise ShapeError(f"input shapes do not broadcast: {shown}") from None
    arrays = align_points(names, arrays, batch)
    cores, spec = output_layout(compiled)
    return arrays, batch, cores, spec


def map_points(ship: Shipped, compiled, named: dict):
    """An elementwise (scalar-trace) function over the broadcast chunks of its inputs:
    one task per chunk, each output a Dask array of the broadcast shape (plus the
    trailing axes of a Jacobian or Hessian, one chunk)."""
    import dask.array as da
    arrays, batch, cores, spec = _points(compiled, named)
    sizes, outs = {}, []
    for k, core in enumerate(cores):
        dims = [f"o{k}_{j}" for j in range(len(core))]
        sizes.update(zip(dims, core))
        outs.append("(" + ",".join(dims) + ")")
    signature = ",".join(["()"] * len(arrays)) + "->" + (outs[0] if len(outs) == 1 else ",".join(outs))
    result = da.apply_gufunc(PointChunk(ship, len(cores)), signature, *arrays,
                             output_dtypes=compiled.dtype if len(outs) == 1 else (compiled.dtype,) * len(outs),
                             output_sizes=sizes, vectorize=False)
    return unflatten(spec, [result] if len(outs) == 1 else list(result))


class PointChunk:
    """The task of one chunk: the compiled function on NumPy blocks, its results flat."""

    __name__ = "exprcompiler_points"  # what Dask names the tasks by (no '-': apply_gufunc splits on it)

    def __init__(self, ship: Shipped, n_out: int):
        self.ship, self.n_out = ship, n_out

    def __dask_tokenize__(self):
        return ("exprcompiler.on_dask.PointChunk", self.ship.digest, self.n_out)

    def __call__(self, *blocks):
        compiled = self.ship.compiled
        leaves = [np.asarray(x, dtype=compiled.dtype) for x in flatten(compiled(*blocks))[0]]
        return leaves[0] if self.n_out == 1 else tuple(leaves)


def reduce_points(ship: Shipped, compiled, named: dict, how: str, split_every=None):
    """An elementwise function's outputs summed (how="sum") or averaged ("mean") over
    the points, nested as the call's (a Jacobian keeps its trailing axes; the public
    form is g.sum(...), g.mean(...): point_sums.py): each chunk's task runs the kernel
    and sums its outputs block by block (point_sums.block_sums: in the caches, into
    buffers the thread keeps), returning one row of numbers, and the rows go up one
    tree reduction. Against `map_points` and Dask's sums, no chunk's results leave
    its task, or wait in the worker's memory for the sums' tasks, no fresh memory is
    faulted in, and there is one task per chunk instead of one plus one per output
    (measured: `python -m exprcompiler.bench.dask_griewank`)."""
    import dask.array as da
    arrays, batch, cores, spec = _points(compiled, named)
    if how == "mean" and 0 in batch:
        raise ValueError(f"mean(): no points to average (the inputs broadcast to shape {batch})")
    nd = len(batch)
    index = tuple(f"b{ax}" for ax in range(nd))
    pairs = []
    for a in arrays:
        pairs += [a, index[nd - a.ndim:] if _is_dask_array(a) else None]
    rows = da.blockwise(PointSums(ship, cores, spec), index + ("w",), *pairs,
                        new_axes={"w": sum(int(np.prod(c)) for c in cores)},
                        adjust_chunks=dict.fromkeys(index, 1), dtype=np.float64)
    # a row is a few numbers: a wide fan-in costs nothing and saves levels of the tree,
    # each a round trip through the scheduler (16 chunks: one level, not two)
    total = rows.sum(axis=tuple(range(nd)), split_every=split_every or FAN_IN)
    if how == "mean":
        total = total / int(np.prod(batch))
    if total.dtype != compiled.dtype:
        total = total.astype(compiled.dtype)
    return unflatten(spec, split_row(total, cores))


FAN_IN = 32  # reduce_points' tree: rows summed per task (split_every), unless told


class PointSums:
    """The task of one chunk for `reduce_points`: the compiled function on NumPy
    blocks, each output summed over the points (point_sums.block_sums): one row (every
    output's sums, flat, one after another), shaped as a block of one point per batch
    axis."""

    __name__ = "exprcompiler_sums"

    def __init__(self, ship: Shipped, cores: list, spec):
        self.ship, self.cores, self.spec = ship, [tuple(c) for c in cores], spec

    def __dask_tokenize__(self):
        return ("exprcompiler.on_dask.PointSums", self.ship.digest, self.cores, self.spec)

    def __call__(self, *blocks):
        batch = np.broadcast_shapes(*(np.shape(b) for b in blocks))
        row = block_sums(self.ship.compiled, list(blocks), batch, self.cores, self.spec)
        return row.reshape((1,) * len(batch) + row.shape)


def align_points(names: list, arrays: list, batch: tuple) -> list:
    """Every input as a Dask array whose chunks agree with the others' along each
    broadcast axis (size-1 axes broadcast). Where two Dask inputs disagree, the one
    with fewer bytes is rechunked like the larger, with a DaskChunkWarning naming both
    chunkings when that merges pieces of chunks; NumPy inputs are cut like the Dask ones."""
    import dask.array as da
    nd = len(batch)
    reference: dict = {}  # output axis -> (chunks, name, bytes)
    for name, a in zip(names, arrays):
        if not _is_dask_array(a):
            continue
        for ax in range(a.ndim):
            out = ax + nd - a.ndim
            if a.shape[ax] > 1 and (out not in reference or a.nbytes > reference[out][2]):
                reference[out] = (a.chunks[ax], name, a.nbytes)
    aligned = []
    for name, a in zip(names, arrays):
        lead = nd - a.ndim
        target = tuple(reference[ax + lead][0] if a.shape[ax] > 1 and ax + lead in reference
                       else (a.shape[ax],) if not _is_dask_array(a) else a.chunks[ax]
                       for ax in range(a.ndim))
        if not _is_dask_array(a):
            aligned.append(da.from_array(a, chunks=target) if a.ndim else a)
            continue
        for ax in range(a.ndim):
            if moves_data(a.chunks[ax], target[ax]):
                other = reference[ax + lead][1]
                warnings.warn(f"exprcompiler: inputs {name!r} and {other!r} are chunked differently along "
                              f"axis {ax + lead} ({show_chunks(a.chunks[ax])} against "
                              f"{show_chunks(target[ax])}); rechunking {name!r} like {other!r}, which moves "
                              f"data between chunks", DaskChunkWarning, stacklevel=4)
        aligned.append(a.rechunk(target) if target != a.chunks else a)
    return aligned


def show_chunks(chunks) -> str:
    """Chunk sizes for a message, long runs cut: (1000, 1000, ..., 1000, 500) (9 chunks)."""
    if chunks and isinstance(chunks[0], tuple):
        return "(" + ", ".join(show_chunks(c) for c in chunks) + ")"
    shown = [str(c) for c in chunks]
    if len(shown) > 6:
        shown = shown[:3] + ["..."] + shown[-2:]
    return "(" + ", ".join(shown) + ")" + (f" ({len(chunks)} chunks)" if len(chunks) > 6 else "")


__all__ = ["holds_dask", "call", "shipped", "Shipped", "DaskChunkWarning", "NumpyFallbackWarning", "map_points",
           "reduce_points", "flatten", "unflatten", "show_chunks", "moves_data"]
