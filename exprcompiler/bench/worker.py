"""A worker process that runs benchmark jobs: functions of this package, called by name.

Two uses: JAX and PyTorch size their own thread pools at import, so they run in a
worker pinned to the CPUs a row is allowed (as `taskset -c` would) and the main
process asks it for one timed call per round, interleaved with the others; and
SymPy or a compiler that may run for minutes runs in a worker the main process
stops after a time cap. The worker is started with "spawn", so nothing the main
process imported (or its threads) is inherited.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
from typing import Optional


class JobError(RuntimeError):
    """A job raised; str() is the worker's one-line description."""


class JobTimeout(RuntimeError):
    """A job ran past its cap; the worker was stopped."""


def cpu_set(cpus: Optional[int]) -> list[int]:
    """The first `cpus` CPUs this process may run on (all of them for None)."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return allowed if cpus is None else allowed[:cpus]


def pin(cpus: int) -> None:
    """Pin this process (and the processes it starts) to the first `cpus` CPUs it may
    run on, as `taskset -c` would; nothing where the OS has no affinity call."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpu_set(cpus))


def _serve(conn, cpus: Optional[int]) -> None:
    if cpus is not None:
        pin(cpus)
    while True:
        msg = conn.recv()
        if msg is None:
            return
        module, func, args = msg
        try:
            result = getattr(importlib.import_module(module), func)(*args)
        except BaseException as err:  # noqa: BLE001 - reported to the caller, one line
            text = f"{type(err).__name__}: {err}".splitlines()[0]
            conn.send(("error", text, isinstance(err, ImportError)))
        else:
            conn.send(("ok", result, False))


class Worker:
    """`call("module.function", *args, timeout=None)` runs the function in the worker.
    `cpus`: pin the worker to that many CPUs before any job runs."""

    def __init__(self, cpus: Optional[int] = None):
        self.cpus = cpus
        self.proc = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self.cpus), daemon=True)
        self.proc.start()
        child.close()

    def call(self, qualname: str, *args, timeout: Optional[float] = None):
        self.submit(qualname, *args)
        return self.collect(qualname, timeout)

    def submit(self, qualname: str, *args) -> None:
        """Start a job without waiting for it (so several workers can run theirs at once);
        `collect` its result."""
        if self.proc is None:
            self._start()
        module, _, func = qualname.rpartition(".")
        self.conn.send((module, func, args))

    def collect(self, qualname: str, timeout: Optional[float] = None):
        """The result of the job `submit` started."""
        if not self.conn.poll(timeout):
            self.close(kill=True)
            raise JobTimeout(f"{qualname} ran past {timeout:g} s")
        try:
            status, value, import_error = self.conn.recv()
        except EOFError:
            self.close(kill=True)
            raise JobError(f"the worker running {qualname} died") from None
        if status == "error":
            raise (ImportError if import_error else JobError)(value)
        return value

    def close(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if not kill:
            try:
                self.conn.send(None)
                self.proc.join(10)
            except OSError:
                pass
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        self.conn.close()
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
