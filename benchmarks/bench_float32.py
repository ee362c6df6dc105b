"""float32 against float64: the same seed function's C (or NumPy) value + gradient on
10^6 points, side by side in one run, one thread by default.

    python benchmarks/bench_float32.py [--n 1000000] [--threads 1] [--repeat 21] [--backend c]

Prints, per seed function, the median time of a call with each dtype (inputs already
of that dtype, results into preallocated out= arrays, so only the kernel and the call
layer are timed), the ratio, and the largest relative difference of the float32
gradient from the float64 one (float32's own error, for scale: 2^-24 = 6e-8).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from exprcompiler import compile_grad  # noqa: E402
from exprcompiler.bench.seeds import SEEDS  # noqa: E402


def median_time(call, repeat: int) -> float:
    call()  # warm: first-touch of the outputs, thread start
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10**6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--backend", default="c", choices=("c", "numpy"))
    ap.add_argument("--seeds", default="griewank,logsin,explog,cubic")
    args = ap.parse_args(argv)
    threads = args.threads if args.backend == "c" else None
    print(f"value + gradient, {args.n} points, backend={args.backend}, threads={threads or 1}, "
          f"median of {args.repeat}")
    print(f"{'seed':10s} {'float64 ms':>11s} {'float32 ms':>11s} {'f64/f32':>8s} {'max rel diff':>13s}")
    for name in args.seeds.split(","):
        seed = SEEDS[name]
        xs64 = seed.points(args.n)
        row = {}
        results = {}
        for dtype in ("float64", "float32"):
            g = compile_grad(seed.expr, backend=args.backend, threads=threads, dtype=dtype)
            xs = [x.astype(dtype) for x in xs64]
            out = (np.empty(args.n, dtype), tuple(np.empty(args.n, dtype) for _ in seed.inputs))
            row[dtype] = median_time(lambda: g(*xs, out=out), args.repeat)
            results[dtype] = [out[0].copy(), *(o.copy() for o in out[1])]
        diff = max(float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(a))))
                   for a, b in zip(results["float64"], results["float32"]))
        print(f"{name:10s} {row['float64'] * 1e3:11.2f} {row['float32'] * 1e3:11.2f} "
              f"{row['float64'] / row['float32']:8.2f} {diff:13.1e}")


if __name__ == "__main__":
    main()
