"""Jobs that run inside a `Worker` process (see worker.py): the seed functions under
JAX and PyTorch, and the registry the other suites' JAX and PyTorch jobs use. The
worker is pinned to the row's CPUs before any of this runs; PyTorch is also told its
thread count. State lives in this module, in the worker.

A suite's setup job (run in the worker by `start`) registers each of its tasks under a
key with `register(key, fn, sample)`; the main process then times them through
`candidate(worker, key, ...)`, one sample per round, interleaved with the others.
"""

from __future__ import annotations

import functools
import os
import time

from typing import Callable, Optional

import numpy as np

from .runner import Candidate, flat_arrays
from .seeds import SEEDS
from .worker import JobError, Worker

_CALLS: dict = {}
_JOBS: dict = {}   # key -> (outputs(), sample() -> seconds)


def register(key, fn: Callable, sample: Callable[[], float]) -> None:
    """In the worker: `sample()` times one sample of the task (seconds; a `Batch` for
    calls of microseconds), `fn()` computes its outputs for the agreement check."""
    _JOBS[key] = (fn, sample)


def job_timed(key) -> float:
    return _JOBS[key][1]()


def job_result(key) -> list:
    return flat_arrays(_JOBS[key][0]())


def start(package: str, cpus: int, setup: str, *args) -> tuple[Optional[Worker], object]:
    """A worker pinned to `cpus` CPUs that has run the job `setup(*args)` (a qualified
    name): (worker, what the job returned), or (None, why not) when `package` is not
    installed, not importable or the setup failed."""
    return _finish(_submit(package, cpus, setup, *args), setup)


def _submit(package: str, cpus: int, setup: str, *args):
    from .competitors import installed
    if not installed(package):
        return "not installed"
    w = Worker(cpus=cpus)
    w.submit(setup, *args)
    return w


def _finish(w, setup: str) -> tuple[Optional[Worker], object]:
    if not isinstance(w, Worker):
        return None, w
    try:
        return w, w.collect(setup)
    except ImportError as e:
        why = f"not importable ({e})"
    except JobError as e:
        why = f"failed ({e})"
    w.close(kill=True)
    return None, why


def start_each(threads: list[int], setups: dict, *args) -> dict:
    """`start` for every (package, thread count), the setups running at the same time:
    {(package, t): (worker or None, description or why not)}. `setups` maps a package
    to its setup job, which is called as setup(*args, t) and returns a one-line
    description."""
    started = {(package, t): _submit(package, t, setup, *args, t)
               for t in threads for package, setup in setups.items()}
    return {(package, t): _finish(w, setups[package]) for (package, t), w in started.items()}


def close_each(workers: dict) -> None:
    for w, _ in workers.values():
        if w is not None:
            w.close()


def pinned(info: str) -> str:
    """A setup's description, with what the worker it runs in is pinned to."""
    return (f"{info}; pinned to {len(os.sched_getaffinity(0))} CPU(s), "
            f"{len(os.listdir('/proc/self/task'))} OS threads")


def candidate(started: tuple, key, label: str, threads, family: str = "") -> Candidate:
    """The main process's handle on a registered job. `started` is what `start` gave:
    (worker, _), or (None, why not), which makes a row that says why."""
    worker, why = started
    if worker is None:
        return Candidate(label, str(threads), family, missing=why)
    return Candidate(label, str(threads), family,
                     lambda: worker.call(f"{__name__}.job_timed", key),
                     lambda: worker.call(f"{__name__}.job_result", key))


def _jax(points: int):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    fns, data = {}, {}
    for name, s in SEEDS.items():
        f = functools.partial(s.formula, jnp)
        argnums = tuple(range(len(s.inputs)))
        fns[name, "value"] = jax.jit(jax.vmap(f))
        fns[name, "grad"] = jax.jit(jax.vmap(jax.value_and_grad(f, argnums=argnums)))
        data[name] = [jax.device_put(x) for x in s.points(points)]

    def call(name, kind):
        return jax.block_until_ready(fns[name, kind](*data[name]))
    return call, f"jax {jax.__version__} ({jax.devices()[0].platform})"


def _torch(points: int, threads: int):
    import torch

    torch.set_num_threads(threads)
    data = {name: [torch.from_numpy(x) for x in s.points(points)] for name, s in SEEDS.items()}

    def call(name, kind):
        formula = SEEDS[name].formula
        if kind == "value":
            with torch.no_grad():
                return formula(torch, *data[name])
        xs = [x.detach().requires_grad_() for x in data[name]]
        y = formula(torch, *xs)
        # points are independent, so the gradient of the sum is every point's gradient
        return y.detach(), torch.autograd.grad(y.sum(), xs)
    return call, f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads"


def setup(tool: str, points: int, threads: int) -> str:
    """Prepare `tool` ("jax" or "torch") on every seed; returns a one-line description."""
    call, info = _jax(points) if tool == "jax" else _torch(points, threads)
    _CALLS[tool] = call
    call(next(iter(SEEDS)), "grad")  # starts the tool's thread pools before they are counted
    return pinned(info)


def timed(tool: str, name: str, kind: str) -> float:
    t0 = time.perf_counter()
    _CALLS[tool](name, kind)
    return time.perf_counter() - t0


def result(tool: str, name: str, kind: str) -> list:
    res = _CALLS[tool](name, kind)
    y, g = (res, ()) if kind == "value" else res
    return [np.asarray(y), *[np.asarray(x) for x in g]]
