"""`exprc`, the command-line front door.

    exprc grad  EXPR [--wrt x,y] [--mode ...] [--target numpy|c|vm] [--order 1|2]   generated code
    exprc trace EXPR [--at x1=1.5,x2=0.5] [--mode ...] [--ascii]   Griewank tables
    exprc eval  EXPR --at ...                               value and gradient
    exprc graph EXPR [--mode reverse] [-o graph.svg]        computational graph (DOT or SVG)
    exprc hessian EXPR --at ...                             value, gradient, Hessian
    exprc jacobian "f1; f2" --at ... [--mode auto|forward|reverse|elimination]
    exprc explain EXPR                                      trace sizes of each derivative
    exprc export EXPR -o NAME [--kind grad|value|jvp|vjp]   standalone NAME.c and NAME.h
    exprc bench [SUITE ...] [--quick] [--json PATH]          generated vs hand-written vs others
    exprc cache info|clear                                  the compiled C kernel cache
    exprc minimize EXPR --x0 x=0 [--method adam ...]        an optimizer's run (driver/cli.py)
    exprc train [--model logistic,mlp ...] / exprc demo     training on digits, the tour

EXPR is an argument, a file (-f FILE) or standard input (EXPR omitted or "-");
--shape X=n,3 declares a tensor input, and --at takes lists for it (w=[1,2,3]);
reading them is cli_input's job. --dtype float32 on a command that compiles (grad,
eval, hessian, jacobian, export, minimize, train) is compile_*(dtype="float32").
A user mistake exits with status 2 and one line on stderr; a bug in exprcompiler
exits with status 1 and one line asking for a report (EXPRC_TRACEBACK=1 shows the
traceback instead).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import Optional, Sequence

import numpy as np

from . import api
from .version import __version__
from .cli_input import UserError, _parse_at, _parse_shapes, _path, _read_expr, add_dtype_flag
from .errors import ExprcError
from .frontend import to_trace
from .shapes import shown
from .trace.dot import to_dot
from .jacobians import compile_hessian, compile_hvp, compile_jacobian, explain
from .display.tables import trace_tables


def _expr(args):
    """The expression: its text, or its trace when --shape declares tensors."""
    text = _read_expr(args)
    shapes = _parse_shapes(getattr(args, "shape", None))
    return to_trace(text, shapes) if shapes else text


def _number(v) -> str:
    a = np.asarray(v)
    if a.ndim == 0:
        return repr(float(a))
    return np.array2string(a, precision=10, separator=", ", max_line_width=100)


def _point_for(trace, at: dict[str, float]) -> dict[str, float]:
    names = trace.input_names
    unknown = [n for n in at if n not in names]
    if unknown:
        raise UserError(f"--at: {', '.join(unknown)} is not a variable of the expression "
                        f"(variables: {', '.join(names) or 'none'})")
    missing = [n for n in names if n not in at]
    if missing:
        raise UserError(f"--at: no value for {', '.join(missing)}")
    return dict(at)


def cmd_grad(args) -> str:
    kind = "grad" if args.order == 1 else "hvp"
    if args.order not in (1, 2):
        raise UserError(f"--order {args.order}: use 1 (gradient) or 2 (Hessian-vector product)")
    # the C kernel's text (printing it needs no compiler), or the VM's program listing
    if args.target in ("c", "vm"):
        primal, _, trace, what = api.kind_trace(kind, _expr(args), args.wrt, args.mode, stable=args.stable)
        return api.BACKENDS[args.target].generate(trace, func_name=f"f_{kind}",
                                                  description=api.describe(what, primal),
                                                  dtype=api.resolve_dtype(args.dtype)).source
    if kind == "hvp":
        return compile_hvp(_expr(args), args.wrt, stable=args.stable, dtype=args.dtype).source
    return api.compile_grad(_expr(args), args.wrt, mode=args.mode, stable=args.stable, dtype=args.dtype).source


def _matrix(rows, row_names, col_names) -> str:
    cells = [[f"{float(v):.10g}" for v in row] for row in rows]
    width = max([len(c) for row in cells for c in row] + [len(c) for c in col_names] + [1])
    left = max([len(r) for r in row_names] + [0])
    head = " " * left + "  " + "  ".join(c.rjust(width) for c in col_names)
    return "\n".join([head] + [name.ljust(left) + "  " + "  ".join(c.rjust(width) for c in row)
                               for name, row in zip(row_names, cells)])


def cmd_hessian(args) -> str:
    expr = _expr(args)
    at = _parse_at(args.at)
    if at is None:
        raise UserError("hessian needs --at name=value,...")
    H = compile_hessian(expr, args.wrt, dtype=args.dtype)
    point = _point_for(H.primal, at)
    value, grad, hess = H(**point)
    (yname, _), = H.primal.outputs
    names = _element_names(H.wrt, [np.shape(point[k]) for k in H.wrt])
    lines = [f"{yname} = {float(value)!r}", "gradient:",
             _matrix([grad], [""], names), "Hessian (symmetric):",
             _matrix(hess, names, names)]
    return "\n".join(lines)


def _element_names(names, shapes) -> list[str]:
    """x, or W[0,1] for each element of a tensor, in C order (the flattening of
    Hessians and Jacobians over tensors)."""
    out = []
    for name, shape in zip(names, shapes):
        if shape == ():
            out.append(name)
        else:
            out += [f"{name}[{','.join(map(str, k))}]" for k in np.ndindex(*shape)]
    return out


def cmd_jacobian(args) -> str:
    expr = _expr(args)
    if args.sparse or args.plot:  # the pattern, its coloring, and the nonzeros given --at
        from .sparse_cli import cmd_sparse_jacobian
        return cmd_sparse_jacobian(args, expr)
    at = _parse_at(args.at)
    if at is None:
        raise UserError("jacobian needs --at name=value,... (or --sparse for the pattern alone)")
    J = compile_jacobian(expr, args.wrt, mode=args.mode, dtype=args.dtype)
    point = _point_for(J.primal, at)
    values, jac = J(**point)
    m, n = jac.shape
    mode = J.last_mode
    how = (f"{n} tangent sweep{'s' if n != 1 else ''}" if mode == "forward"
           else "vertex elimination on the linearized graph" if mode == "elimination"
           else f"{m} adjoint sweep{'s' if m != 1 else ''}")
    # rows and columns per element (W[0,1]) when the outputs or variables are tensors
    names = _element_names(J.primal.output_names, [np.shape(o) for o in J.values(**point)])
    cols = _element_names(J.wrt, [np.shape(point[k]) for k in J.wrt])
    lines = [f"{name} = {float(v)!r}" for name, v in zip(names, values)]
    lines += [f"Jacobian ({m}x{n}), {mode} mode ({how}):", _matrix(jac, names, cols)]
    return "\n".join(lines)


def cmd_explain(args) -> str:
    return explain(_expr(args), args.wrt, stability=args.stability)


def cmd_export(args) -> str:
    from .backends.c_export import export_c, function_name
    function_name(args.output)  # a bad NAME is refused before any work, and before writing
    primal, _, trace, what = api.kind_trace(args.kind, _expr(args), args.wrt, args.mode, stable=args.stable)
    func, c_text, h_text = export_c(trace, args.output, api.describe(what, primal),
                                    columns=args.kind in api.COLUMN_KINDS, dtype=api.resolve_dtype(args.dtype))
    stem = args.output[:-2] if args.output.endswith((".c", ".h")) else args.output
    for path, text in ((stem + ".c", c_text), (stem + ".h", h_text)):
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as err:
            raise UserError(f"cannot write {_path(path)}: {err.strerror}") from None
    return (f"wrote {stem}.c and {stem}.h: {func}() computes the {what}\n"
            f"build: cc -O3 -fopenmp -c {stem}.c (see {stem}.h for the signature and usage)")


def cmd_cache(args) -> str:
    from .backends import c_build, c_cache
    if args.action == "clear":
        root, removed = c_cache.clear()
        return f"removed {removed} files from {root}"
    root, why = c_cache.location()
    lines = [f"C kernel cache: {root} ({why})"]
    try:
        c_cache.root_for(write=False)  # the temporary fallback: is it private?
    except ExprcError as err:
        lines.append(f"  not used: {err.one_line()}")
    own, others = c_cache.own_files(root)
    if root.is_dir() and not (root / c_cache.MARKER).is_file():
        lines.append(f"  no {c_cache.MARKER} marker: not made by exprcompiler"
                     + ("; 'exprc cache clear' refuses it" if others else ""))
    extra = c_build.extra_flags()
    if extra:
        lines.append(f"  extra flags (EXPRCOMPILER_EXTRA_CFLAGS): {' '.join(extra)}")
    size = sum(p.stat().st_size for p in own if p.is_file())
    kernels = sum(1 for p in own if p.suffix == ".so")
    lines.append(f"{kernels} compiled kernels, {size / 1024:.0f} KiB")
    return "\n".join(lines)


def cmd_trace(args) -> str:
    primal, wrt = api.with_wrt(to_trace(_expr(args)), args.wrt)
    at = _parse_at(args.at)
    env = _point_for(primal, at) if at is not None else None
    return str(trace_tables(primal, wrt, env, args.mode, args.ascii))  # display/tables.py


def cmd_eval(args) -> str:
    expr = _expr(args)
    at = _parse_at(args.at)
    if at is None:
        raise UserError("eval needs --at name=value,...")
    g = api.compile_grad(expr, args.wrt, mode=args.mode, dtype=args.dtype)
    value, grad = g(**_point_for(g.primal, at))
    (yname, _), = g.primal.outputs
    rows = [(yname, value)]
    d = "d" if args.ascii else "∂"
    rows += [(f"{d}{yname}/{d}{x}", gx) for x, gx in zip(g.wrt, grad)]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name.ljust(width)} = {_number(v)}" for name, v in rows)


def cmd_graph(args) -> Optional[str]:
    from .display.graphs import builtin_svg, mode_trace
    trace = mode_trace(to_trace(_expr(args)), args.mode, args.wrt)
    dot = to_dot(trace, ascii=args.ascii)
    if not args.output:
        return dot
    fmt = args.output.rsplit(".", 1)[-1].lower()
    if fmt in ("dot", "gv"):
        return _write_file(args.output, dot)
    if fmt not in ("svg", "png", "pdf") or "." not in args.output:
        raise UserError(f"-o {args.output}: name the file .dot, .svg, .png or .pdf")
    exe = shutil.which("dot")
    if exe is None and fmt == "svg":  # no Graphviz: the built-in layered layout draws it
        return _write_file(args.output, builtin_svg(trace, ascii=args.ascii))
    if exe is None:
        raise UserError(f"Graphviz 'dot' is not installed, and .{fmt} needs it; write .svg "
                        f"(drawn without Graphviz) or .dot")
    done = subprocess.run([exe, f"-T{fmt}", "-o", args.output], input=dot.encode(),
                          capture_output=True, timeout=120)
    if done.returncode != 0:
        raise UserError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return None


def _write_file(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as err:
        raise UserError(f"cannot write {_path(path)}: {err.strerror}") from None


class _Parser(argparse.ArgumentParser):
    """argparse, but a command-line mistake is one line and status 2 (not the usage
    block), like every other user mistake."""

    def error(self, message):
        raise UserError(f"{message} (see 'exprc --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="exprc", description="Compile a math expression into "
                                     "its evaluation trace and forward/reverse derivative code.")
    parser.add_argument("--version", action="version", version=f"exprc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, func, help_text, *, at=False, mode=None, wrt=False):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("expr", nargs="?", metavar="EXPR", help="expression or program ('-' for stdin)")
        p.add_argument("-f", "--file", help="read the expression from FILE")
        p.add_argument("--ascii", action="store_true", help="plain ASCII names (vbar_4, x1_bar)")
        p.add_argument("--shape", action="append", metavar="X=n,3",
                       help="declare a tensor input (repeatable); undeclared names are scalars")
        if at:
            p.add_argument("--at", action="append", metavar="x1=1.5,x2=0.5",
                           help="the point to evaluate at (repeatable: --at x1=1.5 --at x2=0.5)")
        if mode is not None or wrt:
            p.add_argument("--wrt", metavar="x,y", help="differentiate with respect to these "
                           "variables (default: all)")
        if mode is not None:
            p.add_argument("--mode", choices=mode, default=mode[0], help=f"default: {mode[0]}")
        p.set_defaults(func=func)
        return p

    def stable_flag(p):
        p.add_argument("--stable", action=argparse.BooleanOptionalAction, default=api.DEFAULT_STABLE,
                       help="apply the numerical-stability rewrites (see explain --stability; "
                       f"default: {'on' if api.DEFAULT_STABLE else 'off'})")

    grad = command("grad", cmd_grad, "print the generated gradient code (NumPy, C or the tape VM's program)",
                   mode=("reverse", "forward"))
    grad.add_argument("--target", choices=("numpy", "c", "vm"), default="numpy",
                      help="language of the printed code (default: numpy; vm: the tape VM's program listing)")
    grad.add_argument("--order", type=int, default=1,
                      help="1: value and gradient; 2: value, gradient and Hessian-vector product")
    stable_flag(grad)
    add_dtype_flag(grad)
    command("trace", cmd_trace, "print the evaluation trace tables (with values given --at)",
            at=True, mode=("reverse", "forward", "both"))
    add_dtype_flag(command("eval", cmd_eval, "print the value and the gradient at a point",
                           at=True, mode=("reverse", "forward")))
    g = command("graph", cmd_graph, "print the computational graph in Graphviz DOT (--mode reverse: "
                "the adjoint trace's graph)", mode=("primal", "reverse", "forward"))
    g.add_argument("-o", "--output", help="write to FILE: .dot, .svg (through Graphviz when installed, "
                   "else a built-in layout), .png or .pdf (Graphviz)")
    add_dtype_flag(command("hessian", cmd_hessian, "print the value, gradient and Hessian at a point",
                           at=True, wrt=True))
    jac = command("jacobian", cmd_jacobian, "print the Jacobian of several outputs at a point "
                  "(\"f1; f2\" or a program ending in \"a, b\")", at=True, mode=("auto", "forward", "reverse", "elimination"))
    jac.add_argument("--sparse", action="store_true", help="the sparsity pattern as a picture, its coloring "
                     "and the sweeps it saves; with --at, the nonzeros (needs SciPy)")
    jac.add_argument("--plot", metavar="FILE.png", help="with --sparse: also write the pattern as a PNG "
                     "(needs matplotlib)")
    add_dtype_flag(jac)
    ex = command("explain", cmd_explain, "print the size of the value, gradient, HVP and Jacobian traces",
                 wrt=True)
    ex.add_argument("--stability", action="store_true", help="also list the numerical-stability rewrites "
                    "compile_* applies, each with its reason and the trace lines it changes")
    export = command("export", cmd_export, "write the C kernel as a standalone NAME.c and NAME.h",
                     mode=("reverse", "forward"))
    export.add_argument("-o", "--output", required=True, metavar="NAME",
                        help="write NAME.c and NAME.h; the function is called NAME")
    export.add_argument("--kind", choices=api.KINDS, default="grad",
                        help="what the function computes (default: value and gradient)")
    stable_flag(export)
    add_dtype_flag(export)
    from .bench.cli import add_bench_command
    add_bench_command(sub)
    from .driver.cli import add_minimize_command; add_minimize_command(sub)  # noqa: E702
    from .driver.train_cli import add_train_commands; add_train_commands(sub)  # noqa: E702
    cache = sub.add_parser("cache", help="show or clear the compiled C kernel cache",
                           description="show or clear the compiled C kernel cache")
    cache.add_argument("action", choices=("info", "clear"),
                       help="info: where the cache is and why, and what it holds; clear: remove "
                            "the files exprcompiler made there (a folder it did not make is refused)")
    cache.set_defaults(func=cmd_cache)
    return parser


def _first_line(err: BaseException) -> str:
    text = err.one_line() if isinstance(err, ExprcError) else str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        out = args.func(args)
    # ValueError and TypeError: the driver's commands report bad options with them.
    except (ExprcError, UserError, ValueError, TypeError, NotImplementedError) as err:
        print(f"exprc: error: {_first_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        print("exprc: error: out of memory (is the expression or the data that large?)", file=sys.stderr)
        return 2
    except Exception as err:  # a bug: one line that says so, the traceback on request
        if os.environ.get("EXPRC_TRACEBACK") == "1":
            raise
        print(f"exprc: internal error: {type(err).__name__}: {_first_line(err)[:300]} -- a bug in "
              f"exprcompiler {__version__}; please report it with the command line "
              f"(EXPRC_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1
    if out is not None:
        return _write(out if out.endswith("\n") else out + "\n")
    return 0


def _write(text: str) -> int:
    """The result on stdout; a reader that went away (exprc grad ... | head) ends the
    run quietly, and a terminal that cannot show the characters says so in one line."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at devnull so that is silent too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except UnicodeEncodeError as err:
        print(f"exprc: error: the output has characters ({shown(err.object[err.start:err.end])}) "
              f"that {err.encoding} cannot encode; add --ascii or set PYTHONIOENCODING=utf-8",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
