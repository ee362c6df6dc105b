"""The C backend's own erfc (backends/c_erfc.py, xc_erfc) against libmvec's erf and erfc:
ns a point on 10^6 points, one thread, each function alone and in the value-and-gradient
kernels of the issue-18 rows (1 - erf(x) and its stable form erfc(x), 1 + erf(x) and
erfc(-x), each beside the gradient's exp(-x^2)), on the rows' ranges and on [1, 26].

    python benchmarks/bench_c_erfc.py [--repeat 21] [--points 1000000]
    python benchmarks/bench_c_erfc.py --fit     (c_erfc's N and D, fitted again: a minute)

The kernels are built by c_build with the backend's flags, as loops of the shape the
generated kernels have (the point's input read once, then the value and the gradient,
so that gcc may compute exp(-x^2) once where the value's erfc computes it too); the
variants run alternated, one after the other, and each figure is the median. Say the
load (`uptime`) with the figures: at load > 4 the ratios compress.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import time

import numpy as np

from exprcompiler.backends import c_backend, c_build, c_erfc, c_helpers

C = "1.1283791670955126"   # 2/sqrt(pi)
# name -> (value, gradient) C expressions of xi, the point's input (gradient None: value only)
KERNELS = {
    "erf": ("erf(xi)", None),
    "erfc": ("erfc(xi)", None),
    "xc_erfc": ("xc_erfc(xi)", None),
    "1-erf naive": ("1.0 - erf(xi)", f"-({C} * exp(-xc_square(xi)))"),
    "1-erf libmvec erfc": ("erfc(xi)", f"-({C} * exp(-xc_square(xi)))"),
    "1-erf xc_erfc": ("xc_erfc(xi)", f"-({C} * exp(-xc_square(xi)))"),
    "1+erf naive": ("1.0 + erf(xi)", f"{C} * exp(-xc_square(xi))"),
    "1+erf libmvec erfc": ("erfc(v1)", f"{C} * exp(-xc_square(v1))"),
    "1+erf xc_erfc": ("xc_erfc(v1)", f"{C} * exp(-xc_square(v1))"),
}
RANGES = {"[-3, 0.5]": (-3.0, 0.5), "[-0.5, 3]": (-0.5, 3.0), "[1, 26]": (1.0, 26.0)}


def source() -> str:
    """The C text: libmvec's declarations, the helpers, one loop a kernel."""
    lines = ["#include <math.h>"]
    for f in ("exp", "erf", "erfc"):
        lines += ["#pragma omp declare simd notinbranch", f"double {f}(double);"]
    lines += c_helpers.ALWAYS_INLINE + c_backend.math_prelude({"xc_select", "xc_square"})
    lines.append(c_erfc.ERFC)
    for k, (name, (value, grad)) in enumerate(KERNELS.items()):
        body = f"const double xi = x[i], v1 = -xi; y[i] = {value};"
        if grad:
            body += f" z[i] = {grad};"
        lines += [f"/* {name} */", f"void run{k}(long n, const double *restrict x, double *restrict y, double *restrict z)",
                  "{", "    #pragma omp simd", f"    for (long i = 0; i < n; ++i) {{ {body} }}", "}"]
    return "\n".join(lines) + "\n"


def fit(degrees=(9, 11), top=27.5, points=400, rounds=40):
    """c_erfc.N and c_erfc.D: G(a) = (1 + sqrt(pi) a) erfcx(a) - 1 ~ a N(a)/D(a), D(0) = 1,
    on [0, top], by linearized least squares in mpmath (80 digits) on Chebyshev points in
    s = a/top, each round's equations divided by the last round's D and weighted by
    Lawson's rule towards the minimax of the error relative to 1 + G; the best round's
    coefficients, in a. (Fitted with a free constant term in N, which came out 9.5e-19:
    dropped, G(0) = 0.)"""
    import mpmath as mp
    mp.mp.dps = 80
    m, n = degrees[0] + 1, degrees[1]
    ss = [(1 - mp.cos(mp.pi * (k + 0.5) / points)) / 2 for k in range(points)] + [mp.mpf(0), mp.mpf(1)]
    gs = [mp.erfc(s * top) * mp.exp((s * top) ** 2) * (1 + mp.sqrt(mp.pi) * s * top) - 1 for s in ss]
    weights, last, best = [mp.mpf(1)] * len(ss), [mp.mpf(1)] * len(ss), None
    for step in range(rounds):
        rows, rhs = [], []
        for s, g, w, q in zip(ss, gs, weights, last):
            k = mp.sqrt(w) / ((1 + g) * q)
            rows.append([k * s ** j for j in range(m + 1)] + [-k * g * s ** j for j in range(1, n + 1)])
            rhs.append(k * g)
        x = mp.qr_solve(mp.matrix(rows), mp.matrix(rhs))[0]
        num, den = [x[j] for j in range(m + 1)], [mp.mpf(1)] + [x[m + j] for j in range(1, n + 1)]
        last = [mp.polyval(den[::-1], s) for s in ss]
        errors = [(mp.polyval(num[::-1], s) / q - g) / (1 + g) for s, g, q in zip(ss, gs, last)]
        worst = max(abs(e) for e in errors)
        if best is None or worst < best[0]:
            best = (worst, num, den)
        if step >= 3:
            total = sum(w * abs(e) for w, e in zip(weights, errors))
            weights = [w * abs(e) / total for w, e in zip(weights, errors)]
    worst, num, den = best
    print(f"relative error {mp.nstr(worst, 3)}; N's dropped constant term {mp.nstr(num[0], 3)}")
    print("N =", tuple(float(c / mp.mpf(top) ** j) for j, c in enumerate(num) if j))
    print("D =", tuple(float(c / mp.mpf(top) ** j) for j, c in enumerate(den)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--points", type=int, default=10 ** 6)
    ap.add_argument("--fit", action="store_true", help="fit c_erfc's N and D again and print them")
    args = ap.parse_args()
    if args.fit:
        return fit()
    lib = ctypes.CDLL(str(c_build.build(source())))
    runs = []
    for k in range(len(KERNELS)):
        fn = getattr(lib, f"run{k}")
        fn.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        runs.append(fn)
    n = args.points
    y, z = np.empty(n), np.empty(n)
    print(f"load {os.getloadavg()[0]:.2f}; ns a point, medians of {args.repeat}, {n} points, one thread")
    names = list(KERNELS)
    print(f"{'range':10s} " + " ".join(f"{nm:>19s}" for nm in names))
    for label, (lo, hi) in RANGES.items():
        x = np.linspace(lo, hi, n)
        times = [[] for _ in runs]
        for _ in range(args.repeat):
            for k, fn in enumerate(runs):   # alternated
                start = time.perf_counter()
                fn(n, x.ctypes.data, y.ctypes.data, z.ctypes.data)
                times[k].append((time.perf_counter() - start) * 1e9 / n)
        med = [statistics.median(t) for t in times]
        print(f"{label:10s} " + " ".join(f"{m:19.3f}" for m in med))
        by = dict(zip(names, med))
        for row in ("1-erf", "1+erf"):
            print(f"{'':10s} {row}: libmvec erfc {by[row + ' libmvec erfc'] / by[row + ' naive']:.2f}x the naive form, "
                  f"xc_erfc {by[row + ' xc_erfc'] / by[row + ' naive']:.2f}x")


if __name__ == "__main__":
    main()
