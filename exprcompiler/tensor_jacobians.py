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

from .compiled import CompiledFunction
from .signature import Signature, flat, split
from .tensor_call import TensorPackedCall

class TensorHessian(CompiledFunction):
    """The Hessian of a function of tensors, with respect to its `wrt` tensors
    flattened (C order) and concatenated into one vector of N numbers: N
    Hessian-vector products with unit directions (the shapes, hence N, are known only
    at call time). `H(**inputs) -> (value, gradient (N,), Hessian (N, N))`;
    `H.at(x, **data)` takes the flat vector. Meant for parameter counts in the
    hundreds or thousands; beyond that, use the HVP (Newton-CG) directly."""

    kind = "hessian"

    def __init__(self, hvp):
        self.hvp = hvp
        self.wrt, self.primal, self.trace, self.source = hvp.wrt, hvp.primal, hvp.trace, hvp.source
        self.backend, self.mode, self._dtype = hvp.backend, hvp.mode, hvp._dtype
        self.inputs = tuple(n for n in hvp.inputs if n in hvp.primal.input_names)
        self.signature = Signature(self.primal, self.primal, self.wrt)  # called with the primal's inputs

    def __repr__(self) -> str:
        return f"<compiled Hessian of tensors (HVP sweeps, {self.hvp.backend}): wrt {', '.join(self.wrt)}>"

    def _evaluate(self, inputs: dict):
        data = {k: v for k, v in inputs.items() if k not in self.wrt}
        value, grad, hess = self.at(flat([inputs[k] for k in self.wrt]), **data)
        if self._dtype is not None:  # .at() answers in float64 (optimizers'); a call in its dtype
            grad, hess = grad.astype(self._dtype), hess.astype(self._dtype)
        return value, grad, hess

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


class TensorJacobian(CompiledFunction):
    """Values and Jacobian of a function of tensors: `J(**inputs) -> (values (m,),
    Jacobian (m, n))`, the outputs flattened and concatenated into m numbers and the
    `wrt` tensors into n. `mode="auto"` runs n JVPs (forward) when n <= m, else m VJPs
    (reverse), deciding at each call; `J.mode` is the mode asked for and `J.last_mode`
    the one the last call used."""

    kind = "jacobian"

    def __init__(self, primal, wrt, mode: str, *, backend: str, sweeps: dict, threads=None, dtype=None,
                 stable: bool = False, rewrites=()):
        """`sweeps`: "forward" and "reverse" -> the compile_jvp and compile_vjp of the
        front door (api.py, which imports this module, not the other way round), in
        `dtype` (None: float64; see api.sweeps_of). `stable`: the stability rewrites on
        the sweeps' derivative traces too (`primal` comes rewritten, with the firings
        `rewrites`), as compile_grad does."""
        self.primal, self.wrt, self.mode, self.backend = primal, tuple(wrt), mode, backend
        self._dtype = dtype
        self._sweeps = sweeps
        self.inputs = tuple(primal.input_names)
        self.signature = Signature(primal, primal, self.wrt)
        self._last_mode = None
        self._compiled = {}
        self._threads = threads
        self._stable, self._rewrites = stable, tuple(rewrites)

    def __repr__(self) -> str:
        return f"<compiled Jacobian of tensors ({self.mode} mode, {self.backend}): wrt {', '.join(self.wrt)}>"

    def _kernel(self, which: str):
        if which not in self._compiled:  # the values come from CompiledFunction.values
            make = self._sweeps[which]
            self._compiled[which] = make(self.primal, self.wrt, backend=self.backend, threads=self._threads,
                                         stable=self._stable)
        return self._compiled[which]

    @property
    def rewrites(self) -> tuple:
        """The stability rewrites applied: on the function, and on the derivative traces
        of the sweeps compiled so far (both modes' once "auto" has run each)."""
        return self._rewrites + tuple(f for k in self._compiled.values() for f in k.rewrites if f.stage == "derivative")

    @property
    def last_mode(self) -> str:
        return self._last_mode or self.mode

    @property
    def source(self) -> str:
        """The generated code of the sweeps this Jacobian may run (both, for "auto")."""
        modes = ("forward", "reverse") if self.mode == "auto" else (self.mode,)
        return "\n".join(self._kernel(m).source for m in modes)

    def _evaluate(self, inputs: dict):
        values = self.values(**inputs)
        outs = [(name, np.shape(v)) for name, v in zip(self.primal.output_names, values)]
        ins = [(k, np.shape(inputs[k])) for k in self.wrt]
        flat_values = flat(values)
        m, n = flat_values.size, sum(int(np.prod(s)) for _, s in ins)
        mode = self.mode if self.mode != "auto" else ("forward" if n <= m else "reverse")
        self._last_mode = mode
        jac = np.empty((m, n), self._dtype)
        if mode == "forward":
            J = self._kernel("forward")
            for j in range(n):
                seeds = split(_unit(n, j), ins)
                _, tangent = J(**inputs, **{f"{k}_dot": s for k, s in seeds.items()})
                jac[:, j] = flat(tangent if isinstance(tangent, tuple) else (tangent,))
        else:
            V = self._kernel("reverse")
            for i in range(m):
                seeds = split(_unit(m, i), outs)
                _, adjoints = V(**inputs, **{f"{k.replace('.', '_')}_bar": s for k, s in seeds.items()})
                jac[i, :] = flat(adjoints)
        return flat_values.astype(jac.dtype, copy=False), jac


