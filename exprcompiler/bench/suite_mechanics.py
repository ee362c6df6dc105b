"""The `mechanics` suite: the Jacobian of a multibody model's equations of motion, as
a simulation, an implicit integrator or an extended Kalman filter needs it — from
SymPy expressions in hand to a callable, and its calls.

The model is mechanics.py's n-link pendulum on a cart (Kane's method): the forcing
vector, n + 1 outputs, and its Jacobian with respect to all 2(n + 1) states, at
n = 3, 6, 10 and 20 links (3 and 6 with --quick). For each n, side by side:

- build: SymPy expressions -> a callable that returns the values and the Jacobian.
  Generated C (`compile_jacobian(exprs, wrt=states, backend="c")`) cold — in a fresh,
  empty compile cache — and warm (the same call again, the kernel found in the cache
  and already loaded in this process); generated NumPy; SymPy `Matrix.jacobian` +
  `lambdify(cse=True)`; symengine `jacobian` + `Lambdify(backend="llvm", cse=True)`
  (converted from the SymPy expressions); CasADi SX (the SymPy expressions
  lambdified onto SX symbols) + `jacobian` + `Function`; JAX `jit(jacfwd)` (trace and
  XLA compile, in a worker). Median of a few interleaved rounds.
- one point: every state a float (CasADi, symengine and JAX take one array).
- 10⁴ states: an array of 10⁴ for each state (symengine, CasADi, JAX: one (10⁴, 2(n+1))
  array or its transpose). For generated C also the bare kernel, `J.function` — the
  generated function without the call layer, given cffi pointers made once — so the
  call layer's overhead shows as J(**inputs) / J.function (tracker issue 13's goal:
  at most 1.2).

Every row's results at the first states are checked against SymPy's exact Jacobian
(mechanics.exact: `Matrix.jacobian` lambdified without cse to the math module); a
difference above TOL is printed above the table as a MISMATCH and marked in its row.

The optional peers (symengine, CasADi, JAX) give a row that says why when they are
not importable. JAX runs in a worker pinned to one CPU (as in the call suite), so
its thread pools never share the main process.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import re
import os
import shutil
import tempfile
import time
from typing import Callable, Optional

import numpy as np

from .. import compile_jacobian
from ..errors import CompileError
from ..jacobians import operations
from . import remote
from .competitors import installed
from .machine import version
from .mechanics import exact, pendulum, random_states
from .report import SuiteResult, err, ms, ratio, span, us
from .runner import Batch, Candidate, Timing, run_interleaved
from .suite_call import KeywordBatch

SIZES, QUICK_SIZES = (3, 6, 10, 20), (3, 6)
POINTS = 10_000
CHECKS = 5                  # the first states of the batch, checked against the exact Jacobian
TOL = 1e-9                  # relative, denominator floored at 1
BUILD_ROUNDS, QUICK_BUILD_ROUNDS = 3, 1
# seconds of calls in one timed sample: (one point, 10⁴ states)
TARGETS, QUICK_TARGETS = (0.02, 0.05), (0.002, 0.005)
JAX_CPUS = 1

C_COLD = "generated C, cold cache"
C_CALL = "generated C, J(**inputs)"
C_AT = "generated C, J.at(x)"
C_BARE = "generated C, J.function (kernel)"
C_BARE_NEW = "generated C, J.function, new outputs"
NP_CALL = "generated NumPy, J(**inputs)"
NP_BARE = "generated NumPy, J.function"
SYMPY = "SymPy jacobian + lambdify(cse)"
SYMENGINE = "symengine jacobian + Lambdify(llvm)"
CASADI = "CasADi SX jacobian + Function"
JAX = "JAX jit(jacfwd), vmap"
ORDER = (C_COLD, C_CALL, C_AT, C_BARE, C_BARE_NEW, NP_CALL, NP_BARE, SYMPY, SYMENGINE, CASADI, JAX)
REFERENCE = C_CALL          # the ratios' denominator, at the same thread count


class Missing(Exception):
    """A competitor that cannot run here: its row says why."""


# ---- the builders: the model's SymPy expressions -> a callable ----

@contextlib.contextmanager
def _cache_at(path: str):
    """EXPRCOMPILER_CACHE set to `path` inside the block (the C backend reads it at
    every build), restored after it."""
    old = os.environ.get("EXPRCOMPILER_CACHE")
    os.environ["EXPRCOMPILER_CACHE"] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("EXPRCOMPILER_CACHE", None)
        else:
            os.environ["EXPRCOMPILER_CACHE"] = old


def _generated(model, backend: str, threads: Optional[int] = None):
    try:
        return compile_jacobian(list(model.exprs), wrt=model.names, backend=backend, threads=threads)
    except CompileError as e:
        raise Missing(e.one_line()) from None


def _sympy(model):
    import sympy
    jac = sympy.Matrix(model.exprs).jacobian(model.states)
    # a flat list, not the Matrix: lambdify prints a Matrix as np.array([[...]]), which
    # fails on arrays of states as soon as an entry is a constant (the q0 column is 0)
    return sympy.lambdify(model.states, [*model.exprs, *jac], "numpy", cse=True)


def _symengine(model):
    if not installed("symengine"):
        raise Missing("not installed")
    import symengine
    exprs = [symengine.sympify(e) for e in model.exprs]
    states = [symengine.sympify(s) for s in model.states]
    jac = symengine.DenseMatrix(exprs).jacobian(symengine.DenseMatrix(states))
    return symengine.Lambdify(states, [*exprs, *jac], backend="llvm", cse=True)


def _casadi(model):
    if not installed("casadi"):
        raise Missing("not installed")
    import casadi
    import sympy
    x = casadi.SX.sym("x", len(model.states))
    # SymPy has no CasADi printer: lambdify onto casadi's sin, cos, ... and call the
    # result on SX symbols, which records the expression graph
    onto = sympy.lambdify(model.states, list(model.exprs), modules=[casadi])
    f = casadi.vertcat(*onto(*(x[k] for k in range(len(model.states)))))
    jac = casadi.jacobian(f, x)
    # one output, the values and then the Jacobian row by row (reshape is column-major)
    return casadi.Function("forcing", [x], [casadi.vertcat(f, casadi.reshape(jac.T, -1, 1))])


def _builds(model, rounds: int, scratch: str) -> tuple[dict, dict]:
    """({label: [seconds per round]}, {label: the built object, or why it is missing}).
    Every builder once per round, the order rotated each round; the C builder times a
    cold build in a fresh cache, then a warm one (the same call again)."""
    builders = {C_CALL: None, NP_CALL: lambda: _generated(model, "numpy"),
                SYMPY: lambda: _sympy(model), SYMENGINE: lambda: _symengine(model),
                CASADI: lambda: _casadi(model)}
    times: dict = {label: [] for label in (C_COLD, *builders)}
    built: dict = {}
    for r in range(rounds):
        labels = list(builders)
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            if isinstance(built.get(label), str):
                continue  # missing: once is enough to know
            try:
                if label == C_CALL:
                    cold, warm, built[label] = _c_round(model, scratch, r)
                    times[C_COLD].append(cold)
                    times[C_CALL].append(warm)
                    continue
                t0 = time.perf_counter()
                built[label] = builders[label]()
                times[label].append(time.perf_counter() - t0)
            except Missing as e:
                built[label] = str(e)
            except ImportError as e:
                built[label] = f"not importable ({e})"
            except Exception as e:  # noqa: BLE001 - a peer that fails is a row saying so
                first = (str(e).splitlines() or [""])[0]
                built[label] = f"failed ({type(e).__name__}: {first})"
    built[C_COLD] = built.get(C_CALL)
    return times, built


def _c_round(model, scratch: str, r: int):
    cache = os.path.join(scratch, f"n{model.n}-round{r}")
    with _cache_at(cache):
        t0 = time.perf_counter()
        _generated(model, "c")
        t1 = time.perf_counter()
        J = _generated(model, "c")
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, J


# ---- the bare C kernel ----

def bare_c_kernel(J, cols: dict, threads: int, fresh: bool = False):
    """() -> the outputs of `J.function`, the generated C kernel itself, on the arrays
    `cols` ({input: float64 array of the batch}) on `threads` threads: the cffi
    pointers are made once, so a call is the kernel alone. Its outputs go where the
    call layer puts them: the columns of one (points, outputs) block when the kernel
    takes a stride per output, else the rows of an (outputs, points) block.
    `fresh`: a new block for each call (np.empty), as the call layer must allocate
    one for the arrays it returns. The result is always (points, outputs)."""
    import cffi
    ffi = cffi.FFI()
    fn = J.function
    try:
        params = [a.cname for a in ffi.typeof(fn).args]
    except (TypeError, AttributeError):
        raise Missing("J.function is not a cffi C function") from None
    k, n_out = len(J.inputs), len(J.trace.outputs)
    head = ["ptrdiff_t", "int"] + ["double *", "ptrdiff_t"] * k
    if params == head + ["double *", "ptrdiff_t"] * n_out:
        strided = True
    elif params == head + ["double *"] * n_out:
        strided = False
    else:
        raise Missing(f"kernel signature not recognized: {', '.join(params)}")
    arrays = [np.ascontiguousarray(cols[name], dtype=np.float64) for name in J.inputs]
    n = arrays[0].size
    args: list = [n, threads]
    for a in arrays:
        args += [ffi.from_buffer("double[]", a), 1]

    def out_args(block: np.ndarray) -> list:
        base = block.__array_interface__["data"][0]
        if strided:  # column j of the (n, n_out) block: first element j, stride n_out
            return [x for j in range(n_out) for x in (ffi.cast("double *", base + 8 * j), n_out)]
        return [ffi.cast("double *", base + 8 * n * j) for j in range(n_out)]

    shape = (n, n_out) if strided else (n_out, n)
    block = np.empty(shape)
    fixed = args + out_args(block)

    def call():
        if fresh:
            b = np.empty(shape)
            status = fn(*args, *out_args(b))
        else:
            b = block
            status = fn(*fixed)
        if status != 0:
            raise MemoryError("the C kernel could not allocate its tape")
        return b if strided else b.T
    return call


# ---- rows: one way to call one build ----

def _flat(values, jac) -> np.ndarray:
    """(values (…, m), Jacobian (…, m, n)) -> (points, m + m·n)."""
    values = np.asarray(values, dtype=float)
    rows = values.reshape(-1, values.shape[-1])
    return np.hstack([rows, np.asarray(jac, dtype=float).reshape(len(rows), -1)])


def _columns(outputs, points: int) -> np.ndarray:
    """A list of m + m·n outputs (arrays of the batch, or a number where the entry is
    constant) -> (points, m + m·n)."""
    return np.column_stack([np.broadcast_to(np.asarray(o, dtype=float), (points,)) for o in outputs])


def _cand(label: str, threads, sample, result: Callable[[], np.ndarray]) -> Candidate:
    return Candidate(label, str(threads), "", sample, lambda: [np.asarray(result())[:CHECKS]])


def _missing(label: str, threads, why: str) -> Candidate:
    return Candidate(label, str(threads), "", missing=why)


def _point_rows(built: dict, x: np.ndarray, names: list, target: float) -> list:
    """The rows of one state: each a Batch of calls, its result (1, m + m·n)."""
    floats = {name: float(v) for name, v in zip(names, x)}
    rows = []
    for label in (C_CALL, C_AT, NP_CALL, SYMPY, SYMENGINE, CASADI):
        b = built.get(C_CALL if label == C_AT else label)
        if isinstance(b, str) or b is None:
            rows.append(_missing(label, 1, b or "not built"))
        else:
            sample, result = _one_point(label, b, x, floats, target)
            rows.append(_cand(label, 1, sample, result))
    return rows


def _one_point(label: str, b, x: np.ndarray, floats: dict, target: float):
    """(timed sample, result) of one call of the build `b` at the state `x`."""
    if label in (C_CALL, NP_CALL):
        return KeywordBatch(b, floats, target), lambda: _flat(*b(**floats))
    if label == C_AT:
        return Batch(b.at, (x,), target), lambda: _flat(*b.at(x))
    if label == SYMPY:
        args = tuple(floats.values())
        return Batch(b, args, target), lambda: np.array([b(*args)], dtype=float)
    if label == SYMENGINE:
        return Batch(b, (x,), target), lambda: b(x)[None]

    def casadi(x):  # CasADi: a DM, converted as a caller would
        return b(x).full()
    return Batch(casadi, (x,), target), lambda: casadi(x).T


def _batch_rows(model, built: dict, compiled_c, X: np.ndarray, t: int, first: bool,
                target: float) -> list:
    """The rows of 10⁴ states at `t` threads: generated C's (compiled for t threads) at
    every t, CasADi's map at every t; the one-thread tools only at the first t."""
    cols = {name: np.ascontiguousarray(X[:, k]) for k, name in enumerate(model.names)}
    rows = []
    if isinstance(compiled_c, str):
        rows += [_missing(label, t, compiled_c) for label in (C_CALL, C_BARE, C_BARE_NEW)]
    else:
        rows += _c_batch(compiled_c, cols, t, target)
    if first:
        for label, make in ((NP_CALL, _numpy_batch), (SYMPY, _sympy_batch),
                            (SYMENGINE, _symengine_batch)):
            b = built.get(label)
            if isinstance(b, str) or b is None:
                rows.append(_missing(label, 1, b or "not built"))
                if label == NP_CALL:
                    rows.append(_missing(NP_BARE, 1, b or "not built"))
            else:
                rows += make(b, model, cols, X, target)
    F = built.get(CASADI)
    if isinstance(F, str):
        if first:
            rows.append(_missing(CASADI, 1, F))
    elif F is not None:
        rows.append(_casadi_batch(F, X, t, target))
    return rows


