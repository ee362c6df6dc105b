"""Hessians and Jacobians of functions of tensors, assembled at call time.

A scalar trace gets its Hessian and Jacobian as traces (passes/jacobian.py): one sweep
per variable, each entry a named output. With tensors the number of sweeps — one per
element — is known only when the named dimensions are bound, so these objects compile
the HVP, JVP and VJP traces once and run one sweep per element with unit seeds when
called. Rows and columns follow the outputs and the `wrt` tensors flattened in C order
and concatenated (the convention of `Compiled.at`).

Structural zeros: a unit seed leaves the other lanes' tangents (adjoints) at 0, and
0 · inf is NaN, so one lane where a partial is infinite (sqrt, cbrt or x**0.5 at 0,
arcsin at ±1, log at 0) would spread NaN over entries that are exactly 0 whatever
the point (d sqrt(x_1)/d x_0). When a result holds a NaN or an infinity, the
structural pattern at the call's shapes (sparsity.py, index-set propagation, the
named dimensions bound) says which entries can be nonzero, and the non-finite
entries outside it become 0, as the scalar-list Jacobian and the sparse one give
them; finite entries are left as computed. The pattern is made once per shape set
(kept for a few: shape_binding.ShapeCache) and only for a call that needs it; not
for a function with an op the propagation does not know (the NotImplementedError of
sparsity.py: none of the parser's), over PATTERN_LIMIT entries, or where its walk
would cost more than the sweeps (see _sweeps_cost).

Inside the pattern a NaN may still be such an artifact, met before the output
(sum(sqrt(x)) seeded on x_1 at x_0 = 0). Two repairs, each taking a number that the
same chain rule gives without it: a Jacobian sweeps the rows (columns) holding a NaN
again in the other mode (TensorJacobian._repair; at most as many sweeps as the call
made), and the Hessian's symmetrization takes the side that is a number (_symmetric).
What is NaN both ways stays NaN (a lane reached by both the seed and an infinite
partial with a zero factor in each mode); so does the gradient a TensorHessian gets
from its HVP kernel, which is the reverse-mode gradient's.

Lanes read through an index: the reverse sweep keeps x[key]'s adjoint zero outside
key structurally (passes/reverse_index.py), so a row seeded on sqrt(z)[1:] no longer
holds 0·inf in the lane z_0 that no output reads, and such a call reaches none of the
repairs (tests/test_index_adjoints.py). They stay for seeds that are dense vectors,
not structural zeros: a unit seed on an elementwise output (sqrt(z)'s row 0 at z_1 = 0),
a reduction of all lanes, and every forward-mode column.
"""

from __future__ import annotations

import math

import numpy as np

from . import shapes as _s
from . import sparsity
from .compiled import CompiledFunction
from .shape_binding import ShapeCache, concrete
from .signature import Signature, flat, split
from .tensor_call import TensorPackedCall

# A pattern is made only when its walk (Python, per element: sparsity.walk_cost) is
# estimated to cost no more than the sweeps it corrects, and for at most PATTERN_LIMIT
# Jacobian or Hessian entries (the dense mask). The sweeps' estimate, in µs: per sweep
# a call (binding, seeds, copying the result out), per instruction of the sweep's trace
# (taken as SWEEP_TRACE times the function's) NumPy's overhead of one op, per element
# read half a ns (a BLAS matrix-vector product's rate; elementwise ops are slower).
# Measured, pattern/sweeps, tanh(W @ sqrt(x)) with W (n, n) data, at n = 10, 100, 300,
# 1000 (load 4-9): NumPy reverse 0.40, 0.19, 0.60, 0.02; forward 0.36, 0.18, 0.82, 0.03;
# Hessian of its sum 0.38, 0.09, 0.19, 0.01; C (n <= 300) 0.26-0.52. The walk grows as
# the elements of W, the sweeps as n times them. exp(a*t) * sqrt(t), a of 2 elements,
# t of 2·10³, forward (2 sweeps) would take 100 times its sweeps: skipped.
PATTERN_LIMIT = 4_000_000
_US_CALL, _US_ELEMENT, SWEEP_TRACE = 10.0, 0.0005, 2
_US_OP = {"numpy": 3.0}   # other backends: one compiled call per sweep
_US_OP_COMPILED = 0.2


def _sweeps_cost(trace, dims, sweeps: int, backend: str) -> float:
    """An estimate of `sweeps` sweeps' time in µs."""
    elements = sum(math.prod(concrete(ins.shape, dims)) for ins in trace.instrs)
    per_op = _US_OP.get(backend, _US_OP_COMPILED)
    return sweeps * (_US_CALL + SWEEP_TRACE * (len(trace.instrs) * per_op + elements * _US_ELEMENT))


