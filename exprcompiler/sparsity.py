"""Structural sparsity of a trace's Jacobian and Hessian, by index-set propagation.

Where it sits: beside the derivative passes, reading a primal `Trace` (the parser's
output) and producing patterns; coloring.py turns a pattern into seed directions,
and the compressed sweeps (one JVP/VJP/HVP kernel run on k seeds) come from the
ordinary passes. Nothing here builds a trace.

One forward walk over the instructions gives each trace variable, per element, the
set of `wrt` columns it depends on (Griewank & Walther ch. 7; SparseConnectivityTracer's
index sets, CasADi's bit vectors without the 64-column limit):

* an input in `wrt` depends on its own columns; constants and other inputs on none;
* an elementwise op depends on the union of the arguments whose partial is not a
  structural zero (comparisons, sign, floor depend on nothing: their derivative is 0
  wherever it exists, as the derivative passes give it);
* sum/mean/max/min/logsumexp/norm union the reduced elements, softmax and
  log_softmax (and their internal ops: log_softmax_vjp, log_softmax_jvp, a vector's
  log_softmax(x)[k] as log_softmax_at_parts, log_softmax_at, log_softmax_at_vjp,
  log_softmax_at_jvp) union
  their slice along the axis; index, reshape, transpose,
  concatenate and stack select or permute; outer pairs one element of each argument;
  matmul depends on a whole row of the left and a whole column of the right.
  Other tensor ops (the derivative passes' own: scatter, sum_to, diag...) raise
  NotImplementedError naming the op.

The Hessian pattern collects the nonlinear interactions during the same walk (Walther,
ACM TOMS 34(1), 2008): a nonlinear unary op adds all pairs of its argument's set;
mul, outer and matmul add the cross pairs of their two arguments' sets (bilinear); div
adds the cross pairs and the pairs within the denominator's set; every other nonlinear
op (logsumexp, norm, softmax, log_softmax: per output element) adds all pairs of the
union; add, sub, neg, copy, where, sum, max, min (piecewise linear), index... add nothing. For a
trace with several outputs it is the union over outputs. The patterns are
structural: a superset of the nonzeros at any point (x - x depends on x), never missing
one wherever the function is twice differentiable.

Named dimensions: `dims` ({"n": 5}, as a call binds them: shape_binding.py) resolves
the trace's declared shapes; without it every shape must be numbers. The dense tensor
Jacobians and Hessians (tensor_jacobians.py) use it at call time.

Patterns are `Pattern` (CSR index arrays, NumPy only: sparse_pattern.py) so coloring
needs no SciPy;
`jacobian_pattern` and `hessian_pattern` return boolean `scipy.sparse.csr_matrix`.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from . import runtime
from .ops import OPS
from .shape_binding import concrete
from .sparse_pattern import Pattern, as_pattern  # noqa: F401  (as_pattern re-exported)
from .trace.ir import Trace

_EMPTY = frozenset()

# Elementwise ops that are linear in the arguments they have a derivative for:
# no Hessian interactions (where(c, x, y) is linear in x and y; c has no derivative).
_LINEAR_ELEMENTWISE = frozenset(("copy", "add", "sub", "neg", "where"))
# Reductions: each output element depends on the elements reduced into it; the
# nonlinear ones add all pairs of that set to the Hessian (max and min are piecewise
# linear: their Hessian is zero wherever it exists, as the derivative passes give it).
_REDUCTIONS = {"sum": False, "mean": False, "max": False, "min": False, "logsumexp": True, "norm": True}


# -- the walk --------------------------------------------------------------------------

def _size(shape, op="") -> int:
    for d in shape:
        if not isinstance(d, (int, np.integer)):
            raise ValueError(f"sparsity patterns need concrete shapes; {op or 'a variable'} "
                             f"has shape {shape} (bind the dimensions first)")
    return math.prod(shape)


def _grid(shape) -> np.ndarray:
    return np.arange(_size(shape), dtype=np.int64).reshape(shape)


def _wrt_columns(trace: Trace, wrt, shapes) -> dict:
    """{input variable: first column} for the wrt inputs, in wrt order, and n."""
    by_name = dict(trace.inputs)
    if wrt is None:
        wrt = trace.input_names
    elif isinstance(wrt, str):
        wrt = [wrt]
    first, col = {}, 0
    for name in wrt:
        if name not in by_name:
            raise ValueError(f"wrt: {name!r} is not an input of the trace (inputs: {', '.join(trace.input_names)})")
        var = by_name[name]
        first[var] = col
        col += _size(shapes[var], name)
    return first, col


class _Pairs:
    """The Hessian's nonlinear interactions, as one set of partners per column."""

    def __init__(self, n):
        self.rows = [set() for _ in range(n)]
        # interactions already added, by the sets' identities (the sets are kept
        # alive here so an id is never reused): a chain sin(sin(x·y)) adds one square
        self._done: dict = {}

    def _first(self, key, *sets) -> bool:
        if key in self._done:
            return False
        self._done[key] = sets
        return True

    def cross(self, a, b):
        rows = self.rows
        if a and b and self._first((id(a), id(b)), a, b):
            for i in a:
                rows[i].update(b)
            for j in b:
                rows[j].update(a)

    def square(self, a):
        rows = self.rows
        if not self._first((id(a),), a):
            return
        for i in a:
            rows[i].update(a)


