"""The NumPy backend's compile on use (exprcompiler/backends/numpy_tier.py): its cost and when it pays.

On the gradients of benchmarks/bench_frontend.py's families, in one process, the old way and
the new alternating round by round, CPU time (time.process_time), medians:

  build      generated + load, µs an operation: `compiled` (numpy_backend.TIER_FROM above any
             size: the text rendered and compiled at once, as before compile on use) against
             `program` (TIER_FROM 0: the statement program, compiled on use, whatever the size).
  constants  the tier-up's cost a line (the text formatted from the program, then compile()),
             and the program's excess over the compiled function a line a call at 1, 1000 and
             16384 points (or --points), with the program's own time a line (numpy_tier.CHEAP_US
             is in those units): what numpy_tier.COMPILE_US, DELTA_US and CHEAP_US state.
  amortized  compile_grad(expression) and N calls, at 1000 points and at one point (floats),
             total CPU ms, for each N of --calls: `compiled` against the default policy, in
             lockstep (one call each in turn: both see the same machine).

    python benchmarks/bench_numpy_tier.py --sizes 100 1000 3000 --families text --parts build constants
    python benchmarks/bench_numpy_tier.py --sizes 10 100 1000 --families text deep sympy --parts constants \
        --points 1 30 100 300 1000 3000
    python benchmarks/bench_numpy_tier.py --sizes 1000 --parts amortized --calls 1 10 100 1000
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_frontend import make_input  # noqa: E402  (the same inputs)

NEVER = 10**12


def _cpu(fn, *args):
    gc.collect()
    t0 = time.process_time()
    out = fn(*args)
    return out, time.process_time() - t0


def _flat(r):
    return [x for item in r for x in _flat(item)] if isinstance(r, tuple) else [np.asarray(r).tobytes()]


def _setting(name: str, value):
    from exprcompiler.backends import numpy_backend, numpy_tier
    owner = numpy_backend if hasattr(numpy_backend, name) else numpy_tier
    saved = getattr(owner, name)
    setattr(owner, name, value)
    return lambda: setattr(owner, name, saved)


def _build(grad, compiled: bool):
    from exprcompiler.backends import numpy_backend
    restore = _setting("TIER_FROM", NEVER if compiled else 0)
    try:
        source, _, program = numpy_backend.generated(grad, func_name="f_grad")
        return numpy_backend.load(source, "f_grad", program=program), source
    finally:
        restore()


def build(family: str, grad, n_ops: int, rounds: int) -> None:
    times = {"compiled": [], "program": []}
    for _ in range(rounds):
        for mode in times:
            (fn, source), t = _cpu(_build, grad, mode == "compiled")
            times[mode].append(t)
    c, p = (statistics.median(times[m]) for m in ("compiled", "program"))
    print(f"  build (generated + load), µs/op, median of {rounds}: compiled {1e6 * c / n_ops:.1f}   "
          f"program {1e6 * p / n_ops:.1f}   ({1e3 * c:.2f} -> {1e3 * p:.2f} ms)")


def constants(family: str, grad, rounds: int, points_list=(1, 1000, 16384)) -> None:
    from exprcompiler.backends import numpy_backend
    from exprcompiler.backends.program_text import text_of
    restore = _setting("COMPILE_US", float("inf"))
    try:
        program, source = _build(grad, False)
    finally:
        restore()
    compiled, text = _build(grad, True)
    assert text_of(source) == text, "the program's text is not the compiled function's"
    lines = text.count("\n")
    costs = []
    for _ in range(rounds):   # a fresh program each time: its text is made once, then kept
        restore = _setting("TIER_FROM", 0)
        try:
            src, _, prog = numpy_backend.generated(grad, func_name="f_grad")
        finally:
            restore()
        _, t = _cpu(lambda: compile(str(src), "<tier>", "exec"))
        costs.append(t)
    print(f"  tier-up (format + compile()), µs/line, median of {rounds}: {1e6 * statistics.median(costs) / lines:.2f}"
          f"   ({lines:,} lines)")
    rng = np.random.default_rng(0)
    n_in = len(grad.input_names)
    for points in points_list:
        args = [rng.uniform(0.2, 0.9, points) for _ in range(n_in)]
        assert _flat(program(*args)) == _flat(compiled(*args)), "not the same bits"
        repeat = max(1, min(200, 2_000_000 // (lines * points)))
        times = {"compiled": [], "program": []}
        for _ in range(rounds):
            for mode, f in (("compiled", compiled), ("program", program)):
                t0 = time.process_time()
                for _ in range(repeat):
                    f(*args)
                times[mode].append((time.process_time() - t0) / repeat)
        c, p = (statistics.median(times[m]) for m in ("compiled", "program"))
        print(f"  call at {points:>5} points, ms: compiled {1e3 * c:.3f}  program {1e3 * p:.3f}  "
              f"({1e6 * p / lines:.2f} µs/line)  ratio {p / c:.3f}  excess {1e6 * (p - c) / lines:.3f} µs/line/call")


def amortized(family: str, n_ops: int, calls: list, rounds: int) -> None:
    """Both ways in lockstep (build one, build the other, then call one, call the other,
    N times), so that both see the same machine; the templates' cache emptied before
    each round (a process's first build: numpy_templates)."""
    import exprcompiler as xc
    from exprcompiler.backends import numpy_templates
    expr = make_input(family, n_ops)
    rng = np.random.default_rng(1)
    for kind in ("1000 points", "one point"):
        line = []
        for n in calls:
            times = {"compiled": [], "program": []}
            for r in range(rounds):
                numpy_templates._CODES.clear()
                gc.collect()
                spent, fns = {}, {}
                for mode in (("compiled", "program") if r % 2 else ("program", "compiled")):
                    restore = _setting("TIER_FROM", NEVER) if mode == "compiled" else (lambda: None)
                    try:
                        t0 = time.process_time()
                        fns[mode] = xc.compile_grad(expr)
                        spent[mode] = time.process_time() - t0
                    finally:
                        restore()
                g = fns["compiled"]
                args = ([rng.uniform(0.2, 0.9, 1000) for _ in g.inputs] if kind == "1000 points"
                        else [float(x) for x in rng.uniform(0.2, 0.9, len(g.inputs))])
                with np.errstate(all="ignore"):
                    for _ in range(n):
                        for mode, f in fns.items():
                            t0 = time.process_time()
                            f(*args)
                            spent[mode] += time.process_time() - t0
                for mode in times:
                    times[mode].append(spent[mode])
            c, p = (statistics.median(times[m]) for m in ("compiled", "program"))
            line.append(f"N={n}: {1e3 * c:.1f} -> {1e3 * p:.1f} ({p / c:.2f}x)")
        print(f"  compile_grad + N calls at {kind}, CPU ms, compiled -> program, median of {rounds}:  "
              + "   ".join(line))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    ap.add_argument("--families", nargs="+", default=["text"], choices=["text", "deep", "sympy"])
    ap.add_argument("--parts", nargs="+", default=["build", "constants"], choices=["build", "constants", "amortized"])
    ap.add_argument("--calls", type=int, nargs="+", default=[1, 10, 100, 1000])
    ap.add_argument("--points", type=int, nargs="+", default=[1, 1000, 16384],
                    help="array sizes of the constants part's calls")
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    from exprcompiler.backends import numpy_backend, numpy_tier
    from exprcompiler.frontend import to_trace
    from exprcompiler.passes import grad_reverse
    print(f"python {sys.version.split()[0]}, NumPy {np.__version__}, one thread, load average "
          f"{os.getloadavg()[0]:.2f}; TIER_FROM {numpy_backend.TIER_FROM}, COMPILE_US {numpy_tier.COMPILE_US}, "
          f"DELTA_US {numpy_tier.DELTA_US}, SHARE {numpy_tier.SHARE}, CHEAP_US {numpy_tier.CHEAP_US}")
    for family in args.families:
        for size in args.sizes:
            primal = to_trace(make_input(family, size))
            grad = grad_reverse(primal)
            print(f"{family}, {primal.size:,} ops, {grad.size:,} grad ops")
            if "build" in args.parts:
                build(family, grad, primal.size, args.rounds)
            if "constants" in args.parts:
                constants(family, grad, args.rounds, args.points)
            if "amortized" in args.parts:
                amortized(family, size, args.calls, max(1, args.rounds // 3))


if __name__ == "__main__":
    main()