def _c_batch(J, cols: dict, t: int, target: float) -> list:
    rows = [_cand(C_CALL, t, KeywordBatch(J, cols, target), lambda: _flat(*J(**cols)))]
    for label, fresh in ((C_BARE, False), (C_BARE_NEW, True)):
        try:
            kernel = bare_c_kernel(J, cols, t, fresh)
        except Missing as e:
            rows.append(_missing(label, t, str(e)))
            continue
        rows.append(_cand(label, t, Batch(kernel, (), target), kernel))
    return rows


def _numpy_batch(J, model, cols: dict, X: np.ndarray, target: float) -> list:
    ordered = tuple(cols[name] for name in J.inputs)  # J.function's parameter order
    return [_cand(NP_CALL, 1, KeywordBatch(J, cols, target), lambda: _flat(*J(**cols))),
            _cand(NP_BARE, 1, Batch(J.function, ordered, target),
                  lambda: _columns(J.function(*ordered), len(X)))]


def _sympy_batch(f, model, cols: dict, X: np.ndarray, target: float) -> list:
    ordered = tuple(cols[name] for name in model.names)
    return [_cand(SYMPY, 1, Batch(f, ordered, target), lambda: _columns(f(*ordered), len(X)))]


def _symengine_batch(L, model, cols: dict, X: np.ndarray, target: float) -> list:
    return [_cand(SYMENGINE, 1, Batch(L, (X,), target), lambda: L(X))]


