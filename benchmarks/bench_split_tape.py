"""The split kernel's one-point entry and its kept tape (backends/c_driver.py), on the
n-link pendulum's Jacobian (bench/mechanics.py).

Two builds of the same trace in one process, timed in interleaved rounds (thread
CPU, one thread): the driver as it is (a frame of XC_W slots per vector, the entry's
tape kept per thread) and the same with the entry's tape malloc'd per call
(XC_TAPE_KEPT not defined in c_driver.DRIVER). Columns: the packed one-point entry
through cffi, and the bare kernel on 10^4 points. Every build's results are compared
with the first's (bit for bit). (Until the driver moved to c_driver.py the bench also
loaded c_split.py from an older git revision; that module no longer fits c_backend.)

    python benchmarks/bench_split_tape.py 6 10 20 --rounds 11

(SymPy takes about a minute to derive the 20-link model.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from exprcompiler import compile_jacobian
from exprcompiler.backends import c_driver
from exprcompiler.bench.mechanics import pendulum
from exprcompiler.bench.suite_mechanics import bare_c_kernel

KEPT = "#define XC_TAPE_KEPT\n"


def build(model, kept: bool):
    saved = c_driver.DRIVER
    if not kept:
        assert KEPT in saved, "c_driver.DRIVER no longer defines XC_TAPE_KEPT on a line of its own"
        c_driver.DRIVER = saved.replace(KEPT, "")
    try:
        return compile_jacobian(list(model.exprs), wrt=model.names, backend="c")
    finally:
        c_driver.DRIVER = saved


def timers(J):
    """(one call of the packed entry, one kernel call on 10^4 points, their results)."""
    fn, from_buffer, array = J._run_packed.c_entry
    buf = np.linspace(-1.3, 1.1, len(J.inputs))
    out = np.empty(len(J.trace.outputs))
    args = (from_buffer(array, buf), from_buffer(array, out))
    X = np.random.default_rng(1).uniform(-1, 1, (10_000, len(J.inputs)))
    kernel = bare_c_kernel(J, {nm: np.ascontiguousarray(X[:, k]) for k, nm in enumerate(J.inputs)}, 1)
    fn(*args)
    return (lambda: fn(*args)), kernel, np.concatenate([out, kernel().ravel()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("links", nargs="*", type=int, default=[6, 10, 20])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--calls", type=int, default=500)
    opts = ap.parse_args()
    variants = {"frames, kept tape": True, "frames, malloc per call": False}
    cases = {}
    for n in opts.links:
        model = pendulum(n)
        first = None
        for label, kept in variants.items():
            J = build(model, kept)
            point, kernel, result = timers(J)
            first = result if first is None else first
            assert np.array_equal(result, first), f"{n} links, {label}: results differ"
            cases[n, label] = (point, kernel)
    times = {k: ([], []) for k in cases}
    for _ in range(opts.rounds):
        for k, (point, kernel) in cases.items():
            t0 = time.thread_time()
            for _ in range(opts.calls):
                point()
            t1 = time.thread_time()
            kernel()
            times[k][0].append((t1 - t0) / opts.calls)
            times[k][1].append(time.thread_time() - t1)
    print(f"thread CPU, 1 thread, {opts.rounds} interleaved rounds, load {os.getloadavg()[0]:.1f}; "
          f"min / median  ({sys.platform})")
    for (n, label), (p, b) in times.items():
        print(f"  {n:2d} links  {label:24s} one point {min(p) * 1e6:7.2f} / {statistics.median(p) * 1e6:7.2f} µs"
              f"   10^4 points {min(b) * 1e3:7.2f} / {statistics.median(b) * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
