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

Part of the driver (see driver/__init__.py): models in driver/models.py, data in
driver/data.py, the optimizers' update formulas in driver/first_order.py.
"""

from __future__ import annotations

import math
import re
import time
import types
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from .. import api, dask_driver
from . import progress
from .data import holdout
from .first_order import GradientDescent
from .method import Method
from .minimize import METHODS
from .models import Model
from .options import resolve
from .result import split
from .train_result import TrainHistory, TrainResult

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


# -- setting up: the data, the parameters and the kernels --------------------------------
class _Setup:
    """What every restart shares: the compiled kernels, the data split, the layout of
    the flat parameter vector and the L2 term's factor."""

    def __init__(self, loss, params, data, *, shapes, backend, validation, l2, l2_params,
                 accuracy, seed, dtype=None):
        self.model = loss if isinstance(loss, Model) else None
        if isinstance(loss, api.Compiled) and dtype is not None and loss._dtype != dtype:
            raise ValueError(f"train: dtype={dtype.name!r}, but the compiled loss computes in {loss.dtype}")
        # float32 (dtypes.py): data, parameters and kernels in float32, data converted once here
        self.dtype = dtype = loss._dtype if isinstance(loss, api.Compiled) else dtype
        data = self._data(data)
        if dtype is not None:
            data = _in_dtype(data, dtype)
        self.init = self._init(params)
        first = self.init(seed)
        self.data, self.constants, n = _batched(data)
        if n < 1:
            raise ValueError("train: no examples (the data have no leading axis of examples)")
        self.val = None
        if validation is not None:
            self.data, self.val = self._validation(validation, n, seed)
        self.n = len(next(iter(self.data.values())))
        self.on_dask = dask_driver.has_dask(self.data)
        if self.on_dask:  # cut alike once (a warning if that moves data), not at every epoch
            self.data = dask_driver.rows_chunks(self.data)[0]
            if self.val is not None and dask_driver.has_dask(self.val):
                self.val = dask_driver.rows_chunks(self.val, "train: validation")[0]
        if dtype is not None and self.val is not None:
            self.val = _in_dtype(self.val, dtype)
        self.grad, self.value = self._compile(loss, first, data, shapes, backend)
        self.backend = self.grad.backend
        self.names = list(self.grad.wrt)
        missing = [k for k in self.names if k not in first]
        if missing or len(first) != len(self.names):
            raise ValueError(f"train: params must give every variable of the loss being trained "
                             f"({', '.join(self.names)}); got {', '.join(first)}")
        self.layout = [(k, np.shape(first[k])) for k in self.names]  # of the flat vector (result.split)
        self.size = sum(int(np.prod(shape, dtype=np.int64)) for _, shape in self.layout)
        lam = float(l2)
        if not np.isfinite(lam) or lam < 0:
            raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
        if l2_params is None:
            l2_params = self.model.weights if self.model is not None else self.names
        unknown = [k for k in l2_params if k not in self.names]
        if unknown:
            raise ValueError(f"l2_params: {', '.join(unknown)} is not a parameter ({', '.join(self.names)})")
        # the penalty's gradient 2λw over l2_params is decay * x: worked out once, not per step
        self.decay = None
        if lam:
            self.decay = np.zeros(self.size)
            for k, view in split(self.decay, self.layout).items():
                view[...] = 2 * lam if k in l2_params else 0.0
        self.accuracy = accuracy if accuracy is not None else (
            self.model.accuracy if self.model is not None else None)

    def _data(self, data):
        if isinstance(data, tuple) and len(data) == 2:
            if self.model is None:
                raise TypeError("train: data as (X, y) needs a Model; give a mapping name -> array")
            if dask_driver.is_dask(data[0]) or dask_driver.is_dask(data[1]):
                return dask_driver.model_data(self.model, *data)
            return self.model.data(*data)
        if not isinstance(data, Mapping):
            raise TypeError("train: data must be a mapping name -> array (or (X, y) with a Model)")
        return _arrays(data)

    def _init(self, params) -> Callable[[int], dict]:
        if params is None:
            if self.model is None:
                raise TypeError("train: give the starting params (or a Model, which has an init)")
            return self.model.init
        if callable(params):
            return lambda seed: {k: np.array(v, dtype=np.float64) for k, v in params(seed).items()}
        if not isinstance(params, Mapping):
            raise TypeError("train: params must be a mapping name -> array, or a function seed -> mapping")
        fixed = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
        self.fixed_init = True
        return lambda seed: {k: v.copy() for k, v in fixed.items()}

    fixed_init = False

    def _validation(self, validation, n, seed):
        if isinstance(validation, (float, int)) and not isinstance(validation, bool):
            if not 0 < validation < 1:
                raise ValueError(f"validation must be a fraction between 0 and 1 or data, got {validation!r}")
            if dask_driver.has_dask(self.data):  # each chunk split alone: no rows move
                return dask_driver.holdout(self.data, validation, seed)
            keep, held = holdout(n, validation, np.random.default_rng([seed, 2]))
            return {k: v[keep] for k, v in self.data.items()}, {k: v[held] for k, v in self.data.items()}
        if isinstance(validation, tuple) and len(validation) == 2 and self.model is not None:
            val = (dask_driver.model_data(self.model, *validation)
                   if any(dask_driver.is_dask(v) for v in validation) else self.model.data(*validation))
        elif isinstance(validation, Mapping):
            val = _arrays(validation)
        else:
            raise TypeError("validation must be a fraction, a mapping name -> array, or (X, y) with a Model")
        if set(val) != set(self.data):
            raise ValueError(f"validation data must have the inputs {', '.join(self.data)}; got {', '.join(val)}")
        return self.data, val

    def _compile(self, loss, first, data, shapes, backend):
        if isinstance(loss, api.Compiled):
            if loss.kind != "grad":
                raise TypeError(f"train: a compiled loss must be a gradient (compile_grad), not a {loss.kind}")
            return loss, loss.value_function()  # compiled once per gradient, not per train()
        if isinstance(loss, Model):
            expr, shapes = loss.loss, loss.shapes if shapes is None else shapes
        else:
            expr = loss
            if isinstance(loss, str):
                words = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", loss))
                for what, names in (("params", first), ("data", data)):
                    absent = [k for k in names if k not in words]
                    if absent:
                        raise ValueError(f"{what}: {', '.join(absent)} is not a variable of the loss")
            if shapes is None and isinstance(loss, str):
                shapes = {**{k: np.shape(v) for k, v in first.items()},
                          **{k: ("n", *np.shape(v)[1:]) if np.ndim(v) else () for k, v in data.items()}}
        shapes = None if shapes is None else {k: tuple(int(d) if isinstance(d, (int, np.integer)) else d
                                                       for d in v) for k, v in shapes.items()}
        grad = api.compile_grad(expr, list(first), backend=backend, shapes=shapes, dtype=self.dtype)
        return grad, api.compile_expr(grad.primal, backend=backend, dtype=self.dtype)


