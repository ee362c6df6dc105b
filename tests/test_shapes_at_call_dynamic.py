"""A function whose shapes come from its calls (shapes_at_call.py) compiles once for
the first call's shapes and once more, with named dimensions, when the sizes change:
not once per length. Every call gets the answer, or the refusal, that a compile for its
own shapes gives."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, compile_jvp, compile_vjp
from exprcompiler.errors import ShapeError
from exprcompiler.shapes_at_call import MAX_SIGNATURE, ShapesAtCall, fits, named_pattern

BACKENDS = ["numpy", "c"]
LOSS = "mean((a*t + b - y)**2)"


def counted(f: ShapesAtCall) -> list:
    """The shape sets `f` compiles from now on (its compiles for a call's shapes)."""
    made: list = []
    make = f._make

    def counting(expr, *args, **kwargs):
        made.append(kwargs["shapes"])
        return make(expr, *args, **kwargs)
    f._make = counting
    return made


def same(got, want, backend: str) -> None:
    """NumPy: the same numbers as the compile for these shapes. C: the same up to the
    order of a vectorized sum's additions, which the C compiler picks per loop (a
    known trip count of 3 is summed otherwise than one of n)."""
    got, want = np.concatenate([np.ravel(v) for v in got]), np.concatenate([np.ravel(v) for v in want])
    if backend == "numpy":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)


def flat(result) -> list:
    return [result[0], *result[1]] if isinstance(result, tuple) else [result]


def loss_args(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed + n)
    return {"a": 0.7, "b": -0.2, "t": rng.normal(size=n), "y": rng.normal(size=n)}


def test_named_pattern_names_the_axes_that_changed_one_name_for_axes_that_went_alike():
    old = {"X": (4, 3), "w": (3,), "y": (4,)}
    assert named_pattern(old, {"X": (5, 3), "w": (3,), "y": (5,)}) == {"X": ("n", 3), "w": (3,), "y": ("n",)}
    assert named_pattern(old, {"X": (5, 2), "w": (2,), "y": (5,)}) == {"X": ("n", "n2"), "w": ("n2",), "y": ("n",)}
    assert named_pattern({"t": (4,), "y": (4,)}, {"t": (5,), "y": (6,)}) == {"t": ("n",), "y": ("n2",)}
    assert named_pattern({"t": (4,)}, {"t": (4,)}) is None            # nothing changed
    assert named_pattern({"t": (4,)}, {"t": (4, 1)}) is None          # another rank
    assert named_pattern({"t": (4,)}, {"t": (4,), "y": (4,)}) is None  # another input is an array
    assert named_pattern({"t": (4,)}, {"t": (0,)}) is None            # a size 0 keeps its refusal
    pattern = {"X": ("n", 3), "y": ("n",)}
    assert fits(pattern, {"X": (7, 3), "y": (7,)}) and fits(pattern, {"X": (1, 3), "y": (1,)})
    assert not fits(pattern, {"X": (7, 3), "y": (6,)}) and not fits(pattern, {"X": (7, 2), "y": (7,)})
    assert not fits(pattern, {"X": (0, 3), "y": (0,)}) and not fits(pattern, {"X": (7, 3)})


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_loop_over_lengths_compiles_twice_and_each_answer_is_the_one_for_its_shapes(backend):
    g = compile_grad(LOSS, wrt=["a", "b"], backend=backend)
    made = counted(g)
    lengths = range(1, 41)
    results = {n: g(**loss_args(n)) for n in lengths}
    assert made == [{"t": (1,), "y": (1,)}, {"t": ("n",), "y": ("n",)}]
    assert g.signature == tuple(made)
    for n in lengths:
        r = loss_args(n)["t"] * 0.7 - 0.2 - loss_args(n)["y"]
        value, (da, db) = results[n]
        assert value == pytest.approx(np.mean(r * r), rel=1e-13)
        assert (da, db) == pytest.approx((np.mean(2 * r * loss_args(n)["t"]), np.mean(2 * r)), rel=1e-12)
    for n in (1, 3, 17) if backend == "c" else lengths:
        declared = compile_grad(LOSS, wrt=["a", "b"], backend=backend, shapes={"t": (n,), "y": (n,)})
        same(flat(results[n]), flat(declared(**loss_args(n))), backend)
    # the last call's function (the named one) serves .at() and .trace
    value, grad = g.at([0.7, -0.2], t=loss_args(9)["t"], y=loss_args(9)["y"])
    same([value, grad], flat(results[9]), backend)
    assert "v_-1 : (n,) = t" in str(g.trace)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_change_then_columns_too_a_second_named_function(backend):
    g = compile_grad("0.5*sum((X@w - y)**2)", wrt=["w"], backend=backend)
    made = counted(g)
    rng = np.random.default_rng(3)
    for rows, cols in [(4, 3), (5, 3), (9, 3), (6, 4), (2, 2), (7, 3)]:
        X, w, y = rng.normal(size=(rows, cols)), rng.normal(size=cols), rng.normal(size=rows)
        value, (gw,) = g(X, w, y)
        r = X @ w - y
        assert value == pytest.approx(0.5 * r @ r, rel=1e-13)
        np.testing.assert_allclose(gw, X.T @ r, rtol=1e-12, atol=1e-14)
    # the axes of size 3 that stayed 3 kept their size; when they changed, X's columns and
    # w's length changed alike and share a name
    assert made == [{"X": (4, 3), "w": (3,), "y": (4,)}, {"X": ("n", 3), "w": (3,), "y": ("n",)},
                    {"X": ("n", "n2"), "w": ("n2",), "y": ("n",)}]