# Unions of large sets are kept lazy: a running sum s_k = s_{k-1} + t_k over n terms
# would otherwise copy 1 + 2 + ... + n elements (measured: the Hessian pattern of a
# 10⁴-term least-squares sum took 3.9 s, nearly all of it there). A lazy union is
# a node over its two parts, read (once, iteratively, then cached) only where the
# elements are needed: at a nonlinear op's interactions and at the outputs.
_EAGER = 32   # unions whose parts total at most this many indices are built at once


class _Lazy:
    __slots__ = ("parts", "bound", "value")

    def __init__(self, a, b):
        self.parts = (a, b)
        self.bound = _bound(a) + _bound(b)
        self.value = None


def _bound(s) -> int:
    return s.bound if type(s) is _Lazy else len(s)


def _elements(s) -> frozenset:
    """The set a lazy union stands for (a frozenset stands for itself)."""
    if type(s) is not _Lazy:
        return s
    if s.value is None:
        out, seen, stack = set(), set(), [s]
        while stack:
            node = stack.pop()
            if type(node) is not _Lazy:
                out.update(node)
            elif node.value is not None:
                out.update(node.value)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.extend(node.parts)
        s.value = frozenset(out)
        s.parts = None   # the parts may be freed
    return s.value


def _union(a, b):
    # share one argument's set when it holds the other's (most unions in a band do)
    if a is b or not b:
        return a
    if not a:
        return b
    if type(a) is _Lazy or type(b) is _Lazy or len(a) + len(b) > _EAGER:
        return _Lazy(a, b)
    if b <= a:
        return a
    if a <= b:
        return b
    return a | b


def _elementwise(ins, args_sets, shapes, out_shape, pairs):
    op = OPS[ins.op]
    live = [k for k, p in enumerate(op.partials) if p is not None]
    if not out_shape:
        arg_sets = [args_sets[k][0] for k in live]
        sets = [_elementwise_one(ins.op, arg_sets, pairs)]
        return sets
    idx = [np.broadcast_to(_grid(shapes[k]), out_shape).ravel() for k in live]
    out = []
    for e in range(_size(out_shape)):
        arg_sets = [args_sets[k][int(ix[e])] for k, ix in zip(live, idx)]
        out.append(_elementwise_one(ins.op, arg_sets, pairs))
    return out


def _elementwise_one(opname, arg_sets, pairs):
    acc = _EMPTY
    for s in arg_sets:
        acc = _union(acc, s)
    if pairs is not None and acc and opname not in _LINEAR_ELEMENTWISE:
        # a constant factor (an empty set) adds nothing: its partner is not read,
        # so a scaled running sum 0.9·s + t stays lazy
        if opname == "mul":
            a, b = arg_sets
            if a and b:
                pairs.cross(_elements(a), _elements(b))
        elif opname == "div":
            a, b = arg_sets
            if b:
                b = _elements(b)
                if a:
                    pairs.cross(_elements(a), b)
                pairs.square(b)
        else:
            pairs.square(_elements(acc))
    return acc


def _reduce(ins, sets, shape, pairs):
    """sum/mean/max/min/logsumexp/norm: each output element unions the input elements
    reduced into it (norm: all of them)."""
    axis = ins.attr("axis") if ins.op != "norm" else None
    axes = range(len(shape)) if axis is None else axis
    kept = tuple(1 if k in axes else d for k, d in enumerate(shape))
    owner = np.broadcast_to(_grid(kept), shape).ravel()
    out = [_EMPTY] * _size(kept)
    for e, o in enumerate(owner.tolist()):
        out[o] = _union(out[o], sets[e])
    if pairs is not None and _REDUCTIONS[ins.op]:
        for s in out:
            if s:
                pairs.square(_elements(s))
    return out


