"""Errors of compiled formulas against mpmath, for the stability catalogue.

Where it sits: between catalogue.py (formulas and ranges) and its users, the bench
script exprcompiler/bench/stability.py and tests/test_stability*.py. The exact value
and gradient of an entry are its own formula, converted to SymPy (trace.to_sympy),
differentiated there and evaluated by mpmath: first at 50 digits, then at twice as
many until two precisions agree to 25 digits (1 - erf(26) needs about 300); a vector
entry's formula is first written out over its elements (`_elements`). Errors
are relative, counted where the exact result is a normal float (or exactly 0, where
anything but 0 counts as an infinite error); elsewhere the point is skipped.
"""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import sympy

from .. import runtime
from ..frontend import to_trace
from ..ops import OPS
from ..trace.to_sympy import sympy_form, sympy_number, to_sympy

TINY, HUGE = 2.2250738585072014e-308, 1.7976931348623157e308
_PRECISIONS = (50, 100, 200, 400, 800, 1600)


def points(entry, n: int = 200, seed: int = 0) -> dict:
    """n points of each input, in the trace's input order, from the entry's ranges
    (an (n, k) array for a vector input)."""
    rng = np.random.default_rng(seed)
    names = to_trace(entry.expr, entry.shape_map).input_names
    return {name: np.asarray(entry.ranges[name](rng, n), dtype=np.float64) for name in names}


def compile_entry(entry, backend: str = "numpy", stable: bool = False, **options):
    """compile_grad of the entry's formula (its vector inputs declared)."""
    from .. import compile_grad   # the API imports this package
    return compile_grad(entry.expr, shapes=entry.shape_map, backend=backend, stable=stable, **options)


def _agree(a, b) -> bool:
    if mpmath.isnan(a) or mpmath.isnan(b):
        return mpmath.isnan(a) and mpmath.isnan(b)
    if a == b:
        return a != 0
    return b != 0 and abs(a - b) <= mpmath.mpf(10) ** -25 * abs(b)


def _evaluate(f, args):
    try:
        v = f(*args)
    except (ZeroDivisionError, ValueError, OverflowError):
        return mpmath.nan
    if isinstance(v, mpmath.mpc) or getattr(v, "is_real", True) is False:
        return mpmath.nan if mpmath.im(v) != 0 else mpmath.re(v)
    return mpmath.mpf(v)


def exact(f, args: list):
    """f at these float64 arguments, to 25 agreeing digits (NaN where undefined)."""
    previous = None
    for dps in _PRECISIONS:
        with mpmath.workdps(dps):
            v = _evaluate(f, [mpmath.mpf(float(a)) for a in args])
        if previous is not None and _agree(previous, v):
            return v
        previous = v
    return previous


def _elements(trace):
    """(SymPy form of the one output, [its scalar symbols]) of a trace over vectors (the
    vector catalogue entries; to_sympy takes scalar traces only): each vector input is a
    NumPy array of Symbols a_0, a_1, ..., each elementwise op applied to them by its
    op-table SymPy form, sums and indexing by NumPy on those arrays."""
    values, symbols = [], []
    for ins in trace.instrs:
        args = [values[a] for a in ins.args]
        attrs = dict(ins.attrs)
        if ins.op == "input":
            names = [ins.name] if ins.shape == () else [f"{ins.name}_{k}" for k in range(math.prod(ins.shape))]
            syms = [sympy.Symbol(n, real=True) for n in names]
            symbols += syms
            values.append(syms[0] if ins.shape == () else np.array(syms, dtype=object).reshape(ins.shape))
        elif ins.op == "const":
            values.append(sympy_number(ins.value))
        elif ins.op == "sum":
            values.append(np.sum(np.asarray(args[0], dtype=object), axis=attrs.get("axis"),
                                 keepdims=bool(attrs.get("keepdims"))))
        elif ins.op == "softmax":   # exp(x)/sum(exp(x)) along its axis, as the catalogue's users write it
            e = np.frompyfunc(sympy.exp, 1, 1)(np.asarray(args[0], dtype=object))
            values.append(e / np.sum(e, axis=attrs["axis"], keepdims=True))
        elif ins.op == "log_softmax":   # x - log(sum(exp(x))) along its axis (exact in mpmath)
            x = np.asarray(args[0], dtype=object)
            values.append(x - np.frompyfunc(sympy.log, 1, 1)(
                np.sum(np.frompyfunc(sympy.exp, 1, 1)(x), axis=attrs["axis"], keepdims=True)))
        elif ins.op == "logsumexp":   # log(sum(exp(x))) over its axes (the naive forms of x - logsumexp(x))
            total = np.sum(np.frompyfunc(sympy.exp, 1, 1)(np.asarray(args[0], dtype=object)),
                           axis=attrs.get("axis"), keepdims=bool(attrs.get("keepdims")))
            values.append(np.frompyfunc(sympy.log, 1, 1)(total))
        elif ins.op == "index":
            values.append(runtime.index(args[0], attrs["key"]))
        elif ins.op == "copy":
            values.append(args[0])
        elif not OPS[ins.op].across:
            values.append(np.frompyfunc(sympy_form(ins.op), len(args), 1)(*args))
        else:
            raise ValueError(f"the catalogue's references do not know {ins.op!r} over vectors")
    out = values[trace.outputs[0][1]]
    return (out.item() if isinstance(out, np.ndarray) else out), symbols


