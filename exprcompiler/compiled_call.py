"""The compiled function's call layer: `Compiled` binds a call's arguments by position
or by name, checks them, runs the kernel over a batch of points and shapes its
results; from a call of numbers or of float64 arrays on, a per-object call plan
(call_plan.py) made into the object's own __call__ (_planned) runs it instead.
api.py makes these objects at the end of the pipeline."""

from __future__ import annotations

import math
from types import FunctionType

import numpy as np

from .backends.program_text import text_of
from .backends.registry import Kernel
from .call_args import _MISSING, _all_floats, _as_array, _check_out, _check_out_flat, _fit, _numbers, \
    batch_shape, keep_outputs, own, quiet
from .call_plan import batch_plan, point_plan
from .compiled import CompiledFunction, holds_dask
from .dtypes import real
from .trace.finish import let_go
from .signature import Signature
from .tensor_call import TensorCall, copy_into
from .trace.ir import Trace


class Compiled(CompiledFunction):
    """A compiled function. Call it with arguments in `inputs` order or by name.

    Attributes: `inputs` (argument names), `wrt` (differentiation variables),
    `trace` (the compiled trace, printable), `primal` (the function's own trace),
    `source` (the generated code), `kind` ("value", "grad", "jvp" or "vjp"),
    `rewrites` (the stability rewrites applied: exprcompiler.stability.Firing)."""

    rewrites: tuple = ()
    _calls_with_numbers = 0
    # the last batch shape whose outputs were kept in the heap, and the most points kept
    # for (call_args.keep_outputs): set on the object at its first call of a new shape
    _kept_batch, _kept_points = None, 0
    _direct_checks = False  # _direct itself returns NotImplemented for what is not n numbers
    _array_calls = 0  # calls with arrays that _plan_batch took (the plan: at the second)
    _as_array = staticmethod(_as_array)  # float32 functions: their own (dtypes.as_array)

    def __init__(self, kernel: Kernel, signature: Signature, *, kind: str, primal: Trace,
                 n_values: int, backend: str, mode: str = "", layout=None, dtype=None):
        fn, params = kernel.fn, kernel.params
        self._dtype = dtype  # None: float64 (see dtypes.py)
        if dtype is not None:
            from .dtypes import as_array
            self._as_array = lambda name, value: as_array(name, value, dtype)
        trace = signature.trace
        self.signature = signature  # names, declared shapes, the binding of a call, packing
        self._fn = fn
        self._run_packed = kernel.packed  # run(in, out) for one point, packed (see packed.py)
        self._packed = None
        self._at = None  # what at() runs: the packed call, or the entry it makes
        # The arrays a call returns: one per suffix, of shape batch + suffix, filled by
        # consecutive trace outputs in C order (a Jacobian: (m,) then (m, n)), and
        # `nest`, which shapes their list into the result. Default: one array per output.
        suffixes, nest = layout or (((),) * len(trace.outputs), self._shape_results)
        self._suffixes, self._nest = tuple(suffixes), nest
        self._plain = all(sfx == () for sfx in self._suffixes)
        # run(arrays, batch, blocks=None): see backends/registry.py (tensor traces: None);
        # a run that may raise NumPy's warnings (NumPy's) runs with them off, IEEE results
        # (inf, nan) returned (call_args.quiet: ~0.5 µs less than np.errstate a call)
        self._run = kernel.run
        self._quiet_run = quiet(kernel.run) if kernel.run is not None and getattr(kernel.run, "warns", True) \
            else kernel.run
        self.kind = kind
        self.trace = trace
        self.primal = primal
        for kept in (trace, primal):   # (held for display: a front end's builder tables go)
            let_go(kept)
        self._text = kernel.text  # a str, or NumPy's LazySource: see `source`
        self.wrt = signature.wrt
        self.backend = backend
        self.mode = mode
        self._n_values = n_values
        self.tensor = signature.tensor  # exact shapes, no batch of points
        self._tensor_call = None
        # run(floats) -> floats: a call whose every argument is one number skips arrays
        self._point = kernel.point
        # f(*floats) -> the call's result, nested: NumPy's one-point variant (math module
        # only), made at the first call with numbers; False where there is none
        self._direct = None if kernel.point is not None and layout is None else False
        self.inputs = signature.inputs
        self._index = {name: k for k, name in enumerate(self.inputs)}
        for k, p in enumerate(params):  # the generated (mangled) names work too
            self._index.setdefault(p, k)
        # The call plan of arrays (_plan_batch): what the runner gives it, where it has
        # one (float64, no layout, this class's general path); the shapes seen, at most
        # _SEEN tuples (a plan reads this dict: made once)
        self._batch_entry = getattr(kernel.run, "plan", None) \
            if dtype is None and self._plain and type(self).__call__ is Compiled.__call__ else None
        self._plans_batches = self._batch_entry is not None
        self._seen = {} if self._plans_batches else None
        self._default_nest = layout is None
        if self.tensor:
            self._tensor_call = TensorCall(signature, fn, kernel.warns, nest=self._nest,
                                           returns=None if layout else self._returns(), dtype=dtype,
                                           general=type(self).__call__)

    @property
    def source(self) -> str:
        """The generated code (a long NumPy function's made at the first call: see
        backends/program_text.py)."""
        return text_of(self._text)

    def at(self, x, seed=None, /, **data):
        """One point with the `wrt` variables packed in the vector `x` (and the
        direction or cotangents in `seed`, other inputs by name): results as arrays
        (gradient (n,), Hessian (n, n), Jacobian (m, n)). See exprcompiler.packed."""
        entry = self._at
        if entry is None:
            if self.tensor:
                from .tensor_call import TensorPackedCall
                self._packed = TensorPackedCall(self)
                entry = self._packed
            else:
                from .packed import PackedCall, numpy_packed
                if self._run_packed is None and self._direct is None:
                    self._learn_direct()  # NumPy's one-point variant: what at() runs too
                self._packed = PackedCall(self, self._run_packed or numpy_packed(self._point))
                # the optimizer's call with nothing in between (see PackedCall.entry)
                entry = self._packed.entry(None if self._direct_checks else self._direct)
                self.at = entry  # g.at looked up later goes straight to it (same arguments)
            self._at = entry
        return entry(x, seed, **data) if data else entry(x, seed)  # `g.at` taken before: one frame more

    @property
    def function(self):
        """The generated function itself, arguments positional in `inputs` order: no
        conversion, shape check or result fitting (for benchmarks of the bare code)."""
        return self._fn

    def _bind(self, args, kwargs) -> list:
        if not kwargs and len(args) == len(self.inputs):  # all in order: nothing to match
            return [self._as_array(name, a) for name, a in zip(self.inputs, args)]
        if not args and len(kwargs) == len(self.inputs):  # all by name: the optimizer's call
            try:
                return [self._as_array(name, kwargs[name]) for name in self.inputs]
            except KeyError:
                pass  # a mangled name or a mistake: the general path says which
        n = len(self.inputs)
        if len(args) > n:
            raise TypeError(f"expected at most {n} arguments ({', '.join(self.inputs)}), got {len(args)}")
        values: list = list(args) + [_MISSING] * (n - len(args))
        for key, value in kwargs.items():
            k = self._index.get(key)
            if k is None:
                raise TypeError(f"unexpected argument {key!r} (inputs are {', '.join(self.inputs)})")
            if values[k] is not _MISSING:
                raise TypeError(f"argument {key!r} given twice")
            values[k] = value
        missing = [self.inputs[k] for k, v in enumerate(values) if v is _MISSING]
        if missing:
            # (out= is the arrays the results go into: an input named `out` is given by position)
            hint = " (out= names the arrays the results go into: give the input 'out' by position)" \
                if "out" in missing else ""
            raise TypeError(f"missing value for input{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(repr(m) for m in missing)}{hint}")
        return [self._as_array(self.inputs[k], v) for k, v in enumerate(values)]

    def __call__(self, /, *args, out=None, **kwargs):
        """Evaluate at a point or a batch of points. `out=`: arrays to write the
        results into, nested as the result is (for a gradient: `(value, (g_x, g_y))`),
        each of the function's dtype (float64 unless compiled with dtype="float32"),
        C-contiguous, aligned and of the batch's shape; they are returned."""
        if self._point is not None and out is None:  # one point given as numbers: no arrays
            direct = self._direct
            if direct and self._direct_checks:  # C's entry: takes the names, checks the arguments itself
                result = direct(*args, **kwargs)
                if result is not NotImplemented:  # else not every input once, as a number
                    return result
            values = args if not kwargs and _all_floats(args, len(self.inputs)) else \
                _numbers(args, kwargs, self.inputs)
            if values is not None:
                if direct is None and self._nested_first():
                    direct = self._direct
                if direct and not self._direct_checks:
                    if self._calls_with_numbers == 1:  # the call plan: one call never pays for it
                        self._replan()
                    self._calls_with_numbers += 1
                    # NumPy's one-point variant returns the result itself, NumPy's answer
                    # where math refuses (x/0, log(0)): nothing to nest
                    return direct(*values)
                results = self._point(values)
                if direct is None:  # learnt at the second such call: one call never pays for it
                    if self._calls_with_numbers:
                        self._learn_direct()
                    self._calls_with_numbers += 1
                return self._nest(results if self._plain else self._place(results))
        if holds_dask(args, kwargs):
            return self._on_dask(args, kwargs, out)
        arrays = self._bind(args, kwargs)
        if self.tensor:
            return self._call_tensor(arrays, out)
        batch = batch_shape(arrays, self.inputs)
        if out is None:
            if batch != self._kept_batch:   # a new batch shape: its outputs kept in the heap
                self._kept_batch = batch
                self._kept_points = keep_outputs(batch, self._suffixes, self._dtype, self._kept_points)
            if self._plain:  # the backend allocates (NumPy: its own results)
                flat = self._quiet_run(arrays, batch, None)
                results = own([_fit(r, batch, self._dtype) for r in flat], arrays)
                if self._plans_batches:
                    self._plan_batch(arrays, batch)
                return self._nest(results)
        # The arrays returned, in their final layout (batch..., m, n), the caller's or
        # new; the kernel writes each output straight into its column of them.
        shapes = [batch + sfx for sfx in self._suffixes]
        finals = _check_out(out, shapes, arrays, self._dtype) if out is not None else \
            [np.empty(sh, self._dtype) for sh in shapes]
        n = math.prod(batch)
        blocks = [f.reshape(n, math.prod(sfx)) for f, sfx in zip(finals, self._suffixes)]
        self._quiet_run(arrays, batch, blocks)
        return self._nest(finals if out is not None or batch != () else
                          [float(f) if f.ndim == 0 else f for f in finals])

    def _place(self, numbers) -> list:
        """One point's output numbers in the arrays of the layout (floats for scalars)."""
        placed, start = [], 0
        for sfx in self._suffixes:
            size = math.prod(sfx)
            placed.append(float(numbers[start]) if sfx == () else
                          np.array(numbers[start:start + size], dtype=real(self._dtype)).reshape(sfx))
            start += size
        return placed

    def _learn_direct(self) -> None:
        """After the first call with numbers: the one-point variant that returns what
        _shape_results makes of its outputs, where the kernel has one (NumPy's, for
        math and arithmetic; see backends/registry.py; C's, through backends/c_entry.py,
        which checks its arguments itself)."""
        nested = getattr(self._point, "nested", None)
        self._direct = (nested(self._returns()) if nested is not None and self._plain else None) or False
        self._direct_checks = bool(self._direct) and getattr(self._point, "checks_numbers", False)
        self._replan()

    def _nested_first(self) -> bool:
        """At the first call with numbers, NumPy's one-point variant that returns the
        result nested (_learn_direct's), where the trace has one, instead of the
        variant of flat results (registry._MathPoint): each costs a generate and a
        load (~0.4 ms for a small gradient), and the call plan of the second call
        runs the nested one. True if it is now `_direct`."""
        point = self._point
        if getattr(point, "nested", None) is None or getattr(point, "checks_numbers", False) \
                or type(self)._learn_direct is not Compiled._learn_direct:
            return False   # (C's entry, and the layouts' own: learnt at the second call)
        self._direct = (point.nested(self._returns()) if self._plain else None) or False
        return bool(self._direct)

    def _plan_batch(self, arrays, batch) -> None:
        """After a call with arrays (no out=) that the general path ran: its tuple of
        shapes entered in `_seen` with what the runner's plan entry makes of it (the
        batch, the points, the strides: c_run.PlanEntry.entry, numpy_run's), where the
        plan can run such a call as the general path does; at the second such call, the
        plan becomes the object's call (_replan; one call never pays for it). What is
        entered depends on the shapes alone; the plan checks the rest at every call."""
        key = tuple([a.shape for a in arrays])
        seen = self._seen
        entry = seen.get(key, seen)
        if entry is seen:   # (None: shapes the plan hands on, kept so as not to ask again)
            entry = self._batch_entry.entry(arrays, batch)
            if len(seen) >= _SEEN:   # (a loop over ever new shapes: start again)
                seen.clear()
            seen[key] = entry
        if entry is not None and self._array_calls < 2:
            self._array_calls += 1
            if self._array_calls == 2:
                self._replan()

    def _replan(self) -> None:
        """The object's call plan from what it has learnt (call_plan.py), as its class's
        __call__ (_planned, from the class it was made as): the plan of arrays
        (batch_plan) after two calls with arrays, with the one-point call of numbers
        (NumPy's variant, C's entry) where it has one; else NumPy's one-point variant
        alone (point_plan); else no plan. A subclass with its own __call__ keeps it."""
        cls = type(self)
        base = cls.__dict__.get("_unplanned", cls)
        if base.__call__ is not Compiled.__call__:
            return
        direct, plan = self._direct or None, None
        if self._array_calls >= 2:
            entry = self._batch_entry
            plan = batch_plan(self.inputs, self._seen, general=Compiled.__call__, **{entry.kind: entry},
                              numbers=direct, checks_numbers=self._direct_checks,
                              nest_spec=self._returns() if self._default_nest else None, nest=self._nest, fit=_fit)
        if plan is None and direct is not None and not self._direct_checks:
            plan = point_plan(self.inputs, direct, general=Compiled.__call__)
        if plan is not None:
            self.__class__ = _planned(base, plan)

    def _returns(self):
        """How _shape_results nests the outputs, as a `returns` spec of the generated
        code (output positions): the same result built by the generated function."""
        v, n = self._n_values, len(self._suffixes)
        values = 0 if v == 1 else tuple(range(v))
        if self.kind == "value":
            return values
        derivs = tuple(range(v, n))
        return (values, derivs[0]) if self.kind == "jvp" and len(derivs) == 1 else (values, derivs)

    def _call_tensor(self, arrays: list, out):
        tensor_call = self._tensor_call
        results = tensor_call(arrays)
        if tensor_call.plan is not None and type(self).__call__ is tensor_call.general:
            self.__class__ = _planned(type(self), tensor_call.plan)
        if out is not None:
            results = copy_into(_check_out_flat(out), results, self._dtype)
        return self._nest(results)

    def _shape_results(self, results: list):
        v = self._n_values
        values = results[0] if v == 1 else tuple(results[:v])
        if self.kind == "value":
            return values
        derivs = tuple(results[v:])
        if self.kind == "jvp":
            return values, (derivs[0] if len(derivs) == 1 else derivs)
        return values, derivs


