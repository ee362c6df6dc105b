"""Variants of the C backend's split-kernel constants, side by side on the n-link
pendulum's Jacobian (bench/mechanics.py), or with --ops on the random gradient of
about that many operations (randexpr.random_program, as bench_c_split.py): cold builds
and calls, interleaved.

    python benchmarks/bench_c_variants.py --links 6 --rounds 7 \
        --variant before '{"VECTOR_UP_TO": 1000000000000, "SIMD_FLAGS": [], "copies": true}' \
        --variant after '{}'
    python benchmarks/bench_c_variants.py --ops 10000 --rounds 3 \
        --variant lines '{}' --variant cost '{"UNIT_LINES": 0}'

A variant sets constants of c_split or c_backend by name (lists become tuples) for its
builds; "copies": true keeps the plain copies that c_backend.without_copies drops.
Each round builds every variant cold, in a fresh cache, the variants taking turns,
then times each built kernel on 10^4 states (one call) and `J.at(x)` (200 calls),
the variants again taking turns. Prints, per variant: units, the C compiler's CPU
seconds (user + sys of its processes) and the build's wall seconds, minimum and
median over the rounds; the kernel's thread-CPU ms and J.at's µs per call, minimum
and median; and whether its results are bit for bit those of the first variant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from exprcompiler import compile_grad, compile_jacobian  # noqa: E402
from exprcompiler.backends import c_backend, c_split  # noqa: E402
from exprcompiler.bench.mechanics import pendulum, random_states  # noqa: E402
from exprcompiler.randexpr import random_program  # noqa: E402

import bench_c_split  # noqa: E402  (beside this script: its cold build in a fresh cache)


def applied(settings: dict):
    """Set the variant's constants; returns the function that restores them."""
    saved = []
    for name, value in settings.items():
        if name == "copies":
            saved.append((c_backend, "without_copies", c_backend.without_copies))
            if value:
                c_backend.without_copies = lambda stmts: stmts
            continue
        module = c_split if hasattr(c_split, name) else c_backend
        if not hasattr(module, name):
            raise SystemExit(f"no constant {name} in c_split or c_backend")
        saved.append((module, name, getattr(module, name)))
        setattr(module, name, tuple(value) if isinstance(value, list) else value)

    def restore():
        for module, name, value in reversed(saved):
            setattr(module, name, value)
    return restore


def case(links: int, ops: int):
    """(label, build, arguments at 10^4 points, one point or None)."""
    if ops:
        program = random_program(int(ops / 2.1), seed=1)
        rng = np.random.default_rng(3)
        args = [rng.uniform(0.2, 0.9, 10_000) for _ in compile_grad(program).inputs]
        return (f"random gradient of {ops} operations", lambda: compile_grad(program, backend="c", threads=1),
                args, None)
    model = pendulum(links)
    X = random_states(links, 10_000)
    return (f"{links}-link pendulum Jacobian",
            lambda: compile_jacobian(list(model.exprs), wrt=model.names, backend="c", threads=1),
            [np.ascontiguousarray(X[:, k]) for k in range(X.shape[1])], X[5])


def leaves(v) -> list:
    return bench_c_split.leaves(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--links", type=int, default=6)
    ap.add_argument("--ops", type=int, default=0, help="the random gradient of about this many operations")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--first", action="store_true",
                    help="each build in a cache without the driver object (c_build.driver_object)")
    ap.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"), required=True)
    opts = ap.parse_args()
    variants = {name: json.loads(text) for name, text in opts.variant}
    label, build, args, x = case(opts.links, opts.ops)
    got = {v: {"cpu": [], "wall": [], "kernel": [], "at": []} for v in variants}
    built = {}
    for _ in range(opts.rounds):
        for v, settings in variants.items():
            restore = applied(settings)
            try:
                cpu, wall, built[v] = bench_c_split.cold(build, driver=not opts.first)
            finally:
                restore()
            got[v]["cpu"].append(cpu)
            got[v]["wall"].append(wall)
        for v, J in built.items():
            J(*args)
            t0 = time.thread_time()
            J(*args)
            got[v]["kernel"].append(1e3 * (time.thread_time() - t0))
            t0 = time.thread_time()
            for _ in range(200 if x is not None else 0):
                J.at(x)
            got[v]["at"].append(1e6 * (time.thread_time() - t0) / 200)
    first = [np.asarray(a) for a in leaves(built[next(iter(built))](*args))]
    print(f"{label}; min / median of {opts.rounds} rounds")
    print(f"{'variant':12} {'units':>5} {'cc CPU s':>11} {'wall s':>11} {'10^4 ms':>11} {'J.at us':>11} same")
    for v, J in built.items():
        same = all(np.array_equal(a, np.asarray(b)) for a, b in zip(first, leaves(J(*args))))
        cells = " ".join(f"{min(got[v][k]):5.2f}/{statistics.median(got[v][k]):5.2f}"
                         for k in ("cpu", "wall", "kernel", "at"))
        units = len(c_split.split_units(J.source))
        print(f"{v:12} {units:5d} {cells} {'yes' if same else 'NO'}")
    print(f"1 thread; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
