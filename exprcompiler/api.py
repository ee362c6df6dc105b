"""The Python front door: compile_grad, compile_expr, compile_jvp, compile_vjp.

Each function runs the whole pipeline — front end (text or SymPy -> Trace),
passes (Trace -> Trace), backend (Trace -> source -> function) — and wraps the
generated function in a `Compiled` object (compiled_call.py) that binds arguments
by position or name, checks them, and broadcasts results over a batch of points.
"""

from __future__ import annotations

import os
from typing import Optional

from . import passes
from .backends import numpy_backend
from .backends.registry import BACKENDS
from .frontend import to_trace
from .compiled_call import Compiled
from .dtypes import resolve as resolve_dtype
from .recipe import reproducible
from .shape_binding import is_tensor_trace
from .signature import Signature
from .stack_room import fresh_chunk
from .stability import DEFAULT_STABLE, stabilized
from .trace.ir import Instr, Trace, _new_tuple

BLOCK = numpy_backend.BLOCK  # points per block when the NumPy backend runs a large batch
MODES = ("reverse", "forward")




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
