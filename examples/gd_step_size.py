"""The step-size trade-off on f(x) = x·cos(4x) + 2|x|, as in the notes.

    python examples/gd_step_size.py [--plot DIR]

With step 0.05 from x = −3.5, gradient descent never settles: the iterates jump
back and forth across a valley (a 2-cycle). With step 0.001 each start slides into
the local minimum of its own valley, so different starts end at different minima;
from −0.5 it reaches the kink at 0 (the global minimum), where the gradient never
vanishes and the iterates keep hopping over the kink by about one step.
"""

from __future__ import annotations

import argparse
import os

from exprcompiler.driver import minimize, plot_path

F = "x*cos(4*x) + 2*abs(x)"
STARTS = (-3.5, -2.5, -2.0, -1.0, -0.5)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="DIR", help="write gd_step_size_*.png to DIR (matplotlib)")
    args = parser.parse_args(argv)
    big = minimize(F, {"x": -3.5}, "gd", lr=0.05, maxiter=150, gtol=0)
    print(f"f(x) = {F}")
    print("step 0.05 from x = -3.5, the last six iterates (a 2-cycle, no convergence):")
    for k in range(len(big.history) - 6, len(big.history)):
        print(f"  x_{k} = {big.history.x[k, 0]: .6f}   f = {big.history.f[k]:.6f}")
    small = {x0: minimize(F, {"x": x0}, "gd", lr=0.001, maxiter=20000) for x0 in STARTS}
    print("step 0.001 from several starts:")
    print(f"  {'start':>6}  {'end x':>10}  {'f':>10}  {'steps':>6}  stopped because")
    for x0, r in small.items():
        print(f"  {x0:>6g}  {r.x[0]:>10.6f}  {r.f:>10.6f}  {r.iterations:>6}  {r.message}")
    if args.plot:
        for name, r in [("step_0.05", big)] + [(f"step_0.001_from_{x0:g}", r) for x0, r in small.items()]:
            path = os.path.join(args.plot, f"gd_step_size_{name}.png")
            plot_path(r, path, lo=-4.0, hi=1.0)
            print(f"wrote {path}")
    return {"oscillating": big, **small}


if __name__ == "__main__":
    main()
