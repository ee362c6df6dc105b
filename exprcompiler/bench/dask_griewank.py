"""Benchmark (not registered in the suite): Griewank value + gradient at 10^7-10^8
points, generated C, on one thread in this process against a Dask LocalCluster of 1
and of 2 worker processes (one thread each) — how close a worker comes to the bare
kernel, and how two workers scale on a machine with two cores.

    python -m exprcompiler.bench.dask_griewank --points 1e8 --chunks 16

Every run computes the same thing, the sums of the three outputs (value, d/dx1,
d/dx2) over the points, from the same chunks of points, held in memory before timing:
x1 and x2 are the rows of one (2, n) array made by dask.array's seeded generator,
persisted on the workers together (both rows of a chunk come from one task, so they are
on one worker; the table says how the chunks are spread); this process computes the
same blocks and calls the kernel on their rows. Three ways on each side:

    in-process, new arrays   value, (d1, d2) = g(a, b) per chunk, then the sums (what
                             a loop over chunks in user code does)
    in-process, out=         the same into arrays made once (the kernel, then NumPy's
                             sums: the floor of the previous table)
    in-process, g.sum        g.sum(a, b) per chunk: the kernel and the sums block by
                             block, in the caches (point_sums.py)
    cluster, arrays          g(x1, x2) and Dask's .sum() of each output
    cluster, g.sum           g.sum(x1, x2): each chunk's task runs g.sum's blocks
    cluster, fixed cost      g.sum on as many chunks of 1000 points: what a computation costs
                             whatever its size (the graph, the scheduler, a task per
                             chunk and one per output for the sums)

The rounds interleave every way (both clusters stay up), so load from other jobs on a
shared machine falls on all of them; medians. Before timing, each cluster runs each
way once (the workers unpickle the kernel and load it from the on-disk cache); the
workers' counts of unpickled kernels and C compiler runs are printed at the end.
Besides wall time: CPU seconds (user + system, from getrusage) and minor page faults
of this process or of the workers, which show the work done whatever the load, and the
CPU of the threads that run the kernels alone ("task CPU": this process's main thread,
a worker's task threads), which splits a worker's CPU into its tasks' and its event
loop's (comms, heartbeats, Dask's profiler). A worker's wall time is split the same
way, from the scheduler's task stream: inside its chunks' tasks (per chunk, beside the
in-process time per chunk), idle between them (each next task is started by the
worker's event loop), before the first chunk starts, waiting for the other worker to
finish its chunks, and after the last (the reduction's tasks, the results). On a machine
whose cores the workers fill, the scheduler's, nannies' and event loops' CPU comes out
of the kernels': --dask-loops quiet makes Dask's periodic work rarer, --pin gives each
worker a CPU of its own. Two plain processes running g.sum on the chunks each worker
holds, one alone then both at once, give the machine's own ceiling for 1 -> 2 workers in
the same run (dask_machine.Bare): on a machine shared with other jobs it falls, and the
workers' scaling is best read against it.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import threading
import time
import warnings
from collections import Counter

import numpy as np

from .dask_machine import QUIET_LOOPS, Bare, pin_process

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"


def _points(n: int, chunks: int):
    """The (2, n) array of points (x1 in [1, 2), x2 in [0.5, 1)), lazy, chunked along n."""
    import dask.array as da
    size = -(-n // chunks)
    unit = da.random.default_rng(0).random((2, n), chunks=(2, size))
    return unit * np.array([[1.0], [0.5]]) + np.array([[1.0], [0.5]])


def usage() -> np.ndarray:
    """[CPU seconds (user + system), minor page faults, CPU seconds of the threads that
    run the kernels] of this process so far: in this process its main thread; in a
    worker the threads of its task executor (`task_threads_cpu`)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    tasks = time.thread_time() if threading.current_thread() is threading.main_thread() else np.nan
    return np.array([r.ru_utime + r.ru_stime, r.ru_minflt, tasks])


def worker_usage() -> np.ndarray:
    """`usage()` in a worker, called on its event loop (client.run): the kernels'
    threads are its executor's."""
    return np.concatenate([usage()[:2], [task_threads_cpu()]])


