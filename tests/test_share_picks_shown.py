"""share_picks (stability/softmax_forms.py) shown as a rewrite: explain --stability and
g.rewrites list it with its reason and the lines it replaced (stability/rewrite.py's
_shared_firings), one firing per vector whose picks it shares, none for a single pick."""

from __future__ import annotations

import numpy as np

from exprcompiler import compile_grad, to_trace
from exprcompiler.stability import stabilize
from exprcompiler.stability.show import format_firings

SHAPES = {"x": ("n",)}


def _firings(expr):
    return stabilize(to_trace(expr, shapes=SHAPES), "primal")[1]


def test_two_picks_of_one_vector_fire_share_picks_once():
    firings = _firings("log(softmax(x)[0]) + log(softmax(x)[2])")
    assert [f.rule for f in firings] == ["log_softmax", "log_softmax", "share_picks"]
    share = firings[-1]
    removed = [text for _, text in share.removed]
    added = [text for _, text in share.added]
    assert sum("key=(0,)" in t for t in removed) == 2 and sum("key=(2,)" in t for t in removed) == 2
    assert sum("key=(0, 2)" in t for t in added) == 2
    assert [t.split(" = ")[1] for t in added[2:]] == ["v_2[0]", "v_2[1]"]
    lines = format_firings(firings)
    assert any(line.startswith("  share_picks: ") for line in lines)


def test_each_vector_fires_its_own_and_a_single_pick_none():
    firings = _firings("log(softmax(x)[0]) * log(softmax(x)[1]) + log(softmax(2*x)[1]) + log(softmax(2*x)[3])"
                       " + log(softmax(3*x)[0])")
    shares = [f for f in firings if f.rule == "share_picks"]
    assert len(shares) == 2
    assert [sum("key=(0, 1)" in t for _, t in shares[0].added), sum("key=(1, 3)" in t for _, t in shares[1].added)] \
        == [2, 2]
    assert not [f for f in _firings("log(softmax(x)[0]) + log(softmax(2*x)[1])") if f.rule == "share_picks"]


def test_g_rewrites_lists_it_and_the_numbers_are_the_picks():
    expr = "log(softmax(x)[0]) + log(softmax(x)[2])"
    g = compile_grad(expr, shapes=SHAPES, stable=True)
    assert [r.rule for r in g.rewrites].count("share_picks") == 1
    x = np.array([0.5, -1.0, 2.0, 700.0])
    v, (d,) = g(x=x)
    lsm = x - (x.max() + np.log(np.exp(x - x.max()).sum()))
    assert np.isclose(v, lsm[0] + lsm[2], rtol=1e-14)
    s = np.exp(lsm)
    want = np.eye(4)[0] + np.eye(4)[2] - 2 * s
    assert np.allclose(d, want, rtol=1e-13, atol=1e-300)
