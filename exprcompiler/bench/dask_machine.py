"""The machine under the Dask benchmarks (bench/dask_griewank.py): what a small
machine whose cores the workers fill gives them, apart from Dask's scheduling.

    QUIET_LOOPS   Dask's periodic work made rarer (--dask-loops quiet)
    pin_process   a worker process on one CPU of its affinity mask (--pin)
    Bare          two plain processes running g.sum on the chunks each worker holds,
                  one alone then both at once: the machine's own ceiling for 1 -> 2
                  workers, measured in the same run (on a machine shared with other
                  jobs it falls, and the workers' scaling with it)
"""

from __future__ import annotations

import os
import time

import numpy as np


# Dask's periodic work made rarer (--dask-loops quiet). Measured on an idle 2-worker
# LocalCluster on this machine: the scheduler and nannies (their event loop, in the
# client's process) take 0.06 s of CPU a second and each worker's event loop 0.05 s
# (event-loop ticks every 20 ms, memory monitors every 100 ms, system monitors every
# 500 ms, the profiler every 10 ms); with these, 0.015 and 0.007. When the workers use
# every core, that CPU comes out of the kernels'.
QUIET_LOOPS = {"distributed.admin.tick.interval": "1s", "distributed.admin.system-monitor.interval": "2s",
               "distributed.worker.memory.monitor-interval": "1s", "distributed.worker.profile.enabled": False}


def pin_process(i: int) -> int:
    """In a worker: every thread of this process (and those it starts later, which
    inherit it) on CPU i of the affinity mask it was given (modulo its size); returns
    the CPU. Never outside that mask."""
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[i % len(cpus)]
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:  # a thread that just ended
            pass
    return cpu


class Bare:
    """Two plain processes (no Dask), each holding the chunks worker i would hold and
    running g.sum over them on one thread: one alone, then both at once. Twice the work
    in the same time would be 2x: what the machine itself allows 1 -> 2 workers."""

    def __init__(self, n: int, chunks: int, env: dict):
        import multiprocessing
        ctx = multiprocessing.get_context("spawn")
        self.pipes = []
        for i in range(2):
            here, there = ctx.Pipe()
            ctx.Process(target=bare_process, args=(there, n, chunks, i, env), daemon=True).start()
            self.pipes.append(here)
        for pipe in self.pipes:
            pipe.recv()  # ready: its chunks made, its kernel loaded

    def run(self, both: bool) -> tuple[float, np.ndarray]:
        """(seconds, [CPU seconds of the kernel thread, chunks run] per process, mean)."""
        pipes = self.pipes if both else self.pipes[:1]
        start = time.perf_counter()
        for pipe in pipes:
            pipe.send("run")
        done = [pipe.recv() for pipe in pipes]
        return time.perf_counter() - start, np.mean(done, axis=0)

    def close(self):
        for pipe in self.pipes:
            pipe.send(None)


def bare_process(pipe, n: int, chunks: int, i: int, env: dict) -> None:
    """A Bare process: the blocks of worker i of 2, then g.sum over them on each "run"."""
    os.environ.update({"OMP_NUM_THREADS": "1", **env})
    from exprcompiler import compile_grad
    from .dask_griewank import GRIEWANK, _points  # here: that module imports this one
    g = compile_grad(GRIEWANK, backend="c", threads=1)
    points = _points(n, chunks)
    blocks = [points.blocks[0, j].compute(scheduler="sync") for j in range(chunks) if j * 2 // chunks == i]
    g.sum(blocks[0][0], blocks[0][1])
    pipe.send("ready")
    while pipe.recv() is not None:
        cpu = time.thread_time()
        for block in blocks:
            g.sum(block[0], block[1])
        pipe.send([time.thread_time() - cpu, len(blocks)])
