"""Gradient descent on f(x) = |x| + (x − 5)², the first example of the lecture notes this project follows.

    python examples/gd_abs_quadratic.py [--plot DIR]

From x = 0 and from x = 10, 150 steps of size 0.05. For x > 0 the step is
x ← x − 0.05(1 + 2(x − 5)) = 0.9x + 0.45, whose fixed point is 4.5: the minimizer is
4.5 exactly (f'(x) = 1 + 2(x − 5) = 0). The notes' "true minimum 4.545455" comes from
a grid of candidate points, not from the function. |x| has a kink at 0, where the
generated derivative takes the subgradient 0, so the first step from 0 goes to 0.5.
"""

from __future__ import annotations

import argparse
import os

from exprcompiler.driver import minimize, plot_path

F = "abs(x) + (x - 5)**2"
STEP, STEPS = 0.05, 150
SHOWN = (0, 1, 2, 5, 10, 20, 50, 100, 150)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="DIR", help="write gd_abs_quadratic_from_*.png to DIR (matplotlib)")
    args = parser.parse_args(argv)
    runs = {x0: minimize(F, {"x": x0}, "gd", lr=STEP, maxiter=STEPS, gtol=0) for x0 in (0.0, 10.0)}
    print(f"gradient descent on f(x) = {F}, step {STEP}, {STEPS} steps")
    print(f"{'step':>5}" + "".join(f"  {'x from ' + format(x0, 'g'):>14}" for x0 in runs))
    for k in SHOWN:
        print(f"{k:>5}" + "".join(f"  {r.history.x[k, 0]:>14.8f}" for r in runs.values()))
    for x0, r in runs.items():
        print(f"from x = {x0:g}: x = {r.x[0]:.10f}, f = {r.f:.10f}, |x - 4.5| = {abs(r.x[0] - 4.5):.1e}")
    print("the minimizer is 4.5 exactly: f'(x) = 1 + 2(x - 5) = 0 (the notes' 4.545455 is their grid)")
    if args.plot:
        for x0, r in runs.items():
            path = os.path.join(args.plot, f"gd_abs_quadratic_from_{x0:g}.png")
            plot_path(r, path)
            print(f"wrote {path}")
    return runs


if __name__ == "__main__":
    main()
