"""The `call` suite: what one evaluation costs — one call at one point, value and
gradient — as an optimizer loop, an ODE right-hand side or scipy.optimize pays it.

Two functions: the Griewank function (sin(x1/x2) + x1/x2 − exp(x2)) · (x1/x2 − exp(x2))
(n = 2, at the lecture point (1.5, 0.5)) and the chained Rosenbrock function of
rosenbrock.py in n = 10 variables (at rosenbrock.point(10)).

Rows: hand-written Python with the math module (value and gradient by hand, called
with the n floats: the reference that ratios and agreement are taken to); generated
C and generated NumPy (compile_grad), each through its three entries — `g(*floats)`,
`g(**floats)` and `g.at(x)` with x a float64 array; symengine
`Lambdify([x…], [f, *∇f], backend="llvm", cse=True)` called with x; a CasADi
`Function(x) -> (f, jacobian(f, x))` of SX called with x; and JAX
`jit(value_and_grad(f))` called with x, in a worker pinned to one CPU. The three
peers appear when importable; otherwise their row says why not.

Every row is timed as a caller sees it: from the call to results as Python floats
or NumPy arrays (CasADi's DM results are converted with float() and .full(); JAX's
arrays with float() and np.asarray()). Every competitor runs on one thread: one point
has nothing to share (`--threads` does not apply to this suite).

A call takes microseconds, so each timed sample is a batch: the mean time per call
over as many calls as fill TARGET seconds (the count is fixed at the warm-up, so every
round does the same work). Batches run interleaved, as in every suite.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import compile_grad
from ..backends import c_entry
from ..errors import CompileError
from . import remote, rosenbrock
from .competitors import installed
from .machine import version
from .report import SuiteResult, err, ratio, span, us
from .runner import Batch, Candidate, calls_for, flat_arrays, run_interleaved

TARGET, QUICK_TARGET = 0.02, 0.002      # seconds of calls in one timed batch
REFERENCE = "hand-written Python (math)"
ENTRIES = ("g(*floats)", "g(**floats)", "g.at(x)")
SYMENGINE = "symengine Lambdify(llvm), [f, ∇f]"
CASADI = "CasADi Function(x) -> (f, jacobian)"
JAX = "JAX jit(value_and_grad), x array"
PEERS = (SYMENGINE, CASADI, JAX)
JAX_CPUS = 1


# ---- the two functions, written by hand ----

def griewank_grad(x1: float, x2: float):
    """(sin(a) + d) · d with a = x1/x2, e = exp(x2), d = a − e:
    ∂y/∂a = (cos a + 1) d + s, ∂y/∂e = −(d + s); ∂a/∂x1 = 1/x2, ∂a/∂x2 = −a/x2."""
    a = x1 / x2
    e = math.exp(x2)
    d = a - e
    s = math.sin(a) + d
    ga = (math.cos(a) + 1.0) * d + s
    return s * d, (ga / x2, -ga * a / x2 - (d + s) * e)


def rosenbrock_grad(*x: float):
    """Σ 100 d_i² + (1 − x_i)², d_i = x_{i+1} − x_i², in one loop (see rosenbrock.grad)."""
    y = 0.0
    g = [0.0] * len(x)
    for i in range(len(x) - 1):
        a = x[i]
        d = x[i + 1] - a * a
        b = 1.0 - a
        y += 100.0 * d * d + b * b
        g[i] += -400.0 * a * d - 2.0 * b
        g[i + 1] += 200.0 * d
    return y, tuple(g)


def _griewank(m, xs):
    a = xs[0] / xs[1]
    e = m.exp(xs[1])
    return (m.sin(a) + a - e) * (a - e)


def _rosenbrock_scalars(m, xs):
    y = 0
    for i in range(len(xs) - 1):
        y = y + 100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2
    return y


@dataclass(frozen=True)
class Function:
    name: str
    n: int
    expr: str
    hand: Callable                      # hand(*floats) -> (value, (d1, ..., dn))
    scalars: Callable                   # scalars(m, [x1, ..., xn]): symengine, CasADi
    vector: Callable                    # vector(m, x): JAX, on one array
    point: Callable[[], np.ndarray]     # the point every row is called at


FUNCTIONS = (
    Function("griewank", 2, "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))",
             griewank_grad, _griewank, _griewank, lambda: np.array([1.5, 0.5])),
    Function("rosenbrock", 10, rosenbrock.program(10), rosenbrock_grad, _rosenbrock_scalars,
             rosenbrock.formula, lambda: rosenbrock.point(10)[0]),
)


def joined(result) -> list:
    """Any row's result — (y, (g1, …)), (y, g), [y, g1, …] — as one vector [y, g1, …, gn],
    so every entry is checked against the reference the same way."""
    return [np.concatenate([np.ravel(a) for a in flat_arrays(result)])]


class KeywordBatch(Batch):
    """A Batch of `fn(**kwargs)` calls (the calibration as Batch's: the first batch sets
    `calls` so that one batch lasts about `target` seconds)."""

    def __init__(self, fn: Callable, kwargs: dict, target: float):
        super().__init__(fn, (), target)
        self.kwargs = kwargs

    def __call__(self) -> float:
        fn, kwargs = self.fn, self.kwargs
        if not self.calls:
            self.calls = calls_for(lambda: fn(**kwargs), self.target)
        t0 = time.perf_counter()
        for _ in range(self.calls):
            fn(**kwargs)
        return (time.perf_counter() - t0) / self.calls


def _row(label: str, run, result: Callable, build=None) -> tuple:
    return label, Candidate(label, "1", "Python", run, lambda: joined(result())), build


def _local(label: str, fn: Callable, args: tuple, target: float, build=None) -> tuple:
    return _row(label, Batch(fn, args, target), lambda: fn(*args), build)


def _missing(label: str, why: str) -> tuple:
    return label, Candidate(label, "1", "Python", missing=why), None


def _failed(label: str, e: Exception) -> tuple:
    first = (str(e).splitlines() or [""])[0]
    return _missing(label, f"failed ({type(e).__name__}: {first})")


def _generated(f: Function, backend: str, x: np.ndarray, target: float) -> list:
    tool = "C" if backend == "c" else "NumPy"
    labels = [f"generated {tool}, {entry}" for entry in ENTRIES]
    t0 = time.perf_counter()
    try:
        g = compile_grad(f.expr, backend=backend)
    except CompileError as e:
        return [_missing(label, e.one_line()) for label in labels]
    build = time.perf_counter() - t0
    floats = tuple(float(v) for v in x)
    named = dict(zip(g.inputs, floats))
    for _ in range(3):  # each entry's first calls make its quick path (and may load the
        g(*floats)      # one-point extension): not what a batch's calibration should see
        g(**named)
        g.at(x)
    return [_local(labels[0], g, floats, target, build),
            _row(labels[1], KeywordBatch(g, named, target), lambda: g(**named), build),
            _local(labels[2], g.at, (x,), target, build)]


def _symengine(f: Function, x: np.ndarray, target: float) -> tuple:
    if not installed("symengine"):
        return _missing(SYMENGINE, "not installed")
    try:
        import symengine
        t0 = time.perf_counter()
        xs = symengine.symbols(" ".join(f"x{k + 1}" for k in range(f.n)))
        y = f.scalars(symengine, xs)
        fn = symengine.Lambdify(xs, [y, *(y.diff(s) for s in xs)], backend="llvm", cse=True)
        fn(x)
        build = time.perf_counter() - t0
    except ImportError as e:
        return _missing(SYMENGINE, f"not importable ({e})")
    except Exception as e:  # noqa: BLE001 - e.g. a build without LLVM: the row says so
        return _failed(SYMENGINE, e)
    return _local(SYMENGINE, fn, (x,), target, build)


def _casadi(f: Function, x: np.ndarray, target: float) -> tuple:
    if not installed("casadi"):
        return _missing(CASADI, "not installed")
    try:
        import casadi
        t0 = time.perf_counter()
        xv = casadi.SX.sym("x", f.n)
        y = f.scalars(casadi, [xv[k] for k in range(f.n)])
        F = casadi.Function("f", [xv], [y, casadi.jacobian(y, xv)])
        build = time.perf_counter() - t0
    except ImportError as e:
        return _missing(CASADI, f"not importable ({e})")
    except Exception as e:  # noqa: BLE001 - the row says so
        return _failed(CASADI, e)

    def call(x):
        value, jac = F(x)
        return float(value), jac.full().ravel()
    return _local(CASADI, call, (x,), target, build)


# ---- JAX, in a worker process pinned to one CPU ----

def jax_setup(target: float) -> tuple:
    """jit value_and_grad of each function, call it once on its point (trace + XLA
    compile), and register it (remote.register) under ("call", name); returns
    (description, {name: seconds to the first result})."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    builds = {}
    for f in FUNCTIONS:
        vg = jax.jit(jax.value_and_grad(lambda x, f=f: f.vector(jnp, x)))

        def call(x, vg=vg):
            value, grad = vg(x)
            return float(value), np.asarray(grad)
        x = f.point()
        t0 = time.perf_counter()
        call(x)
        builds[f.name] = time.perf_counter() - t0
        remote.register(("call", f.name), lambda call=call, x=x: call(x), Batch(call, (x,), target))
    return remote.pinned(f"jax {jax.__version__} ({jax.devices()[0].platform})"), builds


