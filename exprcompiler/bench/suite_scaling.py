"""The `scaling` suite: from expression text to a ready-to-call NumPy gradient at
10 … 10⁶ operations, stage by stage (trace, passes, source, load), the C compile apart,
and the gradient trace's size against the function's; beside it sympy.diff +
sympy.cse and JAX's trace + compile of the same function.

Two families: random DAGs with shared subexpressions (randexpr.random_program),
and deep compositions t_k = sin(x·t_{k-1})·exp(−t_{k-1}²), whose symbolic
derivative swells with the depth. SymPy, JAX and the C compiler run in worker
processes stopped after a time cap, shown as "> cap"; once a tool passes the cap
on a family, its larger sizes are skipped.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

from ..backends import numpy_backend
from ..frontend import to_trace
from ..passes import grad_reverse
from ..randexpr import random_program
from .competitors import installed
from .report import SuiteResult, err, ms
from .runner import flat_arrays, rel_error
from .worker import JobError, JobTimeout, Worker

SIZES, QUICK_SIZES = (10, 100, 1_000, 10_000, 100_000, 1_000_000), (10, 30)
CAP, QUICK_CAP = 60.0, 10.0


def deep_program(n_ops: int) -> str:
    """t_k = sin(x·t_{k-1})·exp(−t_{k-1}²), about 6 operations a level; values stay in [−1, 1]."""
    lines = ["t0 = x * y"]
    levels = max(1, round(n_ops / 6))
    lines += [f"t{k} = sin(x * t{k - 1}) * exp(-t{k - 1}**2)" for k in range(1, levels + 1)]
    return "\n".join(lines + [f"t{levels}"])


def random_dag(n_ops: int, seed: int = 1) -> str:
    """A random DAG of about `n_ops` operations (randexpr.random_program: ~2.1 a statement)."""
    return random_program(max(1, int(n_ops / 2.1)), seed=seed)


FAMILIES = {
    "random DAG": random_dag,
    "deep": deep_program,
}


def _point(names) -> list[float]:
    rng = np.random.default_rng(3)
    return [float(v) for v in rng.uniform(0.2, 0.9, len(names))]


# ---- jobs, run in worker processes ----

def sympy_job(program: str, names: list, point: list) -> tuple:
    import sympy

    from ..trace.to_sympy import to_sympy
    expr, = to_sympy(to_trace(program))
    by_name = {s.name: s for s in expr.free_symbols}  # the bridge's symbols (with assumptions)
    syms = [by_name.get(n, sympy.Symbol(n)) for n in names]
    t0 = time.perf_counter()
    grads = [sympy.diff(expr, s) for s in syms]
    t1 = time.perf_counter()
    sympy.cse(grads)
    t2 = time.perf_counter()
    values = sympy.lambdify(syms, [expr, grads], "math", cse=True)(*point)
    return t1 - t0, t2 - t1, flat_arrays(values)


def jax_job(program: str, point: list) -> tuple:
    """jit(value_and_grad) of the function, traced and compiled for a point. The
    function is the generated NumPy code of the *primal* trace run on jax.numpy
    (our own generated source, executed as numpy_backend.load does)."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    source, _ = numpy_backend.generate(to_trace(program), func_name="f")
    body = "\n".join(ln for ln in source.splitlines() if not ln.startswith(("import ", "from ")))
    namespace = {"np": jnp, "sigmoid": jax.nn.sigmoid, "softplus": jax.nn.softplus,
                 "relu": jax.nn.relu, "xlogy": jax.scipy.special.xlogy}
    exec(compile(body, "<exprc bench jax>", "exec"), namespace)
    args = [jnp.float64(v) for v in point]
    t0 = time.perf_counter()
    compiled = jax.jit(jax.value_and_grad(namespace["f"], argnums=tuple(range(len(args))))
                       ).lower(*args).compile()
    dt = time.perf_counter() - t0
    return dt, flat_arrays(jax.device_get(compiled(*args)))


def c_job(program: str, point: list) -> tuple:
    """A cold compile of the gradient kernel (a fresh cache in this worker): wall
    seconds, the values, and the compiler's CPU seconds (user + sys of its processes,
    which a shared machine inflates less than the wall time)."""
    import resource

    from .. import compile_grad
    from ..api import describe, kind_trace
    from ..backends import c_backend, c_build

    os.environ["EXPRCOMPILER_CACHE"] = tempfile.mkdtemp(prefix="exprc-bench-")
    primal, _, trace, what = kind_trace("grad", program)
    source, _ = c_backend.generate_c(trace, func_name="f_grad", description=describe(what, primal))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    c_build.build(source)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return dt, flat_arrays(compile_grad(program, backend="c")(*point)), {"cpu_s": cpu}


# ---- the suite ----

def _ours(program: str, reps: int):
    """Median seconds of each stage, the traces, and the ready gradient function."""
    stages = {"trace": [], "passes": [], "source": [], "load": []}
    for _ in range(reps):
        t0 = time.perf_counter()
        primal = to_trace(program)
        t1 = time.perf_counter()
        grad = grad_reverse(primal)
        t2 = time.perf_counter()
        source, _, statements = numpy_backend.generated(grad, func_name="f_grad")
        t3 = time.perf_counter()
        fn = numpy_backend.load(source, "f_grad", program=statements)
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[key].append(dt)
    return {k: statistics.median(v) for k, v in stages.items()}, primal, grad, fn


