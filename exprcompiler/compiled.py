"""What every compile_* returns: one kind of object with one set of conventions.

`CompiledFunction` is the base of the compiled objects — `api.Compiled` (one kernel
of a trace) and the tensor Hessian, Jacobian and forward gradient of
tensor_jacobians.py (sweeps run at call time, one per element) — so that nothing
outside them asks which one it holds: the driver, the CLI and SciPy's adapters use
these attributes and methods only.

    kind      "value", "grad", "jvp", "vjp", "hvp", "hessian" or "jacobian"
    inputs    argument names, in call order; `wrt` the differentiation variables
    primal    the function's own trace; `trace` and `source` what was compiled
    backend   "numpy" or "c"; `mode` the mode asked for, `last_mode` the last one used
    dtype     float64, or float32 when compiled with dtype="float32" (dtypes.py)
    f(*args, out=None, **kwargs) (positional in `inputs` order, or by name: see
    `named`; Dask arrays give Dask arrays), f.sum(*args) and f.mean(*args) (each
    output over the points: point_sums.py), f.at(x[, v], **data), f.scipy(**data),
    f.values(**inputs), f.explain(); pickles (recipe.Picklable)
"""

from __future__ import annotations

import numpy as np

from .call_args import _check_out, _check_out_flat
from .dtypes import real
from .recipe import Picklable


def holds_dask(args, kwargs) -> bool:
    """Whether any argument is a Dask object, read off type names (no import of Dask):
    it runs on the call path of every compiled function given arrays."""
    for a in args:
        if type(a) is not np.ndarray and type(a).__module__.startswith("dask"):
            return True
    for a in kwargs.values():
        if type(a) is not np.ndarray and type(a).__module__.startswith("dask"):
            return True
    return False


def fill(out, result, dtype=None):
    """`out=` for the kinds that assemble their results at call time: each result
    copied into the caller's array, every array checked (shape, dtype, layout,
    overlaps) before any is written; the nesting of `result`, with the caller's arrays."""
    outs = iter(_check_out(out, [np.shape(r) for r in _check_out_flat(result)], [], dtype))

    def put(item):
        if isinstance(item, tuple):
            return tuple(put(i) for i in item)
        o = next(outs)
        o[...] = item
        return o
    return put(result)

_WHAT = {"value": "function", "grad": "gradient", "jvp": "JVP", "vjp": "VJP", "hvp": "HVP",
         "hessian": "Hessian", "jacobian": "Jacobian"}


