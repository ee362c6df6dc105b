"""The `hvp` suite: second order at one point. The chained Rosenbrock function
(rosenbrock.py) in n = 10, 100, 1000 variables (10 and 100 with --quick): value,
value + gradient, and value + gradient + Hessian-vector product, each as one call.

Competitors: generated C and generated NumPy, each in two forms — compile_expr /
compile_grad / compile_hvp of the straight-line program of n scalars, called through
the packed one-point `at(x)` / `at(x, v)`, and of the tensor expression of one vector
x (`shapes={"x": ("n",)}`: compiles in a fraction of a second at any n), called as
`g(x)` / `h(x, v)`; the hand-written NumPy (the reference: ratios and agreement
are taken to it), and JAX jit(f), jit(value_and_grad(f)) and jit(jvp(value_and_grad(f)))
on a vector x, in a worker pinned to the row's CPUs, when JAX is importable.

A call takes microseconds, so each timed sample is a batch: the mean time per call
over as many calls as fill TARGET seconds (the count is fixed at the warm-up, so
every round does the same work). Batches run interleaved, as in every suite.
"""

from __future__ import annotations

import functools
import os
import time

from .. import compile_expr, compile_grad, compile_hvp
from ..errors import CompileError
from . import remote, rosenbrock
from .report import SuiteResult, err, ratio, span, us
from .runner import Batch, Candidate, flat_arrays, labelled, run_interleaved

SIZES, QUICK_SIZES = (10, 100, 1000), (10, 100)
TARGET, QUICK_TARGET = 0.02, 0.002          # seconds of calls in one timed batch
KINDS = ("value", "grad", "hvp")
COMPILE = {"value": compile_expr, "grad": compile_grad, "hvp": compile_hvp}
REFERENCE = "hand-written NumPy"
JAX = "JAX jit, jvp(value_and_grad)"


def _local(label: str, fns: dict, x, v, target: float) -> dict:
    """{kind: Candidate} for one implementation's value / grad / hvp functions."""
    out = {}
    for kind in KINDS:
        args = (x, v) if kind == "hvp" else (x,)
        out[kind] = Candidate(label, "1", "NumPy", Batch(fns[kind], args, target),
                              lambda f=fns[kind], a=args: flat_arrays(f(*a)))
    return out


def _generated(backend: str, n: int, x, v, target: float, vector: bool = False) -> tuple[dict, float | None]:
    """The straight-line program of n scalars through at(), or (`vector`) the tensor
    expression of one vector x through the ordinary call."""
    label = (f"generated {'C' if backend == 'c' else 'NumPy'}, "
             + ("vector x, call" if vector else "n scalars, at()"))
    t0 = time.perf_counter()
    try:
        if vector:
            made = {kind: COMPILE[kind](rosenbrock.VECTOR, backend=backend, shapes={"x": ("n",)})
                    for kind in KINDS}
        else:
            program = rosenbrock.program(n)
            made = {kind: COMPILE[kind](program, backend=backend).at for kind in KINDS}
    except CompileError as e:
        return {kind: Candidate(label, "1", "NumPy", missing=e.one_line()) for kind in KINDS}, None
    return _local(label, made, x, v, target), time.perf_counter() - t0


# ---- JAX, in a worker process pinned to the row's CPUs ----

