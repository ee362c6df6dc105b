"""Tensor functions over data chunked along a named dimension: a loss, its gradient,
its Hessian-vector product, as Dask arrays combined from per-chunk calls.

Where it sits: beside on_dask.py, after the backends; on_dask.call hands it a
compiled function of tensors whose Dask inputs are chunked along a named dimension
of their declared shapes (the rows, "n": X ("n", 100), y ("n",)). Each chunk of rows
runs the compiled function once (one task), and each output combines its chunks'
results by what it is:

    rows   it has the rows axis (a gradient with respect to X, predictions X@w):
           the chunks' results side by side, chunked along that axis (for the
           gradient of a mean with respect to X, each scaled by its rows / n);
    sum    a sum over the rows (0.5*sum((X@w - y)**2), its gradient and HVP): the
           chunks' results added by a tree reduction;
    mean   a mean over the rows: each chunk's result times its row count, added
           by the same tree, divided by the number of rows.

The sums and means of one chunk travel as one row [value, gradient...] (a (1, L)
block), so one `.sum(axis=0, split_every=k)` over the chunks is the whole tree: its
depth is log_k of the chunk count, and its result differs from the in-memory one by
summation order only.

Which kind each output is, is checked, not guessed: the function is called on random
data with 2, 3 and all 5 rows, and an output is "rows" if the 5-row result is the
other two side by side (or so once scaled by 2/5 and 3/5), "sum" if it is their sum,
"mean" if it is their mean weighted by rows (all to 1e-9). A function that is none of these (log of a sum, a regularizer
added to a sum: counted once per chunk) is refused, naming the output. `reduce=` may
say "sum" or "mean"; the check must then agree, or (when the function is not finite
on the random data) it is taken at its word.
The check runs once per compiled function and input shapes (`classify_cached`), so
an optimizer calling the gradient every step pays for it on the first step only.
"""

from __future__ import annotations

import math
import operator
import threading
import warnings
import weakref
from collections import Counter

import numpy as np

from .backends.naming import param_alias
from .call_args import _as_array
from .errors import ExprcError, ShapeError
from .on_dask import DaskChunkWarning, Shipped, flatten, moves_data, show_chunks, unflatten

PROBE_ROWS = (2, 3)  # the two parts of the check; together 5 rows
TOLERANCE = 1e-9     # relative, for the check (its arithmetic differs by summation order)


class NotSeparable(ExprcError, ValueError):
    """An output of a function called on chunked data is neither row-wise nor a sum or
    mean over the rows, so chunk results cannot be combined into the whole's."""


def declared_shapes(compiled) -> dict:
    """Input name -> declared shape, seeds (w_dot, y_bar) included, by the names the
    call takes: the signature's where it is the trace's (a seed x.dot beside a user's
    own x_dot is x_dot_ there), else each seed's alias."""
    shapes = {}
    trace = getattr(compiled, "trace", None)
    if trace is not None:
        signature = getattr(compiled, "signature", None)
        names = signature.inputs if getattr(signature, "trace", None) is trace else \
            tuple(map(param_alias, trace.input_names))
        shapes.update((name, trace.instrs[v].shape) for name, (_, v) in zip(names, trace.inputs))
    shapes.update((name, compiled.primal.instrs[v].shape) for name, v in compiled.primal.inputs)
    return shapes


