"""The objective an optimizer sees: f, its gradient and (for Newton) its Hessian or
Hessian-vector products at a packed point x, with every call counted.

Part of the driver (see driver/__init__.py): `minimize` and the SciPy adapters build
one `Objective` and the methods only ever call it. `f` is an expression (text,
SymPy, a Trace) or a compiled function (`compile_grad`, `compile_hvp`,
`compile_hessian`, ...). Whatever it is, the kernels a method needs are compiled from
its trace, on the backend asked for, once per Objective; a compiled object that is
already the kernel wanted is reused as it is.

Data inputs may be Dask arrays chunked along the rows of a function of tensors: then
each evaluation is one `dask.compute` of per-chunk calls combined by a tree reduction
(see exprcompiler/dask_driver.py).

Points are flat float64 vectors over the variables `wrt` (in the function's input
order unless given; tensors flattened in C order and concatenated, see `layout` and
`unpack`); every other input is data, fixed by name.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from .. import api, dask_driver
from ..compiled import CompiledFunction
from ..frontend import to_trace
from ..jacobians import compile_hessian, compile_hvp
from ..errors import ShapeError
from ..shape_binding import is_tensor_trace
from ..signature import layout
from .result import named

NEEDS = ("grad", "hvp", "hessian")


def _primal_of(f, shapes=None):
    """(the function's trace, the compiled object given or None)."""
    compiled = f if isinstance(f, CompiledFunction) else None
    primal = f.primal if compiled is not None else to_trace(f, shapes)
    if len(primal.outputs) != 1:
        raise ValueError(f"minimize needs a function with one output; this one has "
                         f"{len(primal.outputs)}")
    return primal, compiled


def _choose_wrt(primal, compiled, x0, wrt, data: dict) -> list[str]:
    """The variables: given, else the names of a mapping x0, else the compiled
    object's own `wrt`, else every input; inputs given as data excepted."""
    names = list(primal.input_names)
    if wrt is None:
        if isinstance(x0, Mapping):
            unknown = [str(k) for k in x0 if k not in names]
            if unknown:
                raise ValueError(f"x0: {', '.join(unknown)} is not a variable of the expression "
                                 f"(variables: {', '.join(names) or 'none'})")
            wrt = [n for n in names if n in x0]
        elif compiled is not None and compiled.kind != "value":
            wrt = [n for n in compiled.wrt if n not in data]
        else:
            wrt = [n for n in names if n not in data]
    wrt = api.resolve_wrt(primal, wrt)
    if not wrt:
        raise ValueError("nothing to optimize: every input is data")
    return wrt


def _check_data(names: list, wrt: list, data: dict, tensor: bool = False) -> dict:
    clash = [k for k in data if k in wrt]
    if clash:
        raise ValueError(f"data: {', '.join(clash)} is optimized, not data")
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ValueError(f"data: {', '.join(unknown)} is not an input (inputs: {', '.join(names)})")
    missing = [n for n in names if n not in wrt and n not in data]
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}: give it in data= (or in x0 to optimize it)")
    out = {}
    for k, v in data.items():
        if dask_driver.is_dask(v):  # kept lazy: np.asarray would bring the whole array here
            if not tensor:
                raise TypeError(f"data: {k} is a Dask array, but the function is elementwise (data are one "
                                f"number each); declare tensor shapes with the rows named, e.g. "
                                f"shapes={{{k!r}: ('n', 10)}}")
            out[k] = dask_driver.as_float(k, v)
            continue
        try:
            out[k] = np.asarray(v, dtype=np.float64) if tensor else float(v)
        except (TypeError, ValueError):
            raise TypeError(f"data: {k} must be {'numbers' if tensor else 'one number'}, got {v!r}") from None
    return out


def _layout(primal, wrt: list, data: dict, x0) -> Optional[list[tuple[str, tuple]]]:
    """(name, shape) of each variable of a function of tensors: the declared shapes,
    with named dimensions bound by the data, by x0's arrays, or by the length of a
    packed x0. None when only a point will tell (no x0 yet: SciPy's adapters)."""
    declared = {name: primal.instrs[v].shape for name, v in primal.inputs}
    known = dict(data)
    length = None
    if isinstance(x0, Mapping):
        known.update({k: x0[k] for k in wrt if k in x0})
    elif x0 is not None:
        length = np.size(x0)
    try:
        return layout(declared, wrt, known, length)
    except ShapeError:
        if x0 is None:
            return None
        raise


