"""Benchmark of second order: the chained Rosenbrock function in n = 10, 100, 1000
variables, at one point, through `Compiled.at` (the variables packed in a vector).

    python benchmarks/bench_hvp.py [--sizes 10 100 1000] [--repeat 9] [--no-jax]

For each n: time of the value, value + gradient, and value + gradient + HVP, for the
C and NumPy backends, a hand-written vectorized NumPy version (gradient and HVP from
the formulas), and JAX jit(value_and_grad) / jit(jvp(grad)) when importable; the
ratios (value + gradient + HVP) / value; the compile time of each kernel. The whole
process is pinned to one CPU, and XLA is told to use one thread, so every
competitor runs on one core. Candidates run interleaved (A B C ...); each figure is
the median over rounds of the mean of a batch of calls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402

from exprcompiler import compile_expr, compile_grad, compile_hvp  # noqa: E402
from exprcompiler.errors import CompileError  # noqa: E402


def rosenbrock_text(n: int) -> str:
    return " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(1, n))


def hand_value(x):
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def hand_grad(x):
    d = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * d - 2 * (1 - x[:-1])
    g[1:] += 200 * d
    return float(np.sum(100 * d ** 2 + (1 - x[:-1]) ** 2)), g


def hand_hvp(x, v):
    value, g = hand_grad(x)
    diag = np.zeros_like(x)
    diag[:-1] = 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    diag[1:] += 200
    off = -400 * x[:-1]                       # H[i, i+1] = H[i+1, i]
    hv = diag * v
    hv[:-1] += off * v[1:]
    hv[1:] += off * v[:-1]
    return value, g, hv


def jax_candidates(n: int):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return {}
    jax.config.update("jax_enable_x64", True)

    def f(x):
        return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    value = jax.jit(f)
    vg = jax.jit(jax.value_and_grad(f))

    @jax.jit
    def hvp(x, v):
        (val, g), (_, hv) = jax.jvp(jax.value_and_grad(f), (x,), (v,))
        return val, g, hv
    return {"value": lambda x, v: value(x).block_until_ready(),
            "grad": lambda x, v: vg(x)[1].block_until_ready(),
            "hvp": lambda x, v: hvp(x, v)[2].block_until_ready(),
            "_check": lambda x, v: [np.asarray(a) for a in hvp(x, v)]}


def timed_batch(fn, x, v, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(x, v)
    return (time.perf_counter() - t0) / calls


def bench(n: int, repeat: int, use_jax: bool) -> None:
    text = rosenbrock_text(n)
    rng = np.random.default_rng(n)
    x, v = rng.uniform(-1, 1, n), rng.normal(size=n)
    cands: dict[str, dict] = {}
    compile_s: dict[str, float] = {}
    for backend in ("c", "numpy"):
        try:
            made = {}
            for kind, make in (("value", compile_expr), ("grad", compile_grad), ("hvp", compile_hvp)):
                t0 = time.perf_counter()
                made[kind] = make(text, backend=backend)
                compile_s[f"{backend} {kind}"] = time.perf_counter() - t0
        except CompileError as err:
            print(f"(C backend skipped: {err.one_line()})")
            continue
        cands[f"generated {'C' if backend == 'c' else 'NumPy'}"] = {
            "value": lambda x, v, f=made["value"]: f.at(x),
            "grad": lambda x, v, g=made["grad"]: g.at(x),
            "hvp": lambda x, v, h=made["hvp"]: h.at(x, v),
            "_check": lambda x, v, h=made["hvp"]: h.at(x, v)}
    cands["hand-written NumPy"] = {"value": lambda x, v: hand_value(x), "grad": lambda x, v: hand_grad(x),
                                   "hvp": hand_hvp, "_check": hand_hvp}
    if use_jax:
        jc = jax_candidates(n)
        if jc:
            cands["JAX jit"] = jc
    ref = hand_hvp(x, v)
    worst = {}
    for name, c in cands.items():
        got = c["_check"](x, v)
        worst[name] = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.maximum(1, np.abs(b))))
                          for a, b in zip(got, ref))
    calls = max(3, int(20000 / n))
    runs = [(name, kind) for name in cands for kind in ("value", "grad", "hvp")]
    for name, kind in runs:  # warm-up (JIT compilation, caches)
        timed_batch(cands[name][kind], x, v, 3)
    times = {r: [] for r in runs}
    for _ in range(repeat):
        for r in runs:
            times[r].append(timed_batch(cands[r[0]][r[1]], x, v, calls))
    med = {r: statistics.median(t) for r, t in times.items()}
    print(f"\nchained Rosenbrock, n = {n}: one point, median of {repeat} rounds of {calls} calls, "
          f"1 CPU (process pinned), microseconds per call")
    print(f"{'implementation':22s} {'value':>10s} {'value+grad':>11s} {'+HVP':>10s} "
          f"{'(v+g+HVP)/v':>12s} {'max rel err':>12s}")
    for name in cands:
        v_, g_, h_ = (1e6 * med[name, k] for k in ("value", "grad", "hvp"))
        print(f"{name:22s} {v_:10.2f} {g_:11.2f} {h_:10.2f} {h_ / v_:12.2f} {worst[name]:12.1e}")
    if "JAX jit" in cands and "generated C" in cands:
        print("JAX / generated C:  " + ", ".join(
            f"{k} {med['JAX jit', k] / med['generated C', k]:.1f}x" for k in ("value", "grad", "hvp")))
    print("compile (s): " + ", ".join(f"{k} {t:.2f}" for k, t in compile_s.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--no-jax", action="store_true")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    try:
        import jax
        jax_note = f"JAX {jax.__version__} (XLA_FLAGS={os.environ['XLA_FLAGS']})"
    except ImportError:
        jax_note = "JAX not installed"
    print(f"NumPy {np.__version__}; {jax_note}; C kernels called with threads=1 at one point")
    for n in args.sizes:
        bench(n, args.repeat, not args.no_jax)


if __name__ == "__main__":
    main()
