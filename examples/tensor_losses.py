"""The lecture notes' three tensor losses: trace, generated gradient code, and checks.

    python examples/tensor_losses.py

1. least squares        f(w) = ½‖Xw − y‖²                   ∇f = Xᵀ(Xw − y)
2. logistic regression  f(w) = Σ log(1 + exp(−yᵢ xᵢᵀw))     ∇f = −Xᵀ(y ⊙ σ(−y ⊙ Xw))
3. two-layer network    f = ½‖tanh(W₂ relu(W₁x + b₁) + b₂) − y‖²   (backpropagation)

For each: the evaluation and adjoint traces with their shapes (at a point small
enough to read), the generated NumPy gradient, and the gradient checked against the
hand-derived formula and against central finite differences. Reverse mode gets
Xᵀ(Xw − y) from two matrix-vector products: no XᵀX is ever formed.
"""

from __future__ import annotations

import numpy as np

from exprcompiler import check_grad, compile_grad
from exprcompiler.cli import main as exprc

LOSSES = [
    ("least squares", "r = X @ w - y\n0.5 * sum(r**2)",
     {"X": ("n", 3), "w": (3,), "y": ("n",)}, ["w"],
     lambda X, w, y: [X.T @ (X @ w - y)]),
    ("logistic regression", "sum(softplus(-y * (X @ w)))",
     {"X": ("n", 3), "w": (3,), "y": ("n",)}, ["w"],
     lambda X, w, y: [-X.T @ (y / (1 + np.exp(y * (X @ w))))]),
    ("two-layer network", "h = relu(W1 @ x + b1)\nout = tanh(W2 @ h + b2)\n0.5 * sum((out - y)**2)",
     {"W1": (4, 3), "b1": (4,), "W2": (2, 4), "b2": (2,), "x": (3,), "y": (2,)}, ["W1", "b1", "W2", "b2"],
     None),
]


def backprop(W1, b1, W2, b2, x, y):
    """The two-layer network's gradient, by hand."""
    a1 = W1 @ x + b1
    h = np.maximum(a1, 0.0)
    out = np.tanh(W2 @ h + b2)
    d5 = (out - y) * (1 - out**2)
    d2 = (W2.T @ d5) * (a1 > 0)
    return [np.outer(d2, x), d2, np.outer(d5, h), d5]


def point_for(shapes: dict, rng) -> dict:
    """Small random values (two decimals, so --at can spell them), n = 4 samples."""
    sizes = {"n": 4}
    return {k: (0.5 * rng.normal(size=tuple(sizes.get(d, d) for d in s))).round(2) for k, s in shapes.items()}


def at_text(point: dict) -> str:
    return ",".join(f"{k}={np.asarray(v).tolist()}".replace(" ", "") for k, v in point.items())


def main() -> float:
    rng = np.random.default_rng(0)
    worst = 0.0
    for title, program, shapes, wrt, formula in LOSSES:
        print("=" * 78 + f"\n{title}\n" + "=" * 78)
        point = point_for(shapes, rng)
        if title == "logistic regression":
            point["y"] = np.where(point["y"] >= 0, 1.0, -1.0)
        shape_args = [a for k, s in shapes.items() for a in ("--shape", f"{k}={','.join(map(str, s))}")]
        exprc(["trace", program, *shape_args, "--wrt", ",".join(wrt), "--at", at_text(point)])
        g = compile_grad(program, wrt=wrt, shapes=shapes)
        print("\ngenerated code (exprc grad):\n")
        print(g.source)
        value, grads = g(**point)
        want = formula(**point) if formula else backprop(**point)
        formula_err = max(float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))) for a, b in zip(grads, want))
        fd_err = check_grad(program, point, wrt=wrt, shapes=shapes)
        print(f"value {value:.6f}; gradient against the hand-derived formula: max rel. error "
              f"{formula_err:.1e}; against central differences: {fd_err:.1e}\n")
        worst = max(worst, formula_err)
    return worst


if __name__ == "__main__":
    err = main()
    raise SystemExit(0 if err < 1e-12 else 1)