def _in_dtype(data: dict, dtype) -> dict:
    """In-memory data converted to a float32 training's dtype, once (Dask data: per chunk,
    by the kernel's call)."""
    return {k: v if dask_driver.is_dask(v) else v.astype(dtype, copy=False) for k, v in data.items()}


def _arrays(data: Mapping) -> dict:
    """Data by name as float64 arrays; Dask arrays stay lazy (see dask_driver)."""
    return {k: dask_driver.as_float(k, v) if dask_driver.is_dask(v) else np.asarray(v, dtype=np.float64)
            for k, v in data.items()}


def _flat(grads) -> np.ndarray:
    """The gradient blocks (arrays, or floats for scalar parameters) as one new flat
    vector, in the order of the parameter vector (a third faster than np.ravel each)."""
    if len(grads) == 1:
        return np.ravel(grads[0])
    return np.concatenate([gk.reshape(-1) if type(gk) is np.ndarray else np.array([gk], dtype=np.float64)
                           for gk in grads])


def _batches(setup: _Setup, size: int, rng: np.random.Generator):
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


def _batched(data: dict) -> tuple[dict, dict, int]:
    """(arrays with an axis of examples, 0-d constants, the number of examples)."""
    batched = {k: v for k, v in data.items() if v.ndim > 0}
    constants = {k: v for k, v in data.items() if v.ndim == 0}
    sizes = {k: v.shape[0] for k, v in batched.items()}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{k}: {s}" for k, s in sizes.items())
        raise ValueError(f"train: the data disagree on the number of examples (first axis): {shown}")
    return batched, constants, next(iter(sizes.values()), 0)


# -- one run ---------------------------------------------------------------------------------
def _run(setup: _Setup, seed: int, cls, opts: dict, *, epochs: int, batch: Optional[int],
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
                    if not (math.isfinite(f) and np.isfinite(g).all()):
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


def _evaluate(setup: _Setup, views: dict, data: dict, constants: dict) -> tuple[float, Optional[float]]:
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
    setup = _Setup(loss, params, data, shapes=shapes, backend=backend, validation=validation, l2=l2,
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
