"""`train(loss, params, data, ...)`: mini-batch training on a compiled gradient.

    from exprcompiler.driver import train
    from exprcompiler.driver.data import load_digits
    from exprcompiler.driver.models import mlp
    ds = load_digits("parity")
    model = mlp([64, 32, 1])
    r = train(model, data=(ds.X_train, ds.y_train), optimizer="sgd", lr=0.1, epochs=30)
    r.score(ds.X_test, ds.y_test), r.history.loss, r.params["W1"]

A run, as the notes describe mini-batch SGD: each epoch shuffles the training
examples with a seeded generator and cuts them into batches of `batch`; for each
batch the compiled gradient G (the loss is a mean over the batch) goes to one of the
driver's first-order methods (`sgd`, `momentum`, `nesterov`, `rmsprop`, `adam`,
`subgradient`), through its per-step `update`. Around that loop:

- L2 regularization adds λ Σ w² over the weights (`l2`, `l2_params`; a Model's
  weights are its matrices, not its biases) to what is minimized;
- per-epoch metrics: `loss` (the mean of the epoch's batch losses), `accuracy` on the
  training examples, and with a validation set `val_loss` and `val_accuracy`. The
  losses are the data term; the L2 penalty is not in them, so they stay comparable;
- early stopping (`patience`): a validation set — a seeded fraction split off the
  training data, or arrays given — is evaluated after every epoch; after `patience`
  epochs without a lower validation loss the run stops, and the parameters of the
  best epoch are restored;
- random restarts (`restarts`): runs from different seeds (seed, seed + 1, ...;
  initialization and batches both change), keeping the best: the lowest validation
  loss when there is a validation set, else the lowest training loss (the notes keep
  the lowest training error; with held-out data the validation loss is the better
  judge, as it is for early stopping);
- a NaN or inf batch loss or gradient stops the run with "diverged at epoch e,
  step k (step too large?)", keeping the last finite parameters;
- a progress bar (driver/progress.py) with the running loss, on a terminal only.

Data may be Dask arrays chunked along the examples (see exprcompiler/dask_driver.py):
the steps still run here, on batches cut from the chunks as they arrive (a seeded
order of chunks, a seeded order of rows in each); whole-data evaluations run per chunk
where the data are.

Parameters live in one flat float64 vector; the compiled gradient is called with
reshaped views of it, so no copies are made to unpack them, and the update writes
back in place.

Part of the driver (see driver/__init__.py): what the restarts share (data, kernels,
layout) in driver/train_setup.py, models in driver/models.py, data in driver/data.py,
the optimizers' update formulas in driver/first_order.py.
"""

from __future__ import annotations

import math
import time
import types
from typing import Callable, Optional, Sequence

import numpy as np

from .. import api, dask_driver
from . import progress
from .first_order import GradientDescent
from .method import Method
from .minimize import METHODS
from .options import resolve
from .result import split
from .train_result import TrainHistory, TrainResult
from .train_setup import Setup

# the methods with a per-step update; "sgd" is gradient descent on mini-batches
OPTIMIZERS = {"sgd": GradientDescent, **{name: cls for name, cls in METHODS.items()
                                         if cls.update is not Method.update}}


def optimizer_class(name: str):
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):
        others = [m for m in METHODS if m not in OPTIMIZERS]
        why = f" ({name} evaluates the whole objective; use minimize)" if name in others else ""
        raise ValueError(f"unknown optimizer {name!r}{why} (optimizers: {', '.join(OPTIMIZERS)})") from None


