"""Least squares by gradient descent, as in the notes: n = 500 examples, p = 100
features, 500 steps of size 10⁻⁴ on f(w) = ‖Xw − y‖².

    python examples/least_squares.py

Prints the evaluation and adjoint traces (with their shapes), the generated NumPy
gradient — 2Xᵀ(Xw − y) from two matrix-vector products, no XᵀX — a gradient check
against the formula and against central finite differences, then the descent with
`train` on the whole data set each step (batch=None: plain gradient descent), against
the exact solution from numpy.linalg.lstsq.

Why 10⁻⁴ works: the Hessian is 2XᵀX, whose largest eigenvalue for standard normal X
is about 2n(1 + √(p/n))² ≈ 2,100, so any step below 2/2,100 ≈ 10⁻³ converges; the
smallest, 2n(1 − √(p/n))² ≈ 300, sets the rate, about 3% a step.
"""

from __future__ import annotations

import numpy as np

from exprcompiler import check_grad, compile_grad
from exprcompiler.driver import train

N, P, STEPS, LR = 500, 100, 500, 1e-4
LOSS = "r = X @ w - y\nsum(r**2)"
SHAPES = {"X": ("n", P), "w": (P,), "y": ("n",)}


def main():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, P))
    w_true = rng.normal(size=P)
    y = X @ w_true + 0.5 * rng.normal(size=N)

    g = compile_grad(LOSS, ["w"], shapes=SHAPES)
    print(f"f(w) = ‖Xw − y‖², X: {N}×{P}\n")
    print(g.trace)
    print("\ngenerated code:\n")
    print(g.source)

    w0 = np.zeros(P)
    _, (grad,) = g(X=X, w=w0, y=y)
    formula = 2 * X.T @ (X @ w0 - y)
    print(f"gradient check: against 2Xᵀ(Xw − y) {np.max(np.abs(grad - formula)) / np.max(np.abs(formula)):.1e}, "
          f"against central differences (first 30 examples) "
          f"{check_grad(LOSS, {'X': X[:30], 'w': rng.normal(size=P), 'y': y[:30]}, ['w'], shapes=SHAPES):.1e}")

    r = train(LOSS, {"w": w0}, {"X": X, "y": y}, batch=None, epochs=STEPS, optimizer="sgd", lr=LR,
              quiet=True)
    exact = np.linalg.lstsq(X, y, rcond=None)[0]
    f_exact = float(np.sum((X @ exact - y) ** 2))
    print(f"\ngradient descent, {STEPS} steps of {LR:g}:")
    print(f"{'steps':>6}  {'f(w)':>16}  {'f − f*':>10}")
    # with batch=None an epoch is one step, and its loss is f where the step started
    after = np.append(r.history.loss[1:], r.loss)
    for k in (0, 1, 2, 5, 10, 20, 50, 100, 200, 500):
        f = r.history.loss[0] if k == 0 else after[k - 1]
        print(f"{k:>6}  {f:>16.6f}  {f - f_exact:>10.3g}")
    print(f"after {r.steps} steps: f = {r.loss:.6f}, the least-squares minimum f* = {f_exact:.6f}, "
          f"‖w − w*‖ = {np.linalg.norm(r.params['w'] - exact):.2e} ({r.train_time * 1e3:.0f} ms)")
    return r


if __name__ == "__main__":
    main()
