"""The vanishing gradient: gradient descent on tanh(x) from x = 4.

    python examples/vanishing_gradient.py [--plot DIR]

tanh'(x) = 1 − tanh²(x) is 0.0013 at x = 4, so steps of size 0.1 move x by about
1e-4 each: after 150 steps it has barely moved, although tanh keeps decreasing all
the way to −∞. From x = 0, where tanh' = 1, the same steps go 100 times as far. This
is why saturating activations slow down training.
"""

from __future__ import annotations

import argparse
import os

from exprcompiler import compile_grad
from exprcompiler.driver import minimize, plot_path

F = "tanh(x)"
STEP, STEPS = 0.1, 150


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="DIR", help="write vanishing_gradient.png to DIR (matplotlib)")
    args = parser.parse_args(argv)
    _, (slope,) = compile_grad(F)(4.0)
    print(f"f(x) = {F}: f'(4) = {slope:.6f} (the lecture notes this project follows: 0.0013)")
    runs = {x0: minimize(F, {"x": x0}, "gd", lr=STEP, maxiter=STEPS, gtol=0) for x0 in (4.0, 0.0)}
    for x0, r in runs.items():
        print(f"from x = {x0:g}: {STEPS} steps of {STEP} moved x by {abs(r.x[0] - x0):.4f} "
              f"(to {r.x[0]:.4f}); f went from {r.history.f[0]:.6f} to {r.f:.6f}")
    if args.plot:
        path = os.path.join(args.plot, "vanishing_gradient.png")
        plot_path(runs[4.0], path, lo=-1.0, hi=5.0)
        print(f"wrote {path}")
    return runs


if __name__ == "__main__":
    main()
