"""Calling a compiled tensor trace: arguments checked against the declared shapes.

A trace whose variables are all scalars is evaluated elementwise over a batch of
points (api.Compiled broadcasts its arguments). A trace with tensor inputs or ops is
called with exactly the declared shapes instead: the compiled function's Signature
binds and checks them (signature.py, shape_binding.py) before any generated code
runs, and TensorCall fits the kernel's results to the outputs' shapes. `.at()` of a
tensor function (TensorPackedCall) cuts a packed vector into the `wrt` tensors.

Memory: at each new binding (a tuple of input shapes not in the signature's cache)
TensorCall has glibc keep the call's arrays in its heap once freed
(heap_release.keep_heap, with the bytes of the trace's arrays at those shapes): a
tensor program runs whole, no blocks, and in a process that had freed no array as
large (a fresh one, data made once) its temporaries and outputs were new pages at
every call. Gradients of the driver's models, fresh processes taking turns (CPU
medians of 3 rounds, load 5-10): logistic, 16 features, 10⁵ examples, 1,531 page
faults a call -> 0, 4.46 -> 2.74 ms (0.61x); 10⁶: 4,351 -> 0, 0.78x; mlp 16-8-1,
10⁵: 4,233 -> 0, 0.65x; at 10⁶ its (n, 8) arrays (64 MB) are above what glibc
keeps (heap_release.KEEP_MAX): mmapped still, 6,342 faults either way. At n <= 10³
no fault before or after, calls within noise. Per binding, not per call: a wrapper
per call cost 0.4-0.7 µs (+4-8% at n <= 10³); the call plan's text is unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from . import shapes as _s
from .call_args import _check_out_flat, quiet
from .call_plan import make_plan, structure
from .errors import ShapeError
from .compiled import holds_dask
from .dtypes import check_out_dtype, real
from .heap_release import keep_heap
from .shape_binding import concrete
from .signature import Signature, flat, split


# Ops whose NumPy result may be a view of their first argument (no copy).
_VIEWS = frozenset(("copy", "transpose", "reshape", "index", "broadcast_to"))


class TensorCall:
    """Runs a compiled tensor function: shapes bound and checked, results fitted.
    What does not change between calls is worked out once: the declared shapes, which
    outputs can be views of an input, and (for the last few input shapes seen) the
    named dimensions' sizes and the outputs' shapes: an optimizer calls with the same
    shapes every time, and a gradient of a 500×100 least squares takes ~12 µs.

    `warns`: whether `fn` may raise NumPy's floating-point warnings (the NumPy
    backend's code may; the C wrapper does no arithmetic in NumPy): it then runs
    with them off (call_args.quiet). `nest(list)`: how the call nests the results,
    and `returns` the same as output positions (api.Compiled._returns) or None.
    After the first call, `plan` is the call plan made for this function
    (call_plan.py), which hands the calls it does not take to `general`
    (api.Compiled's own __call__)."""

    plan = None

    def __init__(self, signature: Signature, fn, warns: bool = True, nest=list, returns=None, dtype=None,
                 general=None):
        self.signature, self.fn, self.general = signature, fn, general
        self.run = quiet(fn) if warns else fn
        # float32 (dtype, see dtypes.py): the general path, whose fitting checks the dtype
        self._nest, self._returns, self._planned = nest, returns, dtype is not None
        self.dtype = dtype
        self._bound = signature.bound
        trace = self.trace = signature.trace
        viewish = [False] * len(trace.instrs)
        for i, ins in enumerate(trace.instrs):
            viewish[i] = ins.op == "input" or (ins.op in _VIEWS and viewish[ins.args[0]])
        self.may_alias = [viewish[v] for _, v in trace.outputs]
        self.scalar = [trace.instrs[v].shape == () for _, v in trace.outputs]
        self._arrays = None   # (declared shape, how many of the trace's arrays have it): at the first binding

    def __call__(self, arrays) -> list:
        key = tuple([a.shape for a in arrays])
        return self._finish(self._bound(key) or self._new_binding(arrays, key), arrays)

    def _new_binding(self, arrays, key):
        """The signature's binding of shapes not in its cache (checked, or a ShapeError),
        after which glibc keeps a call's arrays of these sizes in its heap
        (heap_release.keep_heap; it does nothing for sizes it kept before). The call
        plan binds through here too (make_plan's `bind`): once per new binding, in
        any thread (two threads that bind the same shapes at once may both ask: the
        second ask is one comparison in keep_heap). The bytes: every array the trace
        makes at once (its non-input variables), held by keep_heap as the threshold
        under which freed arrays stay in the heap, and half what stays there (trimmed
        above twice that): a call's largest array and all of them at once both fit.
        Per call (C: only its outputs are new, its workspace kept) that is more than
        made, never less."""
        binding = self.signature.bind(arrays, key)
        keep_heap(self._heap_bytes(binding.dims))
        return binding

    def _heap_bytes(self, dims: dict) -> int:
        counts = self._arrays
        if counts is None:   # (once: a dict of the few declared shapes; threads make equal ones)
            counts = {}
            for ins in self.trace.instrs:
                if ins.shape != () and ins.op not in ("input", "const"):
                    counts[ins.shape] = counts.get(ins.shape, 0) + 1
            self._arrays = counts
        size = 8 if self.dtype is None else np.dtype(self.dtype).itemsize
        return size * sum(k * math.prod(concrete(shape, dims)) for shape, k in counts.items())

    def _finish(self, binding, arrays) -> list:
        """Run the function on arrays whose shapes `binding` accepted; fit its results."""
        shapes = binding.shapes
        results = self.run(*arrays)
        if not self._planned:  # the results' nesting is known now: the plan can be made
            self._planned = True
            self._plan(results)
        out = []
        for k, r in enumerate(_flat_results(results)):
            shape = shapes[k]
            if shape == ():
                out.append(float(r))
                continue
            if type(r) is not np.ndarray or r.shape != shape or not r.flags.writeable \
                    or (self.may_alias[k] and any(np.may_share_memory(r, a) for a in arrays)) \
                    or (self.dtype is not None and r.dtype != self.dtype):
                r = _fit_one(self.trace.outputs[k][0], r, shape, arrays, self.dtype)
            out.append(r)
        return out

    def _plan(self, results) -> None:
        def fit(k, r, shape, arrays):
            return _fit_one(self.trace.outputs[k][0], r, shape, arrays)

        def put(out, results):  # out= as the general path fills it (api.Compiled._call_tensor)
            return self._nest(copy_into(_check_out_flat(out), results))
        # a kernel that takes the binding the plan found (C: fn.run_bound) binds no second time
        plan = make_plan(self.signature.inputs, structure(results), self._returns, run=self.run,
                         bound=self._bound, bind=self._new_binding, fit=fit, nest=self._nest,
                         scalar=self.scalar, may_alias=self.may_alias,
                         run_bound=getattr(self.fn, "run_bound", None), general=self.general, put=put)
        if plan is not None:
            self.plan = plan



def _flat_results(results):
    if not isinstance(results, tuple):
        return (results,)
    out = []
    for r in results:
        out.extend(r if isinstance(r, tuple) else (r,))
    return out


def _fit_one(name, r, shape, arrays, dtype=None):
    arr = np.asarray(r, dtype=real(dtype))
    if arr.shape != shape:
        try:
            return np.array(np.broadcast_to(arr, shape))
        except ValueError:
            raise ShapeError(f"output {name!r}: computed shape {arr.shape}, declared "
                             f"{_s.show(shape)}") from None
    return arr.copy() if not arr.flags.writeable or any(np.may_share_memory(arr, a) for a in arrays) \
        else arr


def copy_into(outs: list, results: list, dtype=None) -> list:
    """`out=` for tensor traces: each result copied into the caller's array."""
    if len(outs) != len(results):
        raise ValueError(f"out=: expected {len(results)} arrays (one per result), got {len(outs)}")
    for k, (o, r) in enumerate(zip(outs, results)):
        if dtype is not None:
            check_out_dtype(k, o, dtype)
        if not isinstance(o, np.ndarray) or o.dtype != real(dtype) or o.shape != np.shape(r):
            raise ValueError(f"out= array {k}: expected {real(dtype)} of shape {np.shape(r)}, got "
                             f"{getattr(o, 'dtype', type(o).__name__)} of shape {getattr(o, 'shape', '?')}")
        o[...] = r
    return outs


class TensorPackedCall:
    """`Compiled.at` for tensor traces: the `wrt` tensors flattened (C order) and
    concatenated into one vector x, data inputs by name; results flattened the same
    way — the calling convention of optimizers and SciPy, for any parameter shapes.

        value, grad = g.at(x, X=X, y=y)          grad: (N,), N = total size of wrt
        value, grad, hv = hvp.at(x, v, X=X, y=y)
    """

    def __init__(self, compiled):
        self.c = compiled
        self.kind = compiled.kind
        self.wrt = tuple(compiled.wrt) if compiled.kind != "value" else tuple(compiled.primal.input_names)
        self.signature = compiled.signature
        self.declared = {name: compiled.trace.instrs[v].shape for name, v in compiled.trace.inputs}
        self.seeds = [n for n in compiled.inputs if n.endswith("_dot") and n[:-4] in self.wrt
                      and n not in compiled.primal.input_names]

    def __call__(self, x, seed=None, /, **data):
        unknown = [k for k in data if k not in self.declared or k in self.wrt]
        if unknown:
            raise TypeError(f"at(): unexpected input {unknown[0]!r} (data inputs: "
                            f"{', '.join(n for n in self.declared if n not in self.wrt and '.' not in n)})")
        parts = self.signature.layout(self.wrt, data, np.size(x))
        args = {**data, **split(x, parts, "x")}
        if self.seeds:
            if seed is None:
                raise TypeError("at(): missing the direction v")
            args.update({f"{k}_dot": v for k, v in split(seed, parts, "v").items()})
        if holds_dask((), data):  # Dask data: the point's results from one dask.compute
            import dask

            from .on_dask import flatten, unflatten
            leaves, spec = flatten(self.c(**args))
            result = unflatten(spec, [float(r) if np.ndim(r) == 0 else np.asarray(r, dtype=float)
                                      for r in dask.compute(*leaves)])
        else:
            result = self.c(**args)
        if self.kind == "value":
            return result
        if self.kind == "grad":
            value, grads = result
            return value, flat(grads)
        if self.kind == "hvp":
            value, grads, hv = result
            return value, flat(grads), flat(hv)
        raise TypeError(f"at() on a tensor {self.kind} is not available")
