"""Every optimizer of the driver on Rosenbrock's function from the standard start.

    python examples/rosenbrock_optimizers.py [--plot DIR] [--backend c]

f(x, y) = (1 − x)² + 100(y − x²)² has its minimum 0 at (1, 1) at the end of a long,
curved, narrow valley. The table shows, for each method with the options given
here, the iterations and evaluations it needed to reach ‖∇f‖ <= 1e-6 (or where it
was after its budget), and how far it ended from (1, 1). Steepest descent crawls
along the valley; momentum and Adam cross it faster; Newton, Newton-CG and L-BFGS use
curvature and need tens of iterations. RMSProp with a fixed step hovers near the
minimum without converging, and the subgradient method's diminishing step, which its
convergence proof for non-smooth functions needs, is far too cautious here.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from exprcompiler import compile_grad
from exprcompiler.driver import minimize, plot_history

F = "(1 - x)**2 + 100*(y - x**2)**2"
START = {"x": -1.2, "y": 1.0}
RUNS = [  # (method, options)
    ("gd", {"lr": 1e-3, "maxiter": 40000}),
    ("gd", {"lr": 1.0, "linesearch": "armijo", "maxiter": 20000}),
    ("subgradient", {"lr": 1e-3, "schedule": "1/sqrt(t)", "maxiter": 5000}),
    ("momentum", {"lr": 1e-3, "beta": 0.9, "maxiter": 10000}),
    ("nesterov", {"lr": 1e-3, "beta": 0.9, "maxiter": 10000}),
    ("rmsprop", {"lr": 1e-3, "maxiter": 10000}),
    ("adam", {"lr": 0.01, "maxiter": 10000}),
    ("coordinate", {"linesearch": "armijo", "maxiter": 5000}),
    ("newton", {}),
    ("newton-cg", {}),
    ("lbfgs", {}),
]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="DIR", help="write rosenbrock_optimizers.png to DIR (matplotlib)")
    parser.add_argument("--backend", choices=("numpy", "c"), default="numpy")
    args = parser.parse_args(argv)
    g = compile_grad(F, backend=args.backend)  # compiled once, reused by every first-order run
    print(f"f(x, y) = {F} from (x, y) = ({START['x']}, {START['y']}); gtol = 1e-6")
    head = f"{'method':<12} {'options':<38} {'iters':>6} {'evals':>7} {'f':>10} {'|x - (1,1)|':>12} {'ms':>7}  converged"
    print(head + "\n" + "-" * len(head))
    results = {}
    for method, options in RUNS:
        r = minimize(g, START, method, **options)
        shown = ", ".join(f"{k}={v}" for k, v in options.items() if k != "maxiter") or "defaults"
        results[method if shown == "defaults" else f"{method} ({shown})"] = r
        print(f"{method:<12} {shown:<38} {r.iterations:>6} {r.evaluations:>7} {r.f:>10.2e} "
              f"{np.linalg.norm(r.x - 1):>12.2e} {r.time * 1e3:>7.1f}  {'yes' if r.converged else 'no'}")
    if args.plot:
        path = os.path.join(args.plot, "rosenbrock_optimizers.png")
        plot_history(results, path)
        print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