def _planned(cls, plan):
    """`cls` with the call plan of one object as its __call__ (the object's own class
    from its first call on): a call then runs the plan's code in its one frame,
    with no method of ours in between (one frame less: ~2.5k instructions of the
    least-squares gradient's ~10k over its bare kernel; see call_plan.py). The plan
    hands every other call to cls.__call__, which stays the general path, as does
    Compiled.__call__(g, ...); pickling goes by the recipe, not the class. A plan that
    is a C function (dense_point's) is no descriptor either, so CPython hands it the
    caller's arguments with no frame of ours; it has no name or signature to set, and
    its object carries its own __signature__."""
    if type(plan) is FunctionType:
        plan.__name__, plan.__qualname__, plan.__doc__ = "__call__", f"{cls.__qualname__}.__call__", cls.__call__.__doc__
        # its signature is the general path's (the plan's own may name the inputs), which
        # inspect finds through __wrapped__ when asked (made here: ~50 µs a plan)
        plan.__wrapped__ = cls.__call__
    return type(cls.__name__, (cls,), {"__call__": plan, "__doc__": cls.__doc__, "__module__": cls.__module__,
                                       "__qualname__": cls.__qualname__, "_unplanned": cls})


_SEEN = 16   # tuples of shapes a plan of arrays knows at once (Compiled._plan_batch)
