"""The Python front door: compile_grad, compile_expr, compile_jvp, compile_vjp.

Each function runs the whole pipeline — front end (text or SymPy -> Trace),
passes (Trace -> Trace), backend (Trace -> source -> function) — and wraps the
generated function in a `Compiled` object that binds arguments by position or
name, checks them, and broadcasts results over a batch of points.
"""

from __future__ import annotations

import math
import os
from types import FunctionType
from typing import Optional

import numpy as np

from . import passes
from .backends import numpy_backend
from .backends.program_text import text_of
from .backends.registry import BACKENDS, Kernel
from .frontend import to_trace
from .call_args import _MISSING, _all_floats, _as_array, _check_out, _check_out_flat, _fit, _numbers, \
    batch_shape, keep_outputs, quiet
from .call_plan import batch_plan, point_plan
from .compiled import CompiledFunction, holds_dask
from .dtypes import real, resolve as resolve_dtype
from .recipe import reproducible
from .shape_binding import is_tensor_trace
from .signature import Signature
from .stack_room import fresh_chunk
from .stability import DEFAULT_STABLE, stabilized
from .tensor_call import TensorCall, copy_into
from .trace.ir import Instr, Trace, _new_tuple

BLOCK = numpy_backend.BLOCK  # points per block when the NumPy backend runs a large batch
MODES = ("reverse", "forward")


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
                        self._plan_direct()
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
                results = [_fit(r, batch, self._dtype) for r in flat]
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
        self._plan_direct()

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

    def _plan_direct(self) -> None:
        """NumPy's variant (_direct) as the call with floats in one frame, by position or
        name (call_plan.py): the object's class from then on; with the plan of arrays
        where there is one (_replan)."""
        self._replan()

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


def max_threads() -> int:
    """The most threads= may ask for. A kernel asks OpenMP for exactly that many
    threads at each call, and an OpenMP runtime that cannot start them ends the
    process (libgomp: "Thread creation failed", exit status 1) or crashes; more
    threads than cores only wait for one another. So a count far above the cores is
    refused when the function is compiled."""
    return max(64, 4 * (os.cpu_count() or 1))


def _check_backend(backend: str, threads: Optional[int] = None) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (available: {', '.join(BACKENDS)})")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        if threads > max_threads():
            raise ValueError(f"threads={threads} is more than this machine can use: at most {max_threads()} "
                             f"(4 per core of its {os.cpu_count() or 1} cores, and at least 64)")
        if backend not in ("c", "vm"):
            raise ValueError("threads= applies to backend=\"c\" and \"vm\" (the NumPy backend runs on one thread)")


def resolve_wrt(trace: Trace, wrt) -> list[str]:
    """The names to differentiate with respect to: all inputs by default; a list or a
    comma-separated string otherwise. A name the expression does not use is kept (its
    derivative is zero; see `with_wrt`), as JAX, CasADi and SymPy do: the Jacobian of
    a pendulum's forcing with respect to every state, some of which it never reads."""
    names = list(trace.input_names)
    if wrt is None:
        return names
    if isinstance(wrt, str):
        wrt = [w.strip() for w in wrt.split(",") if w.strip()]
    out = []
    for w in wrt:
        if getattr(w, "is_Symbol", False):  # a SymPy symbol stands for its name
            w = w.name
        if not isinstance(w, str) or not w:
            raise ValueError(f"wrt: expected variable names, got {w!r}")
        if w in out:
            raise ValueError(f"wrt: {w!r} listed twice")
        out.append(w)
    return out


def with_wrt(trace: Trace, wrt) -> tuple[Trace, list[str]]:
    """(the trace with an input for every `wrt` name it does not use, the names): such
    an input is a scalar that no operation reads, so every derivative with respect to
    it is a structural zero."""
    wrt = resolve_wrt(trace, wrt)
    names = set(trace.input_names)
    absent = [w for w in wrt if w not in names]
    if not absent:
        return trace, wrt
    k = len(trace.inputs)
    if all(v == i for i, (_, v) in enumerate(trace.inputs)):
        # Inputs first, as Builder.finish puts them: the new inputs go after them and
        # every later variable moves up by as many. The same trace as the replay below
        # makes, without a builder (0.3 of the 3-link pendulum's 10 ms NumPy build;
        # the derivative passes replay the trace anyway)
        shift = len(absent)
        instrs = [*trace.instrs[:k], *(_new_tuple(Instr, ("input", (), (("name", name),), ())) for name in absent)]
        instrs += [ins if not ins.args else
                   _new_tuple(Instr, (ins.op, tuple([a + shift if a >= k else a for a in ins.args]),
                                      ins.attrs, ins.shape))
                   for ins in trace.instrs[k:]]
        return Trace(instrs, [*trace.labels[:k], *[None] * shift, *trace.labels[k:]],
                     [(name, v + shift if v >= k else v) for name, v in trace.outputs], trace.source,
                     _inputs=(*trace.inputs, *((name, k + j) for j, name in enumerate(absent)))), wrt
    from .passes.replay import replay
    from .trace.ir import Builder
    b = Builder()
    vmap = replay(b, trace)
    for name in absent:
        b.input(name)
    return b.finish([(name, vmap[v]) for name, v in trace.outputs],
                    input_order=list(trace.input_names) + absent, source=trace.source), wrt


