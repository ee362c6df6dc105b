"""C backend, call half: how a loaded kernel is called. `runner` adapts a kernel
(c_build.load's cffi function) to the API's calling convention (backends/registry.py),
and ThreadChoice picks its thread count per call (honouring OMP_NUM_THREADS and the
affinity mask through default_threads). c_tensor and the VM backend use the same.
"""

from __future__ import annotations

import math
import os
import time
from typing import NamedTuple, Optional

import numpy as np

from .. import dtypes


# Below this many points one thread is faster than starting a team.
PARALLEL_FROM = 100_000


def default_threads() -> int:
    """The cores this process may run on, or fewer if OMP_NUM_THREADS says so (the
    kernels pass a thread count to OpenMP, which would otherwise override it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:  # a list of counts, one per nesting level: the loop is the outer level
        wanted = int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        return cores
    return min(wanted, cores) if wanted > 0 else cores


class ThreadChoice:
    """threads=None: one thread below PARALLEL_FROM points; above, every core or one,
    whichever has been faster per point for this kernel, the other tried again now and
    then. On a shared machine a busy core makes a static OpenMP team wait for its
    slowest thread (2 threads measured 30-50% slower than 1 with the other core loaded,
    and 50-800x slower in `exprc bench --quick` on a busy 2-core machine); the
    measurement keeps such calls near one thread's time, and takes the cores when they
    are free. A try of the slower count costs (ratio - 1) calls of the faster one, so
    it comes every EXPLORE-th call at the most often and rarer as the ratio grows: the
    tries cost at most BUDGET of the calls' time. Races between threads only blur the
    estimates."""

    EXPLORE = 16
    KEEP = 8
    BUDGET = 0.05

    def __init__(self):
        self.seen: dict[int, list] = {}   # threads -> seconds per point of its last calls
        self.calls = 0
        self.next_try = None              # the call that tries the slower count again

    def cost(self, t: int) -> float:
        recent = sorted(self.seen[t])
        return recent[len(recent) // 2]  # the median of its recent calls: a spike is not its cost

    def pick(self, n: int) -> int:
        if n < PARALLEL_FROM:  # the usual call: decided before asking the OS for cores
            return 1
        most = default_threads()
        if most == 1:
            return 1
        self.calls += 1
        for t in (most, 1):
            if t not in self.seen:
                return t
        best, other = sorted((most, 1), key=self.cost)
        if self.next_try is None or self.calls >= self.next_try:
            ratio = self.cost(other) / max(self.cost(best), 1e-300)
            wait = max(self.EXPLORE, math.ceil((ratio - 1.0) / self.BUDGET))
            first = self.next_try is None   # both just measured: the wait starts now
            self.next_try = self.calls + wait
            if not first:
                return other
        return best

    def record(self, t: int, seconds: float, n: int) -> None:
        recent = self.seen.setdefault(t, [])
        recent.append(seconds / n)
        del recent[:-self.KEEP]


def c_array(a, dtype=None) -> np.ndarray:
    """`a` as an array that C may take as a pointer to its first element: itself where
    it is C-contiguous and aligned for its type, else a copy that is. (np.frombuffer at
    an odd offset makes a C-contiguous array that is not aligned, and
    np.ascontiguousarray leaves it so; a misaligned double * is undefined behaviour in
    C, and vector loads that assume alignment may fault.)"""
    a = np.asarray(a, dtype=dtype)
    flags = a.flags
    return a if flags.c_contiguous and flags.aligned else np.array(a, order="C")


class PlanEntry(NamedTuple):
    """What a call plan needs to call a float64 kernel itself, with nothing of `run`
    in between (call_plan.batch_plan, made by api.Compiled): the kernel, cffi's
    backend module (whose from_buffer the plan calls: ffi.from_buffer is a Python
    method around it), the array type, the outputs' count and the thread count
    asked for (None: ThreadChoice's)."""
    fn: object
    backend: object
    array: object
    n_out: int
    threads: Optional[int]
    kind = "c"   # (call_plan.batch_plan's keyword)

    def entry(self, arrays, batch: tuple):
        """(batch, points, threads, one stride per input) for arrays of these shapes,
        as `run` would pass them, where `run` would pass each as it is (of the batch's
        shape or of size 1); None where `run` does more (copies an input broadcast to
        the batch, asks ThreadChoice), or there is nothing to run (no point, batch ())."""
        n = math.prod(batch)
        if batch == () or n == 0 or (self.threads is None and n >= PARALLEL_FROM):
            return None
        strides = []
        for a in arrays:
            if a.size == 1:
                strides.append(0)
            elif a.shape == batch:
                strides.append(1)
            else:
                return None
        return (batch, n, self.threads or 1, *strides)


def nomem(n: int):
    """What a kernel that returned nonzero (its tape not allocated) raises."""
    raise MemoryError(f"the C kernel could not allocate its tape for {n} points")


def runner(ffi, fn, n_out: int, threads=None, dtype=None):
    """Adapt the C kernel to the API's calling convention (see backends/registry.py):
    arrays and their broadcast batch shape in; out, one new array per output, or the
    outputs stored into the columns of `blocks`, C-contiguous arrays (points, w) taken
    in turn (a Jacobian's (points, m·n)), passed as one base pointer each plus offsets
    so that a call costs little per output. A size-1 input is passed with stride 0;
    an input that is not C-contiguous and aligned is copied (c_array).
    `threads=None`: see ThreadChoice. `dtype`: None for a double kernel, float32 for a
    float one (exprcompiler.dtypes)."""
    choice = ThreadChoice() if threads is None else None
    real = dtypes.real(dtype)
    array = ffi.typeof(dtypes.c_type(dtype) + "[]")  # (resolved once: from_buffer given a str parses it per call)

    def run(arrays, batch, blocks=None):
        n = math.prod(batch)
        nt = threads if choice is None else choice.pick(n)
        args: list = [n, nt]
        for a in arrays:
            if a.size == 1:
                one = np.ascontiguousarray(a.reshape(1))
                args += [ffi.from_buffer(array, one if one.flags.aligned else one.copy()), 0]
            elif a.shape == batch and (f := a.flags).c_contiguous and f.aligned:  # the usual case: as it is
                args += [ffi.from_buffer(array, a), 1]
            else:
                args += [ffi.from_buffer(array, c_array(np.broadcast_to(a, batch)).reshape(-1)), 1]
        outs = None
        if blocks is None:  # our own new arrays
            outs = [np.empty(n, real) for _ in range(n_out)]
            args += [arg for o in outs for arg in (ffi.from_buffer(array, o), 1)]
        else:
            tail = []
            for b in blocks:  # the caller's checked arrays: (n, w), of the kernel's dtype, C order, writable
                if b.ndim != 2 or b.shape[0] != n or b.dtype != real or not (f := b.flags).c_contiguous \
                        or not f.aligned or not f.writeable:
                    raise ValueError(f"kernel output: expected a writable, aligned {real} block of {n} points")
                w = b.shape[1]
                base = ffi.from_buffer(array, b)  # (its address: __array_interface__ makes a dict)
                for j in range(w):
                    tail += [base + j, w]
            if len(tail) != 2 * n_out:
                raise ValueError(f"kernel output: the blocks hold {len(tail) // 2} outputs, the kernel {n_out}")
            args += tail
        if choice is None or n < PARALLEL_FROM:
            if fn(*args) != 0:
                nomem(n)
        else:
            start = time.perf_counter()
            if fn(*args) != 0:
                nomem(n)
            choice.record(nt, time.perf_counter() - start, n)
        return None if outs is None else [o.reshape(batch) for o in outs]
    run.warns = False   # (no NumPy arithmetic: api runs it without an error state)
    if dtype is None:   # (float32 functions convert their inputs: api's general path)
        run.plan = PlanEntry(fn, ffi._backend, array, n_out, threads)
    return run
