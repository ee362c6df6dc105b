"""The built-in graph picture (display/layout.py, graph_svg.py): an edge that spans
several columns bends around the nodes between instead of crossing them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from exprcompiler.display.graphs import builtin_svg, mode_trace
from exprcompiler.display.layout import long_edges
from exprcompiler.frontend import to_trace

SVG = "{http://www.w3.org/2000/svg}"
GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"


def test_long_edges_get_a_point_in_every_layer_they_cross():
    layer, short, paths = long_edges([0, 1, 3], [(0, 1), (0, 2), (1, 2)])
    assert layer == [0, 1, 3, 1, 2, 2]
    assert paths == [[0, 1], [0, 3, 4, 2], [1, 5, 2]]
    assert all(layer[t] == layer[s] + 1 for s, t in short)
    # past the budget of dummy nodes (a large adjoint graph), the edges stay straight
    assert long_edges([0, 1, 3], [(0, 1), (0, 2), (1, 2)], budget=2) == (
        [0, 1, 3], [(0, 1), (0, 2), (1, 2)], [[0, 1], [0, 2], [1, 2]])


def _boxes(root):
    """(left, top, right, bottom) of every node's shape, in document order."""
    out = []
    for g in root.iter(SVG + "g"):
        shape = next(iter(g.iter(SVG + "rect")), None)
        if shape is not None:
            x, y = float(shape.get("x")), float(shape.get("y"))
            out.append((x, y, x + float(shape.get("width")), y + float(shape.get("height"))))
            continue
        e = next(iter(g.iter(SVG + "ellipse")), None)
        if e is not None:
            cx, cy, rx, ry = (float(e.get(k)) for k in ("cx", "cy", "rx", "ry"))
            out.append((cx - rx, cy - ry, cx + rx, cy + ry))
    return out


@pytest.mark.parametrize("mode", ["primal", "reverse"])
def test_no_edge_crosses_a_node_it_does_not_join(mode):
    svg = builtin_svg(mode_trace(to_trace(GRIEWANK), mode))
    root = ET.fromstring(svg)
    boxes = _boxes(root)
    lines = [[tuple(map(float, p.split(","))) for p in pl.get("points").split()]
             for pl in root.iter(SVG + "polyline")]
    assert lines and any(len(points) > 2 for points in lines)  # some edges bend
    for points in lines:
        for (x1, y1), (x2, y2) in zip(points, points[1:]):
            for t in np.linspace(0.02, 0.98, 60):
                x, y = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
                inside = [b for b in boxes if b[0] + 1 < x < b[2] - 1 and b[1] + 1 < y < b[3] - 1]
                assert not inside, (mode, points, inside)