def batch_order(n: int, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's batches: a permutation of range(n) cut into pieces of `batch` (the
    last may be shorter). Benchmarks call it too, so every trainer sees the same batches."""
    order = rng.permutation(n)
    return [order[s:s + batch] for s in range(0, n, batch)]


def shuffle_rng(seed: int) -> np.random.Generator:
    """The generator of a run's batch order (independent of the initialization's)."""
    return np.random.default_rng([seed, 1])


def _flat(grads) -> np.ndarray:
    """The gradient blocks (arrays, or floats for scalar parameters) as one new flat
    vector, in the order of the parameter vector: concatenate with axis=None flattens
    each block in C (3.4 -> 2.3 µs a step for the digits network's four blocks, against
    a reshape or a one-element array per block in Python)."""
    if len(grads) == 1:
        return np.ravel(grads[0])
    return np.concatenate(grads, axis=None)


def _finite(g: np.ndarray) -> bool:
    """Whether every element of g is finite: its sum is, unless an element is inf or
    NaN or the sum overflows (then each element is looked at). One reduction and no
    temporary on the usual step, against isfinite's array and all()'s Python layers.
    (Called in _run's errstate: the sum's overflow is not warned about.)"""
    return math.isfinite(np.add.reduce(g, axis=None)) or bool(np.isfinite(g).all())


def _batches(setup: Setup, size: int, rng: np.random.Generator):
    """One epoch's (batch data by name, rows): in-memory data shuffled and cut by
    batch_order; Dask data chunk by chunk (dask_driver.batches); all data at once
    (on the cluster, for Dask data) when a batch is all the rows."""
    if size >= setup.n:
        yield setup.data, setup.n
    elif setup.on_dask:
        yield from dask_driver.batches(setup.data, size, rng)
    else:
        for idx in batch_order(setup.n, size, rng):
            yield {k: v.take(idx, axis=0) for k, v in setup.data.items()}, len(idx)


# -- one run ---------------------------------------------------------------------------------
def _run(setup: Setup, seed: int, cls, opts: dict, *, epochs: int, batch: Optional[int],
         patience: Optional[int], quiet: bool, label: str, desc: str) -> TrainResult:
    started = time.perf_counter()
    init = setup.init(seed)
    x = np.concatenate([np.asarray(init[k], dtype=np.float64).reshape(-1) for k in setup.names])
    if setup.dtype is not None:  # the parameters in the kernels' dtype: no conversion per step
        x = x.astype(setup.dtype)
    if not np.isfinite(x).all():
        raise ValueError("train: the starting params are not finite")
    views = split(x, setup.layout)
    method = cls(types.SimpleNamespace(n=setup.size), dict(opts))
    grad, constants, decay = setup.grad, setup.constants, setup.decay
    n = setup.n
    size = n if batch is None else min(batch, n)
    per_epoch = -(-n // size)
    rng = shuffle_rng(seed)
    history = TrainHistory()
    best = (np.inf, x.copy(), 0)
    step, waited, train_time = 0, 0, 0.0
    stopped_early = diverged = False
    message = f"ran {epochs} epochs"
    bar = progress.bar(epochs * per_epoch, quiet=quiet, desc=desc, label="loss", unit="step")
    epoch = 0
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(1, epochs + 1):
                t0 = time.perf_counter()
                total = 0.0
                for part, rows in _batches(setup, size, rng):
                    f, grads = grad(**views, **part, **constants)
                    if setup.on_dask and size >= n:  # the whole data: one computation on the cluster
                        f, grads = dask_driver.compute(f, grads)
                    g = _flat(grads)
                    if decay is not None:
                        g = g + decay * x
                    if not (math.isfinite(f) and _finite(g)):
                        diverged = True
                        message = (f"diverged at epoch {epoch}, step {step + 1} (step too large?): "
                                   f"batch loss {f}")
                        break
                    step += 1
                    x[...] = method.update(step, x, g)
                    total += f * rows
                    bar.update(step, f)
                train_time += time.perf_counter() - t0
                if diverged:
                    epoch -= 1
                    break
                row = _metrics(setup, views, constants)
                history.add(epoch, total / n, *row, train_time)
                if setup.val is not None:
                    if row[1] < best[0]:
                        best, waited = (row[1], x.copy(), epoch), 0
                    else:
                        waited += 1
                    if patience is not None and waited >= patience:
                        stopped_early = True
                        message = (f"stopped early after epoch {epoch}: no lower validation loss in "
                                   f"{patience} epochs; restored epoch {best[2]}")
                        break
    finally:
        bar.close()
    best_epoch = epoch
    if patience is not None and setup.val is not None and best[2] > 0 and best[2] != epoch:
        x[...] = best[1]
        best_epoch = best[2]
        if not stopped_early:
            message += f"; restored the best epoch, {best_epoch}"
    loss, acc = _evaluate(setup, views, setup.data, constants)
    val_loss = val_acc = None
    if setup.val is not None:
        val_loss, val_acc = _evaluate(setup, views, setup.val, constants)
    params = {k: np.array(v) for k, v in views.items()}
    return TrainResult(params=params, loss=loss, accuracy=acc, val_loss=val_loss, val_accuracy=val_acc,
                       history=history, best_epoch=best_epoch, epochs=epoch, steps=step,
                       stopped_early=stopped_early, diverged=diverged, message=message,
                       optimizer=label, options=dict(opts), seed=seed,
                       time=time.perf_counter() - started, train_time=train_time,
                       backend=setup.backend, model=setup.model)


def _evaluate(setup: Setup, views: dict, data: dict, constants: dict) -> tuple[float, Optional[float]]:
    """(the mean data loss, the accuracy or None) on a whole data set."""
    with np.errstate(all="ignore"):
        loss = float(setup.value(**views, **data, **constants))
    acc = None
    if setup.accuracy is not None:
        acc = _accuracy(setup, views, data, constants)
    return loss, acc


def _metrics(setup, views, constants) -> tuple:
    """(training accuracy, validation loss, validation accuracy), NaN where not measured."""
    acc = np.nan if setup.accuracy is None else _accuracy(setup, views, setup.data, constants)
    if setup.val is None:
        return acc, np.nan, np.nan
    val_loss, val_acc = _evaluate(setup, views, setup.val, constants)
    return acc, val_loss, np.nan if val_acc is None else val_acc


def _accuracy(setup, views: dict, data: dict, constants: dict) -> float:
    if dask_driver.has_dask(data):  # per chunk on the workers, weighted by rows
        return dask_driver.accuracy(setup.accuracy, views, data, constants)
    return float(setup.accuracy(views, {**data, **constants}))


def _check_count(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive whole number{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def train(loss, params=None, data=None, *, shapes: Optional[dict] = None, optimizer: str = "sgd",
          epochs: int = 30, batch: Optional[int] = 64, seed: int = 0, l2: float = 0.0,
          l2_params: Optional[Sequence[str]] = None, validation=None, patience: Optional[int] = None,
          restarts: int = 1, accuracy: Optional[Callable] = None, backend: str = "numpy",
          quiet: bool = False, dtype=None, **options) -> TrainResult:
    """Train the parameters of a loss program on mini-batches.

    `loss`: a Model (driver/models.py), a program (text or Trace) whose inputs are
    the parameters and the data, or a compiled gradient (compile_grad) with the
    parameters as its `wrt`. The loss should be a mean over the batch's examples.
    `params`: name -> starting array, or a function seed -> such a mapping (needed
    for restarts to start elsewhere); default: the Model's `init`.
    `data`: name -> array, every array with the examples along its first axis (0-d
    arrays are constants); with a Model, (X, y) with integer labels also works.
    `shapes`: the program's shapes (default: the Model's, or read from params and
    data, the examples' dimension named "n").

    `optimizer`: one of OPTIMIZERS, with its options (lr, beta, ...) as keywords;
    `epochs`; `batch` (None: the whole data each step); `seed`: initialization,
    shuffles and the validation split; `l2`: λ of the penalty λ Σ w² over
    `l2_params`; `validation`: a fraction of the data to hold out, or data of the
    same form; `patience`: epochs without a lower validation loss before stopping
    (best parameters restored); `restarts`: runs from seeds seed, seed + 1, ...,
    the best one returned; `accuracy(params, data) -> float` (default: the Model's);
    `backend`: "numpy" or "c"; `quiet`: no progress bar; `dtype`: "float32" trains in
    single precision (data, parameters and kernels; a compiled loss brings its own).
    """
    cls = optimizer_class(optimizer)
    unknown = [k for k in options if k not in cls.options]
    if unknown:
        raise ValueError(f"{optimizer} has no option {unknown[0]!r} (its options: {', '.join(cls.options)})")
    opts, _ = resolve(optimizer, cls.options, options)
    if opts.get("linesearch") is not None:
        raise ValueError(f"{optimizer}: mini-batch training takes a fixed step or a schedule, not a line search")
    epochs = _check_count("epochs", epochs)
    batch = _check_count("batch", batch, allow_none=True)
    restarts = _check_count("restarts", restarts)
    patience = _check_count("patience", patience, allow_none=True)
    if patience is not None and validation is None:
        raise ValueError("patience (early stopping) needs a validation set: validation=0.2 or data")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a whole number, got {seed!r}")
    if data is None:
        raise TypeError("train: no data")
    setup = Setup(loss, params, data, shapes=shapes, backend=backend, validation=validation, l2=l2,
                   l2_params=l2_params, accuracy=accuracy, seed=seed, dtype=api.resolve_dtype(dtype))
    if restarts > 1 and setup.fixed_init:
        raise ValueError("restarts need different starts: give params as a function seed -> mapping, "
                         "or a Model")
    runs = []
    for r in range(restarts):
        desc = optimizer if restarts == 1 else f"{optimizer} run {r + 1}/{restarts}"
        runs.append(_run(setup, int(seed) + r, cls, opts, epochs=epochs, batch=batch, patience=patience,
                         quiet=quiet, label=optimizer, desc=desc))

    def badness(res: TrainResult) -> float:
        v = res.val_loss if res.val_loss is not None else res.loss
        return v if np.isfinite(v) else np.inf
    chosen = min(range(len(runs)), key=lambda k: badness(runs[k]))
    for k, res in enumerate(runs):
        res.runs, res.run = runs, k
    return runs[chosen]
