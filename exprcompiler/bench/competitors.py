"""The competitors of the `seeds` suite, as one table.

Each entry says how to run one seed function (value, or value + gradient) on a
given number of threads, whether it has threads at all (otherwise it runs once, on
one thread), which hand-written reference its ratio is taken to, and which optional
package it needs. An optional package that is not installed gives a row that says
so; it is never an error.

How threads are set, per competitor: generated and hand-written vectorized C take
`threads` (OpenMP num_threads); JAX and PyTorch run in a worker process pinned to
that many CPUs (XLA sizes its thread pools from the CPUs it may use; PyTorch is
also given torch.set_num_threads); NumPy's elementwise ufuncs, SymPy's lambdified
NumPy code and the scalar C build run on one thread.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .. import compile_expr, compile_grad
from ..errors import CompileError
from . import remote
from .runner import Candidate, flat_arrays, local
from .seeds import Seed
from .worker import Worker


@dataclass
class Task:
    """One cell of the suite: a seed, "value" or "grad", its points, a thread count,
    and the shared context (reference builds, workers)."""
    seed: Seed
    kind: str
    xs: tuple
    threads: int
    context: "Context"

    def outputs(self):
        """Preallocated outputs, nested as the result is."""
        n = self.xs[0].size
        return np.empty(n) if self.kind == "value" else (np.empty(n), tuple(np.empty(n) for _ in self.xs))


@dataclass
class Context:
    """What candidates share: the hand-written C (or why it is missing) and the
    JAX / PyTorch workers, started on first use, one per (tool, threads)."""
    points: int
    refs: Optional[dict] = None
    refs_missing: str = ""
    workers: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)      # (tool, threads) -> description or error

    def worker(self, tool: str, threads: int) -> Optional[Worker]:
        key = (tool, threads)
        if key not in self.workers:
            self.workers[key], self.info[key] = remote.start(
                tool, threads, f"{remote.__name__}.setup", tool, self.points, threads)
        return self.workers[key]

    def close(self) -> None:
        for w in self.workers.values():
            if w is not None:
                w.close()


@dataclass(frozen=True)
class Competitor:
    label: str
    family: str                     # the hand-written reference of its ratio: "C" or "NumPy"
    threaded: bool                  # runs at every thread count asked for
    make: Callable[[Task], Candidate]
    requires: str = ""              # an optional package it needs


def _generated(backend: str):
    def make(task: Task) -> Candidate:
        compile_ = compile_expr if task.kind == "value" else compile_grad
        if backend == "numpy":
            return local("", 1, "", compile_(task.seed.expr), *task.xs)
        try:
            f = compile_(task.seed.expr, backend="c", threads=task.threads)
        except CompileError as err:
            return Candidate("", "", missing=err.one_line())
        return local("", task.threads, "", f, *task.xs, out=task.outputs())
    return make


def _hand_c(build: str):
    def make(task: Task) -> Candidate:
        refs = task.context.refs
        if refs is None:
            return Candidate("", "", missing=task.context.refs_missing)
        kernel = getattr(refs[build][task.seed.name], task.kind)
        threads = task.threads if refs[build].threaded else 1
        return local("", threads, "", kernel, *task.xs, threads=threads, out=task.outputs())
    return make


def _hand_numpy(task: Task) -> Candidate:
    return local("", 1, "", task.seed.value if task.kind == "value" else task.seed.grad, *task.xs)


def _sympy(task: Task) -> Candidate:
    import sympy

    syms = sympy.symbols(task.seed.inputs)
    y = task.seed.formula(sympy, *syms)
    if task.kind == "value":
        fn = sympy.lambdify(syms, y, "numpy")
    else:
        fn = sympy.lambdify(syms, [y, [sympy.diff(y, s) for s in syms]], "numpy", cse=True)
    return local("", 1, "", fn, *task.xs)


def _remote(tool: str):
    def make(task: Task) -> Candidate:
        w = task.context.worker(tool, task.threads)
        if w is None:
            return Candidate("", "", missing=task.context.info[tool, task.threads])
        key = (tool, task.seed.name, task.kind)
        return Candidate("", str(task.threads), "",
                         lambda: w.call("exprcompiler.bench.remote.timed", *key),
                         lambda: flat_arrays(w.call("exprcompiler.bench.remote.result", *key)))
    return make


COMPETITORS = (
    Competitor("generated C, out=", "C", True, _generated("c")),
    Competitor("hand-written C, vectorized, out=", "C", True, _hand_c("vectorized")),
    Competitor("hand-written C, scalar, out=", "C", False, _hand_c("scalar")),
    Competitor("generated NumPy", "NumPy", False, _generated("numpy")),
    Competitor("hand-written NumPy", "NumPy", False, _hand_numpy),
    Competitor("SymPy diff + cse + lambdify", "NumPy", False, _sympy),
    Competitor("JAX jit(vmap(value_and_grad))", "C", True, _remote("jax"), requires="jax"),
    Competitor("PyTorch autograd", "C", True, _remote("torch"), requires="torch"),
)

# the rows each family's ratio is taken to (at the same thread count)
REFERENCE = {"C": "hand-written C, vectorized, out=", "NumPy": "hand-written NumPy"}
# the outputs every candidate is checked against: always available
AGREEMENT = "hand-written NumPy"


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def candidate(comp: Competitor, task: Task) -> Candidate:
    """The competitor's candidate for one task, labelled; "not installed" when its
    optional package is missing."""
    if comp.requires and not installed(comp.requires):
        c = Candidate("", "", missing="not installed")
    else:
        c = comp.make(task)
    c.label, c.family = comp.label, comp.family
    c.threads = c.threads or str(task.threads if comp.threaded else 1)
    return c
