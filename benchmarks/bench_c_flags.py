"""The optimisation level of one-function C kernels (c_build.SIZED_FROM and its flags):
compiler CPU time against kernel time, per flag set, side by side.

    python benchmarks/bench_c_flags.py [--links 1 2 3] [--ops 10 40] [--unsplit 6]
                                       [--sets O3 O3-noepi O2-noepi O1-noepi auto] [--rounds 15]

Kernels: the n-link pendulum Jacobians (bench/mechanics.py; --unsplit: also these
link counts as one function, c_backend.SPLIT_FROM raised) and random gradients
(randexpr.random_program, the scaling suite's family) of --ops operations. Flag sets,
added after c_build.BUILDS' first set (-O3 ...): O3 (nothing), O3-noepi, O2-noepi,
O1-noepi ("noepi": --param=vect-epilogues-nomask=0), auto (c_build.sized_flags, what
a build does). For each kernel and set: its statements, the C compiler's CPU seconds
(user + sys of its processes, the minimum of two cold builds in fresh caches: a shared
machine inflates CPU less than wall time), and the kernel's thread-CPU time over
--points points on one thread, in interleaved rounds (median and minimum), with the
largest relative difference from the first set's values.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from exprcompiler import compile_grad, compile_jacobian  # noqa: E402
from exprcompiler.backends import c_backend, c_build  # noqa: E402
from exprcompiler.bench.mechanics import pendulum, random_states  # noqa: E402
from exprcompiler.randexpr import random_program  # noqa: E402

NOEPI = c_build.SIZED_GCC_FLAGS
SETS = {"O3": (), "O3-noepi": NOEPI, "O2-noepi": ("-O2", *NOEPI), "O1-noepi": ("-O1", *NOEPI), "auto": None}


def cold(make, added):
    """(compiler CPU s, the build) in a fresh cache, `added` after the first flag set."""
    real = c_build.sized_flags
    if added is not None:
        c_build.sized_flags = lambda source, flags, gnu: added if flags == c_build.BUILDS[0][0] else ()
    os.environ["EXPRCOMPILER_CACHE"] = tempfile.mkdtemp(prefix="exprc-flags-")
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        built = make()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        c_build.sized_flags = real
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, built


def kernels(args):
    """(name, make() -> compiled, the arguments of a call, split_from)."""
    out = []
    for n in args.links + args.unsplit:
        model = pendulum(n)
        X = random_states(n, args.points)
        cols = {name: np.ascontiguousarray(X[:, k]) for k, name in enumerate(model.names)}
        out.append((f"pendulum {n}" + (" unsplit" if n in args.unsplit else ""),
                    lambda model=model: compile_jacobian(list(model.exprs), wrt=model.names, backend="c", threads=1),
                    cols, 10**9 if n in args.unsplit else c_backend.SPLIT_FROM))
    for ops in args.ops:
        program = random_program(ops, n_vars=4, seed=3)
        out.append((f"random grad {ops}", lambda p=program: compile_grad(p, backend="c", threads=1),
                    lambda names: {k: np.random.default_rng(j).uniform(0.5, 1.5, args.points)
                                   for j, k in enumerate(names)},
                    c_backend.SPLIT_FROM))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--unsplit", type=int, nargs="*", default=[])
    ap.add_argument("--ops", type=int, nargs="*", default=[10, 40])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--points", type=int, default=10_000)
    args = ap.parse_args(argv)
    rows = []
    split_from = c_backend.SPLIT_FROM
    for name, make, cols, split in kernels(args):
        c_backend.SPLIT_FROM = split
        try:
            for label in args.sets:
                cpu = []
                for _ in range(2):
                    seconds, f = cold(make, SETS[label])
                    cpu.append(seconds)
                values = cols(f.inputs) if callable(cols) else cols
                call = [values[k] for k in f.inputs]
                rows.append([name, label, f.source.count(";\n"), min(cpu), f, call, []])
        finally:
            c_backend.SPLIT_FROM = split_from
    for _ in range(args.rounds):
        for row in rows:
            f, call = row[4], row[5]
            t0 = time.thread_time()
            f(*call)
            row[6].append(time.thread_time() - t0)
    print(f"compiler CPU s (min of 2 cold builds) and kernel thread-CPU ms at {args.points} points, "
          f"one thread, {args.rounds} interleaved rounds")
    first: dict = {}
    for name, label, stmts, cpu, f, call, times in rows:
        flat = np.concatenate([np.ravel(a) for a in _leaves(f(*call))])
        ref = first.setdefault(name, flat)
        diff = float(np.max(np.abs(flat - ref) / (1 + np.abs(ref))))
        print(f"  {name:22s} {stmts:5d} stmts  {label:9s} compiler {cpu:5.2f} s  kernel median "
              f"{statistics.median(times) * 1e3:7.3f} min {min(times) * 1e3:7.3f} ms  diff {diff:.0e}")


def _leaves(result):
    if isinstance(result, (tuple, list)):
        return [leaf for r in result for leaf in _leaves(r)]
    return [result]


if __name__ == "__main__":
    main()