def _casadi_batch(F, X: np.ndarray, t: int, target: float) -> Candidate:
    # CasADi's own batch: map over the columns of a (states, points) matrix, serially
    # on one thread, or with its thread pool of t threads
    mapped = F.map(len(X), "serial") if t == 1 else F.map(len(X), "thread", t)
    XT = np.ascontiguousarray(X.T)

    def call():
        return mapped(XT).full()
    return _cand(CASADI, t, Batch(call, (), target), lambda: call().T)


# ---- JAX, in a worker process pinned to one CPU ----

def jax_setup(sizes: list, points: int, targets: tuple) -> tuple:
    """For each n: the forcing lambdified to jax.numpy, h(x) = [f(x), jacfwd(f)(x)
    row by row], jit(h) for one point and jit(vmap(h)) for the batch, each called
    once (trace + XLA compile), registered under ("mechanics", n, "point" / "batch").
    Returns (description, {n: seconds to the first one-point result})."""
    import jax
    import jax.numpy as jnp
    import sympy

    jax.config.update("jax_enable_x64", True)
    builds = {}
    for n in sizes:
        model = pendulum(n)
        X = random_states(n, points)
        x0 = X[0]
        t0 = time.perf_counter()
        f = sympy.lambdify(model.states, list(model.exprs), "jax")

        def g(x, f=f):
            return jnp.stack([jnp.asarray(v, dtype=jnp.float64) for v in f(*x)])

        def h(x, g=g):
            return jnp.concatenate([g(x), jax.jacfwd(g)(x).ravel()])
        one, many = jax.jit(h), jax.jit(jax.vmap(h))

        def point(x, one=one):
            return np.asarray(one(x))  # np.asarray waits for the result

        def batch(X, many=many):
            return np.asarray(many(X))
        point(x0)
        builds[n] = time.perf_counter() - t0
        batch(X)
        remote.register(("mechanics", n, "point"), lambda p=point, x=x0: p(x)[None],
                        Batch(point, (x0,), targets[0]))
        remote.register(("mechanics", n, "batch"), lambda b=batch, X=X: b(X)[:CHECKS],
                        Batch(batch, (X,), targets[1]))
    return remote.pinned(f"jax {jax.__version__} ({jax.devices()[0].platform})"), builds


