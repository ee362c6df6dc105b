"""First-order methods, written as the lecture notes write them (G_t = ∇f(W_t)):

- gd           W ← W − η_t G_t, with a fixed step, a schedule, or a line search
- subgradient  the same with a diminishing step, keeping the best iterate
- momentum     D_t = β D_{t−1} + G_t;  W ← W − η D_t
- nesterov     D_t = β D_{t−1} + G_t;  W ← W − η (G_t + β D_t)
- rmsprop      S_t = β S_{t−1} + (1 − β) G_t ⊙ G_t;  W ← W − η G_t / (√S_t + ε)
- adam         M_t = β₁ M_{t−1} + (1 − β₁) G_t;  S_t = β₂ S_{t−1} + (1 − β₂) G_t ⊙ G_t;
               W ← W − η (M_t / (1 − β₁ᵗ)) / (√(S_t / (1 − β₂ᵗ)) + ε)
- coordinate   one sweep over the variables, a line search along each axis

About momentum: the notes write W_{t+1} = W_t − η(β G_{t−1} + G_t), where G_{t−1}
stands for the previous step's direction (the running sum), not the previous raw
gradient: that reading is heavy-ball momentum (for a fixed η it equals
W_{t+1} = W_t − η G_t + β (W_t − W_{t−1})), which is what the notes call it. Nesterov
is the same buffer with the gradient's look-ahead form (Sutskever et al. 2013), so it
needs one gradient per step too. ε (default 1e-8) keeps RMSProp and Adam finite where
a component of the gradient is zero; the notes have none, and eps=0 follows them
exactly.

Part of the driver (see driver/__init__.py): each class is a driver/method.Method.
"""

from __future__ import annotations

import numpy as np

from . import linesearch
from .method import SCHEDULES, Method, schedule
from .options import Option
from .result import Stop

_SCHEDULE = Option("constant", SCHEDULES, "step size η_t: constant η, η/(t+1), η/√(t+1), or η·γᵗ")
_GAMMA = Option(0.99, "fraction", "decay factor γ of the 'exp' schedule")


class GradientDescent(Method):
    name = "gd"
    summary = "gradient descent: fixed step, schedule, or line search"
    options = {
        "lr": Option(0.1, "positive", "step size η (with a line search: the first trial step, and "
                                       "the largest for 'armijo')"),
        "schedule": _SCHEDULE,
        "gamma": _GAMMA,
        "linesearch": Option(None, (None, "armijo", "wolfe", "exact"),
                             "None: the step η_t; 'armijo' backtracking, 'wolfe', or 'exact' (argmin along the ray)"),
    }

    def __init__(self, obj, opts):
        super().__init__(obj, opts)
        self.alpha = None  # the last accepted line-search step

    def update(self, k, x, g):
        o = self.opts
        if o["linesearch"] is not None:
            raise ValueError("gd: a line search needs the whole objective; per-step updates "
                             "(mini-batches) take a fixed step or a schedule")
        return scheduled_step(o, k, x, g)

    def step(self, k, x, f, g):
        o = self.opts
        search = o["linesearch"]
        if search is None:
            return self.evaluated(self.update(k, x, g))
        alpha0 = o["lr"] if self.alpha is None else warm_start(search, o["lr"], self.alpha)
        self.alpha, f_new, g_new = linesearch.SEARCHES[search](self.obj, x, f, g, -g, alpha0=alpha0)
        return x - self.alpha * g, f_new, g_new


def scheduled_step(o: dict, k: int, x, g):
    """x − η_t G at iteration k (t = k − 1): gd's and subgradient's step."""
    return x - schedule(o["schedule"], o["lr"], k - 1, o["gamma"]) * g


def warm_start(search: str, lr: float, previous: float) -> float:
    """The first trial step after the first iteration: Armijo can only shrink, so it
    starts from twice the last accepted step (at most lr); this saves most of the
    halvings that starting at lr every time costs. Wolfe and exact also grow the step
    themselves and start from the last one."""
    return min(lr, 2 * previous) if search == "armijo" else previous


class Subgradient(Method):
    """For convex f that is not differentiable everywhere: the gradient at a kink is
    one subgradient (|x| gives 0 at 0). Not a descent method, so the best iterate is
    returned; the diminishing default step is what its convergence proof needs."""

    name = "subgradient"
    summary = "subgradient descent with a diminishing step; returns the best iterate"
    options = {
        "lr": Option(0.1, "positive", "step size η"),
        "schedule": Option("1/sqrt(t)", SCHEDULES, _SCHEDULE.doc),
        "gamma": _GAMMA,
    }
    keep_best = True

    def update(self, k, x, g):
        return scheduled_step(self.opts, k, x, g)


