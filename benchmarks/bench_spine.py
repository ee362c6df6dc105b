"""The NumPy backend's batch evaluation against hand-written NumPy, whole arrays and blocks.

    python benchmarks/bench_spine.py [--points 1000000] [--repeat 15]

The Griewank function's value and gradient at --points points: the bare generated
function, the compile_* call (which evaluates large batches in cache-sized blocks),
and the hand-written NumPy of exprcompiler/bench/seeds.py, whole arrays and in the
same blocks; interleaved after warm-up, medians and ratios. NumPy runs these
elementwise ops on one thread.

Expression -> gradient at scale (stages, linearity, sympy.diff + cse, JAX) is
`exprc bench scaling`; the seed functions against hand-written C, SymPy and JAX are
`exprc bench seeds`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from exprcompiler import compile_expr, compile_grad  # noqa: E402
from exprcompiler.backends.numpy_backend import _blocked  # noqa: E402
from exprcompiler.bench.runner import local, run_interleaved  # noqa: E402
from exprcompiler.bench.seeds import SEEDS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    seed = SEEDS["griewank"]
    xs = seed.points(args.points)
    f, g = compile_expr(seed.expr), compile_grad(seed.expr)

    def blocked(fn):  # the same blocking the compiled wrapper applies
        return lambda *a: _blocked(fn, list(a), a[0].shape)

    cands = [local(label, 1, "", fn, *xs) for label, fn in (
        ("hand-written value", seed.value), ("generated value", f.function),
        ("hand-written value+grad", seed.grad), ("generated value+grad", g.function),
        ("compile_expr call (blocked)", f), ("compile_grad call (blocked)", g),
        ("hand-written value+grad, blocked", blocked(seed.grad)))]
    times, errors = run_interleaved([cands], args.repeat, lambda group: group[2].result())
    med = {c.label: times[id(c)].median for c in cands}
    print(f"Griewank function at {args.points:,} points, one thread, median of {args.repeat} "
          f"interleaved runs; error: max relative difference from hand-written value+grad")
    print(f"{'implementation':36s} {'median ms':>10s} {'min ms':>8s} {'max ms':>8s} {'error':>8s}")
    for c in cands:
        t = times[id(c)]
        row = f"{c.label:36s} {1e3 * t.median:10.2f} {1e3 * t.low:8.2f} {1e3 * t.high:8.2f}"
        print(row + (f" {errors[id(c)]:8.1e}" if "grad" in c.label else ""))
    for text, a, b in (
            ("generated / hand-written (value+grad)", "generated value+grad", "hand-written value+grad"),
            ("generated / hand-written (value)", "generated value", "hand-written value"),
            ("(value+grad) / value, generated", "generated value+grad", "generated value"),
            ("compile_grad call / hand-written (unblocked)", "compile_grad call (blocked)",
             "hand-written value+grad"),
            ("compile_grad call / hand-written (blocked)", "compile_grad call (blocked)",
             "hand-written value+grad, blocked"),
            ("(value+grad) / value, compile_* calls", "compile_grad call (blocked)",
             "compile_expr call (blocked)")):
        print(f"{text + ':':46s} {med[a] / med[b]:.2f}x")


if __name__ == "__main__":
    main()