def task_threads_cpu() -> float:
    """CPU seconds so far of this process's Dask executor threads (named
    "...Dask-Default-Threads..."), from Linux's per-thread schedstat; NaN elsewhere.
    Beside the process's total, it splits a worker's CPU into the tasks' (the kernel,
    the sums, Dask's code around a task) and its event loop's (comms, heartbeats, and
    Dask's statistical profiler, which samples the task threads' stacks every 10 ms)."""
    ids = [t.native_id for t in threading.enumerate() if "Dask-Default-Threads" in t.name]
    total = 0
    try:
        for i in ids:
            with open(f"/proc/self/task/{i}/schedstat") as f:
                total += int(f.read().split()[0])  # nanoseconds on a CPU
    except (OSError, ValueError, IndexError):
        return float("nan")
    return total / 1e9


def in_process(g, blocks: list, way: str, outs=None) -> tuple[float, np.ndarray, np.ndarray]:
    """(seconds, the three sums, [CPU seconds, faults]) of the kernel and the sums over
    the chunks one by one, on one thread. `way`: "new" (new arrays every chunk), "out"
    (into `outs`, arrays of a chunk's size kept from run to run), "g.sum"."""
    before, start = usage(), time.perf_counter()
    sums = np.zeros(3)
    for block in blocks:
        a, b = block[0], block[1]
        if way == "g.sum":
            value, (d1, d2) = g.sum(a, b)
            sums += [value, d1, d2]
            continue
        out = None if way == "new" or a.size != outs[0].size else outs
        value, (d1, d2) = g(a, b) if out is None else g(a, b, out=out)
        sums += [value.sum(), d1.sum(), d2.sum()]
    return time.perf_counter() - start, sums, usage() - before


def block_indices(key) -> int:
    """How many block indices a task key has: ('sum-3f2a...', 4, 0) -> 2, 'finalize-...' -> 0."""
    return len(key) - 1 if isinstance(key, tuple) else 0


