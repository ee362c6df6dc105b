"""The C rows of issue 18 that cost more than 10% where the naive form is accurate:
naive against stable kernels (compile_grad(expr, backend="c", stable=False/True),
value and gradient, one thread), ns a point.

Each row's kernel is called through its cffi pointer (Compiled._fn) with preallocated
outputs, so that neither the call layer (about 15 us a call) nor fresh memory is in
the time: on 16,384 points of the row's catalogue.SAFE range (in cache; each sample
`--calls` calls) and on 10^6 points (one call a sample). The two forms take turns
sample by sample; thread CPU time, medians (and minima) of `--repeat` samples, and
the ratio of the medians. Run it from the tree to measure (PYTHONPATH=/path/to/tree for
another copy): `python benchmarks/bench_c_stable_rows.py [--only SUBSTRING] ...`.

The rows' bits are checked naive against stable too (the worst relative difference
printed, as a sanity check of what is timed: both forms are accurate on these ranges).
"""

from __future__ import annotations

import argparse
import statistics
import time

import cffi
import numpy as np

from exprcompiler import compile_grad
from exprcompiler.stability.catalogue import CATALOGUE, SAFE

# the rows of issue 18's C budget (catalogue names), worst first
ROWS = ("log(1-exp(x))", "log(-expm1(x))", "log1p(-exp(x))", "sigmoid(x)*(1-sigmoid(x))", "1+erf(x)",
        "1-erf(x)", "log(1+exp(x))", "log(x+sqrt(x**2-1))", "log(1+x)", "log(1-x)", "exp(x)-1", "1-exp(x)",
        "x*log(x)", "log1p(exp(x))", "1/(1+exp(-x))", "x/(1+exp(-x)) (swish)", "log(1-sigmoid(x))",
        "1-tanh(x)**2", "1-sigmoid(x)", "sigmoid(x) (gradient)")

_FFI = cffi.FFI()


def kernel(expr: str, stable: bool):
    """(call(x, v, d): the C kernel of value and gradient of `expr` on x into v and d,
    the Compiled object)."""
    g = compile_grad(expr, backend="c", stable=stable, threads=1)
    fn = g._fn

    def call(x, v, d):
        n = x.shape[0]
        fn(n, 1, _FFI.cast("double *", x.ctypes.data), 1, _FFI.cast("double *", v.ctypes.data), 1,
           _FFI.cast("double *", d.ctypes.data), 1)
    return call, g


def time_pair(calls: dict, x, repeat: int, per_sample: int) -> dict:
    """{key: [seconds a point of each sample]}, the kernels taking turns."""
    outs = {k: (np.empty_like(x), np.empty_like(x)) for k in calls}
    for k, f in calls.items():
        f(x, *outs[k])   # warm
    times = {k: [] for k in calls}
    for _ in range(repeat):
        for k, f in calls.items():
            v, d = outs[k]
            t = time.thread_time()
            for _ in range(per_sample):
                f(x, v, d)
            times[k].append((time.thread_time() - t) / (per_sample * x.shape[0]))
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", help="substring of a row's name (repeatable)")
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--calls", type=int, default=40, help="calls a sample on the in-cache points")
    p.add_argument("--small", type=int, default=16384)
    p.add_argument("--large", type=int, default=10 ** 6)
    p.add_argument("--no-large", action="store_true")
    a = p.parse_args(argv)
    entries = {e.name: e for e in CATALOGUE}
    rows = [r for r in ROWS if not a.only or any(s in r for s in a.only)]
    print(f"{'row':28s} {'points':>8s} {'naive ns':>9s} {'stable ns':>9s} {'ratio':>6s}  (min ratio)  max rel diff")
    for name in rows:
        e = entries[name]
        sampler = SAFE[name][0]
        naive, _ = kernel(e.expr, False)
        stable, _ = kernel(e.expr, True)
        sizes = [a.small] + ([] if a.no_large else [a.large])
        for n in sizes:
            x = np.asarray(sampler(np.random.default_rng(1), n), dtype=np.float64)
            per = a.calls if n == a.small else 1
            t = time_pair({"naive": naive, "stable": stable}, x, a.repeat, per)
            med = {k: statistics.median(v) for k, v in t.items()}
            low = {k: min(v) for k, v in t.items()}
            vn, dn, vs, ds = (np.empty_like(x) for _ in range(4))
            naive(x, vn, dn)
            stable(x, vs, ds)
            diff = max(float(np.max(np.abs(vs - vn) / np.abs(vn))), float(np.max(np.abs(ds - dn) / np.abs(dn))))
            print(f"{name:28s} {n:8d} {med['naive'] * 1e9:9.3f} {med['stable'] * 1e9:9.3f} "
                  f"{med['stable'] / med['naive']:5.2f}x  ({low['stable'] / low['naive']:.2f}x)  {diff:.1e}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