def _softmax(ins, sets, shape, pairs):
    """softmax or log_softmax along an axis: each element depends on its whole slice
    along the axis."""
    axis = ins.attr("axis") % len(shape)
    kept = tuple(1 if k == axis else d for k, d in enumerate(shape))
    owner = np.broadcast_to(_grid(kept), shape).ravel().tolist()
    slices = [_EMPTY] * _size(kept)
    for e, o in enumerate(owner):
        slices[o] = _union(slices[o], sets[e])
    if pairs is not None:
        for s in slices:
            if s:
                pairs.square(_elements(s))
    return [slices[o] for o in owner]


def _outer(a_sets, b_sets, pairs):
    """outer(a, b)[i, j] = a.flat[i] · b.flat[j]: bilinear, as mul."""
    out = []
    for a in a_sets:
        for b in b_sets:
            if pairs is not None and a and b:
                pairs.cross(_elements(a), _elements(b))
            out.append(_union(a, b))
    return out


def _select(ins, sets, shape, out_shape):
    """index/reshape/transpose: each output element is one input element."""
    grid = _grid(shape)
    if ins.op == "index":
        src = np.asarray(runtime.index(grid, ins.attr("key")))
    elif ins.op == "reshape":
        src = np.reshape(grid, out_shape)
    else:
        src = np.transpose(grid)
    return [sets[i] for i in src.ravel().tolist()]


def _join(ins, arg_sets, shapes):
    """concatenate/stack: each output element is one element of one argument."""
    grids, offset = [], 0
    for shape in shapes:
        grids.append(_grid(shape) + offset)
        offset += _size(shape)
    join = np.concatenate if ins.op == "concatenate" else np.stack
    src = join(grids, axis=ins.attr("axis"))
    every = [s for sets in arg_sets for s in sets]
    return [every[i] for i in src.ravel().tolist()]


def _matmul(ins, a_sets, b_sets, shapes, pairs):
    """out[i, j] depends on row i of a and column j of b (dense per row: a structural
    zero inside a constant matrix is not seen)."""
    sa, sb = shapes
    if len(sa) > 2 or len(sb) > 2:
        raise NotImplementedError("sparsity pattern: batched matmul (more than 2 dimensions) is not supported")
    ga = _grid(sa).reshape(1, -1) if len(sa) == 1 else _grid(sa)
    gb = _grid(sb).reshape(-1, 1) if len(sb) == 1 else _grid(sb)
    rows = []
    for i in range(ga.shape[0]):
        acc = _EMPTY
        for e in ga[i].tolist():
            acc = _union(acc, a_sets[e])
        rows.append(acc)
    cols = []
    for j in range(gb.shape[1]):
        acc = _EMPTY
        for e in gb[:, j].tolist():
            acc = _union(acc, b_sets[e])
        cols.append(acc)
    out = []
    for i in range(len(rows)):
        for j in range(len(cols)):
            if pairs is not None:
                pairs.cross(_elements(rows[i]), _elements(cols[j]))   # bilinear: a superset of sum_k a_ik × b_kj
            out.append(_union(rows[i], cols[j]))
    return out


def _whole(arg_sets, shape, pairs):
    """log_softmax(x)[k]'s value, adjoint and tangent ops (log_softmax_at, _at_vjp, _at_jvp):
    every output element depends on every element of every argument."""
    acc = _EMPTY
    for sets in arg_sets:
        for s in sets:
            acc = _union(acc, s)
    if pairs is not None and acc:
        pairs.square(_elements(acc))
    return [acc] * _size(shape)