class Cluster:
    """A LocalCluster of `workers` processes x 1 thread holding the points, and the two
    lazy computations of the sums on it."""

    def __init__(self, g, points, workers: int, env: dict, pin: bool = False):
        from distributed import Client, LocalCluster

        self.workers = workers
        self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None, env=env, silence_logs=logging.CRITICAL)
        self.client = Client(self.cluster, set_as_default=False)
        self.client.run(count_compiles)
        if pin:
            for i, addr in enumerate(sorted(self.client.scheduler_info()["workers"])):
                self.client.run(pin_process, i, workers=[addr])
        self.client.get_task_stream(start=time.time())  # the scheduler records tasks from now on
        # x1 and x2 persisted as arrays of their own (no task per chunk to take the rows
        # at each computation): the two rows of a block come from one task, on one worker
        self.x1, self.x2 = x1, x2 = self._persist(points)
        chunks = points.numblocks[1]  # the fixed cost: as many chunks, of 1000 points
        small = self._persist(_points(1000 * chunks, chunks))
        value, (d1, d2) = g(x1, x2)
        sums, tiny = g.sum(x1, x2), g.sum(*small)
        self.ways = {"arrays": [value.sum(), d1.sum(), d2.sum()], "g.sum": [sums[0], *sums[1]],
                     "fixed": [tiny[0], *tiny[1]]}
        for lazy in self.ways.values():  # warm: the workers load the kernel
            self.run(lazy)

    def _persist(self, points) -> list:
        """x1 and x2 persisted, chunk j of both on worker j·workers // chunks: an even
        split. Left to the scheduler, the generating tasks go to whichever worker is
        free, and 10/6 of 16 chunks (seen in quiet runs) caps 1 -> 2 workers at 1.6x."""
        import dask
        from distributed import wait
        addrs = sorted(self.client.scheduler_info()["workers"])
        chunks = points.numblocks[1]

        def home(key) -> list:  # every layer's key ends with the chunk's index along n
            j = key[-1] if isinstance(key, tuple) and isinstance(key[-1], int) else 0
            return [addrs[j * len(addrs) // chunks]]
        with dask.annotate(workers=home, allow_other_workers=False):
            rows = self.client.persist([points[0], points[1]], optimize_graph=False)
        with self.client.as_current():
            wait(rows)
        return rows

    def placement(self) -> str:
        """How the chunks of x1 and x2 are spread: chunks per worker, pairs on one worker."""
        where = self.client.who_has()
        one = [where.get(k) for k in self.x1.__dask_keys__()]
        two = [where.get(k) for k in self.x2.__dask_keys__()]
        counts = sorted(Counter(w[0] for w in one if w).values(), reverse=True)
        together = sum(a == b for a, b in zip(one, two))
        return f"chunks per worker {'/'.join(map(str, counts))}, {together}/{len(one)} pairs on one worker"

    def run(self, lazy) -> tuple[float, np.ndarray, np.ndarray, float]:
        """(seconds, the sums, [CPU seconds, faults, task threads' CPU seconds] per
        worker and the `_timeline`, scheduler CPU seconds)."""
        import dask
        before, sched = self._usage()
        since, start = time.time(), time.perf_counter()
        sums = np.array(dask.compute(*lazy, scheduler=self.client), dtype=float)
        seconds = time.perf_counter() - start
        after, sched_after = self._usage()
        used = np.concatenate([(after - before) / self.workers, self._timeline(since, seconds)])
        return seconds, sums, used, sched_after - sched

    def _timeline(self, since: float, seconds: float) -> np.ndarray:
        """[seconds inside the chunks' tasks, idle between them (both per worker, mean);
        before the first (the graph to the scheduler, the first task to a worker); a
        worker's wait from its last chunk to the last of all (imbalance, mean); after the
        last (the reduction's tasks, the results back)] of the computation that ran from
        `since` for `seconds`, from the scheduler's task stream (the workers' clocks are
        this machine's). The chunks' tasks are those whose keys have the most block
        indices (the reduction's have fewer, or none)."""
        tasks = [t for t in self.client.get_task_stream(start=since)
                 if any(s["action"] == "compute" for s in t["startstops"])]
        if not tasks:
            return np.full(5, np.nan)
        most = max(block_indices(t["key"]) for t in tasks)
        spans: dict = {}
        for task in tasks:
            if block_indices(task["key"]) == most:
                spans.setdefault(task["worker"], []).extend(
                    (s["start"], s["stop"]) for s in task["startstops"] if s["action"] == "compute")
        inside = [sum(b - a for a, b in s) for s in spans.values()]
        first = [min(a for a, _ in s) for s in spans.values()]
        last = [max(b for _, b in s) for s in spans.values()]
        idle = [b - a - i for a, b, i in zip(first, last, inside)]
        return np.array([sum(inside) / self.workers, sum(idle) / self.workers, min(first) - since,
                         sum(max(last) - b for b in last) / self.workers, since + seconds - max(last)])

    def _usage(self):
        return (sum(self.client.run(worker_usage).values()), self.client.run_on_scheduler(usage)[0])

    def kernel_builds(self) -> str:
        from exprcompiler import on_dask
        states = self.client.run(lambda: (sum(on_dask.REBUILDS.values()), _compiles()))
        return ", ".join(f"{r} unpickled / {c} compiled" for r, c in states.values())

    def close(self):
        self.client.close()
        self.cluster.close()


def count_compiles():
    """In a worker: count the C compiler runs of this process (c_build._compile)."""
    from exprcompiler.backends import c_build
    if not hasattr(c_build._compile, "runs"):
        real = c_build._compile

        def counted(*args, **kwargs):
            counted.runs += 1
            return real(*args, **kwargs)
        counted.runs = 0
        c_build._compile = counted


def _compiles() -> int:
    from exprcompiler.backends import c_build
    return getattr(c_build._compile, "runs", -1)


def main(argv=None) -> int:
    import dask
    from exprcompiler import compile_grad
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=float, default=1e7)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--skip-arrays", action="store_true",
                        help="leave out the cluster's arrays + Dask sums (the slowest way, 10-25 s a run)")
    parser.add_argument("--worker-profile", choices=("on", "off"), default="on",
                        help="Dask's statistical profiler in the workers (distributed.worker.profile.enabled): "
                             "it samples the task threads' stacks every 10 ms on the worker's event loop")
    parser.add_argument("--worker-env", default="", metavar="K=V,...",
                        help="environment of the worker processes, for experiments with glibc's malloc "
                             "(the nanny sets MALLOC_TRIM_THRESHOLD_=65536), e.g. "
                             "MALLOC_MMAP_THRESHOLD_=4294967296,MALLOC_TRIM_THRESHOLD_=4294967296")
    parser.add_argument("--dask-loops", choices=("default", "quiet"), default="default",
                        help="quiet: Dask's periodic work made rarer (event-loop ticks, memory and system "
                             "monitors) and the profiler off, in the scheduler, nannies and workers: "
                             + ", ".join(f"{k}={v}" for k, v in QUIET_LOOPS.items()))
    parser.add_argument("--pin", action="store_true",
                        help="pin worker i's process to CPU i of its affinity mask (modulo its size)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Port .* is already in use")  # the second cluster's dashboard
    env = dict(kv.split("=", 1) for kv in args.worker_env.split(",") if kv)
    n = int(args.points)
    g = compile_grad(GRIEWANK, backend="c", threads=1)
    points = _points(n, args.chunks)
    blocks = [b.compute(scheduler="threads") for b in points.blocks.ravel()]
    size = blocks[0].shape[1]
    outs = (np.empty(size), (np.empty(size), np.empty(size)))
    load = os.getloadavg()
    print(f"Griewank value + gradient, {n:.0e} points in {args.chunks} chunks "
          f"({-(-n // args.chunks) * 8 / 1e6:.0f} MB per input chunk); median of {args.repeat} interleaved "
          f"rounds; workers: processes x 1 thread{'; worker env ' + args.worker_env if env else ''}, "
          f"Dask's profiler {'off' if args.dask_loops == 'quiet' else args.worker_profile}; Dask's periodic "
          f"work {args.dask_loops}{'; workers pinned to a CPU each' if args.pin else ''}; "
          f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    config = {"distributed.worker.profile.enabled": args.worker_profile == "on",
              **(QUIET_LOOPS if args.dask_loops == "quiet" else {})}
    with dask.config.set(config):
        clusters = {w: Cluster(g, points, w, env, args.pin) for w in (1, 2)}  # the nannies pass the config on
    bare = Bare(n, args.chunks, env) if args.chunks >= 2 else None
    rows: dict = {}
    ref = None
    for _ in range(args.repeat):
        for both in (False, True) if bare else ():
            seconds, used = bare.run(both)
            rows.setdefault(("bare", both), []).append((seconds, used, 0.0, 0.0))
        for way in ("new", "out", "g.sum"):
            seconds, sums, used = in_process(g, blocks, way, outs)
            ref = sums if ref is None else ref
            rows.setdefault(("in", way), []).append((seconds, used, 0.0, _worst(sums, ref)))
        for w, cluster in clusters.items():
            for way, lazy in cluster.ways.items():
                if way == "arrays" and args.skip_arrays:
                    continue
                seconds, sums, used, sched = cluster.run(lazy)
                worst = _worst(sums, ref) if way != "fixed" else 0.0
                rows.setdefault((w, way), []).append((seconds, used, sched, worst))
    builds = {w: c.kernel_builds() for w, c in clusters.items()}
    placed = {w: c.placement() for w, c in clusters.items()}
    logging.getLogger("distributed").setLevel(logging.ERROR)  # the clusters' closing chatter
    for c in clusters.values():
        c.close()
    if bare:
        bare.close()
    bare_rows = {k: rows.pop(k) for k in [("bare", False), ("bare", True)] if k in rows}

    med = {k: (statistics.median(r[0] for r in v), np.median([r[1] for r in v], axis=0),
               statistics.median(r[2] for r in v), max(r[3] for r in v)) for k, v in rows.items()}
    best = min(med[("in", way)][0] for way in ("new", "out", "g.sum"))
    print(f"  {'':48} {'seconds':>8} {'M points/s':>10} {'per worker':>10} {'CPU s':>7} {'task CPU':>8} "
          f"{'faults':>7} {'sched CPU':>9}")
    labels = {"new": "new arrays", "out": "out= (kept arrays)", "g.sum": "g.sum", "arrays": "arrays + Dask sums",
              "fixed": f"g.sum, fixed cost ({args.chunks} x 1000 points)"}
    for (w, way), (seconds, used, sched, worst) in med.items():
        label = f"{'in-process' if w == 'in' else f'{w} worker' + ('s' if w > 1 else '')}, {labels[way]}"
        rate = "" if way == "fixed" else f"{n / seconds / 1e6:10.1f}"
        per = "" if w == "in" or way == "fixed" else f"{best / (seconds * w):9.2f}x"
        agree = "" if way == "fixed" else f"   sums agree to {worst:.0e}"
        print(f"  {label:48} {seconds:8.3f} {rate:>10} {per:>10} {used[0]:7.3f} {used[2]:8.3f} {used[1]:7.0f} "
              f"{'' if w == 'in' else f'{sched:9.3f}'}{agree}")
    floor = med[("in", "out")][0]
    for w in (1, 2):
        print(f"  {w} worker{'s' if w > 1 else ''}, g.sum, per worker against the out= floor: "
              f"{floor / (med[(w, 'g.sum')][0] * w):.2f}x")
    cpu, task = med[("in", "g.sum")][1][[0, 2]]
    for w in (1, 2):
        used = med[(w, "g.sum")][1]
        print(f"  {w} worker{'s' if w > 1 else ''}, g.sum, CPU: in-process g.sum's over the workers' together: "
              f"{cpu / (used[0] * w):.2f}x; the kernels' threads only: {task / (used[2] * w):.2f}x; each "
              f"worker's other threads (its event loop): {used[0] - used[2]:.3f} s")
    per_chunk = med[("in", "g.sum")][0] / args.chunks
    for w in (1, 2):
        used = med[(w, "g.sum")][1]
        inside, idle, before, wait, after = used[3:8]
        mine = args.chunks / w  # chunks per worker
        print(f"  {w} worker{'s' if w > 1 else ''}, g.sum, wall per worker: inside its chunks' tasks {inside:.3f} s "
              f"({inside / mine * 1e3:.1f} ms a chunk, {used[2] / mine * 1e3:.1f} ms of CPU; in-process g.sum "
              f"{per_chunk * 1e3:.1f} ms), idle between them {idle:.3f} s ({idle / max(mine - 1, 1) * 1e3:.1f} ms a "
              f"gap), before the first {before:.3f} s, waiting for the other worker {wait:.3f} s, after the last "
              f"chunk {after:.3f} s")
    if bare_rows:
        (one, one_used), (two, two_used) = [(statistics.median(r[0] for r in v), np.median([r[1] for r in v], axis=0))
                                            for v in bare_rows.values()]
        mine = one_used[1]
        print(f"  2 bare processes (no Dask), g.sum over the {mine:.0f} chunks each a worker holds: one alone "
              f"{one:.3f} s ({one / mine * 1e3:.1f} ms a chunk, {one_used[0] / mine * 1e3:.1f} ms of CPU), both at "
              f"once {two:.3f} s ({two / mine * 1e3:.1f} ms a chunk, {two_used[0] / mine * 1e3:.1f} ms of CPU): "
              f"1 -> 2 processes {2 * one / two:.2f}x, the machine's own ceiling for 1 -> 2 workers")
    for way in ("arrays", "g.sum")[args.skip_arrays:]:
        ratio = med[(1, way)][0] / med[(2, way)][0]
        of_bare = f" ({ratio / (2 * one / two):.0%} of the bare processes')" if bare_rows else ""
        print(f"  1 -> 2 workers, {way}: {ratio:.2f}x{of_bare}")
    fixed = [med[(w, "fixed")][0] for w in (1, 2)]
    print(f"  1 -> 2 workers, g.sum less the fixed cost: "
          f"{(med[(1, 'g.sum')][0] - fixed[0]) / (med[(2, 'g.sum')][0] - fixed[1]):.2f}x")
    print("  per worker: the in-process rate (the fastest way) over the worker's; CPU s and faults: "
          "this process's, or each worker's (mean); task CPU: of the threads that run the kernels (this "
          "process's main thread; a worker's task threads); sched CPU: this process's during a cluster run "
          "(a LocalCluster's scheduler runs here, beside the client)")
    print(f"  placement: 1 worker {placed[1]}; 2 workers {placed[2]}")
    print(f"  kernels on the workers (each: unpickled / C compiler runs): 1 worker {builds[1]}; "
          f"2 workers {builds[2]}")
    print(f"  load average after: {os.getloadavg()[0]:.2f}")
    return 0


def _worst(sums, ref) -> float:
    return float(np.max(np.abs(sums - ref) / np.abs(ref)))


if __name__ == "__main__":
    raise SystemExit(main())