def over_rows(ship: Shipped, compiled, named: dict, *, reduce=None, split_every=None):
    """The call `compiled(**named)` as Dask arrays: one task per chunk of rows, then
    each output put together by its kind (see the module); nested as the call's."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
    names = list(compiled.inputs)
    declared = declared_shapes(compiled)
    values = {n: named[n] if _is_dask(named[n]) else _as_array(n, named[n]) for n in names}
    for n in names:
        ndim = np.ndim(values[n])
        if ndim != len(declared[n]):
            raise ShapeError(f"input {n!r}: declared shape {declared[n]} has {len(declared[n])} axes, "
                             f"the argument has {ndim} (shape {np.shape(values[n])})")
    rows = _rows_dimension(names, values, declared)
    axes = {n: [ax for ax, d in enumerate(declared[n]) if d == rows] for n in names}
    for n in names:
        if len(axes[n]) > 1:
            raise ShapeError(f"input {n!r} has the rows dimension {rows!r} twice in its declared shape "
                             f"{declared[n]}; a chunk of rows cannot be cut from it")
    sizes = {(n, np.shape(values[n])[axes[n][0]]) for n in names if axes[n]}
    if len({s for _, s in sizes}) > 1:
        shown = ", ".join(f"{n} has {s}" for n, s in sorted(sizes))
        raise ShapeError(f"the inputs disagree on the size of {rows!r}: {shown}")
    arrays, chunks = _align_rows(names, values, axes, rows)
    n_rows = sum(chunks)
    if n_rows == 0 and len(chunks) > 1:  # no rows at all: one call on the empty data, as in memory
        chunks = (0,)
        arrays = {n: a.rechunk(tuple(chunks if ax in axes[n] else (s,) for ax, s in enumerate(a.shape)))
                  if _is_dask(a) and axes[n] else a for n, a in arrays.items()}
    kinds, leaf_shapes, spec = classify_cached(compiled, values, axes, rows, reduce, one_chunk=len(chunks) == 1)

    # one task per chunk of rows, written out rather than by da.blockwise: blockwise
    # hands a task its blocks through dask's concatenate3, which copies even a single
    # block (a 100 MB chunk of X: 22 ms, more than the gradient's own 15 ms)
    task = RowChunk(ship, kinds, [axes[n] for n in names], n_rows, leaf_shapes)
    tmp_name = "exprcompiler-rows-" + tokenize(task, [arrays[n] for n in names])
    layer: dict = {}
    for n in names:  # inputs without rows: one key each, shared by every task
        if not _is_dask(arrays[n]):
            layer[f"{tmp_name}-{n}"] = arrays[n]
    for k in range(len(chunks)):
        layer[(tmp_name, k)] = (task, *[
            (arrays[n].name, *(k if ax in axes[n] else 0 for ax in range(arrays[n].ndim)))
            if _is_dask(arrays[n]) else f"{tmp_name}-{n}" for n in names])
    graph = HighLevelGraph.from_collections(tmp_name, layer,
                                            dependencies=[arrays[n] for n in names if _is_dask(arrays[n])])
    tmp = da.Array(graph, tmp_name, chunks=((1,) * len(chunks),), dtype=object)
    keys = tmp.__dask_keys__()  # one per chunk of rows; each task returns a tuple

    def leaf(i: int, shape: tuple, axis: int, along: tuple):
        """Part i of every task's tuple, as one array chunked `along` axis `axis`."""
        name = f"{tmp.name}-part{i}"
        layer = {}
        for k, key in enumerate(keys):
            index = tuple(k if ax == axis else 0 for ax in range(len(shape)))
            layer[(name,) + index] = (operator.getitem, key, i)
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[tmp])
        block_chunks = tuple(along if ax == axis else (s,) for ax, s in enumerate(shape))
        return da.Array(graph, name, chunks=block_chunks, dtype=float, shape=shape)

    out, part = [], 0
    for kind, shape in zip(kinds, leaf_shapes):
        if kind[1] is not None:  # rows, or rows of a mean
            axis = kind[1]
            full = tuple(n_rows if ax == axis else s for ax, s in enumerate(shape))
            out.append(leaf(part, full, axis, chunks))
            part += 1
        else:
            out.append(None)
    width = sum(math.prod(shape) for kind, shape in zip(kinds, leaf_shapes) if kind[1] is None)
    if width:
        packed = leaf(part, (len(chunks), width), 0, (1,) * len(chunks))
        total = packed.sum(axis=0, split_every=split_every)
        offset = 0
        for k, (kind, shape) in enumerate(zip(kinds, leaf_shapes)):
            if kind[1] is not None:
                continue
            size = math.prod(shape)
            piece = total[offset:offset + size].reshape(shape)
            out[k] = piece / n_rows if kind[0] == "mean" and n_rows else piece
            offset += size
    return unflatten(spec, out)


def _is_dask(value) -> bool:
    import dask.array as da
    return isinstance(value, da.Array)


