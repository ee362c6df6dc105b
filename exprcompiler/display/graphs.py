"""The computational graph of a function as a picture: `graph(g)` in a notebook,
`exprc graph -o g.svg` on the command line.

The nodes and edges come from trace/dot.py. When Graphviz's `dot` program is on the
PATH it lays the graph out (its pictures are better); otherwise layout.py and
graph_svg.py draw it, so SVG always works. `mode="reverse"` draws the adjoint trace
(the primal sweep, then the adjoints, filled), `mode="forward"` the tangent trace.
A graph over `max_nodes` shows its size and the first rows of its table instead.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Optional

from .. import passes
from ..errors import ExprcError
from ..trace.dot import graph_parts, to_dot
from ..trace.ir import Trace
from .graph_svg import draw, notice
from .html import safe_display

MAX_NODES = 400          # for a notebook's picture; the CLI draws any size it is asked for
GRAPHVIZ_TIMEOUT = 120   # seconds


class GraphvizError(ExprcError):
    """Graphviz's `dot` failed; the message holds its stderr."""


def mode_trace(primal: Trace, mode: str = "primal", wrt=None) -> Trace:
    """The trace to draw: the primal, its tangent trace ("forward") or its adjoint
    trace ("reverse"), with respect to `wrt` (default: every input)."""
    if mode == "primal":
        return primal
    if mode not in ("forward", "reverse"):
        raise ValueError(f"mode={mode!r}: use 'primal', 'forward' or 'reverse'")
    from ..api import with_wrt
    primal, wrt = with_wrt(primal, wrt)
    return passes.jvp(primal, wrt) if mode == "forward" else passes.vjp(primal, wrt)


def graphviz(dot_text: str, fmt: str = "svg", exe: Optional[str] = None) -> bytes:
    """The picture Graphviz draws from `dot_text` in format `fmt` (svg, png, pdf)."""
    exe = exe or shutil.which("dot")
    if exe is None:
        raise GraphvizError("Graphviz 'dot' is not installed")
    done = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True,
                          timeout=GRAPHVIZ_TIMEOUT)
    if done.returncode != 0:
        raise GraphvizError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def builtin_svg(trace: Trace, *, ascii: bool = False, title: str = "") -> str:
    """The graph drawn without Graphviz (layout.py, graph_svg.py)."""
    nodes, edges = graph_parts(trace, ascii=ascii)
    return draw(nodes, edges, title=title)


def _svg_element(text: str) -> str:
    """Graphviz's SVG without its XML declaration and DOCTYPE, to sit inside a page."""
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


class Graph:
    """A computational graph: `.svg()` its picture (Graphviz when installed, else the
    built-in layout: `engine` "auto", "graphviz" or "builtin"), `.dot` its DOT text,
    `.save(path)` writes .svg or .dot; a notebook shows the SVG."""

    def __init__(self, trace: Trace, *, ascii: bool = False, engine: str = "auto",
                 max_nodes: Optional[int] = MAX_NODES, title: str = ""):
        if engine not in ("auto", "graphviz", "builtin"):
            raise ValueError(f"engine={engine!r}: use 'auto', 'graphviz' or 'builtin'")
        self.trace = trace
        self.ascii = ascii
        self.engine = engine
        self.max_nodes = max_nodes
        self.title = title or (trace.source or "")

    @property
    def nodes(self) -> int:
        return len(self.trace.instrs) + len(self.trace.outputs)

    @property
    def dot(self) -> str:
        return to_dot(self.trace, ascii=self.ascii)

    def too_large(self) -> bool:
        return self.max_nodes is not None and self.nodes > self.max_nodes

    def svg(self) -> str:
        if self.too_large():
            from .tables import Block
            rows = Block("", self.trace).first(self.ascii, 20)[1].splitlines()
            return notice([f"a graph of {self.nodes} nodes ({self.trace.size} operations): "
                           f"too large to draw here (max_nodes={self.max_nodes});",
                           "the first rows of its trace:", ""] + rows + ["..."], title=self.title)
        use_dot = self.engine == "graphviz" or (self.engine == "auto" and shutil.which("dot"))
        if use_dot:
            return _svg_element(graphviz(self.dot, "svg").decode("utf-8", errors="replace"))
        return builtin_svg(self.trace, ascii=self.ascii, title=self.title)

    def save(self, path: str) -> None:
        """Write the picture to a .svg file, or the DOT text to a .dot (.gv) file."""
        kind = str(path).rsplit(".", 1)[-1].lower()
        if kind not in ("svg", "dot", "gv"):
            raise ValueError(f"save({str(path)!r}): name the file .svg, .dot or .gv "
                             f"(exprc graph -o writes .png and .pdf through Graphviz)")
        text = self.dot if kind in ("dot", "gv") else self.svg()
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)

    @safe_display
    def _repr_svg_(self) -> str:
        try:
            return self.svg()
        except (GraphvizError, OSError, subprocess.SubprocessError):
            # Graphviz there but failing: the built-in picture, not an empty cell
            return builtin_svg(self.trace, ascii=self.ascii, title=self.title)

    def __repr__(self) -> str:
        edges = sum(len(ins.args) for ins in self.trace.instrs) + len(self.trace.outputs)
        return f"<computational graph: {self.nodes} nodes, {edges} edges>"


def graph(f, mode: str = "primal", wrt=None, *, ascii: bool = False, engine: str = "auto",
          max_nodes: Optional[int] = MAX_NODES) -> Graph:
    """The computational graph of `f` — an expression (text or SymPy), a Trace, or a
    compiled function (its primal trace, differentiated with respect to its `wrt`)."""
    from ..frontend import to_trace
    if hasattr(f, "primal") and hasattr(f, "wrt"):
        primal, wrt = f.primal, (wrt if wrt is not None else (list(f.wrt) or None))
    else:
        primal = f if isinstance(f, Trace) else to_trace(f)
    return Graph(mode_trace(primal, mode, wrt), ascii=ascii, engine=engine, max_nodes=max_nodes,
                 title=primal.source or "")


__all__ = ["Graph", "GraphvizError", "graph", "graphviz", "builtin_svg", "mode_trace", "MAX_NODES"]
