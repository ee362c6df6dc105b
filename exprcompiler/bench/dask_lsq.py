"""Benchmark (not registered in the suite): the least-squares gradient over rows on a
Dask LocalCluster — exprcompiler's compiled gradient called with Dask arrays against
the same value and gradient written by hand in dask.array (`X.T @ (X @ w - y)`),
side by side on the same persisted data, and the compiled C kernel run here over the
same chunks one by one on one thread (a worker's floor: "per worker" is that time over
workers x the cluster's); and the per-step overhead of Dask in an optimizer loop (one
`dask.compute` per evaluation).

    python -m exprcompiler.bench.dask_lsq --rows 1e6 --cols 100 --chunks 8

The data are made by dask.array's seeded generator on the workers and persisted
there before timing; each figure is the median of `--repeat` computations of value
and gradient (a new w each time, so nothing is cached), the first (warm-up: the
workers load the kernel) not timed. Workers are processes with one thread each;
Dask's nanny sets OMP/MKL/OPENBLAS_NUM_THREADS=1, so the hand-written matmuls run on
one BLAS thread per worker and the compiled C kernel on one thread (the shipped copy
is built with threads=1). The overhead is measured on a tiny problem with the same
chunk count: the time of one evaluation when the kernels cost nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def _data(rows: int, cols: int, chunks: int):
    import dask.array as da
    rng = da.random.default_rng(0)
    size = -(-rows // chunks)
    X = rng.standard_normal((rows, cols), chunks=(size, cols))
    y = X @ np.linspace(-1, 1, cols) + 0.1 * rng.standard_normal(rows, chunks=size)
    return X, y


def _median(fn, repeat: int) -> tuple[float, object]:
    fn(0)  # warm-up
    times, out = [], None
    for k in range(repeat):
        start = time.perf_counter()
        out = fn(k + 1)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def cpu_seconds(client) -> np.ndarray:
    """[CPU seconds of all workers, of the scheduler] so far: unlike wall time, what the
    other jobs on a shared machine do not inflate as much."""
    from exprcompiler.bench.dask_griewank import usage
    return np.array([sum(u[0] for u in client.run(usage).values()), client.run_on_scheduler(usage)[0]])


def _point(cols: int, k: int) -> np.ndarray:
    return np.random.default_rng(k).normal(size=cols) * 0.1


def main(argv=None) -> int:
    import dask
    from distributed import Client, LocalCluster, wait

    from exprcompiler import compile_grad
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--cols", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    rows, cols = int(args.rows), args.cols
    shapes = {"X": ("n", cols), "y": ("n",), "w": (cols,)}
    kernels = {b: compile_grad("0.5*sum((X@w - y)**2)", ["w"], shapes=shapes, backend=b) for b in ("c", "numpy")}
    load = os.getloadavg()
    print(f"least squares value + gradient, {rows:.0e} x {cols} ({rows * cols * 8 / 1e9:.2f} GB) in {args.chunks} "
          f"chunks ({rows * cols * 8 / args.chunks / 1e6:.0f} MB each), {args.workers} worker processes x 1 thread; "
          f"median of {args.repeat}; load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"on {os.cpu_count()} cores")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        threads = client.run(lambda: {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
        print(f"  worker thread settings: {next(iter(threads.values()))}")
        X, y = client.persist(_data(rows, cols, args.chunks))
        wait([X, y])

        def by_hand(k):
            w = _point(cols, k)
            r = X @ w - y
            value, grad = dask.compute(0.5 * (r * r).sum(), X.T @ r, scheduler=client)
            return float(value), grad

        def grad_only(k):
            w = _point(cols, k)
            return dask.compute(X.T @ (X @ w - y), scheduler=client)[0]

        blocks = list(zip(*(dask.compute(*a.blocks, scheduler=client) for a in (X, y))))
        one = kernels["c"].with_threads(1)

        def in_process(k):  # the same chunks here, one by one, on one thread: a worker's floor
            w = _point(cols, k)
            parts = [one(X=xb, y=yb, w=w) for xb, yb in blocks]
            return sum(p[0] for p in parts), sum(p[1][0] for p in parts)
        base, _ = _median(in_process, args.repeat)
        start = time.process_time()
        in_process(0)
        base_cpu = time.process_time() - start
        blocks.clear()  # 0.8 GB here: not kept beside the cluster
        print(f"  in-process C, one thread, chunk by chunk  {base * 1e3:8.1f} ms   CPU {base_cpu * 1e3:6.1f} ms")
        hand, (v_ref, g_ref) = _median(by_hand, args.repeat)
        hand_g, _ = _median(grad_only, args.repeat)
        print(f"  by hand, dask.array: value + gradient  {hand * 1e3:8.1f} ms")
        print(f"  by hand, dask.array: X.T @ (X @ w - y) {hand_g * 1e3:8.1f} ms")
        for backend, g in kernels.items():
            def ours(k, g=g):
                value, (grad,) = g(X=X, y=y, w=_point(cols, k))
                value, grad = dask.compute(value, grad, scheduler=client)
                return float(value), grad
            seconds, (v, grad) = _median(ours, args.repeat)
            err = max(abs(v - v_ref) / abs(v_ref), float(np.max(np.abs(grad - g_ref)) / np.max(np.abs(g_ref))))
            print(f"  exprcompiler, {backend:<5} value + gradient  {seconds * 1e3:8.1f} ms   "
                  f"{seconds / hand:5.2f}x by hand (value + gradient), {seconds / hand_g:5.2f}x (gradient alone); "
                  f"per worker {base / (seconds * args.workers):4.2f}x in-process; agrees to {err:.1e}")
            if backend == "c":  # CPU seconds, which other jobs on a shared machine do not inflate
                before = cpu_seconds(client)
                ours(0)
                cpu, scheduler = cpu_seconds(client) - before
                print(f"      CPU: workers {cpu * 1e3:6.1f} ms ({base_cpu / cpu:4.2f}x in-process), "
                      f"scheduler {scheduler * 1e3:6.1f} ms")
        # the overhead: the same chunk count, 8 rows a chunk
        Xs, ys = client.persist(_data(8 * args.chunks, cols, args.chunks))
        wait([Xs, ys])
        g = kernels["c"]

        def tiny(k):
            value, (grad,) = g(X=Xs, y=ys, w=_point(cols, k))
            return dask.compute(value, grad, scheduler=client)
        build = []

        def graph_only(k):
            start = time.perf_counter()
            g(X=Xs, y=ys, w=_point(cols, k))
            build.append(time.perf_counter() - start)
        _median(graph_only, args.repeat)
        per_step, _ = _median(tiny, args.repeat)
        print(f"  Dask per evaluation ({args.chunks} chunks, kernels ~free): {per_step * 1e3:6.1f} ms, of which "
              f"building the graph {statistics.median(build) * 1e3:.1f} ms")
    load = os.getloadavg()
    print(f"  load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