def describe(what: str, trace: Trace) -> str:
    """The one-line description generated code carries in its header."""
    return f"{what} of: {trace.source}" if trace.source else what


def _single_output(trace: Trace, what: str) -> None:
    from .passes.replay import scalar_output
    scalar_output(trace, what)


def _build(kind: str, primal: Trace, trace: Trace, *, backend: str, wrt=(), mode: str = "",
           func_name: str, what: str, returns=None, threads: Optional[int] = None,
           layout=None, rewrites=(), dtype=None, cls=None) -> Compiled:
    """Trace -> backend -> Compiled: the one place where a backend is chosen. `dtype`:
    None (float64) or what dtypes.resolve made of the user's dtype=. `cls`: a subclass
    of Compiled for the kernels its `fits(kernel, signature, dtype)` accepts
    (dense_point.PointCompiled); Compiled for the others."""
    chosen = BACKENDS[backend]
    signature = Signature(trace, primal, wrt)
    artifact = chosen.generate(trace, func_name=func_name, description=describe(what, primal),
                               returns=returns, columns=kind in COLUMN_KINDS, dtype=dtype)
    kernel = chosen.load(artifact, signature, threads=threads)
    n_values = 1 if kind == "grad" else len(primal.outputs)
    if cls is None or not cls.fits(kernel, signature, dtype):
        cls = Compiled
    compiled = cls(kernel, signature, kind=kind, primal=primal, n_values=n_values,
                   backend=backend, mode=mode, layout=layout, dtype=dtype)
    compiled.rewrites = tuple(rewrites)  # the stability rewrites applied (stable=True)
    return compiled


KINDS = ("grad", "value", "jvp", "vjp", "hvp", "hessian", "jacobian")
COLUMN_KINDS = ("hessian", "jacobian")  # results (batch..., m, n): the kernel stores by columns


def kind_trace(kind: str, expr, wrt=None, mode: str = "reverse", shapes=None, stable: bool = False,
               rewrites: Optional[list] = None, chosen: Optional[list] = None) -> tuple[Trace, list[str], Trace, str]:
    """(primal trace, wrt names, trace to compile, what it computes): the front end
    and the derivative pass of one kind, shared by compile_* and `exprc grad/export`.
    `stable`: the stability rewrites (exprcompiler.stability) on the primal before the
    sweeps and on their trace after them; the firings go to the list `rewrites`. A
    Jacobian's mode may also be "elimination" or "auto" (jacobians.auto_jacobian
    chooses); the mode used goes to the list `chosen`."""
    if mode not in MODES and (kind, mode) not in (("jacobian", "elimination"), ("jacobian", "auto")):
        raise ValueError(f"unknown mode {mode!r} (use 'reverse' or 'forward')")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    primal = to_trace(expr, shapes)
    if kind == "value":
        return primal, [], stabilized(primal, "primal", stable, rewrites), "value"
    if kind in ("grad", "hvp", "hessian"):
        _single_output(primal, {"grad": "a gradient", "hvp": "a Hessian-vector product",
                                "hessian": "a Hessian"}[kind])
    primal, wrt = with_wrt(primal, wrt)
    source = stabilized(primal, "primal", stable, rewrites)
    if kind == "grad":
        grad = passes.grad_reverse if mode == "reverse" else passes.grad_forward
        trace, what = grad(source, wrt), f"value and gradient ({mode} mode)"
    elif kind == "hvp":
        trace, what = passes.hvp(source, wrt), "value, gradient and Hessian-vector product"
    elif kind == "hessian":
        trace, what = passes.hessian(source, wrt), "value, gradient and Hessian"
    elif kind == "jacobian":
        if mode == "auto":
            from .jacobians import auto_jacobian   # (jacobians imports this module)
            mode, trace = auto_jacobian(source, wrt)
        else:
            trace = passes.jacobian(source, wrt, mode)
        what = f"values and Jacobian ({mode} mode)"
    else:
        trace, what = (passes.jvp if kind == "jvp" else passes.vjp)(source, wrt), kind.upper()
    if chosen is not None:
        chosen.append(mode)
    return primal, wrt, stabilized(trace, "derivative", stable, rewrites), what