class Objective:
    """Counted evaluations at a packed point. `needs` is "grad", "hvp" or "hessian":
    the second-order kernel a method uses besides the gradient. `x0` only serves to
    read the variables' names from a mapping; `pack` turns it into a vector."""

    def __init__(self, f, *, x0=None, wrt=None, data: Optional[Mapping] = None,
                 backend: Optional[str] = None, needs: str = "grad", shapes=None):
        if needs not in NEEDS:
            raise ValueError(f"needs must be one of {', '.join(NEEDS)}, got {needs!r}")
        primal, compiled = _primal_of(f, shapes)
        if backend is None:
            backend = compiled.backend if compiled is not None else "numpy"
        data = dict(data or {})
        self.wrt = _choose_wrt(primal, compiled, x0, wrt, data)
        self.tensor = is_tensor_trace(primal)
        self.data = _check_data(list(primal.input_names), self.wrt, data, self.tensor)
        # (name, shape) per variable; the packed vector is their C-order concatenation
        self.layout = (_layout(primal, self.wrt, self.data, x0) if self.tensor
                       else [(k, ()) for k in self.wrt])
        self.primal, self.backend = primal, backend
        self.on_dask = dask_driver.has_dask(self.data)  # each evaluation one dask.compute
        self.evaluations = 0
        self.hessian_evaluations = 0

        # a float32 function's kernels are float32 too; .at() answers in float64 all the same
        dtype = getattr(compiled, "_dtype", None)

        def reuse(kind):  # the object given, when it is the kernel wanted
            if (compiled is not None and compiled.kind == kind and tuple(compiled.wrt) == tuple(self.wrt)
                    and compiled.backend == backend):
                return compiled
            return None
        self._grad = reuse("grad") or api.compile_grad(primal, self.wrt, backend=backend, dtype=dtype)
        self._second = None
        if needs == "hvp":
            self._second = reuse("hvp") or compile_hvp(primal, self.wrt, backend=backend, dtype=dtype)
        elif needs == "hessian":
            self._second = reuse("hessian") or compile_hessian(primal, self.wrt, backend=backend, dtype=dtype)

    @property
    def n(self) -> int:
        return sum(int(np.prod(shape)) for _, shape in self.layout)

    def _layout_for(self, x) -> None:
        """Named dimensions only the variables have, read off the first point (packed,
        or a mapping of arrays)."""
        if self.layout is None:
            self.layout = _layout(self.primal, self.wrt, self.data,
                                  x if isinstance(x, Mapping) else np.asarray(x).reshape(-1))

    def unpack(self, x) -> dict:
        """A packed vector as name -> number (scalars) or array (tensors)."""
        self._layout_for(x)
        return named(np.array(x, dtype=float).reshape(-1), self.layout)  # a copy: x stays the caller's

    def pack(self, x0) -> np.ndarray:
        """x0 (a mapping name -> number, a vector in `wrt` order, or one number when
        there is one variable) as a fresh float64 vector."""
        if isinstance(x0, Mapping):
            self._layout_for(x0)
            unknown = [k for k in x0 if k not in self.wrt]
            if unknown:
                raise ValueError(f"x0: {', '.join(map(str, unknown))} is not a variable being optimized "
                                 f"(variables: {', '.join(self.wrt)})")
            missing = [k for k in self.wrt if k not in x0]
            if missing:
                raise ValueError(f"x0: no start value for {', '.join(missing)}")
            if self.tensor:
                for k, shape in self.layout:
                    if np.shape(x0[k]) != shape:
                        raise ValueError(f"x0: {k} has shape {np.shape(x0[k])}, expected {shape}")
                x0 = np.concatenate([np.asarray(x0[k], dtype=float).reshape(-1) for k in self.wrt])
            else:
                x0 = [x0[k] for k in self.wrt]
        try:
            x = np.array(x0, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise TypeError("x0 must be a vector of numbers or a mapping name -> number") from None
        self._layout_for(x)
        if (np.ndim(x0) > 1 and not self.tensor) or x.size != self.n:
            raise ValueError(f"x0 must hold {self.n} number{'s' if self.n != 1 else ''} "
                             f"({', '.join(self.wrt)}); got shape {np.shape(x0)}")
        if not np.isfinite(x).all():
            raise ValueError(f"x0 is not finite: {x}")
        return x

    def value_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        if self.on_dask:
            return dask_driver.value_grad(self._grad, self._layout_at(x), x, self.data)
        return self._grad.at(x, **self.data)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        self.hessian_evaluations += 1
        if self.on_dask:
            return dask_driver.hvp(self._second, self._layout_at(x), x, v, self.data)
        return self._second.at(x, v, **self.data)[2]

    def hessian(self, x: np.ndarray) -> np.ndarray:
        self.hessian_evaluations += 1
        if self.on_dask:
            return dask_driver.hessian(self._second, self._layout_at(x), x, self.data)
        return self._second.at(x, **self.data)[2]

    def _layout_at(self, x) -> list:
        self._layout_for(x)
        return self.layout
