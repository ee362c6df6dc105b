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

Where a worker's time goes: Dask's task stream gives the kernel tasks' and the sums'
wall time per worker (the rest is scheduling, messages and idle time), and getrusage
in the workers and the scheduler their CPU seconds, which other jobs on a shared
machine do not inflate as they do wall time. Measured with `perf record` on a worker
(10 MB chunks, under load): the kernel and the sums were a fifth of its CPU, zeroing
the pages of the fresh result arrays (the kernel's page faults) a fifth to a quarter,
and Python (the worker's task machinery) two fifths; in this process the same result
arrays reuse memory malloc already has.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"


def _points(n: int, chunks: int):
    import dask.array as da
    rng = da.random.default_rng(0)
    size = -(-n // chunks)
    return rng.uniform(1.0, 2.0, size=n, chunks=size), rng.uniform(0.5, 1.0, size=n, chunks=size)


def in_process(g, x1, x2, repeat: int) -> tuple[float, np.ndarray, float]:
    """Median seconds, the three sums, and the median CPU seconds, for the kernel over
    the chunks one by one."""
    blocks = [(a.compute(scheduler="threads"), b.compute(scheduler="threads"))
              for a, b in zip(x1.blocks, x2.blocks)]
    times, cpu, sums = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        sums = np.zeros(3)
        for a, b in blocks:
            value, (d1, d2) = g(a, b)
            sums += [value.sum(), d1.sum(), d2.sum()]
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), sums, statistics.median(cpu)


def on_cluster(g, x1, x2, workers: int, repeat: int, env=None) -> tuple[float, np.ndarray, float, float]:
    """(median seconds, the sums, and the medians of the kernel tasks' and the other
    tasks' compute seconds per worker, from Dask's task stream: the rest of the wall
    time is scheduling, messages and idle workers)."""
    import dask
    from distributed import Client, LocalCluster, get_task_stream

    from exprcompiler import on_dask
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=env) as cluster, Client(cluster, set_as_default=False) as client:
        a, b = client.persist([x1, x2])
        value, (d1, d2) = on_dask.call(g, (a, b), {})
        lazy = [value.sum(), d1.sum(), d2.sum()]
        dask.compute(*lazy, scheduler=client)  # warm: the workers load the kernel
        times, kernel, other, cpu, sums = [], [], [], [], None
        for _ in range(repeat):
            with get_task_stream(client) as stream:
                before = cpu_seconds(client)
                start = time.perf_counter()
                sums = np.array(dask.compute(*lazy, scheduler=client))
                times.append(time.perf_counter() - start)
                cpu.append(cpu_seconds(client) - before)
            spans = [(str(t["key"]), s["stop"] - s["start"]) for t in stream.data for s in t["startstops"]
                     if s["action"] == "compute"]
            kernel.append(sum(d for k, d in spans if "exprcompiler_points-" in k) / workers)
            other.append(sum(d for k, d in spans if "exprcompiler_points-" not in k) / workers)
    return (statistics.median(times), sums, statistics.median(kernel), statistics.median(other),
            np.median(cpu, axis=0) / [workers, 1])


def cpu_seconds(client) -> np.ndarray:
    """[CPU seconds of all workers, of the scheduler] so far: unlike wall time, what the
    other jobs on a shared machine do not inflate."""
    def used():
        r = __import__("resource").getrusage(__import__("resource").RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    return np.array([sum(client.run(used).values()), client.run_on_scheduler(used)])


def main(argv=None) -> int:
    from exprcompiler import compile_grad
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=float, default=1e7)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker-env", default="", metavar="K=V,...",
                        help="environment of the worker processes, for experiments with glibc's malloc "
                             "(the nanny sets MALLOC_TRIM_THRESHOLD_=65536), e.g. "
                             "MALLOC_MMAP_THRESHOLD_=33554432,MALLOC_TRIM_THRESHOLD_=1073741824")
    args = parser.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in args.worker_env.split(",") if kv)
    n = int(args.points)
    g = compile_grad(GRIEWANK, backend="c", threads=1)
    x1, x2 = _points(n, args.chunks)
    load = os.getloadavg()
    print(f"Griewank value + gradient, {n:.0e} points in {args.chunks} chunks "
          f"({n // args.chunks * 8 / 1e6:.0f} MB per input chunk); median of {args.repeat}; workers: processes "
          f"x 1 thread{'; worker env ' + args.worker_env if env else ''}; load average before "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    base, ref, base_cpu = in_process(g, x1, x2, args.repeat)
    print(f"  in-process C, one thread     {base:8.3f} s   {n / base / 1e6:7.1f} M points/s   "
          f"CPU {base_cpu:6.3f} s")
    rows = {}
    for workers in (1, 2):
        seconds, sums, kernel, other, (cpu, scheduler) = on_cluster(g, x1, x2, workers, args.repeat, env)
        rows[workers] = seconds
        worst = float(np.max(np.abs(sums - ref) / np.abs(ref)))
        print(f"  LocalCluster, {workers} worker{'s' if workers > 1 else ' '}     {seconds:8.3f} s   "
              f"{n / seconds / 1e6:7.1f} M points/s   per worker {base / (seconds * workers):5.2f}x "
              f"in-process; sums agree to {worst:.1e}")
        print(f"      per worker: kernel tasks {kernel:6.3f} s ({base / kernel:4.2f}x in-process), sums "
              f"{other:6.3f} s, the rest (scheduling, messages, idle) {seconds - kernel - other:6.3f} s")
        print(f"      CPU seconds: per worker {cpu:6.3f} s ({base_cpu / (cpu * workers):4.2f}x in-process), "
              f"scheduler {scheduler:6.3f} s")
    print(f"  1 -> 2 workers: {rows[1] / rows[2]:.2f}x; load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
