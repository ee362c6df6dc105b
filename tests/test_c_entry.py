"""The C one-point entry (backends/c_entry.py): `g(*floats)` and `g.at(x)` of a C
kernel through the small CPython extension, checked bit for bit against the cffi
path (the extension refused, as where there are no Python headers) and against the
NumPy backend, at NaN, inf, signed zeros and ordinary points; every buffer the
extension would read is checked first, and whatever it does not take goes to the
general path, with its results and its errors."""

from __future__ import annotations

import array
import sys

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian
from exprcompiler.backends import c_entry

from test_bench import has_compiler

pytestmark = pytest.mark.skipif(not has_compiler(), reason="no C compiler")

# exactly rounded operations only, so C and NumPy agree to the bit
EXPR = "x / y + sqrt(x) * y - x * x"
POINTS = [(1.5, 0.5), (0.0, 0.0), (-0.0, 2.0), (-1.0, 3.0), (np.inf, 1.0), (1.0, np.inf),
          (np.nan, 1.0), (1e308, 1e-308), (2.0, -0.0)]


@pytest.fixture(scope="module")
def native():
    module = c_entry.load()
    if module is None:
        pytest.skip(f"no one-point extension here: {c_entry.why_not()}")
    return module


def _bits(result) -> list:
    """Every number of a result, as its 64 bits (NaN's sign and -0.0 included)."""
    flat = []
    for item in (result if isinstance(result, tuple) else (result,)):
        if isinstance(item, tuple):
            flat += _bits(item)
        else:
            flat += np.asarray(item, dtype=np.float64).ravel().view(np.int64).tolist()
    return flat


def _calls(g, point):
    """(g(*floats), g.at(x)) after the quick paths are in place."""
    for _ in range(2):
        g(*point)
    g.at(np.array(point))
    return g(*point), g.at(np.array(point))


def test_native_calls_match_cffi_and_numpy_bit_for_bit(native, monkeypatch):
    fast = compile_grad(EXPR, backend="c")
    _calls(fast, POINTS[0])  # its quick paths made now, with the extension
    monkeypatch.setattr(c_entry, "load", lambda: None)  # as without Python headers
    slow = compile_grad(EXPR, backend="c")
    ref = compile_grad(EXPR)
    for point in POINTS:
        got_call, got_at = _calls(fast, point)
        want_call, want_at = _calls(slow, point)
        assert _bits(got_call) == _bits(want_call), point
        assert _bits(got_at) == _bits(want_at), point
        np.testing.assert_array_equal(np.array(_bits(got_call)).view(np.float64),
                                      np.array(_bits(ref(*point))).view(np.float64), err_msg=str(point))
        assert type(got_call[0]) is float and type(got_call[1]) is tuple and len(got_call[1]) == 2
        assert type(got_at[0]) is float and got_at[1].shape == (2,) and got_at[1].dtype == np.float64
    assert type(fast.at).__name__ == "builtin_function_or_method"
    assert type(fast._direct).__name__ == "builtin_function_or_method"
    assert type(slow.at).__name__ == "function" and slow._direct is False  # the cffi path


def test_native_at_takes_only_contiguous_doubles_of_the_right_length(native):
    g = compile_grad(EXPR, backend="c")
    x = np.array([1.5, 0.5])
    g.at(x)
    want = g.at(x)
    readonly = x.copy()
    readonly.flags.writeable = False
    wide = np.array([1.5, 9.0, 0.5, 9.0])
    taken = [readonly, array.array("d", [1.5, 0.5]), memoryview(x), x.astype(">f8"), wide[::2],
             x.astype(np.float32), [1.5, 0.5], (1.5, 0.5)]
    for other in taken:  # the native path or the general one: the same numbers either way
        value, grad = g.at(other)
        assert value == want[0] and np.array_equal(grad, want[1]), other
    assert not np.shares_memory(g.at(x)[1], g.at(x)[1])
    for bad, error, message in [(np.ones(3), ValueError, r"must hold the 2 variables x, y; got shape \(3,\)"),
                                (np.array([[1.5, 0.5]]), ValueError, r"got shape \(1, 2\)"),
                                (b"0123456789abcdef", TypeError, "must be an array of numbers"),
                                (np.ones(1), ValueError, "must hold the 2 variables"),
                                ("ab", TypeError, "must be an array of numbers")]:
        with pytest.raises(error, match=message):
            g.at(bad)
    with pytest.raises(TypeError, match="takes no second vector"):
        g.at(x, x)
    with pytest.raises(TypeError, match="unexpected a"):
        g.at(x, a=1.0)
    assert g.at(x, None)[0] == want[0]