def _rows_dimension(names, values, declared) -> str:
    """The named dimension the Dask inputs are chunked along (the rows); if none is
    chunked, the first named dimension of a Dask input (one chunk: one task)."""
    chunked: dict = {}
    named_dims = []
    for n in names:
        a = values[n]
        if not _is_dask(a):
            continue
        for ax, d in enumerate(declared[n]):
            plain = isinstance(d, str) and d.isidentifier()
            if plain and d not in named_dims:
                named_dims.append(d)
            if plain and a.numblocks[ax] > 1:
                chunked.setdefault(d, []).append(f"{n} axis {ax}")
    if len(chunked) > 1:
        shown = "; ".join(f"{d}: {', '.join(where)}" for d, where in chunked.items())
        raise ShapeError(f"the Dask inputs are chunked along {len(chunked)} named dimensions ({shown}); "
                         f"chunk the data along one of them, the rows, and keep the others whole")
    if chunked:
        return next(iter(chunked))
    if named_dims:
        return named_dims[0]
    dask_inputs = [f"{n} {declared[n]}" for n in names if _is_dask(values[n])]
    raise ShapeError(f"no Dask input has a named dimension to split the work over (declared shapes: "
                     f"{', '.join(dask_inputs)}); declare the rows by name in shapes=, e.g. ('n', 100), "
                     f"or pass NumPy arrays")


def _align_rows(names, values, axes, rows):
    """Inputs ready for one task per chunk of rows: the inputs with the rows axis cut
    like the one with the most bytes (a Dask input chunked otherwise is rechunked,
    with a DaskChunkWarning naming both chunkings when that merges pieces of chunks),
    every other axis whole."""
    import dask.array as da
    reference = None
    for n in names:
        a = values[n]
        if _is_dask(a) and axes[n]:  # (chunk sizes known: on_dask.call checked)
            if reference is None or a.nbytes > reference[2]:
                reference = (a.chunks[axes[n][0]], n, a.nbytes)
    if reference is None:  # the rows are in NumPy inputs only: one chunk
        size = next(np.shape(values[n])[axes[n][0]] for n in names if axes[n])
        reference = ((size,), None, 0)
    chunks, ref_name = reference[0], reference[1]
    arrays = {}
    for n in names:
        a = values[n]
        if not _is_dask(a):
            arrays[n] = da.from_array(a, chunks=tuple(chunks if ax in axes[n] else (s,)
                                                      for ax, s in enumerate(a.shape))) if axes[n] else a
            continue
        target = tuple(chunks if ax in axes[n] else (s,) for ax, s in enumerate(a.shape))
        for ax, (want, have) in enumerate(zip(target, a.chunks)):
            if moves_data(have, want):
                what = (f"along {rows!r} ({show_chunks(have)} against {ref_name!r}'s {show_chunks(want)})"
                        if ax in axes[n] else f"along axis {ax} ({show_chunks(have)}), which each task needs whole")
                warnings.warn(f"exprcompiler: input {n!r} is chunked {what}; rechunking it, which moves data "
                              f"between chunks", DaskChunkWarning, stacklevel=5)
        arrays[n] = a.rechunk(target) if target != a.chunks else a
    return arrays, chunks


class RowChunk:
    """The task of one chunk of rows: the compiled function on its blocks; returns the
    row-wise outputs, then one (1, L) row of the sums and the row-weighted means."""

    def __init__(self, ship: Shipped, kinds: list, axes: list, n_rows: int, shapes: list):
        self.ship, self.kinds, self.axes, self.n_rows = ship, kinds, axes, n_rows
        self.shapes = shapes  # each output leaf's (the rows axis at the check's size)

    def __dask_tokenize__(self):
        return ("exprcompiler.dask_loss.RowChunk", self.ship.digest, repr(self.kinds), repr(self.axes),
                self.n_rows, repr(self.shapes))

    def __call__(self, *blocks):
        count = next(np.shape(b)[ax[0]] for b, ax in zip(blocks, self.axes) if ax)
        if count == 0 and self.n_rows:
            return self._empty()
        leaves = flatten(self.ship.compiled(*blocks))[0]
        rows, packed = [], []
        # (no rows at all: the one call on the empty data is the whole's, unweighted)
        weight = count if self.n_rows else 1
        for (kind, _), leaf in zip(self.kinds, leaves):
            leaf = np.asarray(leaf, dtype=float)
            if kind == "rows of a mean":  # the chunk's own mean: 1/count where 1/n is due
                rows.append(leaf * (count / self.n_rows) if self.n_rows else leaf)
            elif kind == "rows":
                rows.append(leaf)
            else:
                packed.append((leaf * weight if kind == "mean" else leaf).reshape(-1))
        return tuple(rows) + (np.concatenate(packed or [np.empty(0)])[None, :],)

    def _empty(self) -> tuple:
        """What a chunk of no rows adds: nothing. Dask makes such chunks (a filter, a
        concatenation); the function is not called on them, since the mean over no
        rows is NaN, and NaN times the chunk's weight 0 would make the whole mean NaN."""
        rows = [np.zeros(tuple(0 if ax == axis else s for ax, s in enumerate(shape)))
                for (_, axis), shape in zip(self.kinds, self.shapes) if axis is not None]
        width = sum(math.prod(shape) for (_, axis), shape in zip(self.kinds, self.shapes) if axis is None)
        return tuple(rows) + (np.zeros((1, width)),)


