"""compile_grad's CPU time against the depth of its caller's stack, with and without
the data-stack guard of exprcompiler/stack_room.py.

On CPython 3.11 and 3.12 a hot loop whose callee's frame opens a new 16 KB data-stack
chunk pays an mmap and a munmap per call, so the same compile is several times slower
from a few caller depths (see stack_room.py). This script calls compile_grad on the
text family's formula (bench_frontend.make_input) from caller depths 0..N-1 (one
small Python frame each: 200 of them span more than one chunk), the guarded entry
point and the bare one (`compile_grad.__wrapped__`) alternating at each depth, and
keeps the minimum CPU time of --repeat calls per depth. Each depth's time is divided
by the median over all depths of the same variant; the table shows, per band of
depths, the median and the worst of these ratios, and how many depths are over 1.3×.

    python benchmarks/bench_call_depth.py                      # text 10³ and 10⁴
    python benchmarks/bench_call_depth.py --sizes 10000 --repeat 3 --band 10

No assertions: a table to read. On Python 3.13+ both variants are the same function.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from bench_frontend import make_input  # noqa: E402
from exprcompiler import api  # noqa: E402
from exprcompiler.stack_room import needed  # noqa: E402

SLOW = 1.3  # a depth is slow over this ratio to its variant's median


def at_depth(depth: int, fn, expr) -> float:
    """CPU seconds of fn(expr) called `depth` frames below this one."""
    if depth:
        return at_depth(depth - 1, fn, expr)
    gc.collect()
    gc.disable()  # a collection's pause is noise here: the guard does not change it
    try:
        start = time.process_time()
        fn(expr)
        return time.process_time() - start
    finally:
        gc.enable()


def sweep(expr, depths: int, repeat: int) -> dict:
    """{variant: [min CPU seconds per depth]}, the variants alternating at each depth."""
    # the guard's __wrapped__ where it is active (elsewhere compile_grad is not wrapped by it)
    bare = api.compile_grad.__wrapped__ if needed() else api.compile_grad
    variants = {"guarded": api.compile_grad, "bare": bare}
    for fn in variants.values():
        fn(expr)  # first-use costs (templates, plans) out of the figures
    times: dict = {name: [] for name in variants}
    for d in range(depths):
        best = {name: float("inf") for name in variants}
        for _ in range(repeat):
            for name, fn in variants.items():
                best[name] = min(best[name], at_depth(d, fn, expr))
        for name in variants:
            times[name].append(best[name])
    return times


def report(size: int, times: dict, band: int) -> None:
    print(f"\ntext {size}: ratio of each depth's CPU time to its variant's median "
          f"(median of band / worst of band)")
    ratios = {}
    for name, ts in times.items():
        median = statistics.median(ts)
        ratios[name] = [t / median for t in ts]
        slow = [d for d, r in enumerate(ratios[name]) if r > SLOW]
        print(f"  {name:8s} median {median * 1e3:8.1f} ms; {len(slow)} of {len(ts)} depths over "
              f"{SLOW}x: {slow}; worst {max(ratios[name]):.2f}x")
    names = list(times)
    print("  depths   " + "".join(f"{name:>18s}" for name in names))
    depths = len(next(iter(times.values())))
    for lo in range(0, depths, band):
        cells = []
        for name in names:
            chunk = ratios[name][lo:lo + band]
            cells.append(f"{statistics.median(chunk):8.2f} /{max(chunk):6.2f}  ")
        print(f"  {lo:3d}-{min(lo + band, depths) - 1:3d}  " + "".join(f"{c:>18s}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--depths", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2,
                        help="calls per depth and variant (the minimum is kept)")
    parser.add_argument("--band", type=int, default=20, help="depths per row of the table")
    args = parser.parse_args()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), args.depths + 1000))
    print(f"Python {sys.version.split()[0]}; guard {'active' if needed() else 'a no-op here'}")
    for size in args.sizes:
        report(size, sweep(make_input("text", size), args.depths, args.repeat), args.band)


if __name__ == "__main__":
    main()