# ---- the suite ----

def run(threads: list[int], repeat: int, quick: bool) -> SuiteResult:
    return measure(QUICK_SIZES if quick else SIZES, threads, repeat, POINTS,
                   QUICK_BUILD_ROUNDS if quick else BUILD_ROUNDS,
                   QUICK_TARGETS if quick else TARGETS)


def measure(sizes, threads: list[int], repeat: int, points: int = POINTS,
            build_rounds: int = BUILD_ROUNDS, targets: tuple = TARGETS) -> SuiteResult:
    """The suite at the link counts `sizes`, `points` states a batch: builds in
    `build_rounds` rounds, calls in `repeat` rounds of samples filling `targets`
    seconds (one point, a batch). The derived models stay cached in this process."""
    for package in ("symengine", "casadi"):  # imported once, outside every timed build
        if installed(package):
            with contextlib.suppress(ImportError):
                importlib.import_module(package)
    scratch = tempfile.mkdtemp(prefix="exprc-bench-mechanics-")
    jax, got = remote.start("jax", JAX_CPUS, f"{__name__}.jax_setup", list(sizes), points, targets)
    jax_info, jax_builds = got if jax is not None else (got, {})
    models, builds, whys, info, groups, wants = {}, {}, {}, {}, [], {}
    cands: list = []            # (n, Candidate, "point" or "batch")
    try:
        for n in sizes:
            model = models[n] = pendulum(n)
            times, built = _builds(model, build_rounds, scratch)
            builds[n] = times
            whys[n] = {label: b for label, b in built.items() if isinstance(b, str)}
            X = random_states(n, points)
            info[n] = _sizes(model, built)
            want_point, want_batch = exact(n, X[:1]), exact(n, X[:CHECKS])
            group = _point_rows(built, X[0], model.names, targets[0])
            group.append(remote.candidate((jax, jax_info), ("mechanics", n, "point"), JAX, JAX_CPUS))
            groups.append(group)
            wants[id(group)] = [want_point]
            cands += [(n, c, "point") for c in group]
            for t in threads:
                compiled_c = built.get(C_CALL)
                if not isinstance(compiled_c, str) and compiled_c is not None:
                    # the kernel is in the last round's cache: this is a warm build
                    with _cache_at(os.path.join(scratch, f"n{n}-round{build_rounds - 1}")):
                        try:
                            compiled_c = _generated(model, "c", threads=t)
                        except Missing as e:
                            compiled_c = str(e)
                group = _batch_rows(model, built, compiled_c, X, t, t == threads[0], targets[1])
                if t == threads[0]:
                    group.append(remote.candidate((jax, jax_info), ("mechanics", n, "batch"),
                                                  JAX, JAX_CPUS))
                groups.append(group)
                wants[id(group)] = [want_batch]
                cands += [(n, c, "batch") for c in group]
        timings, errors = run_interleaved(groups, repeat, lambda group: wants[id(group)])
    finally:
        if jax is not None:
            jax.close()
        shutil.rmtree(scratch, ignore_errors=True)
    for n in sizes:
        if n in jax_builds:
            builds[n][JAX] = [jax_builds[n]]
    return _result(models, builds, whys, info, cands, timings, errors, threads, repeat, points,
                   build_rounds, targets, f"JAX {jax_info}" if jax is None else f"JAX: {jax_info}")


