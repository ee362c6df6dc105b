"""The data-stack guard (exprcompiler/stack_room.py) on the compile_* entry points:
what it must not change (signatures, docstrings, results, errors) and where it is
a no-op. Its speed is benchmarks/bench_call_depth.py's, not a test's."""

import inspect
import pickle
import sys
import traceback

import numpy as np
import pytest

from exprcompiler import api, stack_room
from exprcompiler.stack_room import SLOTS, fresh_chunk, needed

ENTRIES = [api.compile_grad, api.compile_expr, api.compile_jvp, api.compile_vjp]
ACTIVE = needed()


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda f: f.__name__)
def test_entry_points_are_guarded_and_keep_their_face(entry):
    if ACTIVE:  # the guard's frame: larger than a 16 KB chunk
        assert entry.__code__.co_stacksize >= SLOTS > 16 * 1024 // 8
    inner = entry.__wrapped__
    assert entry.__name__ == inner.__name__ and entry.__name__.startswith("compile_")
    assert entry.__qualname__ == inner.__qualname__
    assert entry.__module__ == "exprcompiler.api"
    assert entry.__doc__ and entry.__doc__ == inner.__doc__
    params = list(inspect.signature(entry).parameters)
    assert params[0] == "expr" and "backend" in params and "dtype" in params
    assert inspect.signature(entry).parameters["backend"].default == "numpy"


def test_guarded_and_bare_compile_the_same_function():
    expr = "sin(x) * y + exp(x / y)"
    g, bare = api.compile_grad(expr, mode="forward"), api.compile_grad.__wrapped__(expr, mode="forward")
    assert g.source == bare.source
    value, (gx, gy) = g(0.3, 1.7)
    assert value == pytest.approx(np.sin(0.3) * 1.7 + np.exp(0.3 / 1.7))
    h = 1e-6
    assert gx == pytest.approx((g(0.3 + h, 1.7)[0] - g(0.3 - h, 1.7)[0]) / (2 * h), rel=1e-6)
    assert gy == pytest.approx((g(0.3, 1.7 + h)[0] - g(0.3, 1.7 - h)[0]) / (2 * h), rel=1e-6)
    f = api.compile_expr("x * y + 1", backend="numpy")
    assert f(x=2.0, y=3.0) == 7.0  # keyword arguments of the compiled function unaffected
    v, (d,) = api.compile_vjp("x * x", "x")(3.0, 1.0)
    assert (v, d) == (9.0, 6.0)
    v, d = api.compile_jvp("x * x", "x")(3.0, 1.0)
    assert (v, d) == (9.0, 6.0)


def test_results_still_pickle_by_their_recipe():
    g = api.compile_grad("x * y", wrt="x")
    again = pickle.loads(pickle.dumps(g))
    assert again(2.0, 5.0) == g(2.0, 5.0) == (10.0, (5.0,))


@pytest.mark.parametrize("expr", ["x +* y", "sin(x", "foo(x)"])
def test_user_errors_unchanged(expr):
    with pytest.raises(Exception) as bare:
        api.compile_grad.__wrapped__(expr)
    with pytest.raises(Exception) as guarded:
        api.compile_grad(expr)
    assert type(guarded.value) is type(bare.value)
    assert str(guarded.value) == str(bare.value)
    text = "".join(traceback.format_exception(guarded.value))
    assert text.rstrip().endswith(str(guarded.value).splitlines()[-1].rstrip())
    if ACTIVE:  # one frame more, which shows its line rather than nothing
        assert "in in_fresh_chunk" in text and "return fn(*args, **kwargs)" in text


def test_guard_passes_arguments_results_and_errors_through():
    def f(a, /, b, *rest, c=3, **more):
        """f's doc"""
        if a == "fail":
            raise KeyError("raised by f")
        return a, b, rest, c, more

    g = fresh_chunk(f)
    assert g(1, 2) == (1, 2, (), 3, {})
    assert g(1, b=2, c=4, d=5) == (1, 2, (), 4, {"d": 5})
    assert g(1, 2, 7, 8, c=0) == (1, 2, (7, 8), 0, {})
    assert g.__doc__ == "f's doc" and g.__name__ == "f" and g.__wrapped__ is f
    assert inspect.signature(g) == inspect.signature(f)
    with pytest.raises(KeyError, match="raised by f"):
        g("fail", 0)
    with pytest.raises(TypeError):
        g()  # f's own complaint, raised below the guard


def test_frame_is_the_same_for_every_function():
    # one code object, sized once: nothing of the function (or of a user's text)
    # reaches the frame
    a, b = fresh_chunk(lambda: 1), fresh_chunk(lambda: 2)
    if ACTIVE:
        assert a.__code__ is b.__code__ is api.compile_grad.__code__
        assert a.__code__.co_stacksize == SLOTS and a.__code__.co_nlocals == 2
    assert (a(), b()) == (1, 2)


@pytest.mark.parametrize("name, version, expected", [
    ("cpython", (3, 11, 7, "final", 0), True),
    ("cpython", (3, 12, 1, "final", 0), True),
    ("cpython", (3, 13, 0, "final", 0), False),
    ("cpython", (3, 14, 0, "final", 0), False),
    ("cpython", (3, 10, 9, "final", 0), False),
    ("pypy", (3, 11, 7, "final", 0), False),
])
def test_noop_where_chunks_are_kept(monkeypatch, name, version, expected):
    monkeypatch.setattr(sys, "version_info", version)
    monkeypatch.setattr(sys.implementation, "name", name)
    assert stack_room.needed() is expected

    def f(x):
        return x + 1
    g = fresh_chunk(f)
    assert (g is f) is not expected
    assert g(1) == 2
