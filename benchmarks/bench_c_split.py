"""Cold C builds of split kernels (c_split) against their kernel speed, side by side.

    python benchmarks/bench_c_split.py [--ops 10000 100000] [--links 6] [--layouts lanes simd]
                                       [--rounds 3] [--points 10000]

For each random gradient (randexpr.random_program, the scaling suite's family) and each
n-link pendulum Jacobian (bench/mechanics.py), and each layout of the kernel: `simd`
(split, parts as `omp simd` loops: c_split.VECTOR_UP_TO raised), `lanes` (split, parts in
the vector extension: VECTOR_UP_TO lowered to 0), `auto` (the thresholds as they are)
or `unsplit` (one -O3 kernel: c_backend.SPLIT_FROM raised; slow to build above 10^3
operations): statements, parts and units; the C compiler's CPU seconds (user + sys of
its processes: the main figure on a shared machine) and the build's wall seconds,
minimum and median of --rounds cold builds, each in a fresh cache (holding the split
kernels' driver object, built once per flag set: c_build.driver_object), the layouts taking
turns round by round; the kernel's thread-CPU time at --points points on 1 thread,
minimum and median of 21 rounds in which the layouts take turns; whether its results
are bit for bit those of the first layout; and the largest relative difference from
the NumPy backend's values.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from exprcompiler import compile_grad, compile_jacobian  # noqa: E402
from exprcompiler.backends import c_backend, c_split  # noqa: E402
from exprcompiler.randexpr import random_program  # noqa: E402

LAYOUTS = {"simd": 10**12, "lanes": 0, "auto": None, "unsplit": None}


# The split kernels' driver objects (c_build.driver_object), built once per flag set,
# as a cache keeps them: copied into each fresh cache unless cold(..., driver=False).
DRIVERS = Path(tempfile.mkdtemp(prefix="exprc-drivers-"))


def cold(build, driver: bool = True):
    """(compiler CPU s, wall s, the built function) of one build in a fresh cache (with
    the driver objects of earlier builds, or with `driver` False none: a first build)."""
    old = os.environ.get("EXPRCOMPILER_CACHE")
    cache = Path(tempfile.mkdtemp(prefix="exprc-split-"))
    os.environ["EXPRCOMPILER_CACHE"] = str(cache)
    for path in DRIVERS.glob("*/*") if driver else ():
        (cache / path.parent.name).mkdir(exist_ok=True)
        shutil.copy(path, cache / path.parent.name)
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        f = build()
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        for obj in cache.glob("*/*.o"):
            (DRIVERS / obj.parent.name).mkdir(exist_ok=True)
            for path in (obj, obj.with_suffix(".sha256")):
                shutil.copy(path, DRIVERS / obj.parent.name)
    finally:
        if old is None:
            os.environ.pop("EXPRCOMPILER_CACHE", None)
        else:
            os.environ["EXPRCOMPILER_CACHE"] = old
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall, f


def kernel_ms(built: dict, args, rounds: int = 21) -> dict:
    """{layout: (min, median) ms of one call}, the layouts taking turns each round."""
    times: dict = {k: [] for k in built}
    for f in built.values():
        f(*args)  # warm
    for _ in range(rounds):
        for k, f in built.items():
            t0 = time.thread_time()
            f(*args)
            times[k].append(time.thread_time() - t0)
    return {k: (1e3 * min(v), 1e3 * statistics.median(v)) for k, v in times.items()}


def leaves(v) -> list:
    return [x for item in v for x in leaves(item)] if isinstance(v, (list, tuple)) else [v]


def worst(a, b) -> float:
    out = 0.0
    for x, y in zip(leaves(a), leaves(b), strict=True):
        x, y = np.asarray(x, float), np.asarray(y, float)
        out = max(out, float(np.max(np.abs(x - y) / (1 + np.abs(y)))))
    return out


def cases(ops: list, links: list, points: int):
    rng = np.random.default_rng(3)
    for n in ops:
        program = random_program(int(n / 2.1), seed=1)  # as bench/suite_scaling.py
        ref = compile_grad(program)
        args = [rng.uniform(0.2, 0.9, points) for _ in ref.inputs]
        want = [ref(*args)[0], *ref(*args)[1]]
        yield (f"random gradient, {n} ops", lambda p=program: compile_grad(p, backend="c", threads=1),
               args, lambda g, a=args: [g(*a)[0], *g(*a)[1]], want)
    for n in links:
        from exprcompiler.bench.mechanics import pendulum, random_states
        model = pendulum(n)
        ref = compile_jacobian(list(model.exprs), wrt=model.names)
        X = random_states(n, points)
        args = [X[:, k] for k in range(X.shape[1])]
        yield (f"pendulum Jacobian, {n} links",
               lambda m=model: compile_jacobian(list(m.exprs), wrt=m.names, backend="c", threads=1),
               args, lambda g, a=args: [g(*a)], [ref(*args)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, nargs="*", default=[10_000])
    ap.add_argument("--links", type=int, nargs="*", default=[6])
    ap.add_argument("--layouts", nargs="*", default=["lanes", "simd"], choices=list(LAYOUTS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--points", type=int, default=10_000)
    opts = ap.parse_args()
    print(f"{'case':30} {'layout':6} {'lines':>6} {'parts':>5} {'units':>5} {'cc CPU s':>11} "
          f"{'wall s':>11} {'kernel ms':>13} {'same':>4} {'max rel':>8}")
    default, split_from = c_split.VECTOR_UP_TO, c_backend.SPLIT_FROM
    for label, build, args, values, want in cases(opts.ops, opts.links, opts.points):
        runs: dict = {layout: [] for layout in opts.layouts}
        for _ in range(opts.rounds):
            for layout in opts.layouts:
                c_split.VECTOR_UP_TO = default if LAYOUTS[layout] is None else LAYOUTS[layout]
                c_backend.SPLIT_FROM = 10**12 if layout == "unsplit" else split_from
                try:
                    runs[layout].append(cold(build))
                finally:
                    c_split.VECTOR_UP_TO, c_backend.SPLIT_FROM = default, split_from
        built = {layout: r[-1][2] for layout, r in runs.items()}
        kernel = kernel_ms(built, args)
        first = [np.asarray(v) for v in leaves(values(built[opts.layouts[0]]))]
        for layout, f in built.items():
            src = f.source
            parts = src.count("XC_PART void ") // 2
            units = len(c_split.split_units(src)) if parts else 1
            lines = sum(1 for ln in src.splitlines() if ln.startswith(" " * 12) and " = " in ln)
            same = all(np.array_equal(a, np.asarray(b)) for a, b in zip(first, leaves(values(f))))
            cpu, wall = [r[0] for r in runs[layout]], [r[1] for r in runs[layout]]
            print(f"{label:30} {layout:6} {lines:6d} {parts:5d} {units:5d} "
                  f"{min(cpu):5.2f}/{statistics.median(cpu):5.2f} {min(wall):5.2f}/{statistics.median(wall):5.2f} "
                  f"{kernel[layout][0]:6.2f}/{kernel[layout][1]:6.2f} {'yes' if same else 'NO':>4} "
                  f"{worst(values(f), want):8.1e}", flush=True)
    print(f"min/median; kernel: {opts.points} points, 1 thread, 21 rounds; cc CPU and wall: "
          f"{opts.rounds} cold builds; lines: the parts' lines with an assignment (tape loads and stores "
          f"included); same: results bit for bit those of {opts.layouts[0]}; {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
