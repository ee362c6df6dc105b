"""Rich display for notebooks: what a trace, a compiled function, `explain` and a
training run show in Jupyter, beside their plain text.

This package sits after the printer (trace/printer.py) and beside the two front doors:
it reads traces and results and never changes them. Every `_repr_*_` method here
returns text or None and never raises (html.safe_display), so a notebook shows at
worst the plain repr.

    tables.py      the lecture tables with values (`g.trace_at(...)`, `exprc trace`)
    formulas.py    the expression and its derivatives in LaTeX (`g.latex()`)
    graphs.py      the computational graph as SVG (`graph(g)`, `exprc graph -o g.svg`),
                   through Graphviz or layout.py + graph_svg.py
    explanation.py what `explain()` returns: its text, and a table in a notebook
    training.py    HTML for TrainResult and TrainHistory, with the loss curve
"""

from .graphs import Graph, graph
from .tables import TraceTables, trace_tables


def __getattr__(name: str):
    # formulas.py imports SymPy: loaded on first use, so `exprc` starts without it
    if name in ("Latex", "latex"):
        from . import formulas
        return getattr(formulas, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Graph", "graph", "Latex", "latex", "TraceTables", "trace_tables"]
