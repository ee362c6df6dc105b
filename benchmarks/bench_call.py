"""The fixed cost of a call with arrays: per-call medians of a compiled function of
scalars called with arrays of n points (n = 1, 10, 100, 10^4; --large adds 10^3,
10^5, 10^6), of a tensor function at small shapes, and of a few other calls (by name,
a number among arrays, a Jacobian, a point of numbers; --edges: calls a call plan
hands to the general path), on the NumPy and C backends; with --old, an old tree side
by side.

    python benchmarks/bench_call.py [--old PATH] [--rounds 15] [--seconds 0.01] [--large]
        [--edges] [--only SUBSTRING] [--wall]

Each tree runs in a worker process of its own (PYTHONPATH=the tree: this script's
checkout, and --old PATH), which compiles every case once and then, for each request,
times one batch of calls of one case (enough calls for about --seconds) and answers
the per-call time. The main process asks the workers in turn, case by case, the order
of the two trees alternating between rounds, so load falls on both alike; the table
gives each case's median over the rounds in µs per call, CPU time of the worker's
thread (time.thread_time: a shared machine's other processes inflate it less than
wall time; wall medians in --wall), and new / old. The load average is printed before
and after: ratios taken at a load above the cores' count compress (memory-bound
calls share the caches) and are suspect.

Threads: every call here of fewer than c_run.PARALLEL_FROM (10^5) points runs one
thread; the C kernels are compiled with threads=None (that choice), so 10^5 and 10^6
points may take more (the header prints the cores the process may use, and
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS as set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCALAR = "sin(x)*y + exp(x*y)"
TENSOR = "sum(log(1 + exp(-y * (X @ w))))"
JACOBIAN = ["x*y + exp(y)", "sin(x) - x*y"]


def cases(large: bool, edges: bool = False) -> list:
    """(name, backend, build) of every case; build() -> a call of no arguments.
    `edges`: also calls that a plan hands to the general path (a strided input, lists,
    out=, a float32 function, inputs that broadcast to a new shape)."""
    import numpy as np
    from exprcompiler import compile_grad, compile_jacobian

    rng = np.random.default_rng(7)
    out = []
    for backend in ("numpy", "c"):
        def grad(backend=backend):
            return compile_grad(SCALAR, backend=backend)
        for n in ((1, 10, 100, 1000, 10_000, 100_000, 1_000_000) if large else (1, 10, 100, 10_000)):
            def build(n=n, grad=grad):
                g, X, Y = grad(), rng.random(n), rng.random(n)
                return lambda: g(X, Y)
            out.append((f"grad n={n}", backend, build))

        def by_name(grad=grad):
            g, X, Y = grad(), rng.random(10), rng.random(10)
            return lambda: g(x=X, y=Y)

        def mixed(grad=grad):
            g, X = grad(), rng.random(10)
            return lambda: g(X, 0.5)

        def numbers(grad=grad):
            g = grad()
            return lambda: g(0.3, 0.5)

        def tensor(backend=backend):
            g = compile_grad(TENSOR, wrt="w", backend=backend, shapes={"X": (5, 3), "y": (5,), "w": (3,)})
            X, y, w = rng.random((5, 3)), rng.random(5), rng.random(3)
            return lambda: g(X=X, y=y, w=w)

        def jacobian(backend=backend):
            J = compile_jacobian(JACOBIAN, backend=backend)
            X, Y = rng.random(10), rng.random(10)
            return lambda: J(X, Y)
        out += [("grad n=10 by name", backend, by_name), ("grad n=10, a float", backend, mixed),
                ("grad of numbers", backend, numbers), ("tensor (5, 3)", backend, tensor),
                ("jacobian n=10", backend, jacobian)]
        if edges:
            def strided(grad=grad):
                g, X, Y = grad(), rng.random(20)[::2], rng.random(10)
                return lambda: g(X, Y)

            def lists(grad=grad):
                g, X, Y = grad(), rng.random(10).tolist(), rng.random(10).tolist()
                return lambda: g(X, Y)

            def with_out(grad=grad):
                g, X, Y = grad(), rng.random(10), rng.random(10)
                out = (np.empty(10), (np.empty(10), np.empty(10)))
                return lambda: g(X, Y, out=out)

            def float32(backend=backend):
                g = compile_grad(SCALAR, backend=backend, dtype="float32")
                X, Y = rng.random(10).astype(np.float32), rng.random(10).astype(np.float32)
                return lambda: g(X, Y)

            def broadcast(grad=grad):
                g, X, Y = grad(), rng.random((4, 1)), rng.random((1, 5))
                return lambda: g(X, Y)
            out += [("grad n=10 strided", backend, strided), ("grad n=10 lists", backend, lists),
                    ("grad n=10 out=", backend, with_out), ("grad n=10 float32", backend, float32),
                    ("grad (4,1) x (1,5)", backend, broadcast)]
    return out


def worker(large: bool, edges: bool, seconds: float) -> None:
    """Compile every case, then answer `index` lines with one batch's per-call times."""
    made = []
    for name, backend, build in cases(large, edges):
        call = build()
        for _ in range(3):   # the first calls (plans are made at the second)
            call()
        start, k = time.perf_counter(), 0
        while time.perf_counter() - start < seconds / 4 or k < 3:
            call()
            k += 1
        made.append((call, max(3, int(4 * k))))
    print(json.dumps({"ready": len(made)}), flush=True)
    for line in sys.stdin:
        call, k = made[int(line)]
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        for _ in range(k):
            call()
        cpu, wall = time.thread_time_ns() - cpu, time.perf_counter_ns() - wall
        print(json.dumps({"cpu": cpu / k / 1e3, "wall": wall / k / 1e3}), flush=True)