@functools.lru_cache(maxsize=None)
def _functions(expr: str, shapes: tuple = ()):
    """(value, [gradient components]) as mpmath callables of the inputs' scalars, in order."""
    trace = to_trace(expr, dict(shapes) or None)
    e, symbols = _elements(trace) if shapes else (to_sympy(trace)[0], None)
    symbols = symbols or [sympy.Symbol(n, real=True) for n in trace.input_names]
    value = sympy.lambdify(symbols, e, modules="mpmath")
    return value, [sympy.lambdify(symbols, _diff(e, s), modules="mpmath") for s in symbols]


def _diff(e, *wrt):
    """sympy.diff without DiracDelta terms (|x|'' and sign(x)' = 2·DiracDelta(x), as in
    cbrt's sign(x)·|x|^(1/3)): 0 away from the kink, where the points are."""
    d = sympy.diff(e, *wrt)
    return d.replace(lambda t: isinstance(t, sympy.DiracDelta), lambda t: sympy.S.Zero)


def _rows(pts: dict) -> list:
    """Per point, the inputs' scalars in order (a vector input's elements in turn)."""
    columns = list(pts.values())
    return [[float(t) for c in columns for t in np.ravel(c[k])] for k in range(len(columns[0]))]


def references(entry, pts: dict) -> tuple[list, list]:
    """(exact values, [exact gradient component per input scalar]) at the points."""
    value, grads = _functions(entry.expr, entry.shapes)
    if entry.exact is not None:
        value = functools.partial(entry.exact, mpmath)
    rows = _rows(pts)
    return [exact(value, r) for r in rows], [[exact(g, r) for r in rows] for g in grads]


@functools.lru_cache(maxsize=None)
def _second(expr: str):
    """The Hessian's entries as mpmath callables, [i][j] = d²f/dx_i dx_j."""
    trace = to_trace(expr)
    e, = to_sympy(trace)
    symbols = [sympy.Symbol(n, real=True) for n in trace.input_names]
    return [[sympy.lambdify(symbols, _diff(e, a, b), modules="mpmath") for b in symbols] for a in symbols]


def conditions(entry, pts: dict) -> tuple[list, list]:
    """Relative condition numbers at the points: of the value, Σ|x_j ∂f/∂x_j| / |f|,
    and of each gradient component, Σ|x_j ∂²f/∂x_i∂x_j| / |∂f/∂x_i|. An evaluation
    that is backward stable (exact for inputs perturbed by a few ulps) has errors of
    about κ·1.1e-16; near a zero of the result κ is large and so is every method's
    error (used to judge "worse" fairly there)."""
    if entry.shapes:
        raise ValueError(f"{entry.name}: condition numbers are for scalar entries")
    (values, grads), hess = references(entry, pts), _second(entry.expr)
    columns = list(pts.values())
    n = len(columns[0])
    rows = [[c[k] for c in columns] for k in range(n)]

    def kappa(num, den):
        if mpmath.isnan(den) or den == 0 or any(mpmath.isnan(t) or mpmath.isinf(t) for t in num):
            return math.inf
        return float(sum(abs(t) for t in num) / abs(den))

    v_cond = [kappa([rows[k][j] * grads[j][k] for j in range(len(columns))], values[k]) for k in range(n)]
    g_cond = [[kappa([rows[k][j] * exact(hess[i][j], rows[k]) for j in range(len(columns))], grads[i][k])
               for k in range(n)] for i in range(len(columns))]
    return v_cond, g_cond


def relative_errors(got, want: list) -> np.ndarray:
    """|got - want| / |want| per point; NaN (skipped) where want is not a normal float or 0."""
    got = np.broadcast_to(np.asarray(got, dtype=np.float64), (len(want),))
    out = np.full(len(want), np.nan)
    for k, (g, w) in enumerate(zip(got, want)):
        if mpmath.isnan(w) or mpmath.isinf(w):
            continue
        if w == 0:
            out[k] = 0.0 if g == 0 else math.inf
        elif TINY <= abs(w) <= HUGE:
            out[k] = math.inf if not math.isfinite(g) else float(abs(mpmath.mpf(float(g)) - w) / abs(w))
    return out


def errors(g, pts: dict, refs) -> tuple[np.ndarray, np.ndarray]:
    """(value errors, gradient errors: the worst component per point) of a compiled
    gradient `g` at the points."""
    with np.errstate(all="ignore"):
        value, grad = _evaluate_points(g, pts)
    values, grads = refs
    v = relative_errors(value, values)
    per = [relative_errors(gc, want) for gc, want in zip(grad, grads)]
    with np.errstate(all="ignore"):
        worst = np.full(len(values), np.nan)
        for e in per:
            worst = np.fmax(worst, e)
    return v, worst


def _evaluate_points(g, pts: dict):
    """(values, [gradient component per input scalar]) of `g` at the points: in one call
    on scalar inputs, one call per point on vectors (a tensor kernel takes one)."""
    columns = list(pts.values())
    if all(c.ndim == 1 for c in columns):
        return g(*columns)
    values, grads = [], []
    for k in range(len(columns[0])):
        v, grad = g(*[c[k] for c in columns])
        values.append(float(v))
        grads.append(np.concatenate([np.ravel(d) for d in grad]))
    return np.array(values), list(np.array(grads).T)


def worst(errs: np.ndarray) -> float:
    """The largest error counted (NaN when no point counts)."""
    counted = errs[~np.isnan(errs)]
    return float(np.max(counted)) if counted.size else math.nan


__all__ = ["points", "compile_entry", "references", "conditions", "relative_errors", "errors", "worst", "exact"]