# ---- the suite ----

def run(threads: list[int], repeat: int, quick: bool) -> SuiteResult:
    del threads  # one point runs on one thread, whatever --threads says
    target = QUICK_TARGET if quick else TARGET
    rows = []      # (function, label, Candidate, build seconds or None)
    jax, got = remote.start("jax", JAX_CPUS, f"{__name__}.jax_setup", target)
    jax_info, jax_builds = (got if jax is not None else (got, {}))
    try:
        for f in FUNCTIONS:
            x = f.point()
            made = [_local(REFERENCE, f.hand, tuple(float(v) for v in x), target),
                    *_generated(f, "c", x, target), *_generated(f, "numpy", x, target),
                    _symengine(f, x, target), _casadi(f, x, target)]
            c = remote.candidate((jax, jax_info), ("call", f.name), JAX, 1, "Python")
            if c.run is not None:
                remote_result = c.result
                c.result = lambda r=remote_result: joined(r())
            made.append((JAX, c, jax_builds.get(f.name)))
            rows += [(f, label, cand, build) for label, cand, build in made]
        groups = [[cand for g, _, cand, _ in rows if g is f] for f in FUNCTIONS]
        times, errors = run_interleaved(
            groups, repeat, lambda group: next(c for c in group if c.label == REFERENCE).result())
    finally:
        if jax is not None:
            jax.close()
    notes = [
        "one call at one point, value + gradient: Griewank (n = 2) at (1.5, 0.5); chained "
        f"Rosenbrock (n = 10) at x in [−1, 1]¹⁰; median and min–max of {repeat} interleaved "
        f"rounds after a warm-up, each round a batch of calls filling ~{1e3 * target:g} ms; "
        "times in µs per call, the loop of the batch included",
        "every row runs on 1 thread (the C kernel's one-point entry has no OpenMP loop; JAX in a "
        "worker pinned to 1 CPU); --threads does not apply to this suite",
        _entry_note(),
        f"symengine {version('symengine')}, CasADi {version('casadi')}"
        + (f"; JAX: {jax_info}" if jax is not None else f"; JAX {jax_info}"),
    ]
    return _result(rows, times, errors, notes)