def start(tree: Path, large: bool, edges: bool, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    p = subprocess.Popen([sys.executable, __file__, "--worker", "--seconds", str(seconds)]
                         + (["--large"] if large else []) + (["--edges"] if edges else []), env=env, cwd=str(tree),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(p.stdout.readline())
    assert "ready" in ready, ready
    return p


def ask(p: subprocess.Popen, k: int) -> dict:
    p.stdin.write(f"{k}\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def threads_line() -> str:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count()
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                    if k in os.environ) or "no thread variables set"
    return f"cores usable: {cores}; {env}; calls below 10^5 points run one C thread"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, help="an old tree (its root: PYTHONPATH) to run side by side")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--seconds", type=float, default=0.01, help="about this long a batch of calls")
    ap.add_argument("--large", action="store_true", help="also 10^3, 10^5 and 10^6 points")
    ap.add_argument("--edges", action="store_true", help="also calls a plan hands to the general path")
    ap.add_argument("--only", default="", help="the cases whose name or backend holds this")
    ap.add_argument("--wall", action="store_true", help="wall-clock medians instead of thread CPU")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.large, a.edges, a.seconds)
    names = [(name, backend) for name, backend, _ in cases(a.large, a.edges)]
    chosen = [k for k, (name, backend) in enumerate(names) if a.only in name or a.only == backend]
    trees = [("new", ROOT)] + ([("old", a.old.resolve())] if a.old else [])
    print(f"load before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {threads_line()}")
    workers = {label: start(tree, a.large, a.edges, a.seconds) for label, tree in trees}
    times: dict = {(label, k): [] for label, _ in trees for k in chosen}
    key = "wall" if a.wall else "cpu"
    try:
        for r in range(a.rounds):
            order = trees if r % 2 == 0 else trees[::-1]
            for k in chosen:
                for label, _ in order:
                    times[label, k].append(ask(workers[label], k)[key])
    finally:
        for p in workers.values():
            p.stdin.close()
            p.wait()
    print(f"load after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; medians of {a.rounds} rounds, "
          f"µs per call ({'wall' if a.wall else 'thread CPU'})")
    head = f"{'case':24s} {'backend':7s} {'new':>10s}"
    print(head + (f" {'old':>10s} {'new/old':>8s}" if a.old else ""))
    for k in chosen:
        name, backend = names[k]
        new = statistics.median(times["new", k])
        row = f"{name:24s} {backend:7s} {new:10.2f}"
        if a.old:
            old = statistics.median(times["old", k])
            row += f" {old:10.2f} {new / old:8.2f}"
        print(row)


if __name__ == "__main__":
    main()
