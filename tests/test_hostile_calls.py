"""A compiled function called with what a careless user passes gets the number, or an
error that names the input and says what is wrong with it: an integer past 64 bits is
a number like any other (NumPy keeps it as an object), one past float64's range is
refused as too large (not as "not a number", and without printing its thousands of
digits); values() without an input names it."""

import math

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_jacobian


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("big", [2 ** 70, -(2 ** 70) - 12345, 10 ** 300], ids=["2^70", "-2^70", "1e300"])
def test_an_integer_past_64_bits_is_a_number(backend, big):
    g = compile_grad("x * y + 0.5", backend=backend)
    value, (dx, dy) = g(big, 3.0)
    assert (value, dx, dy) == (float(big) * 3.0 + 0.5, 3.0, float(big))
    assert g(x=big, y=np.array([1.0, 2.0]))[0].tolist() == [float(big) + 0.5, 2 * float(big) + 0.5]


@pytest.mark.parametrize("big", [10 ** 400, -(10 ** 400), 10 ** 5000], ids=["1e400", "-1e400", "1e5000"])
def test_an_integer_past_float64_is_too_large_not_a_non_number(big):
    g = compile_grad("x * y")
    bits = big.bit_length()
    with pytest.raises(TypeError, match=f"^input 'x': an integer of {bits} bits is too large for a float64"):
        g(big, 1.0)
    with pytest.raises(TypeError, match="^input 'y': an integer of"):
        g(np.ones(2), big)


def test_the_result_of_a_large_integer_is_the_float_it_rounds_to():
    g = compile_grad("exp(x - y)")   # the difference of two huge equal numbers, rounded alike
    assert g(2 ** 80 + 1, float(2 ** 80)) == (1.0, (1.0, -1.0))
    assert math.isclose(g(2 ** 70, 2 ** 70 - 2)[0], 1.0)


def test_values_without_an_input_names_it():
    g = compile_grad("x * y + z")
    with pytest.raises(TypeError, match=r"^values\(\): missing value for input 'y' \(inputs are x, y, z\)$"):
        g.values(x=1.0, z=2.0)
    assert g.values(x=1.0, y=2.0, z=3.0) == (5.0,)
    J = compile_jacobian("x * y; x + y")
    assert J.values(x=2.0, y=3.0, unused=7.0) == (6.0, 5.0)


# at() (packed.py, signature.split) refuses what the call refuses: it converted with
# np.asarray(..., dtype=float), where a complex vector lost its imaginary part with only
# a ComplexWarning, and a string among the data was NumPy's ValueError, naming no input.
@pytest.mark.filterwarnings("ignore:Casting complex values")
@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("where", ["x", "data"])
def test_at_refuses_complex_values_as_the_call_does(backend, where):
    g = compile_grad("x * y + sin(z)", wrt=["x", "y"], backend=backend)
    x, z = (np.array([1.0 + 2.0j, 2.0]), 0.5) if where == "x" else (np.array([1.0, 2.0]), np.array(0.5 + 1.0j))
    with pytest.raises(TypeError, match="complex values are not supported"):
        g.at(x, z=z)


def test_at_names_the_input_that_is_not_a_number():
    g = compile_grad("x * y + sin(z)", wrt=["x", "y"])
    with pytest.raises(TypeError, match="input 'z'"):
        g.at(np.array([1.0, 2.0]), z="a")


@pytest.mark.filterwarnings("ignore:Casting complex values")
def test_a_tensor_at_refuses_a_complex_vector():
    g = compile_grad("sum(w * w) + s * sum(X @ w)", wrt=["w"], shapes={"w": (2,), "X": ("n", 2)})
    with pytest.raises(TypeError, match="complex values are not supported"):
        g.at(np.array([1.0 + 1.0j, 2.0]), X=np.ones((3, 2)), s=1.0)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_masked_array_with_masked_values_is_refused(backend):
    """np.asarray keeps the values under the mask: sum(x * x) of [1, --, 3] was 14."""
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    g = compile_grad("x * y", backend=backend)
    h = compile_grad("sum(x * x)", shapes={"x": ("n",)}, backend=backend)
    for call in (lambda: g(masked, 2.0), lambda: g(y=2.0, x=masked), lambda: h(masked), lambda: h(x=masked)):
        for _ in range(2):   # the first call and the planned ones after it
            with pytest.raises(TypeError, match="^input 'x': a masked array with masked values"):
                call()
    unmasked = np.ma.masked_array([1.0, 2.0, 3.0])
    assert h(unmasked)[0] == 14.0 and g(unmasked, 2.0)[0].tolist() == [2.0, 4.0, 6.0]


def test_at_refuses_a_masked_vector():
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    h = compile_grad("sum(x * x)", shapes={"x": ("n",)})
    with pytest.raises(TypeError, match="masked values"):
        h.at(masked)