def _sizes(model, built: dict) -> str:
    """What the n-link model is, in SymPy's and in exprcompiler's terms."""
    import sympy
    m, s = model.shape
    text = (f"n = {model.n}: {m} outputs, {s} states; SymPy derived it in {model.derive_s:.2f} s; "
            f"the forcing has {sum(sympy.count_ops(e) for e in model.exprs):,} SymPy operations")
    for label in (C_CALL, NP_CALL):
        J = built.get(label)
        if J is not None and not isinstance(J, str):
            text += (f"; exprcompiler's Jacobian ({J.mode} mode): {operations(J.primal):,} "
                     f"-> {operations(J.trace):,} trace operations")
            break
    J = built.get(C_CALL)
    if J is not None and not isinstance(J, str):
        # the C backend splits a long kernel into parts compiled without vectorization:
        # worth seeing beside the times, which change with it
        parts = len(re.findall(r"\bvoid \w+_part\d+\(", J.source))
        text += (f"; C source {len(J.source.splitlines()):,} lines"
                 + (f", split into {parts} parts" if parts else ", one kernel loop"))
    return text


def _worse(a: Optional[float], b: float) -> float:
    """The larger error; NaN (a failed comparison) wins over every number."""
    if a is None:
        return b
    return float("nan") if math.isnan(a) or math.isnan(b) else max(a, b)