def test_native_call_takes_numbers_only(native):
    g = compile_grad(EXPR, backend="c")
    for _ in range(2):
        g(1.5, 0.5)
    direct = g._direct
    want = direct(1.5, 0.5)
    assert direct(np.float64(1.5), 0.5) == want
    assert direct(3, 1) == g(3.0, 1.0) == g(3, 1)
    for args in [(1.5,), (1.5, 0.5, 0.5), (True, 0.5), ("1.5", 0.5), (2**60, 0.5), (None, 0.5),
                 (np.float32(1.5), 0.5)]:
        assert direct(*args) is NotImplemented, args
    assert g(True, 0.5) == g(1.0, 0.5)  # bools and the rest: the general path converts
    assert g(2**60, 1.0) == g(float(2**60), 1.0)


def test_many_variables_and_a_hessian_use_the_heap(native):
    """More than 64 numbers in and out: buffers on the heap, not the C stack."""
    n = 70
    expr = " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(1, n))
    g = compile_grad(expr, backend="c")
    x = np.random.default_rng(0).uniform(-1, 1, n)
    want = np.zeros(n)
    want[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    want[1:] += 200 * (x[1:] - x[:-1] ** 2)
    for _ in range(3):
        value, grad = g.at(x)
        np.testing.assert_allclose(grad, want, rtol=1e-12, atol=1e-12)
        v2, g2 = g(*x.tolist())
        assert v2 == value and g2 == tuple(grad.tolist())
    H = compile_hessian("x**2 * y + sin(z) * x * w", backend="c")
    point = np.array([1.0, 2.0, 0.5, -1.0])
    first = H.at(point)
    value, grad, hess = H.at(point)
    assert type(H.at).__name__ == "builtin_function_or_method"
    assert value == first[0] and np.array_equal(grad, first[1]) and np.array_equal(hess, first[2])
    assert hess.shape == (4, 4) and np.array_equal(hess, hess.T)


def test_the_extension_checks_what_it_is_given(native):
    g = compile_grad("x * y", backend="c")
    fn = g._run_packed.c_entry[0]
    address = g._run_packed.c_address
    with pytest.raises(ValueError, match="output index out of range"):
        native.call_entry(address, 2, 3, fn, (-4, 0, 1, 3))
    with pytest.raises(ValueError, match="fewer items"):
        native.call_entry(address, 2, 3, fn, (-3, 0))
    with pytest.raises(ValueError, match="more items"):
        native.call_entry(address, 2, 3, fn, (0, 1))
    with pytest.raises(ValueError, match="nested too deep"):
        native.call_entry(address, 2, 3, fn, (-2,) * 9 + (0,))
    with pytest.raises(ValueError, match="bad sizes"):
        native.call_entry(address, -1, 3, fn, (0,))
    with pytest.raises(ValueError, match="null function address"):
        native.call_entry(0, 2, 3, fn, (0,))
    for skip, assemble in [(1, print), (0, None), (2, None)]:
        with pytest.raises(ValueError, match="skip 1 takes assemble None"):
            native.at_entry(address, 2, 3, fn, print, np.empty, skip, assemble)
    spec = c_entry.spec_code((0, (1, 2)))
    assert spec == (-3, 0, -3, 1, 2)
    assert native.call_entry(address, 2, 3, fn, spec)(2.0, 3.0) == g(2.0, 3.0) == (6.0, (3.0, 2.0))


def test_the_cache_key_names_this_python(monkeypatch, native):
    include = "/usr/include/python-test"
    key = c_entry.cache_key(include)
    assert len(key) == 64 and int(key, 16) >= 0  # named as a kernel, for `exprc cache clear`
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    assert c_entry.cache_key(include) != key
    monkeypatch.undo()
    monkeypatch.setattr(c_entry.sysconfig, "get_config_var", lambda name: "cpython-399-other-abi")
    assert c_entry.cache_key(include) != key
