"""Greedy colorings of sparsity patterns, seed matrices, and recovery of the nonzeros.

Where it sits: after sparsity.py (which finds a Jacobian's or Hessian's pattern from
the trace) and before the compressed sweeps: a coloring groups columns (or rows) that
can share one seed direction, `seed_matrix` turns it into the n × k seeds S, one
JVP sweep per seed gives B = J S, and the recovery indices read every nonzero of J
back out of B. All NumPy and plain Python; SciPy is not needed.

What is here (Gebremedhin, Manne, Pothen, "What color is your Jacobian?", SIAM Rev.
47(4), 2005 — "GMP"):

* column coloring for forward mode: a distance-1 coloring of the column intersection
  graph (columns adjacent when they share a row), which is GMP's partial distance-2
  coloring of the bipartite row/column graph; row coloring for reverse mode is the
  same on the transpose. Recovery is direct: J[i, j] = B[i, color[j]].
* star coloring for symmetric Hessians (GMP Algorithm 4.1): a distance-1 coloring in
  which every path on four vertices has at least three colors. Recovery is direct and
  uses symmetry: H[i, j] is B[i, color[j]] when j is the only neighbour of i with its
  color, else B[j, color[i]] (then i is the only neighbour of j with its color).

Each coloring is tried in several vertex orderings (natural, largest-first,
smallest-last, incidence-degree) and the fewest colors kept, the first ordering
winning ties, so results are deterministic. Graphs are lists of neighbour lists;
every walk is iterative. Building the column intersection graph costs the sum over
rows of (row length)²: linear in the nonzeros for banded patterns, quadratic for a
dense row (where row coloring, on the transpose, is the cheap and good one); where
a large graph could at best halve the sweeps (an arrowhead: a dense row and a dense
column), each column gets its own color instead (color_columns).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .sparse_pattern import Pattern, as_pattern

# Tried in this order, the first of equal counts kept; largest-first first, as it is
# the usual best for star coloring and every later ordering stops at its count.
ORDERINGS = ("largest_first", "smallest_last", "incidence_degree", "natural")


# -- graphs ------------------------------------------------------------------------

def column_graph(pattern) -> list:
    """Neighbour lists of the column intersection graph: columns that share a row."""
    p = as_pattern(pattern)
    rows = [r.tolist() for r in p.rows()]
    cols = [c.tolist() for c in p.transpose().rows()]
    graph = []
    for j, col_rows in enumerate(cols):
        nb = set()
        for r in col_rows:
            nb.update(rows[r])
        nb.discard(j)
        graph.append(sorted(nb))
    return graph


def symmetric_graph(pattern) -> list:
    """Neighbour lists of the adjacency graph of a square pattern, symmetrised, without
    the diagonal."""
    p = as_pattern(pattern)
    if p.shape[0] != p.shape[1]:
        raise ValueError(f"a symmetric coloring needs a square pattern, not {p.shape[0]} × {p.shape[1]}")
    rows, cols = p.rows(), p.transpose().rows()
    graph = []
    for i in range(p.shape[0]):
        nb = set(rows[i].tolist())
        nb.update(cols[i].tolist())
        nb.discard(i)
        graph.append(sorted(nb))
    return graph


# -- orderings ---------------------------------------------------------------------

def order_vertices(graph: list, ordering: str) -> list:
    """The vertices in the order a greedy coloring visits them."""
    n = len(graph)
    if ordering == "natural":
        return list(range(n))
    if ordering == "largest_first":
        return sorted(range(n), key=lambda v: -len(graph[v]))   # stable: ties in natural order
    if ordering == "smallest_last":
        return _smallest_last(graph)
    if ordering == "incidence_degree":
        return _incidence_degree(graph)
    raise ValueError(f"unknown ordering {ordering!r} (use one of {', '.join(ORDERINGS)})")


def _smallest_last(graph: list) -> list:
    """Repeatedly remove a vertex of least degree in what remains; color in the reverse
    order of removal."""
    order = _bucket_order(graph, [len(nb) for nb in graph], range(len(graph) - 1, -1, -1), -1)
    order.reverse()
    return order


def _incidence_degree(graph: list) -> list:
    """Next, a vertex with the most neighbours already ordered; the first one of largest
    degree (popitem takes the last inserted)."""
    return _bucket_order(graph, [0] * len(graph), sorted(range(len(graph)), key=lambda v: len(graph[v])), +1)


def _bucket_order(graph: list, key: list, inserted, step: int) -> list:
    """The vertices taken one by one, each time one whose `key` is least (step -1: every
    neighbour still waiting loses 1, smallest-last's degree in what remains) or most
    (step +1: every neighbour waiting gains 1, incidence degree). Buckets by key
    (dicts: insertion-ordered, O(1) moves), filled in the order `inserted`."""
    n = len(graph)
    key = list(key)
    buckets = [dict() for _ in range(max(key, default=0) + max((len(nb) for nb in graph), default=0) + 2)]
    for v in inserted:
        buckets[key[v]][v] = None
    taken = bytearray(n)
    order = []
    at = 0   # the bucket the next vertex comes from: no lower (step -1) or higher (+1) one is filled
    for _ in range(n):
        while not buckets[at]:
            at -= step
        v, _ = buckets[at].popitem()
        taken[v] = 1
        order.append(v)
        for w in graph[v]:
            if not taken[w]:
                k = key[w]
                del buckets[k][w]
                key[w] = k + step
                buckets[k + step][w] = None
                at = min(at, k + step) if step < 0 else max(at, k + step)
    return order


# -- colorings ---------------------------------------------------------------------

def _least_free(forbidden: list, v: int) -> int:
    """The least color that `forbidden` does not mark as taken near v."""
    c = 0
    while forbidden[c] == v:
        c += 1
    return c


def greedy_coloring(graph: list, order: Sequence[int], limit: Optional[int] = None) -> Optional[np.ndarray]:
    """Distance-1 greedy coloring: each vertex takes the least color no neighbour has.
    With `limit`, None as soon as it would need more than `limit` colors."""
    n = len(graph)
    color = [-1] * n
    forbidden = [-1] * (n + 1)   # forbidden[c] == v: color c is taken near v
    for v in order:
        for w in graph[v]:
            c = color[w]
            if c >= 0:
                forbidden[c] = v
        c = _least_free(forbidden, v)
        if limit is not None and c >= limit:
            return None
        color[v] = c
    return np.asarray(color, dtype=np.int64)


def star_coloring_in_order(graph: list, order: Sequence[int], limit: Optional[int] = None) -> Optional[np.ndarray]:
    """GMP Algorithm 4.1. A color is forbidden for v when a neighbour has it; when it
    is the color of x two steps away through an uncolored w (so two neighbours of a
    vertex never share a color while it is uncolored, which rules out the bicolored
    paths with v inside); and when v-w-x-y would be bicolored (x has another neighbour
    y with w's color). With `limit`, None as soon as it needs more than `limit` colors.
    `graph` is symmetric (symmetric_graph).

    Two ways to the same colors. Walking two and three steps from each vertex costs
    the sum of its neighbours' degrees: the quicker on narrow bands, but quadratic in
    a hub's degree (an arrowhead of n = 10⁵: minutes). Keeping at each vertex the
    colors those walks would find through it (_star_kept) costs each vertex its degree
    times the colors around it: a second for that arrowhead, a fifth of the walks'
    time on a band of 21 diagonals, twice it on a tridiagonal one. So the walks are
    taken where the degrees are small, weighted as the walks meet them."""
    ends = sum(len(nb) for nb in graph)
    if sum(len(nb) ** 2 for nb in graph) <= WALK_DEGREE * ends:
        return _star_walks(graph, order, limit)
    return _star_kept(graph, order, limit)


# The degree (each vertex weighted by its degree) up to which star coloring walks.
WALK_DEGREE = 8


def _star_walks(graph: list, order: Sequence[int], limit: Optional[int]) -> Optional[np.ndarray]:
    n = len(graph)
    color = [-1] * n
    forbidden = [-1] * (n + 1)
    for v in order:
        for w in graph[v]:
            if color[w] >= 0:
                forbidden[color[w]] = v
        for w in graph[v]:
            cw = color[w]
            for x in graph[w]:
                cx = color[x]
                if x == v or cx < 0 or forbidden[cx] == v:
                    continue
                if cw < 0:
                    forbidden[cx] = v
                else:
                    for y in graph[x]:
                        if y != w and color[y] == cw:
                            forbidden[cx] = v
                            break
        c = _least_free(forbidden, v)
        if limit is not None and c >= limit:
            return None
        color[v] = c
    return np.asarray(color, dtype=np.int64)


def _star_kept(graph: list, order: Sequence[int], limit: Optional[int]) -> Optional[np.ndarray]:
    """star_coloring_in_order with what the walks find kept per vertex, updated as
    vertices are colored: `near[x]` counts x's colored neighbours by color, so "x has
    a neighbour y other than w with w's color" is near[x][color w] >= 2, and
    `reach[w]`, for a colored w, holds the colors of the neighbours x of w for which
    that holds."""
    n = len(graph)
    color = [-1] * n
    forbidden = [-1] * (n + 1)
    near: list[dict] = [{} for _ in range(n)]
    reach: list = [None] * n
    for v in order:
        for w in graph[v]:
            cw = color[w]
            if cw >= 0:
                forbidden[cw] = v
                for c in reach[w]:   # x colored c, next to w, with another neighbour colored cw
                    forbidden[c] = v
            else:
                for c in near[w]:    # every colored neighbour of an uncolored w
                    forbidden[c] = v
        c = _least_free(forbidden, v)
        if limit is not None and c >= limit:
            return None
        _colored(graph, color, near, reach, v, c)
    return np.asarray(color, dtype=np.int64)


def _colored(graph: list, color: list, near: list, reach: list, u: int, k: int) -> None:
    """Vertex u takes color k: its neighbours' counts, and the `reach` sets that change."""
    color[u] = k
    mine = set()
    for x in graph[u]:
        counts = near[x]
        m = counts.get(k, 0) + 1
        counts[k] = m
        cx = color[x]
        if m >= 2 and cx >= 0:
            mine.add(cx)
            if m == 2:  # x now has two neighbours colored k: u, and one w colored before it
                for w in graph[x]:
                    if color[w] == k and w != u:
                        reach[w].add(cx)
    reach[u] = mine
    counts = near[u]
    for w in graph[u]:
        cw = color[w]
        if cw >= 0 and counts.get(cw, 0) >= 2:
            reach[w].add(k)


def _fewest(graph, colorer, orderings) -> np.ndarray:
    """The coloring with the fewest colors over the orderings; each ordering after the
    first gives up once it needs as many colors as the best so far (CasADi's cutoff)."""
    best = None
    for ordering in orderings:
        colors = colorer(graph, order_vertices(graph, ordering),
                         None if best is None else n_colors(best) - 1)
        if colors is not None and (best is None or n_colors(colors) < n_colors(best)):
            best = colors
    return best if best is not None else np.zeros(len(graph), dtype=np.int64)


def n_colors(colors) -> int:
    return int(colors.max()) + 1 if len(colors) else 0


# Past this many (row length)² summed, the column intersection graph is not built when
# coloring could at best halve the sweeps (see color_columns): about 2 s of Python, and
# memory in proportion (an arrowhead of n = 10⁵ would need 10¹⁰ neighbour entries).
MAX_GRAPH_WORK = 10 ** 7


def color_columns(pattern, orderings: Sequence[str] = ORDERINGS) -> np.ndarray:
    """Colors for the columns (forward mode): columns of one color share no row.

    When a row holds at least half the columns, no coloring has fewer colors than half
    the columns, so one color per column costs at most twice the sweeps; that is taken
    when the graph would be large (MAX_GRAPH_WORK), as for an arrowhead pattern, whose
    dense row and column make the graph complete in either mode."""
    p = as_pattern(pattern)
    lengths = np.diff(p.indptr).astype(np.int64)
    n = p.shape[1]
    if len(lengths) and 2 * int(lengths.max()) >= n and int(np.dot(lengths, lengths)) > MAX_GRAPH_WORK:
        return np.arange(n, dtype=np.int64)
    return _fewest(column_graph(p), greedy_coloring, orderings)


def color_rows(pattern, orderings: Sequence[str] = ORDERINGS) -> np.ndarray:
    """Colors for the rows (reverse mode): rows of one color share no column."""
    return color_columns(as_pattern(pattern).transpose(), orderings)


def star_coloring(pattern, orderings: Sequence[str] = ORDERINGS) -> np.ndarray:
    """Star coloring of a symmetric pattern's vertices (compressed Hessians)."""
    return _fewest(symmetric_graph(pattern), star_coloring_in_order, orderings)


def color_jacobian(pattern, orderings: Sequence[str] = ORDERINGS) -> tuple:
    """The cheaper way to compress a Jacobian: ("forward", column colors) or
    ("reverse", row colors), fewer colors winning and forward mode winning ties.

    Each mode's colors are at least its lower bound, the longest row (forward) or
    column (reverse); a mode is not colored when that bound already reaches the other
    mode's count, and a bound equal to the whole dimension is met by one color per
    column. So a dense row costs nothing in forward mode (whose column graph would be
    complete, with n² edges) and reverse mode finds its 2 colors."""
    p = as_pattern(pattern)
    m, n = p.shape
    lengths = np.diff(p.indptr)
    bounds = {"forward": int(lengths.max()) if m else 0,
              "reverse": int(np.bincount(p.indices, minlength=n).max()) if n else 0}
    best = None
    for mode in sorted(bounds, key=lambda md: (bounds[md], md != "forward")):
        if best is not None and bounds[mode] >= n_colors(best[1]):
            continue
        size = n if mode == "forward" else m
        if bounds[mode] >= size:
            colors = np.arange(size, dtype=np.int64)
        else:
            colors = color_columns(p if mode == "forward" else p.transpose(), orderings)
        if best is None or n_colors(colors) < n_colors(best[1]) or \
                (n_colors(colors) == n_colors(best[1]) and mode == "forward"):
            best = (mode, colors)
    return best


# -- seeds and recovery --------------------------------------------------------------

def seed_matrix(colors) -> np.ndarray:
    """S (n × k): S[j, c] = 1 when column j has color c. J S sums each color's columns."""
    colors = np.asarray(colors, dtype=np.int64)
    seeds = np.zeros((len(colors), n_colors(colors)))
    seeds[np.arange(len(colors)), colors] = 1.0
    return seeds


def _coordinates(p: Pattern):
    rows = np.repeat(np.arange(p.shape[0], dtype=np.int64), np.diff(p.indptr))
    return rows, p.indices


def column_recovery(pattern, colors) -> tuple:
    """Where each nonzero of J (in CSR order) sits in B = J S (m × k): J[i, j] = B[i, color[j]]."""
    rows, cols = _coordinates(as_pattern(pattern))
    return rows, np.asarray(colors)[cols]


def row_recovery(pattern, colors) -> tuple:
    """Where each nonzero of J (in CSR order) sits in B = Sᵀ J (k × n), S from the row
    colors: J[i, j] = B[color[i], j]."""
    rows, cols = _coordinates(as_pattern(pattern))
    return np.asarray(colors)[rows], cols


def star_recovery(pattern, colors) -> tuple:
    """Where each nonzero of a symmetric H (in CSR order) sits in B = H S (n × k).

    H[i, j] and H[j, i] are read from one place, so the result is exactly symmetric:
    with a = min(i, j) and b = max(i, j), B[a, color[b]] when b is the only neighbour
    of a with its color (the place the dense Hessian trace computes it: the tangent of
    gradient entry a in the sweep of b), else B[b, color[a]] (then a is the only
    neighbour of b with its color: that is what a star coloring guarantees)."""
    p = as_pattern(pattern)
    colors = np.asarray(colors, dtype=np.int64)
    rows, cols = _coordinates(p)
    k = max(n_colors(colors), 1)
    # how many entries of row i have color c: 1 means H[i, j] is alone in B[i, c]
    key = rows * k + colors[cols]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    alone = counts[inverse.ravel()] == 1
    # the mirror (j, i) of each entry (CSR order is sorted by row, then column)
    n = max(p.shape[0], 1)
    flat, mirror_flat = rows * n + cols, cols * n + rows
    mirror = np.minimum(np.searchsorted(flat, mirror_flat), max(len(flat) - 1, 0))
    has_mirror = flat[mirror] == mirror_flat if len(flat) else np.zeros(0, dtype=bool)
    lower = rows > cols
    use = lower & has_mirror   # (i, j) below the diagonal: decide as for (j, i)
    alone_upper = np.where(use, alone[mirror] if len(flat) else alone, alone)
    a, b = np.where(use, cols, rows), np.where(use, rows, cols)
    b_rows = np.where(alone_upper, a, b)
    b_cols = np.where(alone_upper, colors[b], colors[a])
    return b_rows, b_cols


def recover(compressed, where) -> np.ndarray:
    """The nonzeros (CSR order of the pattern) read from a compressed matrix."""
    return np.asarray(compressed)[where]


def check_column_coloring(pattern, colors) -> bool:
    """Structurally orthogonal: no row has two columns of one color."""
    colors = np.asarray(colors)
    return all(len(set(colors[r].tolist())) == len(r) for r in as_pattern(pattern).rows())


def check_star_coloring(pattern, colors) -> bool:
    """A distance-1 coloring in which no path on four vertices has only two colors."""
    graph = symmetric_graph(pattern)
    colors = np.asarray(colors).tolist()
    for w, nb in enumerate(graph):
        for x in nb:
            if colors[x] == colors[w]:
                return False
            # the path v-w-x-y, two-colored when color v = color x and color y = color w
            if any(colors[v] == colors[x] for v in nb if v != x) and \
                    any(colors[y] == colors[w] for y in graph[x] if y != w):
                return False
    return True