class _Patterns:
    """The structural patterns of one trace's derivatives, per shape set of its inputs:
    dense boolean masks (Jacobian (m, n), or gradient (n,) and Hessian (n, n)), or
    None where no pattern can be made."""

    def __init__(self, trace, wrt, hessian: bool, backend: str):
        self.trace, self.wrt, self.hessian, self.backend = trace, tuple(wrt), hessian, backend
        self._cache = ShapeCache(4)

    def get(self, shapes: dict, mode: str = "forward"):
        """`shapes`: {input name: concrete shape} (enough of them to bind every named
        dimension); `mode`: the Jacobian's sweeps, one per column or one per row."""
        key = (mode, tuple(sorted(shapes.items())))
        return self._cache.get(key, self._make, shapes, mode)

    def _make(self, shapes: dict, mode: str):
        trace = self.trace
        dims: dict = {}
        for name, v in trace.inputs:
            if name in shapes:
                _s.bind(trace.instrs[v].shape, tuple(shapes[name]), name, dims)
        dims = {d: size for d, (size, _) in dims.items()}
        m = sum(_size(trace, v, dims) for _, v in trace.outputs)
        n = sum(_size(trace, v, dims) for name, v in trace.inputs if name in self.wrt)
        entries = n * n if self.hessian else m * n
        sweeps = n if self.hessian or mode == "forward" else m
        walk = sparsity.walk_cost(trace, dims) + (0.1 * entries if self.hessian else 0.0)
        if entries > PATTERN_LIMIT or walk > _sweeps_cost(trace, dims, sweeps, self.backend):
            return None
        try:
            if self.hessian:
                grad, hess = sparsity.derivative_structures(trace, self.wrt, dims)
                return grad.to_dense()[0], hess.to_dense()
            return sparsity.jacobian_structure(trace, self.wrt, dims).to_dense()
        except NotImplementedError:   # an op the propagation does not know: as the sweeps give it
            return None


def _size(trace, v, dims) -> int:
    return int(np.prod(concrete(trace.instrs[v].shape, dims)))


def _zero_outside(values: np.ndarray, keep: np.ndarray) -> None:
    """The non-finite entries of `values` outside the pattern `keep` set to 0, in place
    (finite ones outside it are zeros already, maybe -0.0: left as they are)."""
    bad = ~np.isfinite(values)
    bad &= ~keep
    values[bad] = 0.0


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
        self._patterns = _Patterns(self.primal, self.wrt, hessian=True, backend=self.backend)

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
        if not (np.isfinite(hess).all() and np.isfinite(grad).all()):
            # before the symmetrization: a NaN on one side would poison the other
            shapes = {k: np.shape(v) for k, v in data.items()}
            shapes.update(self.signature.layout(self.wrt, data, n))
            patterns = self._patterns.get(shapes)
            if patterns is not None:
                grad = np.array(grad, dtype=float)
                _zero_outside(grad, patterns[0])
                _zero_outside(hess, patterns[1])
        return value, grad, _symmetric(hess)


def _symmetric(hess: np.ndarray) -> np.ndarray:
    """0.5 (H + Hᵀ): symmetric to rounding, made exact. Where one side is NaN and the
    other a number, the number: HVP column j seeds x_j only, so an entry whose lane
    meets an infinite second derivative with a zero tangent (sum(cbrt(x) · y): the
    column of y_0 at x_0 = 0) is 0 · inf there and the true value in column i."""
    out = 0.5 * (hess + hess.T)
    nan = np.isnan(hess)
    one_side = nan ^ nan.T
    if one_side.any():
        out[one_side] = np.where(nan, hess.T, hess)[one_side]
    return out


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
        self._patterns = _Patterns(primal, self.wrt, hessian=False, backend=backend)

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
                jac[:, j] = _column(J, inputs, ins, n, j)
        else:
            V = self._kernel("reverse")
            for i in range(m):
                jac[i, :] = _row(V, inputs, outs, m, i)
        if not np.isfinite(jac).all():
            keep = self._patterns.get({k: np.shape(inputs[k]) for k in self.inputs}, mode)
            if keep is not None:
                _zero_outside(jac, keep)
            self._repair(jac, mode, inputs, ins, outs)
        return flat_values.astype(jac.dtype, copy=False), jac

    def _repair(self, jac, mode: str, inputs, ins, outs) -> None:
        """NaN left inside the pattern may still be 0 · inf of a lane the seed does not
        reach, met before the output (sum(sqrt(x)) seeded on x_1 at x_0 = 0). The other
        mode's sweeps meet other lanes: the rows (forward) or columns (reverse) holding
        a NaN are swept again in the other mode, and a NaN is replaced where that gives
        a number — the same chain rule without the artifact. Only when it costs no more
        sweeps than the call made (at most twice the work)."""
        nan = np.isnan(jac)
        if not nan.any():
            return
        m, n = jac.shape
        # (the lines this mode swept, as rows of `grid`: a view of jac or of its transpose)
        if mode == "forward":
            grid, holes, other_mode, again = jac, nan, "reverse", lambda K, i: _row(K, inputs, outs, m, i)
        else:
            grid, holes, other_mode, again = jac.T, nan.T, "forward", lambda K, j: _column(K, inputs, ins, n, j)
        lines = np.flatnonzero(holes.any(axis=1))
        if lines.size > grid.shape[1]:
            return
        K = self._kernel(other_mode)
        for k in lines.tolist():
            other = again(K, k)
            fix = holes[k] & ~np.isnan(other)
            grid[k, fix] = other[fix]


def _column(J, inputs, ins, n: int, j: int) -> np.ndarray:
    """Column j of n: one JVP (kernel J) seeded on element j of the wrt tensors."""
    seeds = split(_unit(n, j), ins)
    _, tangent = J(**inputs, **{f"{k}_dot": s for k, s in seeds.items()})
    return flat(tangent if isinstance(tangent, tuple) else (tangent,))


def _row(V, inputs, outs, m: int, i: int) -> np.ndarray:
    """Row i of m: one VJP (kernel V) seeded on element i of the outputs."""
    seeds = split(_unit(m, i), outs)
    _, adjoints = V(**inputs, **{f"{k.replace('.', '_')}_bar": s for k, s in seeds.items()})
    return flat(adjoints)


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
