"""Hessians and Jacobians of functions of tensors, assembled at call time.

A scalar trace gets its Hessian and Jacobian as traces (passes/jacobian.py): one sweep
per variable, each entry a named output. With tensors the number of sweeps — one per
element — is known only when the named dimensions are bound, so these objects compile
the HVP, JVP and VJP traces once and run one sweep per element with unit seeds when
called. Rows and columns follow the outputs and the `wrt` tensors flattened in C order
and concatenated (the convention of `Compiled.at`).
"""

from __future__ import annotations

import numpy as np

from . import api

class TensorHessian:
    """The Hessian of a function of tensors, with respect to its `wrt` tensors
    flattened (C order) and concatenated into one vector of N numbers: N
    Hessian-vector products with unit directions (the shapes, hence N, are known only
    at call time). `H(**inputs) -> (value, gradient (N,), Hessian (N, N))`;
    `H.at(x, **data)` takes the flat vector. Meant for parameter counts in the
    hundreds or thousands; beyond that, use the HVP (Newton-CG) directly."""

    kind = "hessian"

    def __init__(self, hvp: api.Compiled):
        self.hvp = hvp
        self.wrt, self.primal, self.trace = hvp.wrt, hvp.primal, hvp.trace
        self.inputs = tuple(n for n in hvp.inputs if n in hvp.primal.input_names)

    def __repr__(self) -> str:
        return f"<compiled Hessian of tensors (HVP sweeps, {self.hvp.backend}): wrt {', '.join(self.wrt)}>"

    def __call__(self, **inputs):
        data = {k: v for k, v in inputs.items() if k not in self.wrt}
        x = np.concatenate([np.asarray(inputs[k], dtype=float).reshape(-1) for k in self.wrt])
        return self.at(x, **data)

    def at(self, x, /, **data):
        x = np.asarray(x, dtype=float).reshape(-1)
        n = x.size
        hess = np.empty((n, n))
        value, grad = None, None
        for j in range(n):  # one HVP per column
            unit = np.zeros(n)
            unit[j] = 1.0
            value, grad, hess[:, j] = self.hvp.at(x, unit, **data)
        if n == 0:
            value, grad = self.hvp.at(x, np.zeros(0), **data)[:2]
        return value, grad, 0.5 * (hess + hess.T)  # symmetric to rounding; made exact




class TensorJacobian:
    """Values and Jacobian of a function of tensors: `J(**inputs) -> (values (m,),
    Jacobian (m, n))`, the outputs flattened and concatenated into m numbers and the
    `wrt` tensors into n. `mode="auto"` runs n JVPs (forward) when n <= m, else m VJPs
    (reverse), deciding at each call; `J.mode` is the mode asked for and `J.last_mode`
    the one the last call used."""

    kind = "jacobian"

    def __init__(self, primal, wrt, mode: str, *, backend: str, threads=None):
        self.primal, self.wrt, self.mode, self.backend = primal, tuple(wrt), mode, backend
        self.inputs = tuple(primal.input_names)
        self.last_mode = None
        self._compiled = {}
        self._threads = threads

    def __repr__(self) -> str:
        return f"<compiled Jacobian of tensors ({self.mode} mode, {self.backend}): wrt {', '.join(self.wrt)}>"

    def _kernel(self, which: str) -> api.Compiled:
        if which not in self._compiled:
            if which == "value":
                made = api.compile_expr(self.primal, backend=self.backend, threads=self._threads)
            else:
                make = api.compile_jvp if which == "forward" else api.compile_vjp
                made = make(self.primal, self.wrt, backend=self.backend, threads=self._threads)
            self._compiled[which] = made
        return self._compiled[which]

    def values(self, **inputs) -> tuple:
        """The outputs themselves, each in its shape."""
        values = self._kernel("value")(**inputs)
        return values if isinstance(values, tuple) else (values,)

    def __call__(self, **inputs):
        x = {k: np.asarray(inputs[k], dtype=float) for k in self.wrt if k in inputs}
        missing = [k for k in self.inputs if k not in inputs]
        if missing:
            raise TypeError(f"missing value for {', '.join(repr(k) for k in missing)}")
        values = self.values(**inputs)
        out_shapes = [np.shape(v) for v in values]
        flat_values = np.concatenate([np.ravel(v) for v in values])
        in_shapes = [x[k].shape for k in self.wrt]
        m, n = flat_values.size, sum(int(np.prod(s)) for s in in_shapes)
        mode = self.mode if self.mode != "auto" else ("forward" if n <= m else "reverse")
        self.last_mode = mode
        jac = np.empty((m, n))
        if mode == "forward":
            J = self._kernel("forward")
            for j in range(n):
                seeds = _split(_unit(n, j), in_shapes)
                _, tangent = J(**inputs, **{f"{k}_dot": s for k, s in zip(self.wrt, seeds)})
                tangent = tangent if isinstance(tangent, tuple) else (tangent,)
                jac[:, j] = np.concatenate([np.ravel(t) for t in tangent])
        else:
            V = self._kernel("reverse")
            names = [n_.replace(".", "_") + "_bar" for n_ in self.primal.output_names]
            for i in range(m):
                seeds = _split(_unit(m, i), out_shapes)
                _, adjoints = V(**inputs, **dict(zip(names, seeds)))
                jac[i, :] = np.concatenate([np.ravel(a) for a in adjoints])
        return flat_values, jac


def _unit(n: int, k: int) -> np.ndarray:
    e = np.zeros(n)
    e[k] = 1.0
    return e


def _split(vector: np.ndarray, shapes: list) -> list:
    parts, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        part = vector[start:start + size].reshape(shape)
        parts.append(float(part) if shape == () else part)
        start += size
    return parts