class _Tool:
    """One outside tool: its worker, and the families on which it passed the cap."""

    def __init__(self, name: str, job: str, cap: float, missing: str = ""):
        self.name, self.job, self.cap, self.missing = name, job, cap, missing
        self.worker = Worker()
        self.over: set = set()

    def run(self, family: str, *args) -> dict:
        if self.missing:
            return {"status": self.missing}
        if family in self.over:
            return {"status": "skipped"}
        try:
            *times, values = self.worker.call(self.job, *args, timeout=self.cap)
            extra = {}
            if isinstance(values, dict):  # (times..., values, {more numbers})
                *times, values, extra = times + [values]
        except JobTimeout:
            self.over.add(family)
            return {"status": f"> {self.cap:g} s"}
        except (JobError, ImportError) as e:
            return {"status": f"failed ({e})"}
        return {"status": "ok", "seconds": sum(times), "parts_s": times, "values": values, **extra}


def run(threads: list[int], repeat: int, quick: bool) -> SuiteResult:
    from ..backends import c_build
    from ..errors import CompileError

    cap = QUICK_CAP if quick else CAP
    try:
        c_build.find_compiler()
        no_cc = ""
    except CompileError:
        no_cc = "no C compiler"
    tools = [_Tool("C compile", f"{__name__}.c_job", cap, no_cc),
             _Tool("SymPy", f"{__name__}.sympy_job", cap),
             _Tool("JAX", f"{__name__}.jax_job", cap, "" if installed("jax") else "not installed")]
    records, table, bars = [], [], []
    try:
        for family, make in FAMILIES.items():
            for size in QUICK_SIZES if quick else SIZES:
                program = make(size)
                stages, primal, grad, fn = _ours(program, 3 if size <= 10_000 else 1)
                names = list(grad.input_names)
                point = _point(names)
                want = flat_arrays(fn(*point))
                total = sum(stages.values())
                rec = {"family": family, "target_ops": size, "ops": primal.size,
                       "grad_ops": grad.size, "stages_s": stages, "total_s": total}
                c, sym, jx = (tools[0].run(family, program, point),
                              tools[1].run(family, program, names, point),
                              tools[2].run(family, program, point))
                for key, res in (("c_compile", c), ("sympy", sym), ("jax", jx)):
                    values = res.pop("values", None)
                    if values is not None:
                        res["max_rel_error"] = rel_error(values, want)
                        res["ratio_to_ours"] = res["seconds"] / total
                    rec[key] = res
                records.append(rec)
                table.append(_cells(rec))
                for key, tool in (("sympy", "SymPy"), ("jax", "JAX")):
                    if "ratio_to_ours" in rec[key]:
                        bars.append((f"{family} {primal.size} ops: {tool}", rec[key]["ratio_to_ours"]))
    finally:
        for t in tools:
            t.worker.close()
    notes = [f"expression text -> ready-to-call NumPy gradient (reverse mode), median of "
             f"3 runs (1 above 10⁴ ops); outside tools capped at {cap:g} s each; "
             f"times in ms"]
    legend = [
        "ops: operations in the function's trace; grad ops (×): in the gradient trace, and / ops",
        "trace: parse + trace + shared sums; passes: reverse-mode pass; source: NumPy source; "
        "load: numpy_backend.load of it: Python's compile() up to numpy_backend.TIER_FROM named variables, "
        "above that a statement program (compiled on use after ~70 calls on small arrays, never on large ones: numpy_tier, not in this figure); "
        "total: the four; µs/op: total / ops (flat when linear)",
        "C: cold compile of the gradient's C kernel (fresh cache), apart from total: wall ms "
        "(C compiler CPU ms: user + sys of its processes, parts compiled in parallel)",
        "SymPy: sympy.diff for every input + sympy.cse; JAX: jit(value_and_grad) trace + "
        "XLA compile; ×: that time / total",
        "max err: largest relative difference (denominator ≥ 1) of value and gradient at one "
        "point from the generated NumPy gradient's, over C, SymPy and JAX",
    ]
    return SuiteResult("scaling", notes, ["family", "ops", "grad ops (×)", "trace ms", "passes ms",
                                          "source ms", "load ms", "total ms", "µs/op", "C ms", "SymPy ms",
                                          "×", "JAX ms", "×", "max err"],
                       table, records, legend, bars)


def _cells(rec: dict) -> list[str]:
    st = rec["stages_s"]

    def tool(key):
        res = rec[key]
        if res["status"] != "ok":
            return [res["status"], ""] if key != "c_compile" else [res["status"]]
        shown = [ms(res["seconds"])]
        if key == "c_compile":
            return [f"{shown[0]} ({ms(res['cpu_s'])})" if "cpu_s" in res else shown[0]]
        return shown + [f"{res['ratio_to_ours']:.3g}"]
    errs = [rec[k]["max_rel_error"] for k in ("c_compile", "sympy", "jax") if "max_rel_error" in rec[k]]
    return [rec["family"], f"{rec['ops']:,}", f"{rec['grad_ops']:,} ({rec['grad_ops'] / rec['ops']:.2f})",
            ms(st["trace"]), ms(st["passes"]), ms(st["source"]), ms(st["load"]),
            ms(rec["total_s"]),
            f"{1e6 * rec['total_s'] / rec['ops']:.0f}", *tool("c_compile"), *tool("sympy"),
            *tool("jax"), err(max(errs)) if errs else "–"]
