"""`exprc demo`: the whole product in one run, on embedded data (nothing downloaded).

1. Griewank's example: the evaluation trace and the reverse adjoint trace, with
   numbers, as the lecture tables print them (`exprc trace`);
2. the generated adjoint code (`exprc grad`);
3. gradient checks: the published numbers, and central finite differences for the
   example and for the two-layer network's loss;
4. gradient descent on |x| + (x − 5)² from 0 and from 10 (step 0.05, 150 steps);
5. least squares ½‖Xw − y‖² as a tensor trace, with shapes: the adjoint of w is
   (Xw − y) @ X, and no XᵀX is formed;
6. logistic regression against the two-layer network 64 → 32 → 1 on the digits
   that ship with scikit-learn, odd against even (`exprc train`).

Part of the driver (see driver/__init__.py); `exprc demo` in driver/train_cli.py
calls `run`. About ten seconds, most of it importing scikit-learn and training.
"""

from __future__ import annotations

import time

import numpy as np

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
POINT = {"x1": 1.5, "x2": 0.5}
PUBLISHED = (2.0167, (3.0118, -13.7239))
ABS_QUADRATIC = "abs(x) + (x - 5)**2"


def _exprc(argv: list) -> str:
    """One exprc command's output (the same functions the command line runs)."""
    from ..cli import build_parser
    args = build_parser().parse_args(argv)
    return args.func(args)


def _banner(n: int, text: str) -> None:
    print(f"\n{'=' * 78}\n{n}. {text}\n{'=' * 78}", flush=True)


def run(epochs: int = 30, ascii: bool = False) -> None:
    started = time.perf_counter()
    at = ",".join(f"{k}={v}" for k, v in POINT.items())
    _banner(1, f"the evaluation trace of y = {GRIEWANK} at {at}")
    print(f"$ exprc trace \"{GRIEWANK}\" --at {at}\n")
    print(_exprc(["trace", GRIEWANK, "--at", at] + (["--ascii"] if ascii else [])))

    _banner(2, "the generated adjoint code")
    print(f"$ exprc grad \"{GRIEWANK}\"\n")
    print(_exprc(["grad", GRIEWANK]))

    _banner(3, "gradient checks")
    checks()

    _banner(4, f"gradient descent on f(x) = {ABS_QUADRATIC}, step 0.05, 150 steps")
    descent()

    _banner(5, "least squares with vectors and matrices: reverse mode never forms XᵀX")
    tensors(ascii)

    _banner(6, f"logistic regression against a two-layer network on digits, odd vs even, {epochs} epochs")
    training(epochs)
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s")


LSQ = "r = X @ w - y; 0.5 * sum(r**2)"
LSQ_ARGS = ["--shape", "X=n,3", "--shape", "w=3", "--shape", "y=n", "--wrt", "w",
            "--at", "X=[[1,2,3],[4,5,6]],w=[1,0,-1],y=[1,2]"]


def tensors(ascii: bool = False) -> None:
    """The least-squares trace with shapes: the adjoint of w is (Xw − y) @ X."""
    print(f"$ exprc trace \"{LSQ}\" {' '.join(LSQ_ARGS[:-1])} \"{LSQ_ARGS[-1]}\"\n")
    print(_exprc(["trace", LSQ, *LSQ_ARGS] + (["--ascii"] if ascii else [])))


def checks() -> None:
    from ..api import compile_grad
    from ..gradcheck import check_grad
    from .models import mlp
    value, grad = compile_grad(GRIEWANK)(**POINT)
    pv, pg = PUBLISHED
    print(f"generated: y = {value:.6f}, ∂y/∂x1 = {grad[0]:.6f}, ∂y/∂x2 = {grad[1]:.6f}")
    print(f"published: y = {pv}, ∂y/∂x1 = {pg[0]}, ∂y/∂x2 = {pg[1]} (the lecture notes this project follows round every "
          f"intermediate to four digits)")
    print(f"central finite differences: largest relative difference {check_grad(GRIEWANK, POINT):.1e}")
    model = mlp([64, 8, 1])
    rng = np.random.default_rng(0)
    X = rng.random((20, 64))
    point = {**model.init(0), **model.data(X, (rng.random(20) < 0.5).astype(int))}
    point = {k: point[k] for k in model.shapes}
    error = check_grad(model.loss, point, wrt=list(model.params), shapes=model.shapes)
    size = sum(np.size(point[k]) for k in model.params)
    print(f"the network's loss ({size} parameters, each perturbed in turn): largest relative "
          f"difference {error:.1e}")


def descent() -> None:
    from .minimize import minimize
    runs = {x0: minimize(ABS_QUADRATIC, {"x": x0}, "gd", lr=0.05, maxiter=150, gtol=0, quiet=True)
            for x0 in (0.0, 10.0)}
    print(f"{'step':>5}" + "".join(f"  {'x from ' + format(x0, 'g'):>14}" for x0 in runs))
    for k in (0, 1, 2, 5, 10, 20, 50, 150):
        print(f"{k:>5}" + "".join(f"  {r.history.x[k, 0]:>14.8f}" for r in runs.values()))
    print("the minimizer is 4.5 exactly (f'(x) = 1 + 2(x − 5) = 0); the notes' 4.545455 is their grid")


def training(epochs: int) -> None:
    from .data import MISSING_SKLEARN, load_digits
    from .models import logistic, mlp
    from .train_cli import NOTES, compare, table
    try:
        ds = load_digits("parity", seed=0)
    except ImportError:
        print(f"skipped: {MISSING_SKLEARN}")
        return
    print(f"{ds}; SGD, batch 64, step 0.1, seed 0\n")
    print(f"$ exprc train --data digits --model logistic,mlp --optimizer sgd --epochs {epochs} "
          f"--batch 64 --lr 0.1\n")
    rows = compare(ds, [logistic(64), mlp([64, 32, 1])], optimizer="sgd", lr=0.1, epochs=epochs,
                   batch=64, seed=0, quiet=True)
    print("\n".join(table(rows)))
    print(NOTES)
    model = rows[1][0]
    print(f"\nthe network's loss program (exprc differentiates it like any other):\n")
    print("\n".join("    " + line for line in model.loss.splitlines()))
