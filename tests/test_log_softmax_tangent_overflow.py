"""log_softmax's tangent t - sum(s·t) at tangents near the largest float: along the last
axis the rows summed e·t before dividing by S, which overflows at |t| ~ 1e308 and gave
-inf where the exact tangent is 0 (a constant t lies in J's null space). Both backends
now take sum(s·t) for such a row, as along every other axis; the other rows keep their
bits."""

import numpy as np
import pytest

from conftest import BACKENDS
from exprcompiler import compile_jvp

BIG = 1e308


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_a_constant_huge_tangent_has_the_exact_tangent_0(backend, axis):
    text = "log_softmax(z)" if axis is None else f"log_softmax(z, axis={axis})"
    z = np.array([[0.0, 0.0, 1.0], [2.0, -1.0, 0.5], [0.0, 0.0, 0.0]])
    f = compile_jvp(text, shapes={"z": (3, 3)}, backend=backend)
    for t in (np.full((3, 3), BIG), np.full((3, 3), -BIG)):
        _, got = f(z, t)
        assert np.array_equal(got, np.zeros((3, 3))), got


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_row_that_overflows_leaves_the_other_rows_bits_alone(backend):
    f = compile_jvp("log_softmax(z)", shapes={"z": (2, 4)}, backend=backend)
    z = np.array([[2.0, 1.9, 2.0, 0.1], [0.3, -1.2, 2.0, 0.1]])   # (row 0: sum(e·t) ~ 2.9e308)
    t = np.array([[BIG, 0.9 * BIG, BIG, BIG], [0.25, -3.0, 1.5, 7.0]])
    _, got = f(z, t)
    _, alone = f(z, np.array([t[1], t[1]]))
    assert np.array_equal(got[1], alone[1])
    s = np.exp(z[0] - z[0].max()) / np.exp(z[0] - z[0].max()).sum()
    exact = t[0] - np.sum(s * t[0])   # (s·t summed finitely: each term at most 1e308·s)
    assert np.all(np.isfinite(got[0]))
    np.testing.assert_allclose(got[0], exact, rtol=1e-13, atol=1e-13 * BIG)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_backends_agree_where_a_tangent_holds_an_inf_or_nan(backend):
    f = compile_jvp("log_softmax(z)", shapes={"z": (3,)}, backend=backend)
    for t in ([np.inf, 1.0, 2.0], [np.nan, 1.0, 2.0], [np.inf, -np.inf, 0.0]):
        _, got = f(np.array([0.0, -800.0, 1.0]), np.array(t))
        _, ref = compile_jvp("log_softmax(z)", shapes={"z": (3,)})(np.array([0.0, -800.0, 1.0]), np.array(t))
        assert np.array_equal(np.isnan(got), np.isnan(ref)) and np.array_equal(got[~np.isnan(got)], ref[~np.isnan(ref)])
