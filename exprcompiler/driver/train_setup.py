"""What every restart of `train()` shares, worked out once: the data (converted, split
into training and validation, Dask data cut into chunks), the compiled gradient and
value kernels, the layout of the flat parameter vector, and the L2 term's factor.

Part of the driver (see driver/__init__.py); driver/train.py runs the steps on it.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

import numpy as np

from .. import api, dask_driver
from .data import holdout
from .models import Model
from .result import split


class Setup:
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


def _batched(data: dict) -> tuple[dict, dict, int]:
    """(arrays with an axis of examples, 0-d constants, the number of examples)."""
    batched = {k: v for k, v in data.items() if v.ndim > 0}
    constants = {k: v for k, v in data.items() if v.ndim == 0}
    sizes = {k: v.shape[0] for k, v in batched.items()}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{k}: {s}" for k, s in sizes.items())
        raise ValueError(f"train: the data disagree on the number of examples (first axis): {shown}")
    return batched, constants, next(iter(sizes.values()), 0)
