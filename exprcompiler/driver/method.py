"""What an optimizer is, for the driver: a class with a name, an options table, the
kernel it needs besides the gradient, and `step`, which takes one iterate to the next.

Part of the driver (see driver/__init__.py). The methods themselves live in
driver/first_order.py and driver/second_order.py; driver/minimize.py owns the loop
around `step` (stopping rules, divergence, history, progress), so a method holds only
its update formula and its own state (momentum buffers, L-BFGS pairs).
"""

from __future__ import annotations

import math

import numpy as np

from .options import Option


class Method:
    """One optimizer. `options` is its table (see driver/options.py); `needs` the
    second-order kernel it uses ("grad": none); `keep_best` asks the driver to return
    the best iterate rather than the last (for methods that are not descent methods);
    `buffers` are state vectors the method keeps between steps."""

    name = ""
    summary = ""
    options: dict[str, Option] = {}
    needs = "grad"
    keep_best = False
    buffers: tuple = ()  # names of per-variable state vectors (momentum, averages), zero at the start

    def __init__(self, obj, opts: dict):
        self.obj = obj
        self.opts = opts
        for name in self.buffers:
            setattr(self, name, np.zeros(obj.n))

    def step(self, k: int, x: np.ndarray, f: float, g: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """Iteration k (1, 2, ...) from x, where f and its gradient g are known:
        (the next iterate, f there, ∇f there). A non-finite f or gradient there is the
        driver's business (divergence); `Stop` ends the run with its message.
        A method with a per-step `update` need not define it."""
        if type(self).update is Method.update:
            raise NotImplementedError
        return self.evaluated(self.update(k, x, g))

    def update(self, k: int, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The next iterate from x and a gradient g alone (the per-step interface of
        mini-batch training, driver/train.py, where g is a batch's gradient and f is
        never evaluated at the new point). Only first-order methods without a line
        search have one; the others raise NotImplementedError."""
        raise NotImplementedError(f"{self.name} has no per-step update (it evaluates f itself)")

    def evaluated(self, x_new: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        return (x_new, *self.obj.value_grad(x_new))


# Step-size schedules η_t for t = 0, 1, ... (the notes: fixed, 1/t, exponential decay)
SCHEDULES = ("constant", "1/t", "1/sqrt(t)", "exp")


def schedule(name: str, lr: float, t: int, gamma: float) -> float:
    if name == "constant":
        return lr
    if name == "1/t":
        return lr / (t + 1)
    if name == "1/sqrt(t)":
        return lr / math.sqrt(t + 1)
    return lr * gamma ** t