def jax_setup(sizes: list, target: float) -> tuple:
    """jit the three functions for every size and register them (remote.register) under
    ("hvp", n, kind); returns (description, {n: jit seconds})."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    f = jax.jit(lambda x: rosenbrock.formula(jnp, x))
    vg = jax.jit(jax.value_and_grad(lambda x: rosenbrock.formula(jnp, x)))

    @jax.jit
    def hvp(x, v):
        (y, g), (_, hv) = jax.jvp(jax.value_and_grad(lambda z: rosenbrock.formula(jnp, z)), (x,), (v,))
        return y, g, hv
    fns = {"value": lambda x, v: jax.block_until_ready(f(x)),
           "grad": lambda x, v: jax.block_until_ready(vg(x)),
           "hvp": lambda x, v: jax.block_until_ready(hvp(x, v))}
    builds = {}
    for n in sizes:
        x, v = (jax.device_put(a) for a in rosenbrock.point(n))
        t0 = time.perf_counter()
        for kind in KINDS:
            fns[kind](x, v)  # trace + XLA compile for this shape
        builds[n] = time.perf_counter() - t0
        for kind in KINDS:
            remote.register(("hvp", n, kind), functools.partial(fns[kind], x, v),
                            Batch(fns[kind], (x, v), target))
    return (f"jax {jax.__version__} ({jax.devices()[0].platform}); pinned to "
            f"{len(os.sched_getaffinity(0))} CPU(s)", builds)


def _jax_workers(threads: list[int], sizes, target: float) -> dict:
    """{threads: (Worker or None, description or why missing, {n: jit seconds})}."""
    out = {}
    for t in threads:
        w, got = remote.start("jax", t, f"{__name__}.jax_setup", list(sizes), target)
        out[t] = (w, *got) if w is not None else (None, got, {})
    return out


# ---- the suite ----

def run(threads: list[int], repeat: int, quick: bool) -> SuiteResult:
    sizes = QUICK_SIZES if quick else SIZES
    target = QUICK_TARGET if quick else TARGET
    rows = []      # (n, label, thr, {kind: Candidate}, build seconds or None)
    jax = _jax_workers(threads, sizes, target)
    try:
        for n in sizes:
            x, v = rosenbrock.point(n)
            for backend, vector in (("c", False), ("c", True), ("numpy", False), ("numpy", True)):
                cands, build = _generated(backend, n, x, v, target, vector)
                rows.append((n, cands["value"].label, "1", cands, build))
            hand = {"value": rosenbrock.value, "grad": rosenbrock.grad, "hvp": rosenbrock.hvp}
            rows.append((n, REFERENCE, "1", _local(REFERENCE, hand, x, v, target), None))
            for t, (w, info, builds) in jax.items():
                cands = {kind: remote.candidate((w, info), ("hvp", n, kind), JAX, t, "NumPy")
                         for kind in KINDS}
                rows.append((n, JAX, str(t), cands, builds.get(n)))
        groups = [[row[3][kind] for row in rows if row[0] == n] for n in sizes for kind in KINDS]
        times, errors = run_interleaved(groups, repeat, labelled(REFERENCE))
    finally:
        for w, _, _ in jax.values():
            if w is not None:
                w.close()
    notes = [f"chained Rosenbrock, one point (x in [−1, 1]ⁿ, v normal), n = "
             f"{', '.join(map(str, sizes))}; median and min–max of {repeat} interleaved rounds "
             f"after a warm-up, each round a batch of calls filling ~{1e3 * target:g} ms; "
             f"times in µs per call",
             "generated C and NumPy, hand-written NumPy: one point runs on 1 thread (the C "
             "kernel's one-point entry has no OpenMP loop)",
             *(f"JAX on {t} CPU(s): {info}" for t, (_, info, _) in jax.items())]
    return _result(rows, times, errors, notes)


def _result(rows, times, errors, notes) -> SuiteResult:
    ref = {n: times[id(c["hvp"])].median for n, label, _, c, _ in rows
           if label == REFERENCE and id(c["hvp"]) in times}
    records, table, bars = [], [], []
    for n, label, thr, cands, build in rows:
        missing = next((c.missing for c in cands.values() if c.missing), "")
        rec = {"n": n, "implementation": label, "threads": thr, "missing": missing}
        if missing:
            records.append(rec)
            table.append([str(n), label, thr, missing])
            continue
        t = {kind: times[id(cands[kind])] for kind in KINDS}
        rec.update({kind: t[kind].as_dict() for kind in KINDS})
        rec.update(calls_per_batch={kind: cands[kind].run.calls for kind in KINDS
                                    if isinstance(cands[kind].run, Batch)},
                   grad_over_value=t["grad"].median / t["value"].median,
                   hvp_over_value=t["hvp"].median / t["value"].median,
                   ratio_to_reference=t["hvp"].median / ref[n] if n in ref else None,
                   reference=REFERENCE,
                   max_rel_error=max(errors[id(cands[kind])] for kind in KINDS),
                   build_s=build)
        records.append(rec)
        table.append([str(n), label, thr, us(t["value"].median), us(t["grad"].median),
                      us(t["hvp"].median), span(t["hvp"], us),
                      ratio(rec["grad_over_value"]), ratio(rec["hvp_over_value"]),
                      ratio(rec["ratio_to_reference"]), err(rec["max_rel_error"]),
                      "–" if build is None else f"{build:.2f}"])
        if rec["ratio_to_reference"]:
            bars.append((f"n = {n}: {label} ({thr} thr)", rec["ratio_to_reference"]))
    legend = [
        "value, v+g, v+g+HVP µs: medians per call of f(x), (f, ∇f)(x), (f, ∇f, ∇²f·v)(x, v); "
        "min–max: of v+g+HVP",
        "(v+g)/v, (v+g+HVP)/v: those times over the value's, for the same implementation",
        f"× ref: v+g+HVP time / the {REFERENCE}'s at the same n",
        f"max rel err: largest |result − {REFERENCE}| / max(1, |{REFERENCE}|) over value, "
        "gradient and HVP of the three calls",
        "build s: compile_expr + compile_grad + compile_hvp (C: from the kernel cache when it "
        "is warm), or JAX's trace + XLA compile of the three (their first calls)",
    ]
    return SuiteResult("hvp", notes, ["n", "implementation", "thr", "value µs", "v+g µs",
                                      "v+g+HVP µs", "min–max", "(v+g)/v", "(v+g+HVP)/v",
                                      "× ref", "max rel err", "build s"],
                       table, records, legend, bars)
