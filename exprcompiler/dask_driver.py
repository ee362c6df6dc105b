"""The driver on Dask data: `minimize`, `train` and `g.scipy()` when the data inputs
are Dask arrays chunked along the rows.

Where it sits: between the driver (driver/objective.py, driver/train.py call it when
a data input is a Dask array) and on_dask.py / dask_loss.py, which turn one call of a
compiled function on Dask arrays into a graph of per-chunk tasks and one tree
reduction. Nothing here schedules anything: Dask does.

    minimize, scipy   each evaluation at a point x (value and gradient, an HVP, a
                      Hessian) is one `dask.compute` of the per-chunk tree reduction:
                      x is small and goes into the graph each step; the data stay
                      where they are (persisted on the workers if the user persisted
                      them, else computed or read again at every step)
    train             mini-batch steps run in this process: the chunks come here one
                      at a time, in a seeded order (the next fetched while the current
                      one is trained on), their rows shuffled and cut into batches
                      that may span two chunks; each epoch is a pass over all rows.
                      Whole-data evaluations (the epoch's loss, the validation loss,
                      accuracy) run on the cluster, one task per chunk

Which scheduler runs a computation is Dask's choice: the default `distributed.Client`
if there is one, else the threaded scheduler.
"""

from __future__ import annotations

import concurrent.futures
from typing import Iterator, Mapping

import numpy as np

from .on_dask import flatten, moves_data, show_chunks, unflatten
from .signature import flat, split


def is_dask(value) -> bool:
    """A Dask collection, read off the type's module (no import of Dask)."""
    return type(value) is not np.ndarray and type(value).__module__.startswith("dask")


def has_dask(data: Mapping) -> bool:
    return any(is_dask(v) for v in data.values())


def as_float(name: str, value):
    """A Dask data input as a float64 Dask array (lazily converted), checked for what
    the driver needs: a dask.array of real numbers with known chunk sizes."""
    import dask.array as da
    if not isinstance(value, da.Array):
        raise TypeError(f"data: {name} is a {type(value).__module__}.{type(value).__name__}; the driver takes "
                        f"dask.array arrays (a DataFrame: .to_dask_array(lengths=True))")
    if value.dtype.kind not in "biuf":
        raise TypeError(f"data: {name} is a Dask array of {value.dtype}; expected real numbers")
    if any(np.isnan(c) for cs in value.chunks for c in cs):
        raise ValueError(f"data: {name}: its chunk sizes are unknown ({show_chunks(value.chunks)}); "
                         f"call .compute_chunk_sizes() on it first")
    return value if value.dtype == np.float64 else value.astype(np.float64)


# ----------------------------------------------------------------- minimize

def at(compiled, layout, x, data: dict, seed=None):
    """`compiled` at the packed point x (and direction `seed`, cut like x into the
    `<name>_dot` inputs of an HVP), data inputs by name, some of them Dask arrays:
    the results nested as the call's, as NumPy arrays, from one `dask.compute`."""
    import dask
    args = {**data, **split(x, layout, "x")}
    if seed is not None:
        args.update({f"{k}_dot": v for k, v in split(seed, layout, "v").items()})
    leaves, spec = flatten(compiled(**args))
    return unflatten(spec, [np.asarray(r, dtype=float) for r in dask.compute(*leaves)])


def value_grad(compiled, layout, x, data: dict) -> tuple[float, np.ndarray]:
    value, grads = at(compiled, layout, x, data)
    return float(value), flat(grads)


def hvp(compiled, layout, x, v, data: dict) -> np.ndarray:
    return flat(at(compiled, layout, x, data, seed=v)[2])


def compute(value, grads) -> tuple[float, tuple]:
    """A gradient's lazy (value, gradients) as a float and NumPy arrays, one compute."""
    import dask
    value, grads = dask.compute(value, grads)
    return float(value), tuple(np.asarray(g, dtype=float) for g in grads)


def hessian(compiled, layout, x, data: dict) -> np.ndarray:
    size = int(np.size(x))
    return at(compiled, layout, x, data)[2].reshape(size, size)


# -------------------------------------------------------------------- train

def rows_chunks(data: Mapping, where: str = "train") -> tuple[dict, tuple]:
    """The data (Dask arrays with the examples along axis 0; NumPy arrays too) cut
    alike along axis 0 and whole along the others: the chunking of the largest Dask
    input, the others rechunked to it (with a DaskChunkWarning when that moves data).
    Returns (the arrays, the chunk sizes)."""
    import warnings

    import dask.array as da

    from .on_dask import DaskChunkWarning
    arrays = {k: as_float(k, v) if is_dask(v) else np.asarray(v, dtype=np.float64) for k, v in data.items()}
    dasks = {k: v for k, v in arrays.items() if is_dask(v) and v.ndim}
    if not dasks:
        raise ValueError(f"{where}: the Dask data have no axis of examples (each is one number); "
                         f"give arrays with the examples along axis 0")
    ref = max(dasks, key=lambda k: dasks[k].nbytes)
    chunks = dasks[ref].chunks[0]
    out = {}
    for k, v in arrays.items():
        if not v.ndim:
            out[k] = v
            continue
        target = (chunks,) + tuple((s,) for s in v.shape[1:])
        if not is_dask(v):
            out[k] = da.from_array(v, chunks=target)
            continue
        for ax, (have, want) in enumerate(zip(v.chunks, target)):
            if moves_data(have, want):
                what = (f"along its examples ({show_chunks(have)} against {ref!r}'s {show_chunks(want)})" if ax == 0
                        else f"along axis {ax} ({show_chunks(have)}), which each chunk's batches need whole")
                warnings.warn(f"{where}: data {k!r} is chunked {what}; rechunking it, which moves data between "
                              f"chunks", DaskChunkWarning, stacklevel=4)
        out[k] = v.rechunk(target) if v.chunks != target else v
    return out, chunks


