"""Sparse Jacobians and Hessians as compiled objects: `compile_jacobian(..., sparse=True)`
and `compile_hessian(..., sparse=True)` (issue 16).

Where it sits: the front door's sparse branch. At compile time it finds the pattern
(sparsity.py), colors it (coloring.py: column or row distance-2 coloring for a
Jacobian, the cheaper kept; star coloring for a Hessian), builds the one trace of the
k compressed sweeps (sparse_sweeps.py) and compiles it through api's backend dispatch.
At call time it runs that kernel once and hands back `scipy.sparse.csr_matrix` results
with the pattern's indices.

Results:
    J(*args) -> (values (m,), csr (m, n))            one point
    H(*args) -> (value, gradient (n,), csr (n, n))   one point
On a batch of points (scalar programs only: tensor programs have exact shapes) the
last result is the CSR *data* array, shaped (batch..., nnz), all points sharing
`J.pattern`'s indices; `J.matrix(data[k])` makes point k's csr_matrix. The matrices
returned share one read-only copy of the index arrays (`M.copy()` to restructure one).

Rows and columns: outputs and `wrt` inputs in order, tensors flattened in C order
and concatenated (the convention of `Compiled.at`). Tensor programs need concrete
shapes (numbers, not named dimensions): the pattern and the coloring are fixed when
compiling.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import coloring as C
from . import sparse_sweeps, sparsity
from .compiled import CompiledFunction
from .shape_binding import is_tensor_trace
from .signature import flat, split
from .stability import DEFAULT_STABLE, stabilized

EXTRA = "scipy"   # what to install; it is in the 'test' extra


def require_scipy():
    """scipy.sparse, or an ImportError that says what to install."""
    try:
        import scipy.sparse as sp
    except ImportError:
        raise ImportError("sparse=True returns scipy.sparse matrices: install SciPy "
                          "(pip install scipy, or pip install 'exprcompiler[test]')") from None
    return sp


class Coloring(NamedTuple):
    """How the derivative is compressed: `mode` "forward" (columns colored), "reverse"
    (rows colored) or "star" (a symmetric Hessian's variables), and the colors."""
    mode: str
    colors: np.ndarray

    @property
    def count(self) -> int:
        return C.n_colors(self.colors)

    def __repr__(self) -> str:
        return f"Coloring(mode={self.mode!r}, count={self.count})"


def _concrete(primal, names, what):
    shapes = dict((n, primal.instrs[v].shape) for n, v in list(primal.inputs) + list(primal.outputs))
    for name in names:
        if any(not isinstance(d, (int, np.integer)) for d in shapes[name]):
            raise ValueError(f"sparse=True: {what} {name!r} has shape {shapes[name]}; the pattern and "
                             f"its coloring are found when compiling, so declare numbers "
                             f"(shapes={{{name!r}: (100,)}}), not named dimensions")


class SparseDerivative(CompiledFunction):
    """The common part of SparseJacobian and SparseHessian: the kernel of the compressed
    sweeps, the pattern, the coloring, and the call."""

    def __init__(self, primal, source, wrt, structure: sparsity.Pattern, coloring: Coloring, where, *,
                 backend: str, threads=None, stable: bool):
        """`primal`: the function's trace; `source`: the same after the stability
        rewrites (stage "primal"), whose pattern was colored and which is swept."""
        from . import api
        self._sp = require_scipy()
        self.primal, self.wrt, self.backend = primal, tuple(wrt), backend
        self._source_trace = source
        rewrites: list = list(getattr(self, "rewrites", ()))
        self.inputs = tuple(primal.input_names)
        self.structure, self.coloring = structure, coloring
        self.mode = coloring.mode
        self.tensor = is_tensor_trace(primal)
        self._parts = [(x, primal.instrs[dict(primal.inputs)[x]].shape) for x in self.wrt]
        k = coloring.count
        if self.tensor:
            self.trace = stabilized(sparse_sweeps.tensor_sweeps(source, self.wrt, self._sweep_mode, k),
                                    "derivative", stable, rewrites)
            self._kernel = api._build("value", primal, self.trace, backend=backend, wrt=self.wrt,
                                      func_name=f"f_sparse_{self.kind}", what=self._what(),
                                      threads=threads, layout=(((),) * len(self.trace.outputs), list))
            self._seeds = self._seed_arrays()
            length = structure.shape[0] if coloring.mode in ("forward", "star") else structure.shape[1]
            b_rows, b_cols = where  # B's (row, column); the kernel gives B sweep by sweep
            sweep, pos = (b_cols, b_rows) if coloring.mode in ("forward", "star") else (b_rows, b_cols)
            self._gather = np.asarray(sweep, dtype=np.int64) * length + np.asarray(pos, dtype=np.int64)
        else:
            self.trace = stabilized(self._scalar_trace(where), "derivative", stable, rewrites)
            self._kernel = api._build(self.kind, primal, self.trace, backend=backend, wrt=self.wrt,
                                      mode=self.mode, func_name=f"f_sparse_{self.kind}", what=self._what(),
                                      threads=threads, layout=(self._suffixes(), tuple))
        self.rewrites = tuple(rewrites)  # the stability rewrites applied (see exprcompiler.stability)
        self.signature = self._kernel.signature if not self.tensor else None
        self._packed = None
        self._template = None

    @property
    def source(self) -> str:
        """The generated code (a long NumPy function's is made at the first call:
        backends/program_text.py)."""
        return self._kernel.source

    # -- what a subclass says --------------------------------------------------------
    _sweep_mode = ""

    def _what(self) -> str:
        c = self.coloring
        return f"sparse {self.kind} ({c.mode} coloring, {c.count} sweeps, {self.structure.nnz} nonzeros)"

    # -- the pattern -----------------------------------------------------------------
    @property
    def pattern(self):
        """The structural pattern: a boolean scipy.sparse.csr_matrix."""
        return self.structure.to_scipy()

    @property
    def colors(self) -> Coloring:
        return self.coloring

    @property
    def nnz(self) -> int:
        return self.structure.nnz

    def matrix(self, data):
        """A csr_matrix with this pattern's indices and the given data (nnz,)."""
        data = np.asarray(data, dtype=np.float64)
        if data.shape != (self.nnz,):
            raise ValueError(f"matrix(): data has shape {data.shape}; the pattern has {self.nnz} nonzeros")
        if self._template is None:  # the index arrays in SciPy's own dtype, converted once
            p = self.structure
            t = self._sp.csr_matrix((np.zeros(self.nnz), p.indices, p.indptr), shape=p.shape)
            t.indices.flags.writeable = t.indptr.flags.writeable = False
            self._template = t
        t = self._template
        # Every result shares the pattern's index arrays, read-only: copying them costs
        # more than the gather (measured 0.35 ms at nnz = 7·10⁴, against 0.09 ms), and
        # an in-place change of structure (eliminate_zeros) then raises instead of
        # corrupting the next result; M.copy() gives a matrix of one's own.
        return self._sp.csr_matrix((data, t.indices, t.indptr), shape=t.shape)

    # -- calls -----------------------------------------------------------------------
    def _seed_arrays(self) -> list:
        """The seed matrix's columns cut into the seed inputs of the kernel, sweep by sweep."""
        seeds = C.seed_matrix(self.coloring.colors)
        if self.coloring.mode == "reverse":
            parts = [(name, self.primal.instrs[v].shape) for name, v in self.primal.outputs]
        else:
            parts = self._parts
        return [a for c in range(seeds.shape[1]) for a in
                (np.asarray(s, dtype=np.float64) for s in split(seeds[:, c], parts, "a seed").values())]

    def _run(self, inputs: dict) -> tuple:
        """(the leading results as the kernel gives them, the CSR data or a batch of it)."""
        args = [inputs[k] for k in self.inputs]  # positional: the kernel's fastest path
        if not self.tensor:
            results = self._kernel(*args)
            return results[:-1], results[-1]
        results = self._kernel(*args, *self._seeds)
        lead = self._leading(results)
        sweeps = flat(results[lead:]) if len(results) > lead else np.zeros(0)
        return self._tensor_lead(results[:lead]), sweeps[self._gather]

    def __call__(self, /, *args, out=None, **kwargs):
        if out is not None:
            raise TypeError("out= is not available with sparse=True: the derivative is a new "
                            "scipy.sparse matrix (or, on a batch, its data array) at each call")
        return super().__call__(*args, **kwargs)

    def _on_dask(self, args, kwargs, out):
        raise TypeError("sparse=True results are scipy.sparse matrices, which Dask arrays do not "
                        "hold: call with NumPy arrays (a batch gives the CSR data, (batch..., nnz))")

    def _evaluate(self, inputs: dict):
        lead, data = self._run(inputs)
        if np.ndim(data) == 1:
            return (*lead, self.matrix(data))
        return (*lead, data)

    def at(self, x, /, **data):
        """At one point given as a packed vector x of the `wrt` variables (tensors
        flattened in C order and concatenated), other inputs by name."""
        point = {k: (v if np.ndim(v) else float(v)) for k, v in split(x, self._parts).items()}
        clash = set(point) & set(data)
        if clash:
            raise TypeError(f"at(): {', '.join(sorted(clash))} given in x and by name")
        return self(**point, **data)

    def __repr__(self) -> str:
        c = self.coloring
        return (f"<compiled sparse {self.kind} ({c.mode} coloring, {c.count} colors, {self.nnz} nonzeros, "
                f"{self.backend}): inputs {', '.join(self.inputs)}; wrt {', '.join(self.wrt)}>")

    def explain(self) -> str:
        from .sparse_explain import explain_sparse
        return explain_sparse(self)


class SparseJacobian(SparseDerivative):
    """`compile_jacobian(..., sparse=True)`: (values (m,), Jacobian as csr (m, n)); see
    the module. `J.coloring.mode` is the direction chosen ("forward": k JVP sweeps
    with column colors; "reverse": k VJP sweeps with row colors)."""

    kind = "jacobian"

    def __init__(self, primal, wrt, mode: str = "auto", *, backend: str = "numpy", threads=None,
                 stable: bool = DEFAULT_STABLE):
        if is_tensor_trace(primal):
            _concrete(primal, list(wrt) + list(primal.output_names), "input or output")
        self.rewrites = []
        source = stabilized(primal, "primal", stable, self.rewrites)
        structure = sparsity.jacobian_structure(source, wrt)
        if mode == "auto":
            chosen, colors = C.color_jacobian(structure)
        elif mode == "forward":
            chosen, colors = mode, C.color_columns(structure)
        else:
            chosen, colors = mode, C.color_rows(structure)
        where = C.column_recovery(structure, colors) if chosen == "forward" else C.row_recovery(structure, colors)
        self._sweep_mode = chosen
        self.m = structure.shape[0]
        super().__init__(primal, source, wrt, structure, Coloring(chosen, colors), where, backend=backend,
                         threads=threads, stable=stable)

    def scipy_least_squares(self, **data):
        """`ls.fun`, `ls.jac` (csr) and `ls.jac_sparsity` for
        scipy.optimize.least_squares over the packed `wrt` vector (see sparse_scipy)."""
        from .sparse_scipy import LeastSquares
        return LeastSquares(self, data)

    def _scalar_trace(self, where):
        return sparse_sweeps.scalar_jacobian(self._source_trace, self.wrt, self.coloring.mode, self.coloring.colors, where)

    def _suffixes(self):
        return ((self.m,), (self.nnz,))

    def _leading(self, results) -> int:
        return len(self.primal.outputs)

    def _tensor_lead(self, values):
        return (flat(values),)


class SparseHessian(SparseDerivative):
    """`compile_hessian(..., sparse=True)`: (value, gradient (n,), Hessian as csr (n, n))
    from k Hessian-vector products with star-coloring seeds and symmetric recovery."""

    kind = "hessian"
    _sweep_mode = "hessian"

    def __init__(self, primal, wrt, *, backend: str = "numpy", threads=None, stable: bool = DEFAULT_STABLE):
        from .passes.replay import scalar_output
        scalar_output(primal, "a Hessian")
        if is_tensor_trace(primal):
            _concrete(primal, wrt, "input")
        self.rewrites = []
        source = stabilized(primal, "primal", stable, self.rewrites)
        structure = sparsity.hessian_structure(source, wrt)
        colors = C.star_coloring(structure)
        super().__init__(primal, source, wrt, structure, Coloring("star", colors), C.star_recovery(structure, colors),
                         backend=backend, threads=threads, stable=stable)

    def scipy_trust_constr(self, **data):
        """`tc.fun`, `tc.jac` and `tc.hess` (csr) for minimize(method="trust-constr")
        over the packed `wrt` vector (see sparse_scipy)."""
        from .sparse_scipy import TrustConstr
        return TrustConstr(self, data)

    def _scalar_trace(self, where):
        return sparse_sweeps.scalar_hessian(self._source_trace, self.wrt, self.coloring.colors, where)

    def _suffixes(self):
        return ((), (len(self.wrt),), (self.nnz,))

    def _leading(self, results) -> int:
        return 1 + len(self.wrt)

    def _tensor_lead(self, lead):
        return (float(lead[0]), flat(lead[1:]))


def dense_sweeps(obj: SparseDerivative) -> int:
    """What the dense form costs in sweeps: n tangent sweeps for a forward Jacobian or
    a Hessian, m adjoint sweeps for a reverse Jacobian."""
    m, n = obj.structure.shape
    return m if obj.coloring.mode == "reverse" else n


__all__ = ["SparseJacobian", "SparseHessian", "Coloring", "require_scipy", "dense_sweeps"]
