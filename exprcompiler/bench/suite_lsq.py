"""The `lsq` suite: the gradient of ½‖Xw − y‖² at X 500×100 and 5000×1000 (200×50 with
--quick), and 500 gradient-descent steps at the first size.

Gradient competitors: the hand-written NumPy `X.T @ (X @ w - y)` (the reference:
ratios are taken to it), the hand-written value + gradient `r = X @ w - y;
(0.5 * r @ r, X.T @ r)` (what the generated function computes; agreement is checked
against it), the generated NumPy and C functions of compile_grad(LOSS, wrt=["w"],
shapes=...) called by name, g(X=X, w=w, y=y), and in order (the rows "…, g(X, w, y)"),
and JAX jit(value_and_grad) and PyTorch autograd in workers pinned to the row's CPUs,
when importable.

Gradient descent: w ← w − 10⁻⁴ ∇f(w) from the same start, 500 times, with the
generated NumPy and C gradients against the hand-written one; the final w must agree.

Threads: NumPy's BLAS count is set per row (runner.BlasThreads), generated C gets
`threads=`, JAX and PyTorch run pinned to that many CPUs (PyTorch also
torch.set_num_threads). A gradient call takes microseconds, so a timed sample is a
batch of calls (runner.Batch); a descent is one sample.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import compile_grad
from ..errors import CompileError
from . import remote
from .report import SuiteResult, err, ratio, span, us
from .runner import Batch, BlasThreads, Candidate, flat_arrays, labelled, local, ratio_to, run_interleaved

LOSS = "0.5 * sum((X @ w - y)**2)"
SIZES, QUICK_SIZES = ((500, 100), (5000, 1000)), ((200, 50),)
TARGET, QUICK_TARGET = 0.02, 0.002          # seconds of calls in one timed batch
STEPS, STEP = 500, 1e-4
REFERENCE = "hand-written NumPy, X.T @ (X @ w - y)"
AGREEMENT = "hand-written NumPy, value + gradient"
GD_REFERENCE = "hand-written NumPy loop"
JAX, TORCH = "JAX jit(value_and_grad)", "PyTorch autograd"
GRADIENT, DESCENT = "gradient", f"{STEPS} GD steps"
ALONE = "  only the generated"
POSITIONAL = ", g(X, w, y)"   # the rows without it call by name: g(X=X, w=w, y=y)


def problem(n: int, p: int) -> tuple:
    """Seeded X (n, p), w (p,), y (n,), the same in every process."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, p)), rng.normal(size=p), rng.normal(size=n)


def shapes(p: int) -> dict:
    return {"X": ("n", p), "w": (p,), "y": ("n",)}


def grad(X, w, y):
    return X.T @ (X @ w - y)


def value_and_grad(X, w, y):
    r = X @ w - y
    return 0.5 * (r @ r), X.T @ r


def descend(gradient, X, w, y):
    """STEPS steps of w ← w − STEP ∇f(w), with `gradient(X, w, y) -> ∇f`."""
    for _ in range(STEPS):
        w = w - STEP * gradient(X, w, y)
    return w


def _generated_gradient(g):
    """The compiled function as a gradient-only callable: (value, (dw,)) -> dw."""
    return lambda X, w, y: g(X=X, w=w, y=y)[1][0]


# ---- JAX and PyTorch, in worker processes pinned to the row's CPUs ----

def jax_setup(sizes: list, target: float, threads: int) -> str:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    vg = jax.jit(jax.value_and_grad(lambda w, X, y: 0.5 * jnp.sum((X @ w - y) ** 2)))

    def call(w, X, y):
        return jax.block_until_ready(vg(w, X, y))
    for n, p in sizes:
        X, w, y = (jax.device_put(a) for a in problem(n, p))
        call(w, X, y)  # trace + XLA compile for this shape
        remote.register(("lsq", n, p), functools.partial(call, w, X, y), Batch(call, (w, X, y), target))
    return remote.pinned(f"jax {jax.__version__} ({jax.devices()[0].platform})")


