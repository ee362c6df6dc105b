"""The peers of the `mechanics` suite (bench/suite_mechanics.py): how each other tool
turns the model's SymPy expressions into a callable that returns the values and the
Jacobian, and how it is called on one state and on a batch of states.

- SymPy: `Matrix.jacobian` + `lambdify(cse=True)` to NumPy;
- symengine: the expressions converted, `jacobian` + `Lambdify(backend="llvm", cse=True)`;
- CasADi: the SymPy expressions lambdified onto SX symbols, `jacobian` + `Function`;
  its batch is `Function.map`, serial or on its thread pool;
- JAX: lambdified to jax.numpy, `jit(jacfwd)` and `jit(vmap(...))`, in a worker
  process (`jax_setup`, run there by bench/remote.py).

Each call adapter returns (a timed sample, a function giving the result as the suite
compares it: (points, m + m·n), the values and then the Jacobian row by row); each
result is the tool's own natural output, converted as a caller would. A peer that
cannot run here raises `Missing`, and the suite prints a row saying why.
"""

from __future__ import annotations

import time

import numpy as np

from . import remote
from .competitors import installed
from .mechanics import pendulum, random_states
from .runner import Batch


class Missing(Exception):
    """A competitor that cannot run here: its row says why."""


def columns(outputs, points: int) -> np.ndarray:
    """A list of m + m·n outputs (arrays of the batch, or a number where the entry is
    constant) -> (points, m + m·n)."""
    return np.column_stack([np.broadcast_to(np.asarray(o, dtype=float), (points,)) for o in outputs])


# ---- the builders: the model's SymPy expressions -> a callable ----

def build_sympy(model):
    import sympy
    jac = sympy.Matrix(model.exprs).jacobian(model.states)
    # a flat list, not the Matrix: lambdify prints a Matrix as np.array([[...]]), which
    # fails on arrays of states as soon as an entry is a constant (the q0 column is 0)
    return sympy.lambdify(model.states, [*model.exprs, *jac], "numpy", cse=True)


def build_symengine(model):
    if not installed("symengine"):
        raise Missing("not installed")
    import symengine
    exprs = [symengine.sympify(e) for e in model.exprs]
    states = [symengine.sympify(s) for s in model.states]
    jac = symengine.DenseMatrix(exprs).jacobian(symengine.DenseMatrix(states))
    return symengine.Lambdify(states, [*exprs, *jac], backend="llvm", cse=True)


def build_casadi(model):
    if not installed("casadi"):
        raise Missing("not installed")
    import casadi
    import sympy
    x = casadi.SX.sym("x", len(model.states))
    # SymPy has no CasADi printer: lambdify onto casadi's sin, cos, ... and call the
    # result on SX symbols, which records the expression graph
    onto = sympy.lambdify(model.states, list(model.exprs), modules=[casadi])
    f = casadi.vertcat(*onto(*(x[k] for k in range(len(model.states)))))
    jac = casadi.jacobian(f, x)
    # one output, the values and then the Jacobian row by row (reshape is column-major)
    return casadi.Function("forcing", [x], [casadi.vertcat(f, casadi.reshape(jac.T, -1, 1))])


# ---- one state: x, the states in the model's order ----

def sympy_point(f, x: np.ndarray, target: float):
    args = tuple(float(v) for v in x)  # floats, as the lambdified function is called
    return Batch(f, args, target), lambda: np.array([f(*args)], dtype=float)


def symengine_point(L, x: np.ndarray, target: float):
    return Batch(L, (x,), target), lambda: L(x)[None]


def casadi_point(F, x: np.ndarray, target: float):
    def call(x):  # CasADi: a DM, converted as a caller would
        return F(x).full()
    return Batch(call, (x,), target), lambda: call(x).T


# ---- a batch: `ordered`, one array per state in the model's order; X, (points, states) ----

def sympy_batch(f, ordered: tuple, X: np.ndarray, target: float):
    return Batch(f, ordered, target), lambda: columns(f(*ordered), len(X))


def symengine_batch(L, ordered: tuple, X: np.ndarray, target: float):
    return Batch(L, (X,), target), lambda: L(X)


def casadi_batch(F, X: np.ndarray, threads: int, target: float):
    # CasADi's own batch: map over the columns of a (states, points) matrix, serially
    # on one thread, or with its thread pool of `threads` threads
    mapped = F.map(len(X), "serial") if threads == 1 else F.map(len(X), "thread", threads)
    XT = np.ascontiguousarray(X.T)

    def call():
        return mapped(XT).full()
    return Batch(call, (), target), lambda: call().T


# ---- JAX, in a worker process pinned to one CPU ----

def jax_setup(sizes: list, points: int, targets: tuple, checks: int) -> tuple:
    """For each n: the forcing lambdified to jax.numpy, h(x) = [f(x), jacfwd(f)(x)
    row by row], jit(h) for one point and jit(vmap(h)) for the batch, each called
    once (trace + XLA compile), registered under ("mechanics", n, "point" / "batch")
    (the batch's result: its first `checks` states).
    Returns (description, {n: seconds to the first one-point result})."""
    import jax
    import jax.numpy as jnp
    import sympy

    jax.config.update("jax_enable_x64", True)
    builds = {}
    for n in sizes:
        model = pendulum(n)
        X = random_states(n, points)
        x0 = X[0]
        t0 = time.perf_counter()
        f = sympy.lambdify(model.states, list(model.exprs), "jax")

        def g(x, f=f):
            return jnp.stack([jnp.asarray(v, dtype=jnp.float64) for v in f(*x)])

        def h(x, g=g):
            return jnp.concatenate([g(x), jax.jacfwd(g)(x).ravel()])
        one, many = jax.jit(h), jax.jit(jax.vmap(h))

        def point(x, one=one):
            return np.asarray(one(x))  # np.asarray waits for the result

        def batch(X, many=many):
            return np.asarray(many(X))
        point(x0)
        builds[n] = time.perf_counter() - t0
        batch(X)
        remote.register(("mechanics", n, "point"), lambda p=point, x=x0: p(x)[None],
                        Batch(point, (x0,), targets[0]))
        remote.register(("mechanics", n, "batch"), lambda b=batch, X=X: b(X)[:checks],
                        Batch(batch, (X,), targets[1]))
    return remote.pinned(f"jax {jax.__version__} ({jax.devices()[0].platform})"), builds
