"""A where()'s tensor condition carried through the ops that mix lanes (matmul, outer,
softmax, log_softmax) and logsumexp over an axis (passes/reverse_masks_moves.py).

sum(where(c > 0, sqrt(X) @ y, 0)) at X with a 0 in a row whose output lane is not taken:
sqrt' = inf there, and the adjoint matmul passed back to that row is 0: 0·inf = NaN in the
gradient, where it is 0 (forward mode gives 0). A lane of matmul's x is read by a row of
the output, of y by a column, of softmax's argument by the lanes along its axis: the
condition moves as "some reader holds" (a 0/1 mask summed over the readers), and the
region's exits are masked where none does; an edge that leaves the region through such
an op has its contribution masked so too (A's slope in sum(where(c > 0, A @ sqrt(b), 0))
is the zero adjoint times sqrt(b), NaN at b < 0). logsumexp over an axis reads each lane
once (as a sum does).

Held to forward mode lane by lane (raw tangents, one unit seed per element), NumPy and C,
on hand-picked cases and on random chains; the analysis without these ops in MOVES was NaN
in each hand-picked case where forward mode is finite, and wherever it was finite the new
gradient is the same bit for bit.
"""

from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler import to_trace
from exprcompiler.api import BACKENDS
from exprcompiler.passes import reverse_masks_moves
import test_where_moves

TENSOR = sorted(b for b in BACKENDS if b != "vm")
NEW = ("logsumexp", "matmul", "outer", "softmax", "log_softmax")

X = np.array([[0.0, 1.0], [4.0, 9.0]])
X0 = np.array([[1.0, 0.0], [4.0, 0.0]])     # column 1 singular
y = np.array([1.0, 2.0])
c01 = np.array([0.0, 1.0])                   # row/lane 0 not taken
R0 = np.array([[0.0, 0.0], [1.0, 1.0]])      # row 0 not taken
K1 = np.array([[0.0, 1.0], [0.0, 1.0]])      # column 0 not taken

CASES = [
    ("sum(where(c > 0, sqrt(X) @ y, 0))", {"X": X, "y": y, "c": c01}),
    ("sum(where(c > 0, y @ sqrt(X), 0))", {"X": X0, "y": y, "c": c01[::-1].copy()}),
    ("sum(where(C > 0, sqrt(X) @ Y, 0))", {"X": X, "Y": np.array([[1.0, 2.0], [3.0, 0.5]]), "C": R0}),
    ("sum(where(C > 0, Y @ sqrt(X), 0))", {"X": np.array([[0.0, 1.0], [0.0, 9.0]]), "Y": np.eye(2) + 1, "C": K1}),
    ("sum(where(C > 0, outer(sqrt(x), y), 0))", {"x": np.array([0.0, 1.0]), "y": y, "C": R0}),
    ("sum(where(C > 0, outer(y, sqrt(x)), 0))", {"x": np.array([0.0, 1.0]), "y": y, "C": K1}),
    ("sum(where(C > 0, exp(softmax(sqrt(X), axis=1)), 0))", {"X": X, "C": R0}),
    ("sum(where(C > 0, log_softmax(sqrt(X), axis=0) ** 2, 0))", {"X": np.array([[0.0, 1.0], [0.0, 9.0]]), "C": K1}),
    ("sum(where(c > 0, logsumexp(sqrt(X), axis=1), 0))", {"X": X, "c": c01}),
    ("sum(where(c > 0, sqrt(X) @ y, 0)) + sum(sqrt(X + 1))", {"X": X, "y": y, "c": c01}),
    # (A's slope is the adjoint, 0 in a row not taken, times sqrt(b), NaN at b < 0: the
    # contribution itself is masked, as an elementwise op's is)
    ("sum(where(c > 0, A @ sqrt(b), 0))", {"A": np.ones((2, 3)), "b": np.array([1.0, -1.0, 4.0]),
                                           "c": np.array([0.0, -1.0])}),
    ("sum(where(C > 0, outer(sqrt(b), y), 0))", {"b": np.array([-1.0, 4.0]), "y": y, "C": np.zeros((2, 2))}),
]
# A lane of one argument read by a lane taken and by one not taken whose other factor is
# NaN (y's slope in outer(sqrt(b), y) at b < 0 in a row not taken: the zero adjoint of that
# row times NaN): the other argument is masked where none of its readers is taken, before
# the op's adjoint reads it. (Each was NaN with the masks of the mixing ops' own argument only.)
OTHER = [
    ("sum(where(C > 0, outer(sqrt(b), y), 0))", {"b": np.array([-1.0, 4.0]), "y": y, "C": R0}),
    ("sum(where(C > 0, outer(y, sqrt(b)), 0))", {"b": np.array([-1.0, 4.0]), "y": y, "C": K1}),
    ("sum(where(C > 0, sqrt(X) @ Y, 0))", {"X": np.array([[-1.0, 4.0], [1.0, 9.0]]), "Y": np.eye(2) + 1, "C": R0}),
    ("sum(where(C > 0, Y @ sqrt(X), 0))", {"X": np.array([[-1.0, 4.0], [1.0, 9.0]]), "Y": np.eye(2) + 1, "C": K1}),
    ("sum(where(c > 0, sqrt(X) @ y, 0))", {"X": np.array([[-1.0, 4.0], [1.0, 9.0]]), "y": y, "c": c01}),
    ("sum(where(c > 0, y @ sqrt(X), 0))", {"X": np.array([[-1.0, 4.0], [1.0, 9.0]]), "y": y, "c": c01}),
    ("sum(where(C > 0, log(outer(sqrt(b), y)) + outer(b, y), 0))", {"b": np.array([-1.0, 4.0]), "y": y, "C": R0}),
]
CASES += OTHER
IDS = [e for e, _ in CASES]
CASE_BACKENDS = [pytest.param(c, b, id=f"{b}-{c[0]}") for c in CASES for b in TENSOR]