@fresh_chunk  # once per call: see stack_room.py
@reproducible
def compile_grad(expr, wrt=None, *, mode: str = "reverse", backend: str = "numpy", threads: Optional[int] = None, shapes=None,
                 stable: bool = DEFAULT_STABLE, dtype=None) -> Compiled:
    """Value and gradient: `g(*args) -> (value, (d/dwrt_1, ...))`.

    `mode="reverse"` is one forward and one reverse sweep; `mode="forward"` is one
    tangent sweep per variable in `wrt` (same numbers, different cost). `stable`: the
    numerical-stability rewrites, listed in `g.rewrites` (see exprcompiler.stability).
    `dtype`: "float64" (the default) or "float32" (every compile_*: see dtypes.py)."""
    _check_backend(backend, threads)
    dtype = resolve_dtype(dtype)
    if mode == "forward":
        primal = to_trace(expr, shapes)
        if is_tensor_trace(primal):  # one sweep per element: run at call time
            _single_output(primal, "a gradient")
            primal, wrt = with_wrt(primal, wrt)
            firings: list = []
            from .tensor_jacobians import TensorForwardGradient   # (its only use: not imported with the package)
            return TensorForwardGradient(stabilized(primal, "primal", stable, firings), wrt, backend=backend,
                                         threads=threads, sweeps=sweeps_of(dtype), dtype=dtype, stable=stable,
                                         rewrites=firings)
        expr, shapes = primal, None
    rewrites: list = []
    primal, wrt, trace, what = kind_trace("grad", expr, wrt, mode, shapes=shapes, stable=stable, rewrites=rewrites)
    return _build("grad", primal, trace, backend=backend, wrt=wrt, mode=mode,
                  func_name="f_grad", what=what,
                  returns=(0, tuple(range(1, 1 + len(wrt)))), threads=threads, rewrites=rewrites, dtype=dtype)


@fresh_chunk  # once per call: see stack_room.py
@reproducible
def compile_expr(expr, *, backend: str = "numpy", threads: Optional[int] = None, shapes=None,
                 stable: bool = DEFAULT_STABLE, dtype=None) -> Compiled:
    """The value alone: `f(*args) -> value` (a tuple for several outputs)."""
    _check_backend(backend, threads)
    dtype = resolve_dtype(dtype)
    rewrites: list = []
    primal, _, trace, what = kind_trace("value", expr, shapes=shapes, stable=stable, rewrites=rewrites)
    return _build("value", primal, trace, backend=backend, func_name="f", what=what, threads=threads,
                  rewrites=rewrites, dtype=dtype)


@fresh_chunk  # once per call: see stack_room.py
@reproducible
def compile_jvp(expr, wrt=None, *, backend: str = "numpy", threads: Optional[int] = None, shapes=None,
                stable: bool = DEFAULT_STABLE, dtype=None) -> Compiled:
    """Forward mode: `f(*args, *tangents) -> (value, J·tangent)`; tangent arguments
    are named `x_dot` for each x in `wrt`."""
    _check_backend(backend, threads)
    dtype = resolve_dtype(dtype)
    rewrites: list = []
    primal, wrt, trace, what = kind_trace("jvp", expr, wrt, shapes=shapes, stable=stable, rewrites=rewrites)
    return _build("jvp", primal, trace, backend=backend, wrt=wrt,
                  mode="forward", func_name="f_jvp", what=what, threads=threads, rewrites=rewrites, dtype=dtype)


@fresh_chunk  # once per call: see stack_room.py
@reproducible
def compile_vjp(expr, wrt=None, *, backend: str = "numpy", threads: Optional[int] = None, shapes=None,
                stable: bool = DEFAULT_STABLE, dtype=None) -> Compiled:
    """Reverse mode: `f(*args, *cotangents) -> (value, (uᵀJ)_x for x in wrt)`;
    cotangent arguments are named `y_bar` for each output y."""
    _check_backend(backend, threads)
    dtype = resolve_dtype(dtype)
    rewrites: list = []
    primal, wrt, trace, what = kind_trace("vjp", expr, wrt, shapes=shapes, stable=stable, rewrites=rewrites)
    n = len(primal.outputs)
    return _build("vjp", primal, trace, backend=backend, wrt=wrt,
                  mode="reverse", func_name="f_vjp", what=what,
                  returns=(tuple(range(n)), tuple(range(n, n + len(wrt)))), threads=threads, rewrites=rewrites,
                  dtype=dtype)


SWEEPS = {"forward": compile_jvp, "reverse": compile_vjp}  # what call-time Jacobians run


def sweeps_of(dtype) -> dict:
    """SWEEPS compiling in `dtype` (None: float64, SWEEPS itself)."""
    if dtype is None:
        return SWEEPS
    import functools
    return {mode: functools.partial(make, dtype=dtype) for mode, make in SWEEPS.items()}
