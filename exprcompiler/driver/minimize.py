"""`minimize(f, x0, method=..., **options)`: the loop every method runs in.

Part of the driver (see driver/__init__.py). A method (driver/first_order.py,
driver/second_order.py) only computes the next iterate; this module owns what is the
same for all of them, so every method stops, diverges and reports alike:

- stopping rules, checked after each iteration in this order: a non-finite f or
  gradient (divergence: the run ends with "diverged at iteration k (step too
  large?)" and x is the last finite iterate), ‖∇f‖₂ <= gtol, a relative improvement
  |f_{k−1} − f_k| <= ftol·max(1, |f_k|), then the maxiter and maxfev limits;
- the per-iteration history, the progress bar, the timing, and the Result.
"""

from __future__ import annotations

import time
from typing import Mapping, Optional

import numpy as np

from . import progress
from .first_order import Adam, Coordinate, GradientDescent, Momentum, Nesterov, RMSProp, Subgradient
from .objective import Objective
from .options import resolve
from .result import History, Result, Stop, finite, norm
from .second_order import LBFGS, Newton, NewtonCG

# the registry, written out (no import-time side effects): name -> Method class
METHODS = {cls.name: cls for cls in (GradientDescent, Subgradient, Momentum, Nesterov, RMSProp,
                                     Adam, Coordinate, Newton, NewtonCG, LBFGS)}
DEFAULT_METHOD = "lbfgs"


def method_class(name: str):
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r} (methods: {', '.join(METHODS)})") from None


def minimize(f, x0, method: str = DEFAULT_METHOD, *, wrt=None, data: Optional[Mapping] = None,
             backend: Optional[str] = None, shapes=None, **options) -> Result:
    """Minimize the scalar function `f` from `x0`.

    `f`: an expression (text, SymPy, a Trace) or a compiled function (compile_grad,
    compile_hvp, compile_hessian; reused when it is the kernel the method needs).
    `x0`: a mapping name -> number, or numbers in `wrt` order. `wrt`: the variables
    (default: the names in a mapping x0, else every input not in `data`). `data`:
    the other inputs, fixed by name (for a function of tensors, Dask arrays chunked
    along the rows work too: each evaluation is then one dask.compute). `backend`:
    "numpy" or "c" (default: the compiled object's, else "numpy"). `shapes`:
    declared tensor inputs, as in compile_grad; then x0 maps names to arrays, and
    the result's `x` is the packed vector (`result.x_named` gives the arrays back
    by name).

    `method`: one of METHODS (see `describe_methods()`); `options`: that method's
    own (lr, beta, linesearch, ...) and every method's: maxiter, maxfev, gtol, ftol,
    quiet. Raises ValueError for an unknown method or option and for a start where f
    or its gradient is not finite; a run that diverges returns with converged=False.
    """
    cls = method_class(method)
    own, common = resolve(cls.name, cls.options, options)
    obj = Objective(f, x0=x0, wrt=wrt, data=data, backend=backend, needs=cls.needs, shapes=shapes)
    x = obj.pack(x0)
    started = time.perf_counter()
    fx, gx = obj.value_grad(x)
    if not finite(fx, gx):
        raise ValueError(f"f or its gradient is not finite at x0 (f = {fx}, gradient = {gx})")
    runner = cls(obj, own)
    bar = progress.bar(common["maxiter"], quiet=common["quiet"], desc=cls.name)
    # norms of huge but finite iterates overflow on the way to a divergence; that is
    # reported once, as a divergence, not as NumPy warnings
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            x, fx, gx, k, converged, message, history = _loop(runner, obj, x, fx, gx, common, bar)
        finally:
            bar.close()
    return Result(x=x.copy(), f=float(fx), grad=np.array(gx, dtype=float), iterations=k,
                  evaluations=obj.evaluations, converged=converged, message=message,
                  method=cls.name, wrt=tuple(obj.wrt), history=history,
                  hessian_evaluations=obj.hessian_evaluations,
                  time=time.perf_counter() - started, backend=obj.backend, data=dict(obj.data),
                  options={**own, **common}, function=obj.primal,
                  layout=tuple(obj.layout) if obj.tensor else None)


def _loop(runner, obj, x, fx, gx, common: dict, bar):
    """Steps until a stopping rule holds: (x, f, ∇f, iterations, converged, message, history)."""
    history = History()
    gnorm = float(norm(gx))
    history.add(x, fx, gnorm, 0.0)
    best = (fx, x, gx, 0)
    k, converged, message = 0, False, ""
    if gnorm <= common["gtol"]:
        converged, message = True, f"converged: ‖∇f‖ = {gnorm:.3g} <= gtol at x0"
    while not converged:
        if k >= common["maxiter"]:
            message = f"stopped: reached maxiter = {common['maxiter']} iterations"
            break
        if common["maxfev"] is not None and obj.evaluations >= common["maxfev"]:
            message = f"stopped: reached maxfev = {common['maxfev']} evaluations"
            break
        try:
            x_new, f_new, g_new = runner.step(k + 1, x, fx, gx)
        except Stop as stop:
            converged, message = stop.converged, str(stop)
            break
        if not finite(f_new, g_new):  # the step is not taken: x stays the last finite iterate
            message = (f"diverged at iteration {k + 1} (step too large?): f = {f_new}"
                       + ("" if np.isfinite(g_new).all() else ", and the gradient is not finite"))
            break
        k += 1
        step = float(norm(x_new - x))
        f_prev, (x, fx, gx) = fx, (x_new, f_new, g_new)
        gnorm = float(norm(gx))
        history.add(x, fx, gnorm, step)
        bar.update(k, fx)
        if runner.keep_best and fx < best[0]:
            best = (fx, x, gx, k)
        if gnorm <= common["gtol"]:
            converged, message = True, f"converged: ‖∇f‖ = {gnorm:.3g} <= gtol = {common['gtol']:g}"
            break
        change = abs(f_prev - fx) / max(1.0, abs(fx))
        if common["ftol"] > 0 and change <= common["ftol"]:
            converged, message = True, f"converged: relative improvement {change:.3g} <= ftol = {common['ftol']:g}"
    if runner.keep_best and best[0] < fx:
        fx, x, gx = best[0], best[1], best[2]
        message += f" (returning the best iterate, from iteration {best[3]})"
    return x, fx, gx, k, converged, message, history


def describe_methods() -> str:
    """Every method with its one-line summary and its options (for help texts)."""
    from .options import COMMON, describe
    lines = [f"{name}: {cls.summary}" + (f" [{describe(cls.options)}]" if cls.options else "")
             for name, cls in METHODS.items()]
    return "\n".join(lines + [f"every method: {describe(COMMON)}"])
