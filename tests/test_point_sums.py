"""g.sum(...) and g.mean(...) on NumPy inputs (exprcompiler/point_sums.py): each output
summed or averaged over the points, nested as the call's result, block by block along
the batch's first axis, equal to NumPy's sums of the call's arrays; tensor programs and
bad arguments refused with what to do. (Dask inputs: tests/test_dask.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian, compile_jacobian, point_sums, ShapeError

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"


def _leaves(result):
    return [result] if not isinstance(result, tuple) else [x for r in result for x in _leaves(r)]


def _nesting(result):
    return None if not isinstance(result, tuple) else tuple(_nesting(r) for r in result)


@pytest.mark.parametrize("how", ["sum", "mean"])
@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_sums_and_means_equal_numpys_over_several_blocks(how, backend, monkeypatch):
    # blocks of 96 output numbers: many, and a shorter last one (axis 0 cut, axis 1 whole)
    monkeypatch.setattr(point_sums, "BLOCK_NUMBERS", 96)
    rng = np.random.default_rng(5)
    a, b = rng.uniform(1, 2, size=(101, 1)), rng.uniform(0.5, 1, size=(1, 3))  # a broadcast batch
    for f in (compile_grad(GRIEWANK, backend=backend), compile_hessian(GRIEWANK, backend=backend),
              compile_jacobian("x1*x2; sin(x1); x1+x2", backend=backend)):
        got, full = getattr(f, how)(a, b), f(a, b)
        assert _nesting(got) == _nesting(full)
        for s, w in zip(_leaves(got), _leaves(full)):
            want = getattr(w, how)(axis=(0, 1))
            assert np.shape(s) == want.shape  # a Jacobian or Hessian keeps its trailing axes
            np.testing.assert_allclose(s, want, rtol=1e-12, atol=0)
    one = getattr(compile_grad(GRIEWANK), how)(x2=0.7, x1=1.5)  # one point, by name: the call itself
    assert one == compile_grad(GRIEWANK)(1.5, 0.7)


def test_float32_functions_sum_to_their_dtype():
    f = compile_grad(GRIEWANK, dtype="float32")
    a, b = np.linspace(1, 2, 5000, dtype=np.float32), np.float32(0.75)
    got = f.sum(a, b)
    assert all(s.dtype == np.float32 for s in _leaves(got))
    np.testing.assert_allclose(_leaves(got), [w.astype(np.float64).sum() for w in _leaves(f(a, b))], rtol=1e-6)


def test_tensor_programs_and_bad_arguments_are_refused_with_the_fix():
    loss = compile_grad("mean((X@w - y)**2)", wrt=["w"], shapes={"X": ("n", 5), "y": ("n",), "w": (5,)})
    with pytest.raises(TypeError, match=r"mean\(\) sums an elementwise function.*tensor program: it has "
                                        r"shapes=.*Write the mean over rows in the expression"):
        loss.mean(np.ones((3, 5)), np.ones(5), np.ones(3))
    later = compile_grad("mean((a*t - y)**2)", wrt=["a"])
    with pytest.raises(TypeError, match=r"tensor program: its reductions read arrays whose shapes come "
                                        r"from the first call"):
        later.sum(0.5, np.ones(3), np.ones(3))
    g = compile_grad(GRIEWANK)
    with pytest.raises(ShapeError, match=r"sum\(\): input shapes do not broadcast: x1 \(3,\), x2 \(4,\)"):
        g.sum(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match=r"missing value for 'x2'"):
        g.sum(np.ones(3))
    with pytest.raises(TypeError, match=r"input 'x2': expected a real number"):
        g.mean(np.ones(3), "a")
    with pytest.raises(ValueError, match=r"mean\(\): no points to average"):
        g.mean(np.ones(0), 0.5)
    assert g.sum(np.ones(0), 0.5) == (0.0, (0.0, 0.0))


def test_a_thread_keeps_one_block_of_outputs_per_layout():
    layout = [(), (2,)]
    big = point_sums.kept_outputs((10,), layout, np.float64)
    again = point_sums.kept_outputs((4,), layout, np.float64)  # a shorter last block: the same memory
    assert [o.shape for o in again] == [(4,), (4, 2)]
    assert all(np.shares_memory(x, y) for x, y in zip(big, again))
    point_sums.kept_outputs((10,), [()], np.float64)
    point_sums.kept_outputs((10,), [()], np.float32)  # KEEP = 2: the first layout's buffers go
    fresh = point_sums.kept_outputs((10,), layout, np.float64)
    assert not np.shares_memory(fresh[0], big[0])


def test_sparse_jacobians_sum_their_data_arrays():
    pytest.importorskip("scipy")
    jac = compile_jacobian("x*y; sin(x); x+y", sparse=True)  # no out=: summed block by block all the same
    x, y = np.linspace(1, 2, 1000), np.linspace(0.5, 1, 1000)
    values, data = jac(x, y)
    got = jac.sum(x, y)
    np.testing.assert_allclose(got[0], values.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got[1], data.sum(axis=0), rtol=1e-12)  # the data of the summed matrix
    one = jac.sum(1.5, 0.75)  # one point: its data, not a csr_matrix
    np.testing.assert_allclose(one[1], jac(np.array([1.5]), np.array([0.75]))[1][0], rtol=1e-15)
