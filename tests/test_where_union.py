"""Reverse mode's where-masking of a value shared by the branches of many wheres of
different conditions (passes/reverse_masks.py: unions of regions). Unions of more
than 4 regions were left unmasked, so the untaken branches' NaN reached the gradient
(0 * NaN); now they are masked by one flag "any of the conditions holds"."""

import warnings

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian


def _program(k: int) -> str:
    # p = sqrt(x) read only inside the taken-if-x > j branches of k wheres
    return "p = sqrt(x)\n" + " + ".join(f"where(x > {j}, p * {j + 1}, 0)" for j in range(k))


@pytest.mark.parametrize("k", [4, 5, 6, 12])
def test_a_value_shared_by_many_branches_keeps_nan_out_of_the_gradient(k):
    """At x = -1 no where takes its branch: the value is 0 and so is its slope (forward
    mode: 0). Reverse mode gave NaN for k >= 5 (k = 4 passes: the limit)."""
    x = np.array([-1.0, -3.0, 5.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forward = np.asarray(compile_grad(_program(k), mode="forward")(x)[1][0])
        reverse = np.asarray(compile_grad(_program(k))(x)[1][0])
    expected = sum((j + 1) * 0.5 / np.sqrt(5.5) for j in range(k) if j < 5.5)   # (the branches taken)
    assert forward.tolist()[:2] == [0.0, 0.0]
    assert reverse.tolist()[:2] == [0.0, 0.0], reverse
    assert reverse[2] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("k", [4, 5, 9])
def test_the_hessian_of_a_value_shared_by_many_branches(k):
    """The same program times y: its Hessian at x = -1 is 0 (no branch taken; the
    Jacobian by vertex elimination gives 0 there too). k = 5 gave NaN in every entry
    but d2/dy2."""
    program = _program(k).replace(", 0)", ", 0) * y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hessian = np.asarray(compile_hessian(program)(np.array([-1.0]), np.array([1.0]))[-1])
    assert hessian.tolist() == [[[0.0, 0.0], [0.0, 0.0]]], hessian


@pytest.mark.parametrize("k", [3, 7])
def test_else_branches_and_mixed_sides(k):
    """p read in the else branch of some wheres and the then branch of others: at
    x = -1 only the else branches are taken, whose p is NaN (the function's value is
    NaN there), at x = 9.5 only the then branches: the slope is theirs (finite
    differences)."""
    text = "p = sqrt(x)\n" + " + ".join(f"where(x > {j}, p * {j + 1}, 0)" if j % 2 else
                                          f"where(x <= {j}, 0, p * {j + 1})" for j in range(k))
    x = np.array([9.5, 20.0])
    value, (slope,) = compile_grad(text)(x)
    forward = compile_grad(text, mode="forward")(x)[1][0]
    h = 1e-6
    fd = (compile_grad(text)(x + h)[0] - compile_grad(text)(x - h)[0]) / (2 * h)
    np.testing.assert_allclose(slope, fd, rtol=1e-7)
    np.testing.assert_allclose(slope, forward, rtol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        at = np.asarray(compile_grad(text)(np.array([-1.0, 0.0]))[1][0])
    assert at.tolist() == [0.0, 0.0], at


def test_a_where_read_only_as_a_condition_is_no_use_of_its_branches():
    """sqrt(x) is read by the outer where's branch taken where x > 0 and by the inner
    where, which is read only as a condition (no adjoint flows to it): the inner where's
    edges were counted as uses, so sqrt(x)'s region became a union that holds at x < 0,
    left unmasked, and reverse mode gave NaN there (forward mode 1 + y). Found by the
    long fuzz profile."""
    text = "where(where(x > 0, x, sqrt(x)) > 0, sqrt(x), x) + x * y"
    x, y = np.array([-1.0, -0.25, 0.0, 4.0]), np.array([-2.0, 3.0, 0.5, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for backend in ("numpy", "c", "vm"):
            rev = compile_grad(text, backend=backend)(x, y)[1]
            fwd = compile_grad(text, backend=backend, mode="forward")(x, y)[1]
            for r, f in zip(rev, fwd):
                np.testing.assert_allclose(r, f, rtol=1e-15)
    assert np.asarray(rev[0]).tolist()[:2] == [-1.0, 4.0]   # 1 + y where x < 0


def test_a_value_in_both_branches_of_a_where_keeps_the_inner_condition():
    """u = where(x >= 0.5, t, y*y) is read in both branches of the outer where, so its
    region is the union "c or not c"; t = sqrt(x)'s region below it was widened to that
    union's members, the x >= 0.5 condition lost, and the mask on sqrt's edge masked
    nothing: reverse mode gave NaN at x = -1 where the slope is 0. The conditions of
    unions on the way are now multiplied out (reverse_masks._path_dnf). Found by review."""
    text = "t = sqrt(x)\nu = where(x >= 0.5, t, y*y)\nwhere(u < 2, u, t*u)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for backend in ("numpy", "c", "vm"):
            assert compile_grad(text, wrt=["x", "y"], backend=backend)(-1.0, 0.5)[1] == (0.0, 1.0)
        x, y = np.array([-1.0, 0.25, 0.75, 9.0]), np.array([0.5, -2.0, 1.0, 3.0])
        for backend in ("numpy", "c"):
            rev = compile_grad(text, wrt=["x", "y"], backend=backend)(x, y)[1]
            fwd = compile_grad(text, wrt=["x", "y"], backend=backend, mode="forward")(x, y)[1]
            for r, f in zip(rev, fwd):
                np.testing.assert_allclose(r, f, rtol=1e-15)
        vector = "sum(where(where(x >= 0.5, sqrt(x), y*y) < 2, where(x >= 0.5, sqrt(x), y*y), 3*sqrt(x)))"
        g = compile_grad(vector, shapes={"x": (4,), "y": (4,)})(x, y)[1]
        f = compile_grad(vector, shapes={"x": (4,), "y": (4,)}, mode="forward")(x, y)[1]
        for r, q in zip(g, f):
            np.testing.assert_allclose(r, q, rtol=1e-15)
