"""Benchmark of the spine: compile time at scale and NumPy speed against hand-written code.

    python benchmarks/bench_spine.py [--points 1000000] [--repeat 15] [--ops 10000]

1. Expression -> ready gradient source for a random DAG (parse, trace, reverse
   pass, NumPy source), side by side with sympy.diff + sympy.cse on the same
   function (run in a subprocess, capped by --sympy-timeout).
2. The Griewank function's value and gradient at --points points: generated
   NumPy (the bare generated function, and the compiled call, which evaluates
   large batches in cache-sized blocks) against a careful hand-written NumPy
   gradient (whole arrays, and in the same blocks), run interleaved (A B C ...)
   after warm-up; medians and ratios. NumPy runs these elementwise ops on one
   thread.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

import numpy as np

from exprcompiler import compile_expr, compile_grad
from exprcompiler.backends.numpy_backend import _blocked
from exprcompiler.errors import CompileError
from exprcompiler.backends.numpy_backend import generate
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import random_program

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"


def griewank_value(x1, x2):
    q = x1 / x2
    d = q - np.exp(x2)
    return (np.sin(q) + d) * d


def griewank_grad(x1, x2):
    """Hand-written value and gradient: y = (sin q + d)·d, q = x1/x2, d = q − e^x2."""
    q = x1 / x2
    e = np.exp(x2)
    d = q - e
    a = np.sin(q) + d
    y = a * d
    gd = a + d                      # ∂y/∂d with sin q held
    gq = d * np.cos(q) + gd         # ∂y/∂q
    gx1 = gq / x2
    gx2 = -(gq * q / x2 + gd * e)
    return y, gx1, gx2


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def interleaved(cands: dict, args, repeat: int) -> dict[str, list[float]]:
    for fn in cands.values():  # warm-up
        fn(*args)
    times = {name: [] for name in cands}
    for _ in range(repeat):
        for name, fn in cands.items():
            times[name].append(_timed(fn, *args))
    return times


def bench_speed(points: int, repeat: int) -> None:
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(0.5, 2.0, points), rng.uniform(0.5, 2.0, points)
    g = compile_grad(GRIEWANK)
    f = compile_expr(GRIEWANK)
    gen_value, gen_grad = f._fn, g._fn
    ref = griewank_grad(x1, x2)
    out = gen_grad(x1, x2)
    err = max(float(np.max(np.abs(a - b) / np.maximum(1, np.abs(b))))
              for a, b in zip((out[0], *out[1]), ref))
    def blocked(fn):  # the same blocking the compiled wrapper applies
        return lambda a, b: _blocked(fn, [a, b], a.shape)

    cands = {"hand-written value": griewank_value, "generated value": gen_value,
             "hand-written value+grad": griewank_grad, "generated value+grad": gen_grad,
             "compile_expr call (blocked)": f, "compile_grad call (blocked)": g,
             "hand-written value+grad, blocked": blocked(griewank_grad)}
    try:  # the C backend, when a compiler is there
        for th in (1, 2):
            cands[f"C backend value, threads={th}"] = compile_expr(GRIEWANK, backend="c", threads=th)
            cands[f"C backend value+grad, threads={th}"] = compile_grad(GRIEWANK, backend="c", threads=th)
    except CompileError as err:
        print(f"(C backend skipped: {err.one_line()})")
    times = interleaved(cands, (x1, x2), repeat)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nGriewank function at {points:,} points, NumPy {np.__version__} (1 thread; the C "
          f"backend with the threads shown), median of {repeat} interleaved runs")
    print(f"{'implementation':44s} {'median ms':>10s} {'min ms':>8s} {'max ms':>8s}")
    for k, v in times.items():
        print(f"{k:44s} {1e3 * med[k]:10.2f} {1e3 * min(v):8.2f} {1e3 * max(v):8.2f}")
    print(f"generated / hand-written (value+grad):        {med['generated value+grad'] / med['hand-written value+grad']:.2f}x")
    print(f"generated / hand-written (value):             {med['generated value'] / med['hand-written value']:.2f}x")
    print(f"(value+grad) / value, generated:              {med['generated value+grad'] / med['generated value']:.2f}x")
    print(f"(value+grad) / value, hand-written:           {med['hand-written value+grad'] / med['hand-written value']:.2f}x")
    print(f"compile_grad call / hand-written (unblocked): {med['compile_grad call (blocked)'] / med['hand-written value+grad']:.2f}x")
    print(f"compile_grad call / hand-written (blocked):   {med['compile_grad call (blocked)'] / med['hand-written value+grad, blocked']:.2f}x")
    print(f"(value+grad) / value, compile_* calls:        {med['compile_grad call (blocked)'] / med['compile_expr call (blocked)']:.2f}x")
    print(f"max relative difference generated vs hand-written: {err:.1e}")


def _sympy_job(program: str, queue) -> None:
    import sympy
    from exprcompiler.trace.to_sympy import to_sympy
    expr, = to_sympy(to_trace(program))
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    t0 = time.perf_counter()
    grads = [sympy.diff(expr, s) for s in syms]
    t1 = time.perf_counter()
    sympy.cse(grads)
    queue.put((t1 - t0, time.perf_counter() - t1))


def bench_compile(n_ops: int, sympy_timeout: float) -> None:
    program = random_program(int(n_ops / 2.1), seed=1)
    t0 = time.perf_counter()
    trace = to_trace(program)
    t1 = time.perf_counter()
    grad = grad_reverse(trace)
    t2 = time.perf_counter()
    source, _ = generate(grad, func_name="f_grad")
    t3 = time.perf_counter()
    print(f"\nRandom DAG: {trace.size:,} operations, {len(trace.inputs)} inputs; "
          f"gradient trace {grad.size:,} operations ({grad.size / trace.size:.2f}x), "
          f"{source.count(chr(10)):,} lines of NumPy")
    print(f"{'stage':40s} {'seconds':>9s}")
    for name, dt in (("parse + trace + share sums", t1 - t0), ("reverse pass", t2 - t1),
                     ("NumPy source", t3 - t2), ("total", t3 - t0)):
        print(f"{name:40s} {dt:9.3f}")
    queue = mp.Queue()
    proc = mp.Process(target=_sympy_job, args=(program, queue))
    proc.start()
    proc.join(sympy_timeout)
    if proc.is_alive():
        proc.terminate()
        print(f"{'sympy.diff + sympy.cse':40s} > {sympy_timeout:.0f} s (stopped); ratio > "
              f"{sympy_timeout / (t3 - t0):.0f}x")
    else:
        d, c = queue.get()
        print(f"{'sympy.diff':40s} {d:9.3f}\n{'sympy.cse':40s} {c:9.3f}   ratio "
              f"{(d + c) / (t3 - t0):.1f}x")


def bench_linearity(n_ops: int) -> None:
    """Time per operation of expression -> gradient source at growing sizes: flat
    when every stage is linear."""
    print("\nExpression -> NumPy gradient source, time per operation (linear when flat)")
    print(f"{'operations':>10s} {'seconds':>9s} {'µs/op':>7s}")
    for frac in (0.25, 0.5, 1.0, 2.0):
        program = random_program(int(frac * n_ops / 2.1), seed=2)
        t0 = time.perf_counter()
        trace = to_trace(program)
        generate(grad_reverse(trace), func_name="f_grad")
        dt = time.perf_counter() - t0
        print(f"{trace.size:10,d} {dt:9.3f} {1e6 * dt / trace.size:7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--ops", type=int, default=10_000)
    ap.add_argument("--sympy-timeout", type=float, default=60.0)
    args = ap.parse_args()
    bench_compile(args.ops, args.sympy_timeout)
    bench_linearity(args.ops)
    bench_speed(args.points, args.repeat)


if __name__ == "__main__":
    main()