def _entry_note() -> str:
    native = c_entry.load() is not None
    return ("generated C: g(*floats) and g.at(x) through the one-point CPython extension "
            "(backends/c_entry.py)" if native else
            f"generated C: through cffi (no one-point extension here: {c_entry.why_not()})") + \
        "; each generated entry is called 3 times before the batches are calibrated"


def _result(rows, times, errors, notes) -> SuiteResult:
    ref = {f.name: times[id(c)].median for f, label, c, _ in rows
           if label == REFERENCE and id(c) in times}
    records, table, bars = [], [], []
    for f, label, cand, build in rows:
        rec = {"function": f.name, "n": f.n, "implementation": label, "threads": "1",
               "missing": cand.missing}
        if cand.missing:
            records.append(rec)
            table.append([f.name, str(f.n), label, "1", cand.missing])
            continue
        t = times[id(cand)]
        rec.update(time=t.as_dict(),
                   calls_per_batch=cand.run.calls if isinstance(cand.run, Batch) else None,
                   ratio_to_reference=t.median / ref[f.name] if f.name in ref else None,
                   reference=REFERENCE, max_rel_error=errors[id(cand)], build_s=build)
        records.append(rec)
        table.append([f.name, str(f.n), label, "1", us(t.median), span(t, us),
                      ratio(rec["ratio_to_reference"]), err(rec["max_rel_error"]),
                      "–" if build is None else f"{build:.3f}"])
        if rec["ratio_to_reference"] and label != REFERENCE:
            bars.append((f"{f.name}: {label}", rec["ratio_to_reference"]))
    legend = [
        "µs: median time of one call, from the call to its results as Python floats / NumPy "
        "arrays; min–max over the rounds",
        f"× ref: that time / the {REFERENCE}'s for the same function (called with the n floats)",
        f"max rel err: largest |result − {REFERENCE}| / max(1, |{REFERENCE}|) over the value "
        "and the n partial derivatives",
        "build s: compile_grad (C: from the kernel cache when it is warm), symengine diff + "
        "Lambdify, CasADi SX graph + jacobian + Function, JAX trace + XLA compile (its first call)",
    ]
    return SuiteResult("call", notes, ["function", "n", "implementation", "thr", "µs", "min–max",
                                       "× ref", "max rel err", "build s"],
                       table, records, legend, bars)
