"""The computational graph drawn as SVG without Graphviz: trace/dot.graph_parts gives
the nodes and edges, layout.py places them, and this module writes the picture —
inputs as ellipses, operations as boxes (adjoints and tangents filled), constants as
plain text, outputs as double boxes, data flow as arrows (straight, or bent through
the layout's dummy points when they span several columns), left to right as
`dot -Grankdir=LR` draws it.

Every piece of text (user names among it) goes through XML escaping; the output is a
standalone SVG document that parses as XML, with no scripts or external references.
"""

from __future__ import annotations

import hashlib

from ..trace.dot import Node
from .html import esc
from .layout import Box, coordinates, layers, long_edges, order

FONT = "Helvetica, Arial, sans-serif"
FONT_SIZE = 12
CHAR_WIDTH = 7.2      # average advance at FONT_SIZE, enough for digits and Greek marks
LINE_HEIGHT = 15
FILL = {"bar": "#fbe3d6", "dot": "#dbe9f6"}
INPUT_FILL = "#eef5ee"
DUMMY = (0.0, 4.0)    # the size of a long edge's point in a column it crosses


def _size(node: Node) -> tuple[float, float]:
    longest = max(len(line) for line in node.lines)
    pad = 22 if node.shape in ("input", "output") else 14
    return max(36.0, longest * CHAR_WIDTH + pad), len(node.lines) * LINE_HEIGHT + 10


def _shape(node: Node, b: Box) -> str:
    fill = FILL.get(node.kind, INPUT_FILL if node.shape == "input" else "#ffffff")
    left, top = b.x - b.width / 2, b.y - b.height / 2
    if node.shape == "input":
        return (f'<ellipse cx="{b.x:.1f}" cy="{b.y:.1f}" rx="{b.width / 2:.1f}" ry="{b.height / 2:.1f}" '
                f'fill="{fill}" stroke="#333"/>')
    if node.shape == "op":
        return (f'<rect x="{left:.1f}" y="{top:.1f}" width="{b.width:.1f}" height="{b.height:.1f}" '
                f'rx="3" fill="{fill}" stroke="#333"/>')
    if node.shape == "output":
        return (f'<rect x="{left:.1f}" y="{top:.1f}" width="{b.width:.1f}" height="{b.height:.1f}" '
                f'fill="{fill}" stroke="#333"/>'
                f'<rect x="{left + 3:.1f}" y="{top + 3:.1f}" width="{b.width - 6:.1f}" '
                f'height="{b.height - 6:.1f}" fill="none" stroke="#333"/>')
    return ""  # a constant: its text alone


def _text(node: Node, b: Box) -> str:
    first = b.y - (len(node.lines) - 1) * LINE_HEIGHT / 2
    spans = "".join(f'<tspan x="{b.x:.1f}" y="{first + k * LINE_HEIGHT:.1f}"{_big(line)}>{esc(line)}</tspan>'
                    for k, line in enumerate(node.lines))
    return f'<text text-anchor="middle" dominant-baseline="central">{spans}</text>'


def _big(line: str) -> str:
    # an operator of one mark (·, +, −) at the text size is a speck: drawn larger
    return f' font-size="{FONT_SIZE + 6}" font-weight="bold"' if len(line) == 1 and not line.isalnum() else ""


def _edge(path: list[Box], span: list[tuple[float, float]], marker: str) -> str:
    """An arrow from the first box's right side to the last one's left, level across
    every column it passes (`span`: each path point's column, left and right), so its
    slanted parts lie in the gaps between columns, where no node is."""
    a, b = path[0], path[-1]
    points = [(a.x + a.width / 2, a.y), (span[0][1], a.y)]
    for p, (left, right) in zip(path[1:-1], span[1:-1]):
        points += [(left, p.y), (right, p.y)]
    end = b.x - b.width / 2 - 2
    points += [(min(span[-1][0], end), b.y), (end, b.y)]
    kept = [pt for k, pt in enumerate(points) if k == 0 or pt != points[k - 1]]
    text = " ".join(f"{x:.1f},{y:.1f}" for x, y in kept)
    return f'<polyline points="{text}" fill="none" stroke="#555" marker-end="url(#{marker})"/>'


def draw(nodes: list[Node], edges: list[tuple[str, str]], *, title: str = "") -> str:
    """The SVG document of the graph with these nodes and (key, key) edges."""
    index = {node.key: k for k, node in enumerate(nodes)}
    pairs = [(index[s], index[t]) for s, t in edges]
    layer = layers(len(nodes), pairs, [node.shape == "const" for node in nodes])
    layer, short, paths = long_edges(layer, pairs)
    sizes = [_size(node) for node in nodes] + [DUMMY] * (len(layer) - len(nodes))
    boxes, width, height = coordinates(order(layer, short), sizes)
    # one marker id per picture (several graphs share a notebook page); from the content,
    # so the same graph gives the same bytes
    marker = "exprc-arrow-" + hashlib.sha1(repr((nodes, edges)).encode()).hexdigest()[:10]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}" font-size="{FONT_SIZE}">']
    if title:
        out.append(f"<title>{esc(title)}</title>")
    out.append(f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
               f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>')
    columns: dict[int, tuple[float, float]] = {}  # layer -> (left, right) of its widest node
    for v, k in enumerate(layer):
        b = boxes[v]
        left, right = columns.get(k, (b.x, b.x))
        columns[k] = (min(left, b.x - b.width / 2), max(right, b.x + b.width / 2))
    out += [_edge([boxes[v] for v in path], [columns[layer[v]] for v in path], marker) for path in paths]
    for node, box in zip(nodes, boxes):
        out.append(f"<g><title>{esc(' '.join(node.lines))}</title>{_shape(node, box)}{_text(node, box)}</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def notice(lines: list[str], *, title: str = "") -> str:
    """An SVG that shows text lines instead of a picture (a graph too large to draw)."""
    width = max([len(line) for line in lines] + [10]) * CHAR_WIDTH + 20
    height = len(lines) * LINE_HEIGHT + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="monospace" font-size="{FONT_SIZE}">']
    if title:
        out.append(f"<title>{esc(title)}</title>")
    out += [f'<text x="10" y="{20 + k * LINE_HEIGHT}" xml:space="preserve">{esc(line)}</text>'
            for k, line in enumerate(lines)]
    out.append("</svg>")
    return "\n".join(out) + "\n"


__all__ = ["draw", "notice"]
