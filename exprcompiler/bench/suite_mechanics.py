"""The `mechanics` suite: the Jacobian of a multibody model's equations of motion, as
a simulation, an implicit integrator or an extended Kalman filter needs it — from
SymPy expressions in hand to a callable, and its calls.

The model is mechanics.py's n-link pendulum on a cart (Kane's method): the forcing
vector, n + 1 outputs, and its Jacobian with respect to all 2(n + 1) states, at
n = 3, 6, 10 and 20 links (3 and 6 with --quick; others with --links). For each n,
side by side:

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

A note gives issue 14's goals as ratios to symengine per n: generated C's one-point
calls and 10⁴ states, its cold build and the NumPy backend's build.

Every row's results at the first states are checked against SymPy's exact Jacobian
(mechanics.exact: `Matrix.jacobian` lambdified without cse to the math module); a
difference above TOL is printed above the table as a MISMATCH and marked in its row.

The peers' builders and call adapters are in mechanics_peers.py; the rows' labels and
the table, notes and legend in mechanics_report.py. The optional ones
(symengine, CasADi, JAX) give a row that says why when they are not importable. JAX
runs in a worker pinned to one CPU (as in the call suite), so its thread pools never
share the main process.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
import time
from typing import Callable, Optional

import numpy as np

from .. import compile_jacobian
from ..errors import CompileError
from . import mechanics_peers as peers, remote
from .competitors import installed
from .mechanics import exact, pendulum, random_states
from .mechanics_peers import Missing, columns as _columns
from .mechanics_report import (C_AT, C_BARE, C_BARE_NEW, C_CALL, C_COLD, C_OUT, C_CPU, CASADI, CHEAP_BUILD,
                               CHEAP_REPEATS, CHECKS, JAX, NP_BARE, NP_CALL, SYMENGINE, SYMPY, result, sizes_note)
from .mechanics_report import TOL  # noqa: F401 - the suite's tolerance, as callers know it
from .report import SuiteResult
from .runner import Batch, Candidate, run_interleaved
from .suite_call import KeywordBatch

SIZES, QUICK_SIZES = (3, 6, 10, 20), (3, 6)
POINTS = 10_000
BUILD_ROUNDS, QUICK_BUILD_ROUNDS = 3, 1
# seconds of calls in one timed sample: (one point, 10⁴ states)
TARGETS, QUICK_TARGETS = (0.02, 0.05), (0.002, 0.005)
JAX_CPUS = 1

# the peers' adapters (mechanics_peers.py), by row label
PEER_BUILD = {SYMPY: peers.build_sympy, SYMENGINE: peers.build_symengine, CASADI: peers.build_casadi}
PEER_POINT = {SYMPY: peers.sympy_point, SYMENGINE: peers.symengine_point, CASADI: peers.casadi_point}
PEER_BATCH = {SYMPY: peers.sympy_batch, SYMENGINE: peers.symengine_batch}


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


def _timed(build) -> tuple:
    t0 = time.perf_counter()
    made = build()
    return made, time.perf_counter() - t0


def _builds(model, rounds: int, scratch: str) -> tuple[dict, dict]:
    """({label: [seconds of each build]}, {label: the built object, or why it is missing}).
    Every builder once per round (a cheap one a few times: CHEAP_BUILD), the order
    rotated each round; the C builder times a cold build in a fresh cache, then a warm
    one (the same call again)."""
    builders = {C_CALL: None, NP_CALL: lambda: _generated(model, "numpy"),
                **{label: (lambda build=build: build(model)) for label, build in PEER_BUILD.items()}}
    times: dict = {label: [] for label in (C_COLD, *builders)}
    built: dict = {}
    compiler_cpu: list = []
    for r in range(rounds):
        labels = list(builders)
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            if isinstance(built.get(label), str):
                continue  # missing: once is enough to know
            try:
                if label == C_CALL:
                    cold, warm, built[label], cpu = _c_round(model, scratch, r)
                    times[C_COLD].append(cold)
                    times[C_CALL].append(warm)
                    compiler_cpu.append(cpu)
                    continue
                built[label], dt = _timed(builders[label])
                times[label].append(dt)
                for _ in range(min(CHEAP_REPEATS, int(CHEAP_BUILD / max(dt, 1e-9)))):
                    times[label].append(_timed(builders[label])[1])
            except Missing as e:
                built[label] = str(e)
            except ImportError as e:
                built[label] = f"not importable ({e})"
            except Exception as e:  # noqa: BLE001 - a peer that fails is a row saying so
                first = (str(e).splitlines() or [""])[0]
                built[label] = f"failed ({type(e).__name__}: {first})"
    built[C_COLD] = built.get(C_CALL)
    if compiler_cpu:  # not a row: said beside the model's sizes
        built[C_CPU] = sorted(compiler_cpu)[len(compiler_cpu) // 2]
    return times, built


def _c_round(model, scratch: str, r: int):
    """(cold s, warm s, the build, the C compiler's CPU s in the cold build: user + sys
    of its processes, which a shared machine inflates less than the wall time)."""
    import resource

    cache = os.path.join(scratch, f"n{model.n}-round{r}")
    with _cache_at(cache):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        _generated(model, "c")
        t1 = time.perf_counter()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        J = _generated(model, "c")
        t2 = time.perf_counter()
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return t1 - t0, t2 - t1, J, cpu


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
    return PEER_POINT[label](b, x, target)


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
        for label, make in ((NP_CALL, _numpy_batch), (SYMPY, _peer_batch), (SYMENGINE, _peer_batch)):
            b = built.get(label)
            if isinstance(b, str) or b is None:
                rows.append(_missing(label, 1, b or "not built"))
                if label == NP_CALL:
                    rows.append(_missing(NP_BARE, 1, b or "not built"))
            else:
                rows += make(label, b, model, cols, X, target)
    F = built.get(CASADI)
    if isinstance(F, str):
        if first:
            rows.append(_missing(CASADI, 1, F))
    elif F is not None:
        rows.append(_cand(CASADI, t, *peers.casadi_batch(F, X, t, target)))
    return rows


def _c_batch(J, cols: dict, t: int, target: float) -> list:
    rows = [_cand(C_CALL, t, KeywordBatch(J, cols, target), lambda: _flat(*J(**cols)))]
    values, jac = J(**cols)
    out = (np.empty_like(values), np.empty_like(jac))  # made once, as the bare kernel's block
    rows.append(_cand(C_OUT, t, KeywordBatch(J, {**cols, "out": out}, target), lambda: _flat(*J(**cols, out=out))))
    for label, fresh in ((C_BARE, False), (C_BARE_NEW, True)):
        try:
            kernel = bare_c_kernel(J, cols, t, fresh)
        except Missing as e:
            rows.append(_missing(label, t, str(e)))
            continue
        rows.append(_cand(label, t, Batch(kernel, (), target), kernel))
    return rows


def _numpy_batch(label: str, J, model, cols: dict, X: np.ndarray, target: float) -> list:
    ordered = tuple(cols[name] for name in J.inputs)  # J.function's parameter order
    return [_cand(NP_CALL, 1, KeywordBatch(J, cols, target), lambda: _flat(*J(**cols))),
            _cand(NP_BARE, 1, Batch(J.function, ordered, target),
                  lambda: _columns(J.function(*ordered), len(X)))]


def _peer_batch(label: str, built, model, cols: dict, X: np.ndarray, target: float) -> list:
    ordered = tuple(cols[name] for name in model.names)
    return [_cand(label, 1, *PEER_BATCH[label](built, ordered, X, target))]


# ---- the suite ----

def run(threads: list[int], repeat: int, quick: bool, links: Optional[tuple] = None) -> SuiteResult:
    """The suite at the link counts `links` (`exprc bench mechanics --links`), else SIZES
    (QUICK_SIZES with `quick`, which also shortens the builds' rounds and samples)."""
    return measure(links or (QUICK_SIZES if quick else SIZES), threads, repeat, POINTS,
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
    jax, got = remote.start("jax", JAX_CPUS, f"{peers.__name__}.jax_setup", list(sizes), points, targets,
                            CHECKS)
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
            info[n] = sizes_note(model, built)
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
    return result(models, builds, whys, info, cands, timings, errors, threads, repeat, points,
                  build_rounds, targets, f"JAX {jax_info}" if jax is None else f"JAX: {jax_info}", JAX_CPUS)