class Momentum(Method):
    name = "momentum"
    summary = "heavy-ball momentum: W ← W − η(β D_{t−1} + G_t)"
    options = {
        "lr": Option(0.01, "positive", "step size η"),
        "beta": Option(0.9, "fraction", "momentum β"),
    }
    nesterov = False
    buffers = ("d",)

    def update(self, k, x, g):
        beta, lr = self.opts["beta"], self.opts["lr"]
        self.d = beta * self.d + g
        return x - lr * (g + beta * self.d if self.nesterov else self.d)


class Nesterov(Momentum):
    name = "nesterov"
    summary = "Nesterov momentum: W ← W − η(G_t + β D_t)"
    nesterov = True


class RMSProp(Method):
    name = "rmsprop"
    summary = "RMSProp: W ← W − η G / (√S + ε)"
    options = {
        "lr": Option(0.01, "positive", "step size η (the notes' γ)"),
        "beta": Option(0.9, "fraction", "decay β of the running mean of G ⊙ G"),
        "eps": Option(1e-8, "nonnegative", "ε added to √S (0: the notes' formula exactly)"),
    }
    buffers = ("s",)

    def update(self, k, x, g):
        o = self.opts
        self.s = o["beta"] * self.s + (1 - o["beta"]) * g * g
        return scaled_step(x, o["lr"], g, self.s, o["eps"])


def scaled_step(x, lr, direction, square, eps):
    """x − η · direction / (√square + ε): RMSProp's and Adam's step.
    With eps=0 a zero component gives 0/0 = NaN, which the driver reports as a
    divergence, so NumPy need not warn."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return x - lr * direction / (np.sqrt(square) + eps)


class Adam(Method):
    name = "adam"
    summary = "Adam with bias correction"
    options = {
        "lr": Option(0.001, "positive", "step size η"),
        "beta1": Option(0.9, "fraction", "decay β₁ of the running mean of G"),
        "beta2": Option(0.999, "fraction", "decay β₂ of the running mean of G ⊙ G"),
        "eps": Option(1e-8, "nonnegative", "ε added to √Ŝ (0: the notes' formula exactly)"),
    }
    buffers = ("m", "s")

    def update(self, k, x, g):
        b1, b2 = self.opts["beta1"], self.opts["beta2"]
        self.m = b1 * self.m + (1 - b1) * g
        self.s = b2 * self.s + (1 - b2) * g * g
        # bias correction: M and S start at 0, so early averages are too small
        return scaled_step(x, self.opts["lr"], self.m / (1 - b1 ** k), self.s / (1 - b2 ** k),
                           self.opts["eps"])


class Coordinate(Method):
    """One iteration is one sweep: for each variable in turn, a line search along
    that axis (against the sign of its partial derivative), with the partials
    recomputed after every move, each axis's search warm-started from its last step.
    An axis with a zero partial is skipped; the sweep stops the run only when no axis
    gives a decrease."""

    name = "coordinate"
    summary = "coordinate descent: a line search along each axis in turn"
    options = {
        "lr": Option(1.0, "positive", "first trial step along each axis (the largest for 'armijo')"),
        "linesearch": Option("exact", ("exact", "armijo", "wolfe"), "the line search along each axis"),
    }

    def __init__(self, obj, opts):
        super().__init__(obj, opts)
        self.alphas = [None] * obj.n  # the last step along each axis (see warm_start)

    def step(self, k, x, f, g):
        search = linesearch.SEARCHES[self.opts["linesearch"]]
        x = x.copy()
        moved = False
        for i in range(self.obj.n):
            if g[i] == 0:
                continue
            d = np.zeros_like(x)
            d[i] = -g[i]
            lr = self.opts["lr"]
            alpha0 = lr if self.alphas[i] is None else warm_start(self.opts["linesearch"], lr, self.alphas[i])
            try:
                alpha, f_new, g_new = search(self.obj, x, f, g, d, alpha0=alpha0)
            except Stop:
                continue  # this axis is done to working precision; the others may not be
            self.alphas[i] = alpha
            x = x + alpha * d
            f, g = f_new, g_new
            moved = True
            if not (np.isfinite(f) and np.isfinite(g).all()):
                break  # let the driver report it
        if not moved:
            raise Stop(linesearch.NO_DECREASE)
        return x, f, g