def refusal(call) -> tuple:
    with pytest.raises(Exception) as caught:
        call()
    return caught.type, str(caught.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_call_outside_the_named_function_gets_the_refusal_it_had_before(backend):
    """A length 0, which the named function would sum to 0, and lengths that do not
    broadcast are refused as by a function compiled for them alone."""
    f = compile_expr("sum(t*y)", backend=backend)
    made = counted(f)
    assert f(np.ones(4), np.ones(4)) == 4 and f(np.ones(5), np.ones(5)) == 5
    for t, y in [(np.ones(0), np.ones(0)), (np.ones(5), np.ones(6))]:
        fresh = compile_expr("sum(t*y)", backend=backend)
        got = refusal(lambda: f(t, y))
        assert got[0] is ShapeError and got == refusal(lambda: fresh(t, y))
    assert f(np.ones(6), np.ones(6)) == 6
    # for (5,) and (6,), the named forms from each shape set before, then the numbers
    assert made == [{"t": (4,), "y": (4,)}, {"t": ("n",), "y": ("n",)}, {"t": (0,), "y": (0,)},
                    {"t": (5,), "y": ("n",)}, {"t": ("n",), "y": ("n2",)}, {"t": (5,), "y": (6,)}]
    assert f.signature == ({"t": (4,), "y": (4,)}, {"t": ("n",), "y": ("n",)})


def test_a_call_the_named_function_refuses_is_compiled_for_its_shapes():
    """What the named function's own binding refuses (a need of the sizes) is no
    answer: the call is compiled for its shapes, as without it."""
    f = compile_expr("sum(x*x)")
    f(np.ones(3)), f(np.ones(4))
    (pattern, _), = f._named

    def refusing(**_):
        raise ShapeError("x needs n >= 6")
    f._named = ((pattern, refusing),)
    made = counted(f)
    assert f(np.arange(5.0)) == 30 and made == [{"x": (5,)}]


@pytest.mark.parametrize("backend", BACKENDS)
def test_shapes_that_broadcast_only_as_numbers_are_compiled_as_numbers(backend):
    """t and y changed alike, so the named function has one n for both; t of length 1
    against y of 7 broadcasts as numbers but not in it, so that call is compiled for its
    shapes, and gives NumPy's answer."""
    f = compile_expr("sum(t*y)", backend=backend)
    made = counted(f)
    assert f(np.ones(4), np.ones(4)) == 4 and f(np.ones(5), np.ones(5)) == 5
    assert f(np.array([2.0]), np.arange(7.0)) == 42
    assert f(np.array([2.0]), np.arange(7.0)) == 42 and f(np.ones(6), np.ones(6)) == 6
    assert made == [{"t": (4,), "y": (4,)}, {"t": ("n",), "y": ("n",)}, {"t": ("n",), "y": ("n2",)},
                    {"t": (1,), "y": (7,)}]


def test_a_pattern_that_does_not_compile_is_tried_once_and_the_signature_stays_bounded():
    """A named form that the compiler refuses (here: refused by the test) leaves every
    length compiled as numbers, as before; it is tried once, not at every call."""
    f = compile_expr("sum(x*x)")
    numbers_only = f._make

    def refusing_names(expr, *args, shapes, **kwargs):
        if any(isinstance(d, str) for shape in shapes.values() for d in shape):
            raise ShapeError("sum: cannot take a named dimension")
        return numbers_only(expr, *args, shapes=shapes, **kwargs)
    f._make = refusing_names
    made = counted(f)
    for n in range(1, 41):
        assert f(np.arange(float(n))) == sum(k * k for k in range(n))
    assert len(made) == 41 and made.count({"x": ("n",)}) == 1
    assert len(f.signature) == MAX_SIGNATURE and f.signature[-1] == {"x": (40,)}
    assert all(f.signature[k] == {"x": (k + 9,)} for k in range(MAX_SIGNATURE))


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeds_take_the_named_dimension_too(backend):
    """x_dot and y_bar have x's shape: the JVP and VJP of x - mean(x), (I - 11ᵀ/n) v."""
    for make, seed in ((compile_jvp, "x_dot"), (compile_vjp, "y_bar")):
        f = make("x - mean(x)", backend=backend)
        made = counted(f)
        for n in (3, 4, 5, 8, 1):
            x, v = np.arange(float(n)) ** 2, np.linspace(-1.0, 2.0, n)
            value, d = f(x=x, **{seed: v})
            d = d[0] if seed == "y_bar" else d   # a VJP: one cotangent per wrt variable
            np.testing.assert_allclose(value, x - x.mean(), rtol=1e-14, atol=1e-14)
            np.testing.assert_allclose(d, v - v.mean(), rtol=1e-14, atol=1e-14)
        assert made == [{"x": (3,)}, {"x": ("n",)}]


@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_bringing_new_lengths_at_once_share_one_named_compile(backend):
    g = compile_grad(LOSS, wrt=["a", "b"], backend=backend)
    made = counted(g)
    g(**loss_args(1))
    lengths = list(range(2, 34))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: g(**loss_args(n)), lengths))
    assert made == [{"t": (1,), "y": (1,)}, {"t": ("n",), "y": ("n",)}]
    declared = compile_grad(LOSS, wrt=["a", "b"], shapes={"t": ("n",), "y": ("n",)}, backend=backend)
    for n, result in zip(lengths, results):
        assert flat(result) == flat(declared(**loss_args(n)))


def test_a_pickled_function_starts_afresh_and_generalizes_again():
    g = compile_grad(LOSS, wrt=["a", "b"])
    g(**loss_args(3)), g(**loss_args(4))
    h = pickle.loads(pickle.dumps(g))
    assert isinstance(h, ShapesAtCall) and h.signature == ()
    made = counted(h)
    for n in (5, 6, 7, 3):
        assert flat(h(**loss_args(n))) == flat(g(**loss_args(n)))
    assert made == [{"t": (5,), "y": (5,)}, {"t": ("n",), "y": ("n",)}]
