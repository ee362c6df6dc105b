"""`exprc jacobian --sparse`: the pattern as a picture, the coloring and, given --at,
the nonzeros (issue 16).

Where it sits: one command of cli.py, which hands over here when --sparse is given;
the pattern and coloring come from sparse_explain.analyse, the numbers from
compile_jacobian(..., sparse=True). `--plot FILE.png` also writes matplotlib's spy
picture of the pattern.
"""

from __future__ import annotations

from .sparse_explain import analyse, picture, plot, report

SHOWN = 60  # nonzeros listed at most; the rest are counted


def cmd_sparse_jacobian(args, expr) -> str:
    from .cli import _point_for
    from .cli_input import UserError, _parse_at, _path
    from .frontend import to_trace
    from .api import with_wrt
    if args.dtype != "float64":  # said before the pattern is drawn, --at given or not
        raise UserError(f"--dtype {args.dtype} with --sparse is not supported: the sparse Jacobians are "
                        f"float64 (SciPy's sparse matrices); drop one of the two")
    primal, wrt = with_wrt(to_trace(expr), args.wrt)
    structure, coloring = analyse(primal, wrt, "jacobian", args.mode)
    lines = report(structure, coloring, "jacobian")
    lines.append(picture(structure, ascii=args.ascii))
    if args.plot:
        try:
            plot(structure, args.plot)
        except OSError as err:
            raise UserError(f"cannot write {_path(args.plot)}: {err.strerror}") from None
        lines.append(f"wrote {args.plot}")
    at = _parse_at(args.at)
    if at is not None:
        from .jacobians import compile_jacobian
        J = compile_jacobian(primal, wrt, mode=args.mode, sparse=True)
        point = _point_for(primal, at)
        values, jac = J(**point)
        rows = [name for name, _ in primal.outputs] if len(values) == len(primal.outputs) else \
            [f"y[{i}]" for i in range(len(values))]
        cols = list(wrt) if len(wrt) == jac.shape[1] else [f"x[{j}]" for j in range(jac.shape[1])]
        lines += [f"{name} = {float(v)!r}" for name, v in zip(rows, values)]
        coo = jac.tocoo()
        lines.append(f"nonzeros ({coo.nnz}):")
        for i, j, v in list(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist()))[:SHOWN]:
            lines.append(f"  d{rows[i]}/d{cols[j]} = {v!r}")
        if coo.nnz > SHOWN:
            lines.append(f"  ... and {coo.nnz - SHOWN} more")
    return "\n".join(lines)


__all__ = ["cmd_sparse_jacobian"]