class CompiledFunction(Picklable):
    kind: str
    mode: str = ""
    _values = None
    _dtype = None  # None: float64; else np.dtype(float32) (see dtypes.py)

    @property
    def dtype(self) -> np.dtype:
        """The element type it computes in and returns arrays of (dtype= of compile_*)."""
        return real(self._dtype)

    def __call__(self, /, *args, out=None, **kwargs):
        """Evaluate: arguments in `inputs` order or by name; Dask arrays among them give
        Dask arrays (see on_dask.py); `out=`: arrays to write the results into, nested
        as the result is. api.Compiled has its own, with a path for plain numbers."""
        if holds_dask(args, kwargs):
            return self._on_dask(args, kwargs, out)
        result = self._evaluate(self.named(args, kwargs))
        return result if out is None else fill(out, result, self._dtype)

    def _evaluate(self, inputs: dict):
        raise NotImplementedError  # each kind of compiled object runs its own sweeps

    def sum(self, /, *args, **kwargs):
        """Each output summed over the points of the batch, nested as the call's result
        (a Jacobian keeps its trailing axes); the call's arguments. Dask inputs: Dask
        arrays, lazy, each chunk summed in its own task. Elementwise functions only
        (see point_sums.py)."""
        from .point_sums import over_points
        return over_points(self, args, kwargs, "sum")

    def mean(self, /, *args, **kwargs):
        """Each output averaged over the points of the batch: `sum(...)` over their count."""
        from .point_sums import over_points
        return over_points(self, args, kwargs, "mean")

    def _on_dask(self, args, kwargs, out):
        if out is not None:
            raise TypeError("out= cannot take the results of a call on Dask arrays (they are Dask arrays "
                            "too, computed later); call .compute() or dask.array.store on them")
        from .on_dask import call
        return call(self, args, kwargs)

    def __repr__(self) -> str:
        mode = f"{self.mode} mode, " if self.mode else ""
        return (f"<compiled {_WHAT[self.kind]} ({mode}{self.backend}): inputs {', '.join(self.inputs)}"
                + (f"; wrt {', '.join(self.wrt)}>" if self.wrt else ">"))

    def named(self, args: tuple, kwargs: dict) -> dict:
        """The arguments of a call, positional (in `inputs` order) or by name, as one
        mapping; every input given once."""
        if len(args) > len(self.inputs):
            raise TypeError(f"expected at most {len(self.inputs)} arguments ({', '.join(self.inputs)}), "
                            f"got {len(args)}")
        point = dict(zip(self.inputs, args))
        for k, v in kwargs.items():
            if k not in self.inputs:
                raise TypeError(f"unexpected argument {k!r} (inputs are {', '.join(self.inputs)})")
            if k in point:
                raise TypeError(f"argument {k!r} given twice")
            point[k] = v
        missing = [k for k in self.inputs if k not in point]
        if missing:
            raise TypeError(f"missing value for {', '.join(repr(k) for k in missing)}")
        return point

    @property
    def last_mode(self) -> str:
        """The mode the last call used (a tensor Jacobian in "auto" mode chooses at each
        call; everything else always uses `mode`)."""
        return self.mode

    def values(self, **inputs) -> tuple:
        """The function's outputs themselves, each in its shape (a value kernel of the
        primal, compiled on first use)."""
        f = self.value_function()
        missing = [k for k in f.inputs if k not in inputs]
        if missing:  # (other names are the caller's seeds or data: ignored)
            raise TypeError(f"values(): missing value for input {missing[0]!r} (inputs are {', '.join(f.inputs)})")
        out = f(**{k: inputs[k] for k in f.inputs})
        return out if isinstance(out, tuple) else (out,)

    def value_function(self):
        """The primal alone, compiled on the same backend on first use and kept (what
        `values` and the training driver's loss evaluations call)."""
        if self._values is None:
            from .api import compile_expr
            self._values = compile_expr(self.primal, backend=self.backend, dtype=self._dtype)
        return self._values

    def scipy(self, **data):
        """(fun, hessp) for `scipy.optimize.minimize(fun, x0, jac=True, hessp=hessp)`:
        `fun(x) -> (f, ∇f)` and `hessp(x, p) -> ∇²f·p` over the `wrt` variables packed
        in one float64 vector (tensors flattened in C order and concatenated;
        `fun.pack(x0)` / `fun.unpack(x)` convert), other inputs fixed by name in
        `data`. The HVP kernel is compiled on the first `hessp` call."""
        from .driver.scipy_interop import scipy_fun, scipy_hessp
        fun = scipy_fun(self, data=data)
        holder = []

        def hessp(x, p):
            if not holder:
                holder.append(scipy_hessp(self, data=data))
            return holder[0](x, p)
        return fun, hessp

    def explain(self) -> str:
        """What this function's derivatives cost, in trace operations (see explain())."""
        from .jacobians import explain
        return explain(self.primal, self.wrt or None)

    def trace_at(self, /, *args, **point):
        """The lecture tables at a point (by position or name, as a call): prints as
        `exprc trace --at` does, a notebook shows HTML tables (display/tables.py)."""
        from .display.tables import tables_at
        return tables_at(self, self.named(args, point))

    def latex(self):
        """The function and its derivatives with respect to `wrt` in LaTeX (display/formulas.py)."""
        from .display.formulas import latex
        return latex(self.primal, list(self.wrt))


__all__ = ["CompiledFunction"]
