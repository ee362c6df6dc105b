"""Benchmark (not registered in the suite): Griewank value + gradient at 10^7-10^8
points, generated C, on one thread in this process against a Dask LocalCluster of 1
and of 2 worker processes (one thread each) — how close a worker comes to the bare
kernel, and how two workers scale on a machine with two cores.

    python -m exprcompiler.bench.dask_griewank --points 1e7 --chunks 8

Every run computes the sums of the three outputs (value, d/dx1, d/dx2), so no run
holds the 3 x points results at once and the figures are the kernel plus one pass of
summing. The points are made by dask.array's seeded generator and kept in memory (in
the workers, `persist`) before timing; the in-process run reads the same chunks and
calls the kernel chunk by chunk, on one thread. The first cluster run of each size
(the workers unpickle the kernel and load it from the cache) is not timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"


def _points(n: int, chunks: int):
    import dask.array as da
    rng = da.random.default_rng(0)
    size = -(-n // chunks)
    return rng.uniform(1.0, 2.0, size=n, chunks=size), rng.uniform(0.5, 1.0, size=n, chunks=size)


def in_process(g, x1, x2, repeat: int) -> tuple[float, np.ndarray]:
    """Median seconds, and the three sums, for the kernel over the chunks one by one."""
    blocks = [(a.compute(scheduler="threads"), b.compute(scheduler="threads"))
              for a, b in zip(x1.blocks, x2.blocks)]
    times, sums = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        sums = np.zeros(3)
        for a, b in blocks:
            value, (d1, d2) = g(a, b)
            sums += [value.sum(), d1.sum(), d2.sum()]
        times.append(time.perf_counter() - start)
    return statistics.median(times), sums


def on_cluster(g, x1, x2, workers: int, repeat: int) -> tuple[float, np.ndarray]:
    import dask
    from distributed import Client, LocalCluster

    from exprcompiler import on_dask
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        a, b = client.persist([x1, x2])
        value, (d1, d2) = on_dask.call(g, (a, b), {})
        lazy = [value.sum(), d1.sum(), d2.sum()]
        dask.compute(*lazy, scheduler=client)  # warm: the workers load the kernel
        times, sums = [], None
        for _ in range(repeat):
            start = time.perf_counter()
            sums = np.array(dask.compute(*lazy, scheduler=client))
            times.append(time.perf_counter() - start)
    return statistics.median(times), sums


def main(argv=None) -> int:
    from exprcompiler import compile_grad
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=float, default=1e7)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    n = int(args.points)
    g = compile_grad(GRIEWANK, backend="c", threads=1)
    x1, x2 = _points(n, args.chunks)
    print(f"Griewank value + gradient, {n:.0e} points in {args.chunks} chunks "
          f"({n // args.chunks * 8 / 1e6:.0f} MB per input chunk); median of {args.repeat}")
    base, ref = in_process(g, x1, x2, args.repeat)
    print(f"  in-process C, one thread     {base:8.3f} s   {n / base / 1e6:7.1f} M points/s")
    rows = {}
    for workers in (1, 2):
        seconds, sums = on_cluster(g, x1, x2, workers, args.repeat)
        rows[workers] = seconds
        worst = float(np.max(np.abs(sums - ref) / np.abs(ref)))
        print(f"  LocalCluster, {workers} worker{'s' if workers > 1 else ' '}     {seconds:8.3f} s   "
              f"{n / seconds / 1e6:7.1f} M points/s   per worker {base / (seconds * workers):5.2f}x "
              f"in-process; sums agree to {worst:.1e}")
    print(f"  1 -> 2 workers: {rows[1] / rows[2]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
