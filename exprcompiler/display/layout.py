"""A layered layout of a computational graph, for drawing it without Graphviz
(graph_svg.py draws it; graphs.py chooses between the two).

Sugiyama's scheme, reduced to what a trace needs: the graph is acyclic and its nodes
come in topological order (a trace is SSA), so
1. layers: each node one column right of its furthest argument (longest path from the
   inputs); a constant sits just left of its first user rather than beside the inputs;
2. order within a layer: barycentre sweeps, left to right by the mean position of a
   node's arguments, then right to left by that of its users, a few times over;
3. coordinates: columns as wide as their widest node, rows centred on one axis.
An edge that spans several layers passes through a dummy node in each layer between
(`long_edges`), which the ordering places like any node: the edge is drawn through
those points, around the nodes, where a straight line would cross the boxes it passes
(in an adjoint graph most edges are long: the primal values its sweep reads); a graph
that would need more than DUMMIES of them keeps its edges straight. Every
step is a loop over nodes or edges in order: no recursion, and the same graph always
gets the same picture.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

SWEEPS = 4
COLUMN_GAP = 46.0
ROW_GAP = 14.0
# Dummy nodes of long edges at most: the ordering's time grows with them (an adjoint
# graph of 2,000 nodes has 97,000, and took 8 s to order, against 0.2 s straight)
DUMMIES = 20_000


class Box(NamedTuple):
    x: float  # centre
    y: float
    width: float
    height: float


def layers(count: int, edges: Sequence[tuple[int, int]], fixed: Sequence[bool]) -> list[int]:
    """The layer of each of `count` nodes; `edges` (source, target) go from a lower to
    a higher index; nodes marked `fixed` (constants) move next to their first user."""
    preds: list[list[int]] = [[] for _ in range(count)]
    for s, t in edges:
        preds[t].append(s)
    layer = [0] * count
    for v in range(count):
        if preds[v]:
            layer[v] = 1 + max(layer[p] for p in preds[v])
    users: list[int] = [-1] * count
    for s, t in edges:
        if fixed[s] and (users[s] < 0 or layer[t] < users[s]):
            users[s] = layer[t]
    for v in range(count):
        if fixed[v] and users[v] > 0:
            layer[v] = users[v] - 1
    return layer


Edge = tuple[int, int]


def long_edges(layer: Sequence[int], edges: Sequence[Edge],
               budget: int = DUMMIES) -> tuple[list[int], list[Edge], list[list[int]]]:
    """(layers with the dummy nodes appended, edges between adjacent layers, each
    edge's path of nodes): an edge from layer a to layer b > a + 1 becomes a chain
    through new nodes in layers a + 1 ... b - 1, numbered from len(layer) on. Past
    `budget` dummy nodes in all, the edges stay as they are (drawn straight)."""
    if sum(max(layer[t] - layer[s] - 1, 0) for s, t in edges) > budget:
        return list(layer), list(edges), [[s, t] for s, t in edges]
    layer = list(layer)
    short: list[Edge] = []
    paths: list[list[int]] = []
    for s, t in edges:
        path = [s]
        for k in range(layer[s] + 1, layer[t]):
            layer.append(k)
            path.append(len(layer) - 1)
        path.append(t)
        short += zip(path, path[1:])
        paths.append(path)
    return layer, short, paths


def order(layer: Sequence[int], edges: Sequence[tuple[int, int]], sweeps: int = SWEEPS) -> list[list[int]]:
    """The nodes of each layer, top to bottom, after barycentre sweeps."""
    depth = max(layer, default=-1) + 1
    rows: list[list[int]] = [[] for _ in range(depth)]
    for v, k in enumerate(layer):
        rows[k].append(v)
    preds: dict[int, list[int]] = {}
    succs: dict[int, list[int]] = {}
    for s, t in edges:
        preds.setdefault(t, []).append(s)
        succs.setdefault(s, []).append(t)
    pos = [0.0] * len(layer)

    def place(row: list[int]) -> None:
        middle = (len(row) - 1) / 2
        for rank, v in enumerate(row):
            pos[v] = rank - middle

    def resort(row: list[int], neighbours: dict) -> list[int]:
        def key(v: int) -> float:
            near = neighbours.get(v)
            return sum(pos[u] for u in near) / len(near) if near else pos[v]
        return sorted(row, key=key)  # stable: ties keep their order

    for row in rows:
        place(row)
    for _ in range(sweeps):
        for k in range(1, depth):
            rows[k] = resort(rows[k], preds)
            place(rows[k])
        for k in range(depth - 2, -1, -1):
            rows[k] = resort(rows[k], succs)
            place(rows[k])
    return rows


def coordinates(rows: list[list[int]], sizes: Sequence[tuple[float, float]],
                margin: float = 10.0) -> tuple[list[Box], float, float]:
    """(a box per node, total width, total height): columns left to right, each row of
    a column centred on the same horizontal axis."""
    heights = [sum(sizes[v][1] for v in row) + ROW_GAP * max(len(row) - 1, 0) for row in rows]
    total_h = max(heights, default=0.0) + 2 * margin
    boxes: list = [None] * len(sizes)
    x = margin
    for row, h in zip(rows, heights):
        width = max((sizes[v][0] for v in row), default=0.0)
        y = (total_h - h) / 2
        for v in row:
            w, hv = sizes[v]
            boxes[v] = Box(x + width / 2, y + hv / 2, w, hv)
            y += hv + ROW_GAP
        x += width + COLUMN_GAP
    return boxes, max(x - COLUMN_GAP + margin, 2 * margin), total_h


__all__ = ["Box", "layers", "long_edges", "order", "coordinates"]
