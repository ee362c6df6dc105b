"""`exprc minimize EXPR --x0 x=0 [--method adam] [--lr 0.05] [--steps 150] [--plot PATH]`.

Part of the driver (see driver/__init__.py); registered on exprc's subcommands by
`add_minimize_command(sub)` in exprcompiler/cli.py, which also turns every user
mistake raised here into one line on stderr. Each method option is a flag (--lr,
--beta, --linesearch, ...) generated from the methods' option tables, so the help
text, the validation and `minimize` agree; a flag the chosen method does not take is
refused by `minimize` with the list of the options it does take.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..cli_input import add_dtype_flag
from .minimize import DEFAULT_METHOD, METHODS, describe_methods, minimize
from .options import COMMON
from .plots import have_matplotlib, plot_history, plot_path

LOG_ROWS = 10
NONE = "none"  # how a None choice (no line search) is spelled on the command line


def _option_flags() -> dict:
    """option name -> (argparse keywords), over every method's table and COMMON."""
    users: dict[str, list[str]] = {}
    first: dict = {}
    for name, cls in METHODS.items():
        for key, opt in cls.options.items():
            users.setdefault(key, []).append(name)
            first.setdefault(key, opt)
    flags = {}
    for key, opt in {**first, **{k: v for k, v in COMMON.items() if k not in ("maxiter", "quiet")}}.items():
        who = f" ({', '.join(users[key])})" if key in users else ""
        kw = dict(dest=key, default=argparse.SUPPRESS, help=opt.doc.replace("%", "%%") + who)
        if isinstance(opt.kind, tuple):
            choices = sorted({(NONE if c is None else c) for m in users[key]
                              for c in METHODS[m].options[key].kind})
            kw.update(choices=choices, metavar="|".join(choices))
        elif opt.kind == "count":
            kw.update(type=int, metavar="N")
        else:
            kw.update(type=float, metavar="X")
        flags[key] = kw
    return flags


def add_minimize_command(sub) -> argparse.ArgumentParser:
    """Register `minimize` on an argparse subparsers object; returns its parser."""
    help_text = "minimize a scalar expression from a start point; print the iterations and the result"
    # the option texts say "the notes" (the optimizers are written as they write them):
    # the description, read first, says once which notes
    p = sub.add_parser("minimize", help=help_text,
                       description=help_text + ". The methods are written as in the lecture "
                                   "notes this project follows (\"the notes\" below).",
                       epilog="methods and their options:\n" + describe_methods(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("expr", nargs="?", metavar="EXPR", help="expression or program ('-' for stdin)")
    p.add_argument("-f", "--file", help="read the expression from FILE")
    p.add_argument("--x0", metavar="x=0,y=1", help="the start point: every variable being optimized")
    p.add_argument("--data", metavar="a=2", help="other inputs, held fixed")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=list(METHODS), metavar="METHOD",
                   help=f"one of {', '.join(METHODS)} (default: {DEFAULT_METHOD})")
    p.add_argument("--steps", "--maxiter", dest="maxiter", type=int, default=argparse.SUPPRESS,
                   metavar="N", help=COMMON["maxiter"].doc + f" (default: {COMMON['maxiter'].default})")
    for key, kw in _option_flags().items():
        p.add_argument("--" + key.replace("_", "-"), **kw)
    p.add_argument("--backend", choices=("numpy", "c"), default="numpy", help="default: numpy")
    add_dtype_flag(p)
    p.add_argument("--log", type=int, default=LOG_ROWS, metavar="N",
                   help=f"rows of the iteration log (default: {LOG_ROWS}; 0: none)")
    p.add_argument("--plot", metavar="PATH", help="draw f with the iterates (one variable) or the "
                   "loss curve to PATH (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_minimize)
    return p


def _point(text, flag: str) -> dict:
    from ..cli import UserError, _parse_at
    try:
        return _parse_at(text) or {}
    except UserError as err:  # the shared parser names --at; say which flag it was
        raise UserError(str(err).replace("--at:", f"{flag}:", 1)) from None


def cmd_minimize(args) -> str:
    from ..cli import UserError, _read_expr
    if args.x0 is None:
        raise UserError("minimize needs a start point: --x0 name=value,...")
    if args.plot is not None and not have_matplotlib():
        raise UserError("--plot needs matplotlib, which is not installed (pip install 'exprcompiler[plot]')")
    if args.log < 0:
        raise UserError(f"--log must be 0 or more, got {args.log}")
    names = set(_option_flags()) | {"maxiter"}
    options = {k: (None if v == NONE else v) for k, v in vars(args).items() if k in names}
    x0 = _point(args.x0, "--x0")
    f = _read_expr(args)
    if args.dtype != "float64":  # minimize compiles in the dtype of the function it is given
        from .. import api
        from ..frontend import to_trace
        primal = to_trace(f)
        f = api.compile_grad(primal, [n for n in primal.input_names if n in x0] or None,
                             backend=args.backend, dtype=args.dtype)
    r = minimize(f, x0, args.method, data=_point(args.data, "--data"),
                 backend=args.backend, quiet=args.quiet, **options)
    given = "".join(f", {k} = {v}" for k, v in options.items())
    lines = [f"minimize {' '.join(r.function.source.split())} with {r.method}{given}, from "
             + ", ".join(f"{k} = {v:g}" for k, v in x0.items())]
    if args.log:
        lines += log_table(r, args.log)
    lines.append(str(r))
    if args.plot:
        (plot_path if len(r.wrt) == 1 else plot_history)(r, args.plot)
        lines.append(f"wrote {args.plot}")
    return "\n".join(lines)


def log_table(r, rows: int) -> list[str]:
    """About `rows` iterations, evenly spaced, the first and the last included; the
    iterate itself for up to three variables."""
    n = len(r.history)
    picks = sorted(set(np.linspace(0, n - 1, min(rows, n)).round().astype(int)))
    xs = r.history.x
    show_x = len(r.wrt) <= 3
    head = f"{'iter':>6}  {'f':>14}  {'|grad|':>10}" + ("".join(f"  {w:>12}" for w in r.wrt) if show_x
                                                        else f"  {'step':>10}")
    out = [head]
    for k in picks:
        row = f"{k:>6}  {r.history.f[k]:>14.8g}  {r.history.grad_norm[k]:>10.3g}"
        row += "".join(f"  {v:>12.7g}" for v in xs[k]) if show_x else f"  {r.history.step[k]:>10.3g}"
        out.append(row)
    return out
