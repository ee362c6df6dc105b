"""`exprc bench [SUITE ...] [--threads 1|2|all] [--repeat N] [--json PATH] [--plot PATH] [--quick]
[--links N [N ...]]`.

Registered on exprc's subcommands by `add_bench_command(sub)`; `python -m
exprcompiler.bench` runs it alone. The options are one table, so the help text,
the validation and the README come from one place.
"""

from __future__ import annotations

import argparse

from . import suite_call, suite_hvp, suite_lsq, suite_mechanics, suite_mlp, suite_scaling, suite_seeds, suite_sparse
from .worker import cpu_set

SUITES = {
    "seeds": (suite_seeds.run, "the lecture functions at 10⁶ points, value and value + gradient, "
                               "against hand-written NumPy and C, SymPy, JAX, PyTorch"),
    "lsq": (suite_lsq.run, "½‖Xw − y‖² at X 500×100 and 5000×1000: the gradient and 500 "
                           "gradient-descent steps, against hand-written NumPy, JAX, PyTorch"),
    "mlp": (suite_mlp.run, "epochs of the two-layer network 64→32→1 on the digits (SGD, batch 64): "
                           "generated NumPy and C against hand-written backprop, JAX, PyTorch"),
    "hvp": (suite_hvp.run, "chained Rosenbrock at one point, n = 10, 100, 1000: value, + gradient, "
                           "+ Hessian-vector product, against hand-written NumPy and JAX"),
    "call": (suite_call.run, "one call at one point, value + gradient (Griewank, n = 2; Rosenbrock, "
                             "n = 10): generated C and NumPy through g(*floats), g(**floats), "
                             "g.at(x), against hand-written Python, symengine, CasADi, JAX"),
    "scaling": (suite_scaling.run, "expression -> ready gradient at 10 … 10⁵ operations, stage by "
                                   "stage, against sympy.diff + cse and JAX trace + compile"),
    "mechanics": (suite_mechanics.run, "the n-link pendulum on a cart (Kane's method), n = 3 … 20: "
                                       "build and call of the forcing's Jacobian in all states, "
                                       "against SymPy lambdify, symengine, CasADi, JAX"),
    "sparse": (suite_sparse.run, "sparse Jacobians (Broyden banded, discrete BVP, n = 10³, 10⁴) and the "
                                 "chained Rosenbrock Hessian (n = 10⁴) by coloring, against the dense "
                                 "forward-mode Jacobian / dense Hessian and CasADi's jacobian/hessian on SX"),
}
DEFAULT_REPEAT = 11
QUICK_REPEAT = 3
MAX_LINKS = 40  # a typo guard: the model's derivation grows steeply in n; the suite's largest is 20


def _links(texts: list[str]) -> tuple[int, ...]:
    """--links: the mechanics suite's link counts, ascending, each once."""
    from ..cli import UserError
    sizes = []
    for text in texts:
        try:
            n = int(text)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_LINKS:
            hint = " (name the suites before --links)" if text in SUITES else ""
            raise UserError(f"--links: expected link counts from 1 to {MAX_LINKS}, got {text!r}{hint}")
        sizes.append(n)
    return tuple(sorted(set(sizes)))


def _threads(text: str) -> list[int]:
    from ..cli import UserError
    every = len(cpu_set(None)) or 1
    if text == "all":
        return [every]
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(f"--threads: expected a positive number or 'all', got {text!r}")
    return [n]


def _sizes(sizes) -> str:
    return " ".join(map(str, sizes))


def cmd_bench(args) -> str:
    from ..cli import UserError
    from . import machine, report
    unknown = [s for s in args.suite if s not in SUITES]
    if unknown:
        raise UserError(f"unknown suite {unknown[0]!r} (suites: {', '.join(SUITES)})")
    if args.repeat is not None and args.repeat < 1:
        raise UserError(f"--repeat must be at least 1, got {args.repeat}")
    if args.plot is not None and not _matplotlib():
        raise UserError("--plot needs matplotlib, which is not installed "
                        "(pip install 'exprcompiler[plot]')")
    suites = list(dict.fromkeys(args.suite or SUITES))
    extra = {}  # a suite's own options
    if args.links is not None:
        if "mechanics" not in suites:
            raise UserError("--links sets the mechanics suite's link counts: name that suite "
                            "(exprc bench mechanics --links N ...)")
        extra["mechanics"] = {"links": _links(args.links)}
    threads = (_threads(args.threads) if args.threads is not None
               else sorted({1, len(cpu_set(None)) or 1}))
    repeat = args.repeat or (QUICK_REPEAT if args.quick else DEFAULT_REPEAT)
    desc = machine.describe(threads)
    results = [SUITES[name][0](threads, repeat, args.quick, **extra.get(name, {})) for name in suites]
    if args.json:
        report.write_json(args.json, desc, results)
    if args.plot:
        report.plot(args.plot, results)
    return "\n\n".join([machine.summary(desc), *(r.text() for r in results)])


def _matplotlib() -> bool:
    from .competitors import installed
    return installed("matplotlib")


def add_bench_command(sub) -> argparse.ArgumentParser:
    """Register `bench` on an argparse subparsers object; returns its parser."""
    help_text = "time the generated gradients against hand-written code and other tools"
    p = sub.add_parser("bench", help=help_text, description=help_text, epilog="suites: " + "; ".join(
        f"{name}: {doc}" for name, (_, doc) in SUITES.items()))
    p.add_argument("suite", nargs="*", metavar="SUITE", help=f"{' '.join(SUITES)} (default: all)")
    p.add_argument("--threads", metavar="1|2|all", help="threads for every competitor that has "
                   "them (default: 1, then all available)")
    p.add_argument("--repeat", type=int, metavar="N", help=f"interleaved rounds (default: "
                   f"{DEFAULT_REPEAT}; {QUICK_REPEAT} with --quick)")
    p.add_argument("--json", metavar="PATH", help="write every number and the machine to PATH")
    p.add_argument("--plot", metavar="PATH", help="draw the ratios to PATH (needs matplotlib)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test in under a minute")
    p.add_argument("--links", nargs="+", metavar="N", help=f"mechanics: the pendulum's link counts, 1 to "
                   f"{MAX_LINKS} (default: {_sizes(suite_mechanics.SIZES)}; "
                   f"{_sizes(suite_mechanics.QUICK_SIZES)} with --quick)")
    p.set_defaults(func=cmd_bench)
    return p