def _propagate(trace: Trace, wrt, hessian: bool, dims: Optional[dict] = None):
    """Per variable, a list (one per element, C order) of frozensets of columns;
    and the Hessian interactions when asked. `dims`: the named dimensions' sizes."""
    instrs = trace.instrs
    shp = [concrete(ins.shape, dims) for ins in instrs] if dims else [ins.shape for ins in instrs]
    first, n = _wrt_columns(trace, wrt, shp)
    pairs = _Pairs(n) if hessian else None
    sets: list = [None] * len(instrs)
    for v, ins in enumerate(instrs):
        op = ins.op
        if op == "input":
            size = _size(shp[v], ins.name)
            if v in first:
                c = first[v]
                sets[v] = [frozenset((c + e,)) for e in range(size)]
            else:
                sets[v] = [_EMPTY] * size
        elif op == "const":
            sets[v] = [_EMPTY] * _size(shp[v])
        elif OPS[op].elementwise:
            shapes = [shp[a] for a in ins.args]
            sets[v] = _elementwise(ins, [sets[a] for a in ins.args], shapes, shp[v], pairs)
        elif op in _REDUCTIONS:
            sets[v] = _reduce(ins, sets[ins.args[0]], shp[ins.args[0]], pairs)
        elif op in ("softmax", "log_softmax", "log_softmax_at_parts"):
            sets[v] = _softmax(ins, sets[ins.args[0]], shp[ins.args[0]], pairs)
        elif op in ("log_softmax_vjp", "log_softmax_jvp"):   # (x, its value, g or t), one shape: each reads its slices of all three
            joined = [_union(_union(a, o), g) for a, o, g in zip(*(sets[a] for a in ins.args))]
            sets[v] = _softmax(ins, joined, shp[v], pairs)
        elif op in ("log_softmax_at", "log_softmax_at_vjp", "log_softmax_at_jvp"):   # (a vector, and a vector or a scalar): each reads all
            sets[v] = _whole([sets[a] for a in ins.args], shp[v], pairs)
        elif op in ("index", "reshape", "transpose"):
            sets[v] = _select(ins, sets[ins.args[0]], shp[ins.args[0]], shp[v])
        elif op in ("concatenate", "stack"):
            sets[v] = _join(ins, [sets[a] for a in ins.args], [shp[a] for a in ins.args])
        elif op == "outer":
            sets[v] = _outer(sets[ins.args[0]], sets[ins.args[1]], pairs)
        elif op == "matmul":
            a, b = ins.args
            sets[v] = _matmul(ins, sets[a], sets[b], [shp[a], shp[b]], pairs)
        else:
            raise NotImplementedError(f"sparsity pattern: the tensor op {op!r} is not supported yet "
                                      f"(supported: elementwise ops, sum, mean, max, min, logsumexp, "
                                      f"norm, softmax, log_softmax, index, reshape, transpose, concatenate, "
                                      f"stack, outer, matmul)")
    return sets, n, pairs


# What the walk costs, in µs per element (Python, one set operation each; measured on
# the dense tensor Jacobians' benchmarks, tensor_jacobians.py): an elementwise op's or a
# nonlinear reduction's output element, an element read by a reduction, matmul or
# selection. Inputs not differentiated and constants cost next to nothing.
_US_ELEMENT, _US_READ = 1.0, 0.3


def walk_cost(trace: Trace, dims: Optional[dict] = None) -> float:
    """An estimate of `_propagate`'s time in µs, from the shapes alone (no walk)."""
    total = 0.0
    for ins in trace.instrs:
        if ins.op in ("input", "const"):
            continue
        out = math.prod(concrete(ins.shape, dims) if dims else ins.shape)
        read = sum(math.prod(concrete(trace.instrs[a].shape, dims) if dims else trace.instrs[a].shape)
                   for a in ins.args)
        total += out * _US_ELEMENT if OPS[ins.op].elementwise else out * _US_ELEMENT + read * _US_READ
    return total


def jacobian_structure(trace: Trace, wrt: Optional[Sequence[str]] = None, dims: Optional[dict] = None) -> Pattern:
    """The Jacobian's structural pattern as a `Pattern`: rows are the outputs'
    elements (flattened, in output order), columns the wrt inputs' elements."""
    sets, n, _ = _propagate(trace, wrt, hessian=False, dims=dims)
    rows = [_elements(s) for _, v in trace.outputs for s in sets[v]]
    return Pattern.from_sets(rows, n)


def hessian_structure(trace: Trace, wrt: Optional[Sequence[str]] = None, dims: Optional[dict] = None) -> Pattern:
    """The Hessian's structural pattern (n × n, symmetric) as a `Pattern`."""
    _, n, pairs = _propagate(trace, wrt, hessian=True, dims=dims)
    return Pattern.from_sets(pairs.rows, n)


def derivative_structures(trace: Trace, wrt: Optional[Sequence[str]] = None, dims: Optional[dict] = None):
    """(the Jacobian's pattern, the Hessian's pattern) from one walk: for a scalar
    function, the gradient's (1 × n) and the Hessian's (n × n)."""
    sets, n, pairs = _propagate(trace, wrt, hessian=True, dims=dims)
    rows = [_elements(s) for _, v in trace.outputs for s in sets[v]]
    return Pattern.from_sets(rows, n), Pattern.from_sets(pairs.rows, n)


def jacobian_pattern(trace: Trace, wrt: Optional[Sequence[str]] = None, dims: Optional[dict] = None):
    """The Jacobian's structural pattern: a boolean scipy.sparse.csr_matrix, m × n
    (outputs' elements × wrt inputs' elements), never missing a nonzero."""
    return jacobian_structure(trace, wrt, dims).to_scipy()


def hessian_pattern(trace: Trace, wrt: Optional[Sequence[str]] = None, dims: Optional[dict] = None):
    """The Hessian's structural pattern: a symmetric boolean scipy.sparse.csr_matrix,
    n × n, from the nonlinear interactions (union over outputs)."""
    return hessian_structure(trace, wrt, dims).to_scipy()
