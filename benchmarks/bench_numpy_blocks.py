"""The NumPy backend's blocked calls, old tree against new: time and page faults a
call, each case in fresh processes (glibc's heap thresholds, which the fix is about,
only ever rise in a process: old and new cannot share one), the two trees' processes
taking turns.

    git worktree add /tmp/old HEAD
    python benchmarks/bench_numpy_blocks.py --old /tmp/old [--rounds 3] [--calls 15]

Prints, per formula, size and pattern, the median CPU time of a call (user + system:
the page faults are system time; on a shared machine it does not count other
processes' turns) and the median minor page faults a call (getrusage), old and new,
and the ratio new/old of the medians over the rounds (each round one old and one new
process). Patterns, at sizes of two blocks or more (numpy_run):
  drop  the results dropped before the next call (a loop that keeps no result);
  keep  the previous call's results held until the next call returns (r = g(x, y));
  out   the results written into the same out= arrays every call.
At small sizes (1 as Python floats: the one-point call; 10, 100, 10³) only `drop`.
NumPy runs each call on one thread (no BLAS call above a 3-vector here). `logistic` is
a tensor program (whole arrays, no blocks, no helper above runtime_blocks' size): a
control, which this fix leaves as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

FORMULAS = {
    "grad": "sin(x)*exp(-y) + log(1 + x*x)*sqrt(y*y + 1) + x*y",
    "hessian": "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))",
    "logistic": "sum(log(1 + exp(-y * (X @ w))))",
    "stable": "log(1 + exp(x)) + sqrt(x*x + 1) - x",   # a stability row's kind: helpers (softplus)
}


def _compiled(name: str):
    from exprcompiler import compile_grad, compile_hessian
    if name == "hessian":
        return compile_hessian(FORMULAS[name])
    if name == "logistic":
        return compile_grad(FORMULAS[name], wrt=["w"], shapes={"X": ("n", 3), "w": (3,), "y": ("n",)})
    if name == "stable":
        return compile_grad(FORMULAS[name], stable=True)
    return compile_grad(FORMULAS[name])


def _inputs(name: str, g, n: int):
    import numpy as np
    rng = np.random.default_rng(0)
    if name == "logistic":
        return [rng.standard_normal((n, 3)), rng.standard_normal(3) / 3, np.sign(rng.standard_normal(n))]
    if n == 1:
        return [float(v) for v in rng.uniform(0.5, 2, len(g.inputs))]
    return [rng.uniform(0.5, 2, n) for _ in g.inputs]


def worker(name: str, n: int, pattern: str, calls: int) -> dict:
    """One case in this process: {"cpu": median seconds, "faults": median a call}."""
    import numpy as np
    g = _compiled(name)
    args = _inputs(name, g, n)
    out = None
    if pattern == "out":
        first = g(*args)
        out = _like(first, np)
    held = [None]

    def call():
        if pattern == "keep":
            held[0] = g(*args)
        elif pattern == "out":
            g(*args, out=out)
        else:
            held[0] = None
            g(*args)
    inner = 1 if n >= 10**4 else max(1, 2000 // n)   # small n: a run of calls a sample
    for _ in range(3):
        call()
    cpu, faults = [], []
    for _ in range(calls):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.process_time()
        for _ in range(inner):
            call()
        cpu.append((time.process_time() - t0) / inner)
        faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / inner)
    return {"cpu": statistics.median(cpu), "faults": statistics.median(faults)}


def _like(result, np):
    if isinstance(result, tuple):
        return tuple(_like(r, np) for r in result)
    return np.empty_like(result)


def _run(tree: str, name: str, n: int, pattern: str, calls: int) -> dict:
    env = dict(os.environ, PYTHONPATH=tree, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", name, str(n), pattern,
                           str(calls)], env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def cases(sizes: list[int], names: list[str]):
    for name in names:
        for n in sizes:
            if name == "logistic" and n < 10:
                continue
            for pattern in (("drop", "keep", "out") if n >= 10**5 else ("drop",)):
                yield name, n, pattern


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=False, help="a checkout of the old code (git worktree add DIR HEAD)")
    ap.add_argument("--new", default=str(HERE))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=15)
    ap.add_argument("--sizes", default="1,10,100,1000,100000,1000000")
    ap.add_argument("--formulas", default=",".join(FORMULAS))
    ap.add_argument("--worker", nargs=4, metavar=("NAME", "N", "PATTERN", "CALLS"))
    a = ap.parse_args(argv)
    if a.worker:
        name, n, pattern, calls = a.worker
        print(json.dumps(worker(name, int(n), pattern, int(calls))))
        return
    if not a.old:
        ap.error("--old DIR is required")
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"NumPy backend, one thread; CPU time a call (median of --calls samples a process), "
          f"minor faults a call; {a.rounds} rounds of fresh processes, old and new in turn; "
          f"load {os.getloadavg()[0]:.1f} at the start")
    head = f"{'formula':9s} {'n':>8s} {'pattern':7s} {'old ms':>9s} {'new ms':>9s} {'new/old':>8s} " \
           f"{'old flt':>8s} {'new flt':>8s}"
    print(head)
    print("-" * len(head))
    for name, n, pattern in cases(sizes, a.formulas.split(",")):
        got = {"old": [], "new": []}
        for _ in range(a.rounds):
            for which, tree in (("old", a.old), ("new", a.new)):
                got[which].append(_run(tree, name, n, pattern, a.calls))
        med = {k: statistics.median(r["cpu"] for r in v) for k, v in got.items()}
        flt = {k: statistics.median(r["faults"] for r in v) for k, v in got.items()}
        scale, unit = (1e3, "ms") if n >= 10**4 else (1e6, "us")
        print(f"{name:9s} {n:8d} {pattern:7s} {med['old'] * scale:7.2f}{unit} {med['new'] * scale:7.2f}{unit} "
              f"{med['new'] / med['old']:7.2f}x {flt['old']:8.1f} {flt['new']:8.1f}", flush=True)
    print(f"load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
