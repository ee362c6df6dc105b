"""A generated NumPy gradient compiled against the same run as a statement program
(exprcompiler/backends/numpy_program.py): load time, and call time at one point and
at a batch, side by side in one process, interleaved round by round.

For each (family, size) of benchmarks/bench_frontend.py: the gradient's batch source
and its one-point source (numpy_backend.MATH: Python floats, what a one-point call of
compile_grad runs), each loaded both ways; the distinct templates the program
compiles; then rounds of calls, compiled and program alternating, reporting the
minimum and median of the thread's CPU time (time.thread_time). Results are checked
to be the same bits first. Single-threaded (NumPy's ufuncs here do not thread).

    python benchmarks/bench_numpy_program.py --sizes 10000 100000 --families text sympy
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


def _flat(r):
    return [x for item in r for x in _flat(item)] if isinstance(r, tuple) else [np.asarray(r).tobytes()]


def _loaded(source: str, threshold: int):
    from exprcompiler.backends import numpy_backend
    saved, numpy_backend.PROGRAM_ABOVE = numpy_backend.PROGRAM_ABOVE, threshold
    try:
        gc.collect()
        t0 = time.process_time()
        fn = numpy_backend.load(source, "f_grad")
        return fn, time.process_time() - t0
    finally:
        numpy_backend.PROGRAM_ABOVE = saved


def one(family: str, n_ops: int, batch: int, rounds: int) -> None:
    from exprcompiler.backends import numpy_backend
    from exprcompiler.frontend import to_trace
    from exprcompiler.passes import grad_reverse
    grad = grad_reverse(to_trace(make_input(family, n_ops)))
    sources = {kind: numpy_backend.generate(grad, func_name="f_grad", point=kind == "point")[0]
               for kind in ("point", "batch")}
    modes = {"compiled": 10**9, "program": 0}
    fns, loads = {}, {}
    for kind, source in sources.items():
        for mode, threshold in modes.items():
            fns[kind, mode], loads[kind, mode] = min((_loaded(source, threshold) for _ in range(2)),
                                                     key=lambda r: r[1])
    templates = fns["batch", "program"].__globals__["_exprc_program"].templates
    rng = np.random.default_rng(0)
    n_in = len(grad.input_names)
    args = {"point": [float(x) for x in rng.uniform(0.2, 0.9, n_in)],
            "batch": [rng.uniform(0.2, 0.9, batch) for _ in range(n_in)]}
    for kind in sources:
        assert _flat(fns[kind, "program"](*args[kind])) == _flat(fns[kind, "compiled"](*args[kind])), kind
    times = {key: [] for key in fns}
    for _ in range(rounds):
        for key, f in fns.items():
            t0 = time.thread_time()
            f(*args[key[0]])
            times[key].append(time.thread_time() - t0)
    lines = sources["batch"].count("\n")
    print(f"{family}, {grad.size:,} grad ops ({n_ops:,} ops), {lines:,} lines, {templates} distinct templates; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"  load (CPU ms, min of 2):  compiled {1e3 * loads['batch', 'compiled']:.0f} "
          f"({1e6 * loads['batch', 'compiled'] / lines:.1f} µs/line)   program {1e3 * loads['batch', 'program']:.0f} "
          f"({1e6 * loads['batch', 'program'] / lines:.1f} µs/line)")
    for kind, label in (("point", "one point (floats)"), ("batch", f"{batch} points")):
        c, p = times[kind, "compiled"], times[kind, "program"]
        print(f"  call at {label}, CPU ms min/median of {rounds}: compiled {1e3 * min(c):.1f}/"
              f"{1e3 * statistics.median(c):.1f}   program {1e3 * min(p):.1f}/{1e3 * statistics.median(p):.1f}"
              f"   program/compiled (medians) {statistics.median(p) / statistics.median(c):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    ap.add_argument("--families", nargs="+", default=["text", "sympy"], choices=["text", "deep", "sympy"])
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, NumPy {np.__version__}, one thread")
    for family in args.families:
        for size in args.sizes:
            one(family, size, args.batch, args.rounds)


if __name__ == "__main__":
    main()