def _unit(n: int, k: int) -> np.ndarray:
    e = np.zeros(n)
    e[k] = 1.0
    return e


class TensorForwardGradient(CompiledFunction):
    """`compile_grad(..., mode="forward")` of a function of tensors: the gradient from
    one tangent sweep per element of the `wrt` tensors (the forward-mode Jacobian of
    the one output), the lecture's forward mode. It is called like the reverse-mode
    gradient — `g(*args, **kwargs) -> (value, (g_x, ...))`, each g_x shaped like x, and
    `g.at(x, **data)` — and costs n sweeps where reverse mode costs one; `trace` and
    `source` are the JVP's."""

    kind = "grad"
    mode = "forward"
    tensor = True

    def __init__(self, primal, wrt, *, backend: str, sweeps: dict, threads=None, dtype=None,
                 stable: bool = False, rewrites=()):
        self.primal, self.wrt, self.backend, self._dtype = primal, tuple(wrt), backend, dtype
        self.inputs = tuple(primal.input_names)
        self.signature = Signature(primal, primal, self.wrt)
        self._jacobian = TensorJacobian(primal, wrt, "forward", backend=backend, sweeps=sweeps, threads=threads,
                                        dtype=dtype, stable=stable, rewrites=rewrites)
        jvp = self._jacobian._kernel("forward")
        self.trace, self.source = jvp.trace, jvp.source
        self.rewrites = self._jacobian.rewrites
        self._packed = TensorPackedCall(self)

    def __repr__(self) -> str:
        return (f"<compiled gradient (forward mode, one sweep per element, {self.backend}): "
                f"inputs {', '.join(self.inputs)}; wrt {', '.join(self.wrt)}>")

    def _evaluate(self, point: dict):
        (value,), jac = self._jacobian(**point)
        grads = split(jac[0], [(k, np.shape(point[k])) for k in self.wrt], "the gradient")
        if self._dtype is not None:  # split() answers in float64
            return float(value), tuple(g.astype(self._dtype) if isinstance(g, np.ndarray) else g
                                       for g in grads.values())
        return float(value), tuple(grads.values())

    def at(self, x, /, **data):
        """The gradient at a packed point, as `Compiled.at` (x: the wrt tensors flattened
        in C order and concatenated; data inputs by name)."""
        return self._packed(x, **data)