def torch_setup(sizes: list, target: float, threads: int) -> str:
    import torch

    torch.set_num_threads(threads)
    for n, p in sizes:
        X, w, y = (torch.from_numpy(a) for a in problem(n, p))
        w.requires_grad_(True)

        def call(X=X, w=w, y=y):
            w.grad = None
            loss = 0.5 * torch.sum((X @ w - y) ** 2)
            loss.backward()
            return loss.item(), w.grad
        call()
        remote.register(("lsq", n, p), call, Batch(call, (), target))
    return remote.pinned(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads")


TOOLS = {"jax": (JAX, f"{__name__}.jax_setup"), "torch": (TORCH, f"{__name__}.torch_setup")}


# ---- the suite ----

def _batched(label: str, thr: str, fn, target: float) -> Candidate:
    """A candidate timing fn() in batches of calls."""
    return Candidate(label, thr, "", Batch(fn, (), target), lambda: flat_arrays(fn()))


def _alone(g, data):
    """The generated function itself, called with the arrays in its parameter order."""
    return _positional(g, data, g.function)


def _positional(g, data, fn=None):
    """`fn` (the compiled function g itself by default) with the arrays in g's input order."""
    named = dict(zip("Xwy", data))
    return functools.partial(g if fn is None else fn, *(named[k] for k in g.inputs))


def _compile_c(p: int, t: int):
    """The generated C function on `t` threads, or why there is none (a string)."""
    try:
        return compile_grad(LOSS, wrt=["w"], shapes=shapes(p), backend="c", threads=t)
    except CompileError as e:
        return e.one_line()


def _gradient_rows(size, data, t, blas: BlasThreads, gen_np, gen_c, workers, target) -> list:
    X, w, y = data
    thr = blas.label(t)
    ref = _batched(REFERENCE, thr, functools.partial(grad, *data), target)
    # the reference computes no value: its agreement check takes the value from the formula
    ref.result = lambda: flat_arrays((0.5 * np.sum((X @ w - y) ** 2), grad(*data)))
    rows = [blas.wrap(t, c) for c in (
        ref,
        _batched(AGREEMENT, thr, functools.partial(value_and_grad, *data), target),
        _batched("generated NumPy", thr, functools.partial(gen_np, X=X, w=w, y=y), target),
        _batched(f"generated NumPy{POSITIONAL}", thr, _positional(gen_np, data), target))]
    rows.append(Candidate("generated C", str(t), missing=gen_c) if isinstance(gen_c, str) else
                _batched("generated C", str(t), functools.partial(gen_c, X=X, w=w, y=y), target))
    if not isinstance(gen_c, str):
        rows.append(_batched(f"generated C{POSITIONAL}", str(t), _positional(gen_c, data), target))
    # the generated functions alone, without the call's argument binding and shape checks
    # (Compiled.__call__): where the time of small problems goes
    rows.append(blas.wrap(t, _batched(f"{ALONE} NumPy function", thr, _alone(gen_np, data), target)))
    if not isinstance(gen_c, str):
        rows.append(_batched(f"{ALONE} C function", str(t), _alone(gen_c, data), target))
    rows += [remote.candidate(workers[package, t], ("lsq", *size), label, t)
             for package, (label, _) in TOOLS.items()]
    return rows


def _descent_rows(data, t, blas: BlasThreads, gen_np, gen_c) -> list:
    thr = blas.label(t)
    rows = [blas.wrap(t, local(GD_REFERENCE, thr, "", descend, grad, *data)),
            blas.wrap(t, local("generated NumPy loop", thr, "", descend, _generated_gradient(gen_np), *data))]
    rows.append(Candidate("generated C loop", str(t), missing=gen_c) if isinstance(gen_c, str) else
                local("generated C loop", str(t), "", descend, _generated_gradient(gen_c), *data))
    return rows


def run(threads: list[int], repeat: int, quick: bool) -> SuiteResult:
    sizes = QUICK_SIZES if quick else SIZES
    target = QUICK_TARGET if quick else TARGET
    blas = BlasThreads()
    groups = {}     # (size, task) -> [Candidate], in row order
    workers = remote.start_each(threads, {k: setup for k, (_, setup) in TOOLS.items()},
                                list(sizes), target)
    try:
        for size in sizes:
            data = problem(*size)
            gen_np = compile_grad(LOSS, wrt=["w"], shapes=shapes(size[1]))
            for t in threads:
                gen_c = _compile_c(size[1], t)
                groups.setdefault((size, GRADIENT), []).extend(
                    _gradient_rows(size, data, t, blas, gen_np, gen_c, workers, target))
                if size == sizes[0]:
                    groups.setdefault((size, DESCENT), []).extend(_descent_rows(data, t, blas, gen_np, gen_c))
        times, errors = run_interleaved(list(groups.values()), repeat, labelled(AGREEMENT, GD_REFERENCE))
    finally:
        remote.close_each(workers)
    notes = [f"½‖Xw − y‖², X, w, y normal (seed 0); median and min–max of {repeat} interleaved "
             f"rounds after a warm-up, in µs; {GRADIENT}: per call, each sample a batch of calls "
             f"filling ~{1e3 * target:g} ms",
             f"{DESCENT}: w ← w − {STEP:g} ∇f(w) from the same w, µs per descent",
             blas.describe(),
             *(f"{TOOLS[package][0]} on {t} CPU(s): {info}" for (package, t), (_, info) in workers.items())]
    return _result(groups, times, errors, notes)


def _result(groups, times, errors, notes) -> SuiteResult:
    records, table, bars = [], [], []
    for (size, task), cands in groups.items():
        ref_label = REFERENCE if task == GRADIENT else GD_REFERENCE
        ref = {c.threads: times[id(c)].median for c in cands if c.label == ref_label}
        where = f"{size[0]}×{size[1]}"
        for c in cands:
            rec = {"size": list(size), "task": task, "implementation": c.label,
                   "threads": c.threads, "missing": c.missing}
            records.append(rec)
            if c.missing:
                table.append([where, task, c.label, c.threads, c.missing])
                continue
            tm = times[id(c)]
            rec.update(time=tm.as_dict(), reference=ref_label, max_rel_error=errors[id(c)],
                       ratio_to_reference=ratio_to(tm.median, ref, c.threads))
            if isinstance(c.run, Batch):
                rec["calls_per_batch"] = c.run.calls
            table.append([where, task, c.label, c.threads, us(tm.median), span(tm, us),
                          ratio(rec["ratio_to_reference"]), err(rec["max_rel_error"])])
            if rec["ratio_to_reference"]:
                bars.append((f"{where} {task}: {c.label} ({c.threads} thr)", rec["ratio_to_reference"]))
    legend = [
        "median µs, min–max: per gradient call, or per whole descent",
        f"'{ALONE.strip()} … function' rows: the generated function called directly, without the "
        "argument binding and shape checks of the compiled object's call",
        f"'generated …' rows call the compiled object by name, g(X=X, w=w, y=y); '…{POSITIONAL}' rows "
        "in its input order",
        f"× ref: time / the '{REFERENCE}' row's (descent: the '{GD_REFERENCE}' row's) at the same threads",
        f"max rel err: largest |result − '{AGREEMENT}'| / max(1, |…|) over value and gradient "
        f"(descent: final w against the '{GD_REFERENCE}')",
        "thr: BLAS threads for NumPy rows (env: as the environment set them), OpenMP threads for C, "
        "CPUs the worker is pinned to for JAX and PyTorch",
    ]
    return SuiteResult("lsq", notes, ["size", "task", "implementation", "thr", "median µs", "min–max",
                                      "× ref", "max rel err"], table, records, legend, bars)