def _result(models, builds, whys, info, cands, timings, errors, threads, repeat, points,
            build_rounds, targets, jax_info) -> SuiteResult:
    # rows: (n, label, threads) in ORDER; each holds a point and/or a batch candidate
    rows: dict = {}
    for n, c, kind in cands:
        rows.setdefault((n, c.label, c.threads), {})[kind] = c
    for n in models:
        rows.setdefault((n, C_COLD, "1"), {})
        for label in builds[n]:
            rows.setdefault((n, label, "1"), {})
    keyed = sorted(rows, key=lambda k: (k[0], ORDER.index(k[1]), int(k[2])))

    def median(n, label, thr, kind):
        c = rows.get((n, label, thr), {}).get(kind)
        return timings[id(c)].median if c is not None and id(c) in timings else None

    records, table, bars, loud, overhead = [], [], [], [], []
    for n, label, thr in keyed:
        got = rows[n, label, thr]
        rec = {"n": n, "outputs": models[n].shape[0], "states": models[n].shape[1],
               "implementation": label, "threads": thr, "missing": ""}
        build = builds[n].get(label) if thr == "1" else None
        if build:
            rec["build"] = Timing.of(build).as_dict()
        missing = [c.missing for c in got.values() if c.missing]
        if len(missing) == len(got) and not build:  # nothing of this row ran
            rec["missing"] = missing[0] if missing else whys[n].get(label, "not run")
            records.append(rec)
            table.append([str(n), label, thr, rec["missing"]])
            continue
        cells = [str(n), label, thr, f"{Timing.of(build).median:.3f}" if build else "–"]
        worst = None
        for kind, unit in (("point", us), ("batch", ms)):
            c = got.get(kind)
            if c is None or id(c) not in timings:
                cells += ["–", "–"] if kind == "point" else ["–", "–", "–"]
                continue
            t = timings[id(c)]
            ref = median(n, REFERENCE, thr, kind)
            r = t.median / ref if ref else None
            rec[kind] = {"time": t.as_dict(), "ratio_to_reference": r,
                         "max_rel_error": errors[id(c)]}
            worst = _worse(worst, errors[id(c)])
            cells += [unit(t.median), ratio(r)] if kind == "point" else [unit(t.median), span(t), ratio(r)]
            if r and label != REFERENCE:
                bars.append((f"n={n} {'1 point' if kind == 'point' else f'{points:,} states'}: "
                             f"{label} ({thr} thr)", r))
        bad = worst is not None and not worst <= TOL
        cells.append("–" if worst is None else err(worst) + (" MISMATCH" if bad else ""))
        if bad:
            loud.append(f"MISMATCH: n = {n}, {label} ({thr} thr): max rel err {err(worst)} > {TOL:g} "
                        "against SymPy's exact Jacobian")
        rec["max_rel_error"] = worst
        records.append(rec)
        table.append(cells)
        if label == C_CALL and got.get("batch") is not None:
            call = median(n, C_CALL, thr, "batch")
            kernel, fresh = median(n, C_BARE, thr, "batch"), median(n, C_BARE_NEW, thr, "batch")
            if call and kernel:
                rec["call_over_kernel"] = call / kernel
                rec["call_over_kernel_new_outputs"] = call / fresh if fresh else None
                overhead.append(f"n = {n}, {thr} thr: {call / kernel:.2f}"
                                + (f" ({call / fresh:.2f} against the kernel writing new outputs)"
                                   if fresh else ""))
    cold6 = builds.get(6, {}).get(C_COLD)
    notes = [
        *loud,
        "the n-link pendulum on a cart (sympy.physics.mechanics, Kane's method): kane.forcing "
        "(n + 1 outputs) and its Jacobian with respect to all 2(n + 1) states q0…qn, u0…un; "
        "parameters substituted (l = 1/n, m = 1/(100 n), g = 9.81, f = 1/2)",
        *(info[n] for n in models),
        f"build: median of {build_rounds} interleaved round(s), in seconds; calls: median of "
        f"{repeat} interleaved rounds after a warm-up, each round a batch of calls filling "
        f"~{1e3 * targets[0]:g} ms (one point) or ~{1e3 * targets[1]:g} ms ({points:,} states); "
        "the machine is shared, so only medians of interleaved rounds are comparable",
        "threads: one point, every row 1 thread; {:,} states: generated C at each of {} thread(s) "
        "(compile_jacobian(threads=t), the kernel's OpenMP loop; J.function is given the same t), "
        "CasADi map 'serial' (1) or 'thread' (t); generated NumPy, SymPy's NumPy code and "
        "symengine's LLVM code on 1 thread; JAX in a worker pinned to {} CPU"
        .format(points, ", ".join(map(str, threads)), JAX_CPUS),
        f"symengine {version('symengine')}, CasADi {version('casadi')}; {jax_info}",
    ]
    if overhead:
        notes.append("call layer, issue 13 (goal ≤ 1.2): J(**inputs) / J.function over "
                     f"{points:,} states: " + "; ".join(overhead))
    if cold6:
        notes.append(f"issue 14 (goal ≤ 0.5 s): the 6-link Jacobian built cold in C in "
                     f"{Timing.of(cold6).median:.2f} s (median)")
    legend = [
        f"build s: SymPy expressions -> callable (values and Jacobian). {C_COLD}: compile_jacobian "
        f"with a fresh, empty EXPRCOMPILER_CACHE (C compiler included); {C_CALL}: the same call "
        "again (warm: found in the cache, already loaded); NumPy: compile_jacobian(backend='numpy'); "
        "SymPy: Matrix.jacobian + lambdify(cse=True); symengine: sympify + jacobian + "
        "Lambdify(llvm, cse=True); CasADi: lambdify onto SX + jacobian + Function; JAX: lambdify "
        "to jax.numpy + jit(jacfwd) trace + XLA compile (its first call, one round)",
        "1 point µs: one call with one state (floats; one array for J.at, symengine, CasADi, "
        f"JAX), to its results as NumPy arrays / Python floats; {points:,} states ms: one call on "
        "arrays of every state; min–max of the latter",
        f"×: that time / {REFERENCE}'s at the same thread count (above 1: slower)",
        f"{C_BARE}: the generated C function alone, cffi pointers made once, outputs into one "
        "block reused by every call; '…, new outputs': the same with a new np.empty block each "
        "call, as the call layer must allocate the arrays it returns (first-touch page faults "
        "included)",
        "each row stops at its own natural result: exprcompiler (values (N, m), Jacobian "
        "(N, m, n)); SymPy a list of m + m·n arrays (constant entries as numbers); symengine "
        "(N, m + m·n); CasADi a DM, converted with .full(); JAX a device array, np.asarray",
        f"max rel err: largest |result − exact| / max(1, |exact|) over the values and the "
        f"Jacobian, at the first state (one point) and the first {CHECKS} states (batch); "
        "exact: SymPy's Matrix.jacobian lambdified without cse to the math module",
    ]
    return SuiteResult("mechanics", notes,
                       ["n", "implementation", "thr", "build s", "1 point µs", "×",
                        f"{points:,} states ms", "min–max", "×", "max rel err"],
                       table, records, legend, bars)