# ------------------------------------------------------------------ the check

# compiled object -> {(input shapes without their rows axes, rows, reduce, one chunk):
# classify's answer}. The check calls the function three times; an optimizer calls it
# on the same shapes every step, so it is done once per compiled function and shapes.
_KINDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_KINDS_LOCK = threading.Lock()
CHECKS: Counter = Counter()  # id(compiled) -> times classify ran (the tests read it)


def classify_cached(compiled, values: dict, axes: dict, rows: str, reduce, *, one_chunk: bool):
    """`classify`, remembered per compiled object and per input shapes (the rows axis
    left out: the check's answer does not depend on how many rows there are)."""
    shapes = tuple((n, tuple(None if ax in axes[n] else s for ax, s in enumerate(np.shape(v))))
                   for n, v in values.items())
    key = (shapes, rows, reduce, one_chunk)
    with _KINDS_LOCK:
        known = _KINDS.setdefault(compiled, {})
        found = known.get(key)
    if found is None:
        found = classify(compiled, values, axes, rows, reduce, one_chunk=one_chunk)
        CHECKS[id(compiled)] += 1
        with _KINDS_LOCK:
            known[key] = found
    kinds, leaf_shapes, spec = found
    return list(kinds), list(leaf_shapes), spec


def classify(compiled, values: dict, axes: dict, rows: str, reduce, *, one_chunk: bool):
    """For each output leaf: ("rows", axis), ("rows of a mean", axis), ("sum", None)
    or ("mean", None), with its shape (the rows axis at the probe's size), and the
    nesting of the results. With one chunk nothing combines: no check, and means and
    sums stand as they are."""
    rng = np.random.default_rng(20240601)
    full = {}
    total = sum(PROBE_ROWS)
    for n, v in values.items():
        shape = list(np.shape(v))
        for ax in axes[n]:
            shape[ax] = total
        full[n] = rng.uniform(0.25, 0.75, size=shape)  # inside the domain of log, sqrt, asin...

    def part(lo: int, hi: int) -> dict:
        return {n: (a[(slice(None),) * axes[n][0] + (slice(lo, hi),)] if axes[n] else a)
                for n, a in full.items()}
    a, b = PROBE_ROWS
    try:
        with np.errstate(all="ignore"):
            whole, spec = flatten(compiled(**full))
            first, second = flatten(compiled(**part(0, a)))[0], flatten(compiled(**part(a, total)))[0]
    except ExprcError as err:
        raise type(err)(f"checking how the results combine over chunks of {rows!r} (a call on random data "
                        f"with {rows} = {a}, {b} and {total}): {err}") from None
    outputs = _output_names(compiled, spec)
    kinds, shapes = [], []
    for k, (u, p, q) in enumerate(zip(whole, first, second)):
        u, p, q = (np.asarray(x, dtype=float) for x in (u, p, q))
        what = outputs[k]
        moved = [ax for ax in range(u.ndim) if not (u.shape[ax] == p.shape[ax] == q.shape[ax])]
        if moved:
            axis = moved[0]
            if len(moved) > 1 or (u.shape[axis], p.shape[axis], q.shape[axis]) != (total, a, b):
                raise NotSeparable(f"{what}: its shape {u.shape} grows with {rows} along "
                                   f"{'several axes' if len(moved) > 1 else f'axis {axis} other than one per row'}, "
                                   f"so chunks of rows cannot give it")
            kind = "rows"
            if not one_chunk and not _close(u, np.concatenate([p, q], axis=axis), equal_nan=True):
                # a gradient of a mean with respect to the data: each row's entry carries 1/n
                if not _close(u, np.concatenate([p * (a / total), q * (b / total)], axis=axis), equal_nan=True):
                    raise NotSeparable(f"{what}: it has one entry per row along axis {axis}, but each depends "
                                       f"on other rows too, so chunks of rows cannot give it")
                kind = "rows of a mean"
            kinds.append((kind, axis))
            shapes.append(u.shape)
            continue
        kinds.append((_reduction(what, u, p, q, rows, reduce, one_chunk), None))
        shapes.append(u.shape)
    return kinds, shapes, spec


