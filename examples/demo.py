"""The whole spine in one run, on the lecture notes' worked examples.

    python examples/demo.py

For each example: the evaluation trace with numbers, the reverse adjoint table,
the generated NumPy gradient, and three checks of the gradient (published
numbers, sympy.diff, central finite differences); then the same gradient on a
million points, generated NumPy and C against a hand-written NumPy gradient.
"""

from __future__ import annotations

import time

import numpy as np
import sympy

from exprcompiler import check_grad, compile_expr, compile_grad, to_trace
from exprcompiler.errors import CompileError
from exprcompiler.trace.to_sympy import to_sympy
from exprcompiler.cli import main as exprc

EXAMPLES = [
    # (expression, point, published numbers: value, gradient)
    ("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))", {"x1": 1.5, "x2": 0.5},
     (2.0167, (3.0118, -13.7239))),
    ("log(x1) + x1*x2 - sin(x2)", {"x1": 2.0, "x2": 5.0}, (11.652, (5.5, 1.716))),
    ("x**3 - 3*x", {"x": 1.0}, (-2.0, (0.0,))),
    ("(x**2 + 1)**2", {"x": 1.0}, (4.0, (8.0,))),
    ("exp(x*z) + x*z/log(x) + sin(log(x))/(x*z)", {"x": 2.0, "z": 3.0}, None),
]


def banner(text: str) -> None:
    print("\n" + "=" * 78 + f"\n{text}\n" + "=" * 78)


def sympy_gradient(expr: str, point: dict) -> list[float]:
    """sympy.diff of the same function (our trace, converted to SymPy)."""
    f, = to_sympy(to_trace(expr))
    symbols = {s.name: s for s in f.free_symbols}
    at = {symbols[k]: v for k, v in point.items() if k in symbols}
    return [float(sympy.diff(f, symbols[name]).subs(at)) if name in symbols else 0.0
            for name in point]


def show(expr: str, point: dict, published) -> None:
    banner(expr)
    at = ",".join(f"{k}={v}" for k, v in point.items())
    exprc(["trace", expr, "--at", at])
    g = compile_grad(expr)
    print("\ngenerated code (exprc grad):\n")
    print(g.source)
    value, grad = g(**point)
    print(f"value {value:.6f}   gradient {tuple(round(d, 6) for d in grad)}")
    if published is not None:
        pv, pg = published
        print(f"published          {pv}   {pg}")
    exact = sympy_gradient(expr, point)
    worst = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(grad, exact))
    print(f"vs sympy.diff: max relative difference {worst:.1e}")
    print(f"vs central finite differences (check_grad): {check_grad(expr, point):.1e}")


def speed() -> None:
    banner("Griewank's function at 10^6 points: generated NumPy and C vs hand-written NumPy")
    expr = EXAMPLES[0][0]
    g, f = compile_grad(expr), compile_expr(expr)
    try:  # the C backend, when the machine has a C compiler
        gc = {t: compile_grad(expr, backend="c", threads=t) for t in (1, 2)}
    except CompileError as err:
        print(f"(C backend skipped: {err.one_line()})")
        gc = {}
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(0.5, 2.0, 10**6), rng.uniform(0.5, 2.0, 10**6)

    def hand(x1, x2):
        q = x1 / x2
        e = np.exp(x2)
        d = q - e
        a = np.sin(q) + d
        gd = a + d
        gq = d * np.cos(q) + gd
        return a * d, (gq / x2, -(gq * q / x2 + gd * e))

    runs = {"generated value": lambda: f(x1, x2), "generated value+gradient": lambda: g(x1, x2),
            "hand-written value+gradient": lambda: hand(x1, x2)}
    outs = (np.empty(10**6), (np.empty(10**6), np.empty(10**6)))
    for t, c in gc.items():
        runs[f"generated C value+gradient, {t} thread{'s' if t > 1 else ''}"] = \
            lambda c=c: c(x1, x2, out=outs)
    times = {k: [] for k in runs}
    for _ in range(7):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        print(f"{name:42s} median {1e3 * float(np.median(ts)):7.1f} ms")
    (v, (a, b)), (hv, (ha, hb)) = g(x1, x2), hand(x1, x2)
    print(f"max |generated - hand-written|: {max(np.max(np.abs(v - hv)), np.max(np.abs(a - ha)), np.max(np.abs(b - hb))):.1e}")
    if gc:
        cv, (ca, cb) = gc[1](x1, x2)
        print(f"max |C - NumPy backend| / max(1, |value|): "
              f"{max(np.max(np.abs(p - q) / np.maximum(1, np.abs(q))) for p, q in ((cv, v), (ca, a), (cb, b))):.1e}")
        print("(NumPy runs these elementwise operations on 1 thread; the C loop is vectorized where the compiler can)")


def main() -> None:
    for expr, point, published in EXAMPLES:
        show(expr, point, published)
    speed()


if __name__ == "__main__":
    main()
