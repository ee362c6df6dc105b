"""The split kernel's tape (backends/c_split.py): its layout and the one-point entry's
kept tape, on the n-link pendulum's Jacobian (bench/mechanics.py).

Three builds of the same trace in one process, timed in interleaved rounds (thread
CPU, one thread): c_split as it is (a frame of XC_W slots per vector, the entry's
tape kept per thread); the same with the entry's tape malloc'd per call (TAPE_KEPT
off); and c_split.py as of git revision --rev (default 73d46af: rows of a block's
points, a cache line and more per slot, tape malloc'd per call), loaded from git.
Columns: the packed one-point entry through cffi, and the bare kernel on 10^4 points.
Every build's results are compared with the first's (bit for bit).

    python benchmarks/bench_split_tape.py 6 10 20 --rounds 11

(SymPy takes about a minute to derive the 20-link model.)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from exprcompiler import compile_jacobian
from exprcompiler.backends import c_backend, c_split
from exprcompiler.bench.mechanics import pendulum
from exprcompiler.bench.suite_mechanics import bare_c_kernel

ROOT = Path(__file__).resolve().parents[1]


def module_at(rev: str):
    """c_split.py as of git revision `rev`, as a module."""
    text = subprocess.run(["git", "show", f"{rev}:exprcompiler/backends/c_split.py"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="c_split_")) / "c_split_old.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("c_split_old", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(model, module, kept: bool):
    saved, saved_kept = c_backend.c_split, c_split.TAPE_KEPT
    c_backend.c_split = module
    if not kept:
        c_split.TAPE_KEPT = [""]
    try:
        return compile_jacobian(list(model.exprs), wrt=model.names, backend="c")
    finally:
        c_backend.c_split, c_split.TAPE_KEPT = saved, saved_kept


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
    ap.add_argument("--rev", default="73d46af")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--calls", type=int, default=500)
    opts = ap.parse_args()
    old = module_at(opts.rev)
    variants = {"frames, kept tape": (c_split, True), "frames, malloc per call": (c_split, False),
                f"{opts.rev}": (old, True)}
    cases = {}
    for n in opts.links:
        model = pendulum(n)
        first = None
        for label, (module, kept) in variants.items():
            J = build(model, module, kept)
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
