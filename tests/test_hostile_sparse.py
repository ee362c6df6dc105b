"""Hostile sparsity patterns for the colorings: an arrowhead (a dense row and a dense
column on a diagonal, as a global parameter coupled to every variable makes) is where
walking the graph two or three steps from each vertex, or building the column
intersection graph, is quadratic in n."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler import coloring as C
from conftest import TooSlow, examples, within


def arrowhead(n: int):
    """Row 0 and column 0 full but for their common entry (so neither is all of its
    line, which color_jacobian would take as one color per column at once)."""
    hub = np.zeros(n - 1, dtype=np.int64)
    rest = np.arange(1, n)
    rows = np.concatenate([hub, rest, rest])
    cols = np.concatenate([rest, hub, rest])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_star_coloring_of_an_arrowhead_is_not_quadratic():
    # the walks from each of the n - 1 leaves pass the hub's n neighbours: 4 * 10^8
    # steps here (minutes); kept per vertex, a fraction of a second
    pattern = arrowhead(20_000)
    colors = None
    try:
        with within(15):
            colors = C.star_coloring(pattern)
    except TooSlow:
        pass  # (failed below: pytest cannot show a traceback that the signal cut into)
    assert colors is not None, "star coloring of an arrowhead of 20,000 took more than 15 s of CPU"
    assert C.n_colors(colors) == 2
    assert C.check_star_coloring(pattern, colors)


def test_a_jacobian_arrowhead_is_colored_without_its_complete_graph(monkeypatch):
    # both modes' column graphs are complete (n² entries: 10 GB at n = 3 * 10^4); a
    # dense line means at least n - 1 colors anyway, so one per column is taken
    def refuse(pattern):
        raise AssertionError("the column intersection graph was built")
    monkeypatch.setattr(C, "column_graph", refuse)
    pattern = arrowhead(30_000)
    mode, colors = C.color_jacobian(pattern)
    assert mode == "forward" and C.n_colors(colors) == 30_000  # the greedy's n - 1, plus one
    assert C.check_column_coloring(pattern, colors)


def test_a_pattern_with_a_long_row_under_the_bound_is_still_colored():
    # a row of half the columns, the graph cheap: the greedy colorings run as before
    n = 100
    pattern = sp.lil_matrix(sp.identity(n) + sp.eye(n, k=1))
    pattern[0, : n // 2] = 1
    pattern = pattern.tocsr()
    colors = C.color_columns(pattern)
    assert C.n_colors(colors) == n // 2 and C.check_column_coloring(pattern, colors)


@st.composite
def graphs(draw):
    n = draw(st.integers(1, 30))
    edges = draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=120))
    if draw(st.booleans()):  # a hub
        hub = draw(st.integers(0, n - 1))
        edges |= {(hub, j) for j in range(n)}
    graph = [set() for _ in range(n)]
    for i, j in edges:
        if i != j:
            graph[i].add(j)
            graph[j].add(i)
    return [sorted(nb) for nb in graph]


@settings(max_examples=examples(300), deadline=None)
@given(graphs(), st.sampled_from(C.ORDERINGS), st.sampled_from([None, 2, 3, 4]))
def test_the_kept_colors_are_the_walks_colors(graph, ordering, limit):
    order = C.order_vertices(graph, ordering)
    walks = C._star_walks(graph, order, limit)
    kept = C._star_kept(graph, order, limit)
    assert (walks is None) == (kept is None)
    if walks is not None:
        np.testing.assert_array_equal(walks, kept)
        n = len(graph)
        rows = [i for i in range(n) for _ in graph[i]] + list(range(n))
        cols = [j for i in range(n) for j in graph[i]] + list(range(n))
        assert C.check_star_coloring(sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)), kept)


@pytest.mark.parametrize("width", [1, 10])
def test_a_band_takes_the_way_that_suits_it(width, monkeypatch):
    # narrow: the walks; wide (degree 20): the kept colors; the same colors either way
    n = 200
    band = sp.diags([np.ones(n - abs(k)) for k in range(-width, width + 1)], list(range(-width, width + 1)),
                    format="csr")
    taken = []
    for name in ("_star_walks", "_star_kept"):
        real = getattr(C, name)
        monkeypatch.setattr(C, name, lambda *a, real=real, name=name: taken.append(name) or real(*a))
    colors = C.star_coloring(band)
    assert set(taken) == {"_star_walks" if width == 1 else "_star_kept"}
    assert C.check_star_coloring(band, colors)
