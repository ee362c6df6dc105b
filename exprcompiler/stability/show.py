"""The stability rewrites of an expression, as explain prints them.

Where it sits: jacobians.explain(expr, stability=True) and `exprc explain --stability`
call `explain_rows`, which runs the rewriter (rewrite.py) as compile_* does (on the
primal, then on the reverse-mode gradient or the Jacobian it differentiates) and
prints each firing: the rule, its one-line reason and the trace lines it removed (-)
and added (+), in the notation of the printed tables.
"""

from __future__ import annotations

from .. import passes
from ..trace.ir import Trace
from .rewrite import stabilize

_WHERE = {"primal": "in the function", "derivative": "in the derivatives"}


def format_firings(firings, what: str = "") -> list[str]:
    """The lines explain prints for these firings."""
    if not firings:
        return ["stability rewrites: none (no rule matches; stable=True compiles it as written)"]
    lines = [f"stability rewrites: {len(firings)}, applied by compile_*(..., stable=True)"]
    for stage in ("primal", "derivative"):
        chosen = [f for f in firings if f.stage == stage]
        if chosen:
            lines.append(f"{_WHERE[stage]}{f' ({what})' if stage == 'derivative' and what else ''}:")
        for f in chosen:
            lines.append(f"  {f.rule}: {f.reason}")
            lines += [f"    {d}" for d in f.diff()]
    return lines


def explain_rows(primal: Trace, wrt, tensor: bool = False) -> list[str]:
    """The firings on `primal` (wrt: the names differentiated) and on its gradient
    (one output) or Jacobian (several scalar outputs)."""
    stable, firings = stabilize(primal, "primal")
    what = ""
    if len(primal.outputs) == 1:
        trace, what = passes.grad_reverse(stable, wrt), "the reverse-mode gradient"
    elif not tensor:
        trace, what = passes.jacobian(stable, wrt, "reverse"), "the reverse-mode Jacobian"
    else:
        trace = None
    if trace is not None:
        firings += stabilize(trace, "derivative")[1]
    return format_firings(firings, what)


__all__ = ["explain_rows", "format_firings"]
