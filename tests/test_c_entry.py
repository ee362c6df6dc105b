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
    Block = c_entry.Block
    for result, blocks, empty in [(print, (), None), ((0,), ((0, (1,)),), None), ((0,), [(0, (1,))], np.empty),
                                  (print, ((0, (3,)),), np.empty)]:
        with pytest.raises((ValueError, TypeError), match="the result is a spec|must be tuple"):
            native.call_entry(address, 2, 3, fn, result, None, empty, blocks)
    for block in [(0, (4,)), (2, (2,)), (-1, (1,)), (0, (2, -1)), (0, [3]), (0, (3.0,)), (True, (1,)), (0,),
                  (0, (2**62, 2**62, 0)), (0, (2**62, 2**62))]:
        with pytest.raises(ValueError, match="block 0 is not"):
            native.call_entry(address, 2, 3, fn, (3,), None, np.empty, (block,))
    with pytest.raises(ValueError, match="output index out of range"):
        native.call_entry(address, 2, 3, fn, (4,), None, np.empty, ((0, (3,)),))
    for names, message in [(("x",), "tuple of the 2"), (["x", "y"], "tuple of the 2"), (("x", 1), "a str"),
                            (("x", "x"), "distinct")]:
        with pytest.raises(ValueError, match=message):
            native.call_entry(address, 2, 3, fn, (0,), names)
    for order in [(0,), (0, 2), (0, -1), (0, 1.0), [0, 1]]:
        with pytest.raises(ValueError, match="order"):
            native.at_entry(address, 2, 3, fn, print, np.empty, (0,), (), order)
    spec = c_entry.spec_code((0, (1, 2)))
    assert spec == ((-3, 0, -3, 1, 2), ())
    assert native.call_entry(address, 2, 3, fn, spec[0])(2.0, 3.0) == g(2.0, 3.0) == (6.0, (3.0, 2.0))
    # blocks: new arrays of runs of the outputs, each checked before it is written to
    code, blocks = c_entry.spec_code((Block(1, (2,)), 0, Block(0, (3, 1)), Block(2, (0,))), 3)
    assert code == (-5, 3, 0, 4, 5) and blocks == ((1, (2,)), (0, (3, 1)), (2, (0,)))
    both, value, column, nothing = native.call_entry(address, 2, 3, fn, code, ("x", "y"), np.empty, blocks)(
        2.0, y=3.0)
    assert both.tolist() == [3.0, 2.0] and value == 6.0 and column.tolist() == [[6.0], [3.0], [2.0]]
    assert nothing.shape == (0,) and both.dtype == np.float64
    at = native.at_entry(address, 2, 3, fn, print, np.empty, code, blocks, (1, 0))  # x is (y, x)
    assert at(np.array([3.0, 2.0]))[2].tolist() == [[6.0], [3.0], [2.0]]
    for empty in [lambda shape: np.empty(shape, np.float32), lambda shape: np.empty(shape)[::-1],
                  lambda shape: np.empty(4), lambda shape: bytes(8 * int(np.prod(shape))), lambda shape: None]:
        with pytest.raises((TypeError, ValueError, BufferError)):  # another dtype, strided, short, read-only
            native.call_entry(address, 2, 3, fn, code, None, empty, blocks)(2.0, 3.0)


def test_native_call_takes_names(native):
    """By name (all of them, or after some by position): the inputs' names handed to
    the entry; whatever it does not take, the general path answers with its errors."""
    g = compile_grad(EXPR, backend="c")
    ref = compile_grad(EXPR)
    for _ in range(2):
        g(x=1.5, y=0.5)
    direct = g._direct
    want = direct(1.5, 0.5)
    assert _bits(direct(x=1.5, y=0.5)) == _bits(direct(1.5, y=0.5)) == _bits(want) == _bits(ref(x=1.5, y=0.5))
    assert _bits(direct(**{"y": 0.5, "x": np.float64(1.5)})) == _bits(want)
    for args, kwargs in [((), {"x": 1.5}), ((), {"x": 1.5, "y": 0.5, "z": 1.0}), ((1.5,), {"x": 0.5}),
                         ((), {"x": 1.5, "z": 0.5}), ((), {"x": "1.5", "y": 0.5}), ((1.5, 0.5), {"y": 0.5}),
                         ((), {"x": True, "y": 0.5})]:
        assert direct(*args, **kwargs) is NotImplemented, (args, kwargs)
    with pytest.raises(TypeError, match="given twice"):
        g(1.5, x=0.5)
    with pytest.raises(TypeError, match="unexpected argument 'z'"):
        g(x=1.5, z=0.5)
    with pytest.raises(TypeError, match="missing value for input 'y'"):
        g(x=1.5)
    assert g(x=True, y=0.5) == g(1.0, 0.5)
    # names that are no C identifier (a SymPy symbol's), and the generated ones
    import sympy
    a, b = sympy.symbols("a.1 if")
    h = compile_grad(a * b + sympy.sin(a), backend="c")
    for _ in range(2):
        h(**{"a.1": 2.0, "if": 3.0})
    assert h.inputs == ("a.1", "if") and h._direct_checks
    assert h(**{"a.1": 2.0, "if": 3.0}) == h(2.0, 3.0) == (6.0 + np.sin(2.0), (3.0 + np.cos(2.0), 2.0))


def test_the_cache_key_names_this_python(monkeypatch, native):
    include = "/usr/include/python-test"
    key = c_entry.cache_key(include)
    assert len(key) == 64 and int(key, 16) >= 0  # named as a kernel, for `exprc cache clear`
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    assert c_entry.cache_key(include) != key
    monkeypatch.undo()
    monkeypatch.setattr(c_entry.sysconfig, "get_config_var", lambda name: "cpython-399-other-abi")
    assert c_entry.cache_key(include) != key
    monkeypatch.undo()
    for name in ("c_entry.c", "c_batch.c"):  # every source file of the one translation unit
        monkeypatch.setitem(c_entry.PARTS, name, c_entry.PARTS[name] + "\n")
        assert c_entry.cache_key(include) != key
        monkeypatch.undo()
    assert c_entry.cache_key(include) == key