def holdout(data: dict, fraction: float, seed: int) -> tuple[dict, dict]:
    """(training, validation) Dask data (every input with its examples along axis
    0): each chunk split on its own (as dask-ml's blockwise train_test_split does), a
    seeded `fraction` of its rows held out, so no data move between chunks. Each
    chunk's share is rounded; there must be rows on both sides overall."""
    import dask.array as da
    data, chunks = rows_chunks(data, "train: validation")
    keep, held = [], []
    for c, size in enumerate(chunks):
        order = np.random.default_rng([seed, 2, c]).permutation(size)
        cut = size - int(round(fraction * size))
        keep.append(np.sort(order[:cut]))
        held.append(np.sort(order[cut:]))
    if not sum(map(len, keep)) or not sum(map(len, held)):
        raise ValueError(f"train: validation={fraction} of chunks of {show_chunks(chunks)} rows leaves no rows on "
                         f"one side; use a larger fraction or larger chunks")

    def take(v, pieces):
        return da.concatenate([v.blocks[c][idx] for c, idx in enumerate(pieces) if len(idx)], axis=0)
    return {k: take(v, keep) for k, v in data.items()}, {k: take(v, held) for k, v in data.items()}


def batches(data: dict, size: int, rng: np.random.Generator) -> Iterator[tuple[dict, int]]:
    """One epoch's mini-batches of Dask data, as (NumPy arrays by name, rows): the
    chunks in an order drawn from `rng`, each chunk's rows in an order drawn from
    `rng`, cut into batches of `size` (the rows left at a chunk's end start the next
    batch; the epoch's last batch may be shorter). One chunk is fetched ahead."""
    import dask
    data, chunks = rows_chunks(data)
    names = list(data)
    order = rng.permutation(len(chunks))

    def fetch(c: int) -> dict:
        return dict(zip(names, dask.compute(*[data[k].blocks[c] for k in names])))
    carry: dict = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(fetch, int(order[0])) if len(order) else None
        for i in range(len(order)):
            block = ahead.result()
            ahead = pool.submit(fetch, int(order[i + 1])) if i + 1 < len(order) else None
            rows = rng.permutation(chunks[order[i]])
            # each batch gathers its rows from the block: the chunk is copied once, by
            # the batches themselves, not shuffled whole first
            start = 0
            if carry:
                need = size - len(carry[names[0]])
                more = {k: np.concatenate([carry[k], block[k][rows[:need]]]) for k in names}
                if need > len(rows):  # a chunk smaller than the batch's missing rows
                    carry = more
                    continue
                yield more, size
                carry, start = {}, need
            full = start + (len(rows) - start) // size * size
            for s in range(start, full, size):
                yield {k: block[k][rows[s:s + size]] for k in names}, size
            if full < len(rows):
                carry = {k: block[k][rows[full:]] for k in names}
    if carry:
        yield carry, len(carry[names[0]])


def accuracy(metric, params: dict, data: dict, constants: dict) -> float:
    """`metric(params, data)` over Dask data: called on each chunk on the workers
    (one task each), averaged weighted by the chunks' rows, as a fraction of rows
    right is. `metric` travels by pickle."""
    import dask
    data, chunks = rows_chunks(data, "accuracy")
    names = [k for k, v in data.items() if v.ndim]
    params = {k: np.array(v) for k, v in params.items()}  # copies: the graph holds them
    parts = [dask.delayed(_chunk_metric)(metric, params, names, constants, *[data[k].blocks[c] for k in names])
             for c in range(len(chunks))]
    values = dask.compute(*parts)
    return float(np.dot(values, chunks) / sum(chunks))


def _chunk_metric(metric, params, names, constants, *blocks):
    return float(metric(params, {**dict(zip(names, blocks)), **constants}))


def model_data(model, X, y) -> dict:
    """A Model's data inputs from Dask examples X and integer labels y, lazily (the
    labels are not checked: that would read them all)."""
    import dask.array as da
    X, y = as_float("X", X), as_float("y", y)
    if X.ndim != 2 or y.ndim != 1:
        raise ValueError(f"{model.name}: X must be (n, features) and y (n,); got {X.shape} and {y.shape}")
    if model.classes == 2:
        return {"X": X, "y": y}
    return {"X": X, "Y": (y[:, None] == da.arange(model.classes)[None, :]).astype(np.float64)}


__all__ = ["is_dask", "has_dask", "as_float", "at", "value_grad", "compute", "hvp", "hessian", "rows_chunks", "holdout",
           "batches", "accuracy", "model_data"]