@contextlib.contextmanager
def _mixing_off():
    """The analysis as it was: a region stops at an op that mixes lanes."""
    kept = {k: v for k, v in reverse_masks_moves.MOVES.items() if k not in NEW}
    with mock.patch.dict(reverse_masks_moves.MOVES, kept, clear=True):
        yield


@pytest.mark.parametrize("case, backend", CASE_BACKENDS)
def test_reverse_is_forward(case, backend):
    test_where_moves.reverse_is_forward(case, backend, _mixing_off)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bits_where_the_old_gradient_was_finite(case):
    test_where_moves.bits_where_the_old_gradient_was_finite(case, _mixing_off)


# -- random chains: a value with singular lanes through moves and mixing ops, then a where --
def _steps(shape: tuple) -> list:
    """(template, new shape) of the steps a value of `shape` may take (W (k, 2) and w (2,)
    are positive inputs)."""
    got = [("exp({})", shape), ("({} * {})", shape)]
    if len(shape) == 2:
        k = shape[1]
        got += [(f"({{}} @ W{k})", (shape[0], 2)), (f"(w{shape[0]} @ {{}})", (k,)), ("transpose({})", shape[::-1])]
        got += [(f"{f}({{}}, axis={a})", shape) for f in ("softmax", "log_softmax") for a in (0, 1)]
        got += [(f"logsumexp({{}}, axis={a})", (shape[1 - a],)) for a in (0, 1)]
        got.append((f"({{}} @ w{k})", (shape[0],)))
    else:
        got += [("outer({}, w2)", (shape[0], 2)), ("softmax({})", shape), ("log_softmax({})", shape)]
    return [(t, s) for t, s in got if s[0] <= 3 and (len(s) == 1 or s[1] <= 3)]


@st.composite
def chains(draw):
    """sum(where(C > 0, V, 1)) with V = sqrt(X) after 1-3 steps, X's lanes in {-1, 0, 1,
    4, 9} (sqrt' infinite at 0, sqrt NaN at -1) and C's ±1 at random."""
    value, shape = "sqrt(X)", (2, 3)
    for _ in range(draw(st.integers(1, 3))):
        template, shape = draw(st.sampled_from(_steps(shape)))
        value = template.replace("{}", value)
    lanes = draw(st.lists(st.sampled_from([-1.0, 0.0, 1.0, 4.0, 9.0]), min_size=6, max_size=6))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    inputs = {"X": np.array(lanes).reshape(2, 3), "C": np.array(signs).reshape(shape)}
    for name, s in (("W2", (2, 2)), ("W3", (3, 2)), ("w2", (2,)), ("w3", (3,))):
        if name in value:
            inputs[name] = np.linspace(0.5, 1.5, int(np.prod(s))).reshape(s)
    return f"sum(where(C > 0, {value}, 1))", inputs


def _random_case(case, backend):
    """Every input's gradient against forward mode (W's too: a lane of W read by a taken
    lane and by one not taken whose row of V is NaN), and the same bits where the old one
    was finite."""
    test_where_moves._random_case(case, backend, _mixing_off)


@settings(max_examples=40, deadline=None)
@given(chains())
def test_random_chains_numpy(case):
    _random_case(case, "numpy")


@pytest.mark.slow
@pytest.mark.skipif("c" not in TENSOR, reason="no C compiler")
@settings(max_examples=15, deadline=None)
@given(chains())
def test_random_chains_c(case):
    _random_case(case, "c")


@pytest.mark.parametrize("case", OTHER, ids=[e for e, _ in OTHER])
def test_hvp_through_the_other_argument_is_the_gradients_slope(case):
    """Forward over this reverse sweep (the other argument's mask is differentiated too):
    no NaN, and central differences of the gradient along a direction that keeps the
    condition (C and c fixed)."""
    expr, inputs = case
    trace = to_trace(expr, shapes=test_where_moves._shapes(inputs))
    rng = np.random.default_rng(0)
    d = {k: np.zeros_like(v) if k in ("C", "c") else rng.standard_normal(np.shape(v)) for k, v in inputs.items()}
    hv = test_where_moves._hvp(trace, inputs)(d)

    def grad(step):
        return test_where_moves._traced(trace, {k: v + step * d[k] for k, v in inputs.items()})
    eps = 1e-6
    for h, p, m in zip(hv, grad(eps), grad(-eps)):
        assert np.isfinite(h).all(), (expr, h)
        assert np.allclose(h, (p - m) / (2 * eps), rtol=1e-6, atol=1e-6), (expr, h, (p - m) / (2 * eps))