def _reduction(what: str, u, p, q, rows: str, reduce, one_chunk: bool) -> str:
    a, b = PROBE_ROWS
    if one_chunk:
        return reduce or "sum"  # one chunk: the sum of one result is that result
    finite = all(np.all(np.isfinite(x)) for x in (u, p, q))
    is_sum, is_mean = finite and _close(u, p + q), finite and _close(u, (a * p + b * q) / (a + b))
    if reduce is not None:
        if not finite or (is_sum if reduce == "sum" else is_mean):
            return reduce
        found = "a sum" if is_sum else "a mean" if is_mean else "neither a sum nor a mean"
        raise NotSeparable(f"{what}: reduce={reduce!r}, but over random data it is {found} over the rows "
                           f"of {rows} (checked on {a}, {b} and {a + b} rows)")
    if is_sum:
        return "sum"
    if is_mean:
        return "mean"
    if not finite:
        raise NotSeparable(f"{what}: the function is not finite on the random data (values in [0.25, 0.75]) "
                           f"used to check how it combines over chunks of {rows}; say reduce='sum' or "
                           f"reduce='mean'")
    raise NotSeparable(f"{what}: it is neither a sum nor a mean over the rows of {rows} (nor one entry per "
                       f"row), so results of chunks of rows cannot be combined into it. A term that does "
                       f"not depend on the rows (a regularizer) would be counted once per chunk: add it "
                       f"outside; a function of a sum (log(sum(...))) needs the sum first")


def _close(x, y, equal_nan: bool = False) -> bool:
    """x and y agree to TOLERANCE relative to the larger; with `equal_nan`, entries that
    are not finite must be the same (a row outside the domain gives the same NaN
    alone or among others), and the finite ones agree."""
    if x.shape != y.shape:
        return False
    if equal_nan:
        bad = ~np.isfinite(x)
        if not np.array_equal(bad, ~np.isfinite(y)) or not np.array_equal(x[bad], y[bad], equal_nan=True):
            return False
        x, y = x[~bad], y[~bad]
    scale = max(float(np.max(np.abs(x), initial=0.0)), float(np.max(np.abs(y), initial=0.0)), 1e-300)
    return float(np.max(np.abs(x - y), initial=0.0)) <= TOLERANCE * scale


def _output_names(compiled, spec) -> list[str]:
    """A name for each leaf of the result, for messages: "output 0 (the value)"..."""
    count = _count(spec)
    labels = {"grad": ["the value"] + [f"the gradient with respect to {w}" for w in compiled.wrt],
              "hvp": (["the value"] + [f"the gradient with respect to {w}" for w in compiled.wrt]
                      + [f"the Hessian-vector product for {w}" for w in compiled.wrt]),
              "hessian": ["the value", "the gradient", "the Hessian"],
              "jacobian": ["the values", "the Jacobian"]}.get(compiled.kind, [])
    return [f"result {k}" + (f" ({labels[k]})" if k < len(labels) and count == len(labels) else "")
            for k in range(count)]


def _count(spec) -> int:
    return 1 if spec is None else sum(_count(s) for s in spec)


__all__ = ["over_rows", "classify", "classify_cached", "declared_shapes", "NotSeparable"]
