"""The quick call paths of a compiled function, checked against the general ones.

- tensor traces: float64 arrays all in order or all by name go through
  the call plan (call_plan.py), its binding found by the shapes; anything else (other dtypes,
  lists, a dtype object that is not NumPy's own float64, mixed positional and
  keyword arguments) through the general binding — the same results, the same errors;
- NumPy's one-point variant returning the call's own nesting (Compiled._direct);
- C's fused `.at` (PackedCall.entry);
- call_args.quiet: NumPy's warnings off inside, the caller's error state untouched;
  a thread that finds its shared Context run by another runs in one of its own;
- the call plan's comparison with the last call's shapes: sizes that change between
  calls and threads, bad shapes after good ones, C's own binding (run_bound) with
  arrays that are not C-contiguous or not writable.
"""

from __future__ import annotations

import pickle
import threading
import warnings

import numpy as np
import pytest

from exprcompiler import api, compile_expr, compile_grad, compile_jvp, compile_vjp
from exprcompiler.call_args import quiet
from exprcompiler.errors import ShapeError
from conftest import leaves

from test_bench import has_compiler  # one check of the machine's compiler

LSQ = "0.5 * sum((X @ w - y)**2)"
SHAPES = {"X": ("n", 3), "w": (3,), "y": ("n",)}
needs_c = pytest.mark.skipif(not has_compiler(), reason="no C compiler")


def _data(n=5):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 3)), rng.normal(size=3), rng.normal(size=n)


def _same(a, b):
    """Equal nesting (tuples, floats, arrays) and equal numbers."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b or (np.isnan(a) and np.isnan(b))


def _plan_alone(g):
    """g's call plan with no general path behind it: None for a call it hands on."""
    plan = type(g).__call__
    namespace = dict(plan.__globals__, general=lambda *args, **kwargs: None)
    alone = type(plan)(plan.__code__, namespace, "plan", plan.__defaults__, plan.__closure__)
    alone.__kwdefaults__ = plan.__kwdefaults__
    return lambda *args, **kwargs: alone(g, *args, **kwargs)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=needs_c)])
def test_tensor_quick_path_matches_the_general_one(backend):
    g = compile_grad(LSQ, wrt=["w"], shapes=SHAPES, backend=backend)
    X, w, y = _data()
    r = X @ w - y
    want = (0.5 * float(r @ r), (X.T @ r,))
    quick = g(X=X, w=w, y=y)
    assert _plan_alone(g)(X=X, w=w, y=y) is not None  # it took the quick path
    np.testing.assert_allclose(quick[0], want[0], rtol=1e-13)
    np.testing.assert_allclose(quick[1][0], want[1][0], rtol=1e-12)
    order = [dict(X=X, w=w, y=y)[k] for k in g.inputs]
    _same(g(*order), quick)
    # the general path: lists, float32, a positional/keyword mix, a byte-swapped or
    # unpickled dtype (equal to float64 but not NumPy's own object)
    _same(g(X=X.tolist(), w=w, y=y), quick)
    _same(g(*order[:1], **{k: v for k, v in zip(g.inputs[1:], order[1:])}), quick)
    _same(g(X=pickle.loads(pickle.dumps(X)), w=w, y=y), quick)
    swapped = g(X=X.astype(">f8"), w=w, y=y)
    _same(swapped, quick)
    as32 = g(X=X.astype(np.float32), w=w, y=y)
    want32 = g(X=X.astype(np.float32).astype(np.float64), w=w, y=y)
    _same(as32, want32)


def test_tensor_quick_path_refuses_what_the_general_path_refuses():
    g = compile_grad(LSQ, wrt=["w"], shapes=SHAPES)
    X, w, y = _data()
    g(X=X, w=w, y=y)   # the shapes (5, 3), (3,), (5,) are now cached
    with pytest.raises(ShapeError, match="'y'"):
        g(X=X, w=w, y=y[:4])
    with pytest.raises(ShapeError, match="'y'"):
        g(X=X, w=w, y=y[:4])   # a refused shape tuple is not kept
    with pytest.raises(TypeError, match="unexpected argument 'Z'"):
        g(X=X, w=w, Z=y)
    with pytest.raises(TypeError, match="missing value for input 'y'"):
        g(X=X, w=w)
    with pytest.raises(TypeError, match="complex"):
        g(X=X, w=w, y=y.astype(complex))


@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=needs_c)])
def test_call_plan_follows_the_shapes_of_each_call(backend):
    """The plan compares the shapes with the last call's (else the signature binds them):
    sizes that change from call to call, in two threads at once, each give their own
    results; bad shapes after good ones are refused; arrays that are not C-contiguous
    or not writable give what contiguous copies give (C: from_buffer refuses them, the
    kernel gets a copy)."""
    g = compile_grad(LSQ, wrt=["X", "w"], shapes=SHAPES, backend=backend)

    def check(n, X=None, by_name=False):
        rng = np.random.default_rng(n)
        X = rng.normal(size=(n, 3)) if X is None else X
        w, y = rng.normal(size=3), rng.normal(size=X.shape[0])
        r = X @ w - y
        args = dict(X=X, w=w, y=y)
        value, (gX, gw) = g(**args) if by_name else g(*(args[k] for k in g.inputs))
        assert value == pytest.approx(0.5 * float(r @ r), rel=1e-13)
        np.testing.assert_allclose(gX, np.outer(r, w), rtol=1e-13)
        np.testing.assert_allclose(gw, X.T @ r, rtol=1e-12, atol=1e-14)
        assert gX.shape == (X.shape[0], 3) and gX.flags.writeable
    for k, n in enumerate((5, 5, 2, 5, 7, 1, 7)):
        check(n, by_name=k % 2 == 1)
    assert g._tensor_call.plan is type(g).__call__
    X, w, y = _data(7)
    for bad in ((X, w, y[:6]), (X, w[:2], y), (X.reshape(3, 7), w, y), (X, w.reshape(1, 3), y)):
        with pytest.raises(ShapeError):
            g(X=bad[0], w=bad[1], y=bad[2])
        with pytest.raises(ShapeError):
            _plan_alone(g)(X=bad[0], w=bad[1], y=bad[2])
    base = np.random.default_rng(9).normal(size=(3, 8))
    check(8, X=base.T)                        # Fortran order
    check(4, X=base.T[::2])                   # strided rows
    frozen = base.T.copy()
    frozen.flags.writeable = False
    check(8, X=frozen)
    errors = []

    def work(sizes):
        try:
            for _ in range(60):
                for n in sizes:
                    check(n)
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)
    threads = [threading.Thread(target=work, args=(sizes,)) for sizes in ((3, 6), (6, 4), (2,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_tensor_results_are_fresh_and_writable():
    g = compile_expr("x + 0 * sum(x)", shapes={"x": ("n",)})
    x = np.arange(3.0)
    out = g(x=x)
    assert not np.shares_memory(out, x) and out.flags.writeable
    np.testing.assert_array_equal(out, x)


def test_quiet_hides_warnings_and_restores_the_callers_state():
    g = compile_grad("sum(exp(x))", shapes={"x": ("n",)})
    x = np.array([1000.0, 0.0])
    before = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, (grad,) = g(x=x)
        with np.errstate(all="raise"):   # the caller's state: restored after the call
            assert g(x=x)[0] == np.inf
            # the call plan, which switches the state itself (quiet's steps inlined)
            assert _plan_alone(g)(x=x)[0] == np.inf
            with pytest.raises(FloatingPointError):
                np.exp(np.array([1000.0]))
    assert value == np.inf and grad[0] == np.inf and grad[1] == 1.0
    assert np.geterr() == before


def test_quiet_keeps_the_callers_buffer_size_and_nests():
    seen = []
    inner = quiet(lambda: seen.append((np.getbufsize(), np.geterr()["over"])))
    outer = quiet(inner)
    old = np.getbufsize()
    try:
        np.setbufsize(16384)
        outer()
        with np.errstate(over="raise"):
            inner()
            assert np.geterr()["over"] == "raise"
    finally:
        np.setbufsize(old)
    assert seen == [(16384, "ignore"), (16384, "ignore")]


def test_quiet_is_per_thread():
    f = quiet(lambda: np.exp(np.full(1000, 800.0)).sum())
    errors = []

    def work():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                for _ in range(200):
                    assert f() == np.inf
            assert np.geterr()["over"] == "warn"
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_quiet_runs_in_its_own_context_while_another_thread_runs_the_shared_one():
    """Thread A holds the shared Context (its fn waits for B); B's call finds it entered
    and runs fn in a Context of its own, quiet too; a RuntimeError of fn's own is
    raised, not taken for that, and fn runs once."""
    b_done, a_inside = threading.Event(), threading.Event()
    seen, calls = {}, []

    def fn(who):
        calls.append(who)
        if who == "boom":
            raise RuntimeError("fn's own")
        if who == "a":
            a_inside.set()
            assert b_done.wait(10)
        seen[who] = (np.geterr()["over"], np.exp(np.array([1000.0]))[0])
        return who
    f = quiet(fn)
    t = threading.Thread(target=f, args=("a",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t.start()
        assert a_inside.wait(10)
        assert f("b") == "b"           # the shared Context is A's now
        b_done.set()
        t.join()
        assert seen == {"a": ("ignore", np.inf), "b": ("ignore", np.inf)}
        with pytest.raises(RuntimeError, match="fn's own"):
            f("boom")
    assert calls.count("boom") == 1 and np.geterr()["over"] == "warn"


@pytest.mark.parametrize("make, expr, args", [
    (compile_expr, "sin(x) * y", (0.5, 2.0)),
    (compile_expr, "x + y; x * y", (0.5, 2.0)),
    (compile_grad, "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))", (1.5, 0.5)),
    (compile_grad, "x**3", (2.0,)),
    (compile_jvp, "sin(x) * y", (0.5, 2.0, 1.0, 0.0)),
    (compile_jvp, "sin(x); x * y", (0.5, 2.0, 1.0, 0.5)),
    (compile_vjp, "sin(x) * y", (0.5, 2.0, 1.0)),
    (compile_vjp, "sin(x); x * y", (0.5, 2.0, 1.0, -1.0)),
])
def test_numpy_one_point_variant_returns_the_calls_own_result(make, expr, args):
    f = make(expr)
    first = f(*args)          # makes the variant (the only one: one call pays for one variant)
    assert f._direct, "a trace of math and arithmetic has the one-point variant"
    assert type(f) is api.Compiled, "one call does not pay for the call plan"
    _same(f(*args), first)    # through the variant, and makes the plan
    assert type(f) is not api.Compiled
    _same(f(*args), first)    # through the plan
    arrays = f(*(np.array([a]) for a in args))
    flat_first = [v for v in leaves(first)]
    flat_arrays = [float(v[0]) for v in leaves(arrays)]
    np.testing.assert_allclose(flat_first, flat_arrays, rtol=1e-14)


def test_numpy_one_point_variant_answers_as_numpy_where_math_refuses():
    g = compile_grad("log(x) + 1/y")
    assert g(1.0, 2.0) == (0.5, (1.0, -0.25))
    assert g(1.0, 2.0) == (0.5, (1.0, -0.25))
    assert g._direct
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, (dx, dy) = g(0.0, 0.0)
    assert value == np.inf - np.inf or np.isnan(value)
    assert dx == np.inf and dy == -np.inf
    assert g(1, 2) == (0.5, (1.0, -0.25))  # ints take the general point path


def test_numpy_one_point_variant_takes_names_and_float64_numbers(monkeypatch):
    # by name, np.float64 (x[k] of an array) and small ints go through the variant too
    # (floats through the call plan, the others converted by the general path), in
    # input order, with NumPy's answer where math refuses
    g = compile_grad("log(x) + 1/y")
    nested, seen = g._point.nested, []

    def recorded(returns):  # the variant that both the plan and g._direct call
        variant = nested(returns)
        return lambda *a: seen.append(a) or variant(*a)
    monkeypatch.setattr(g._point, "nested", recorded)
    g(1.0, 2.0), g(1.0, 2.0)
    assert g._direct
    want = g(4.0, 2.0)
    for got in (g(y=2.0, x=4.0), g(x=np.float64(4.0), y=2), g(np.float64(4.0), np.float64(2.0))):
        assert got == want and all(type(v) is float for v in (got[0], *got[1]))
    assert seen == [(1.0, 2.0)] * 2 + [(4.0, 2.0)] * 4 and all(type(v) is float for a in seen for v in a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, (dx, dy) = g(y=0.0, x=0.0)
    assert np.isnan(value) and dx == np.inf and dy == -np.inf
    assert g(y=2.0, x=np.array(4.0))[0] == want[0]      # an array: the general path


def test_numpy_without_a_math_variant_keeps_the_point_run():
    g = compile_grad("sigmoid(x)")  # not in the math table: NumPy at floats
    assert g(0.0) == (0.5, (0.25,))
    assert g(0.0) == (0.5, (0.25,))
    assert g._direct is False
    assert g(0.0) == (0.5, (0.25,))


@needs_c
def test_c_at_fused_entry_matches_the_general_one():
    expr = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
    g = compile_grad(expr, backend="c")
    x = np.array([1.5, 0.5])
    first = g.at(x)          # the general path; installs the fused one
    assert g.at is not g._packed
    value, grad = g.at(x)
    assert value == first[0] and np.array_equal(grad, first[1])
    assert type(value) is float and grad.shape == (2,)
    _, grad2 = g.at(x)
    assert not np.shares_memory(grad, grad2)   # each call its own buffer
    longer = np.array([1.5, 9.0, 0.5, 9.0])
    for other in (longer[::2], x.astype(np.float32), x.astype(">f8"), [1.5, 0.5]):
        v, gr = g.at(other)
        assert v == value and np.array_equal(gr, grad)
    with pytest.raises(ValueError, match="x must hold the 2 variables x1, x2; got shape"):
        g.at(np.ones(3))
    with pytest.raises(TypeError, match="takes no second vector"):
        g.at(x, x)
    with pytest.raises(TypeError, match="unexpected a"):
        g.at(x, a=1.0)


@needs_c
def test_c_at_fused_entry_of_a_hessian():
    from exprcompiler import compile_hessian
    H = compile_hessian("x**2 * y", backend="c")
    first = H.at(np.array([1.0, 2.0]))
    value, grad, hess = H.at(np.array([1.0, 2.0]))
    assert value == first[0] == 2.0
    np.testing.assert_array_equal(grad, [4.0, 1.0])
    np.testing.assert_array_equal(hess, [[4.0, 2.0], [2.0, 0.0]])


@pytest.mark.parametrize("make, expr, shapes, args", [
    (compile_expr, "x", {"x": (3,)}, 1),                       # the output is the input itself
    (compile_expr, "x.T", {"x": (2, 3)}, 1),                   # a view of it
    (compile_expr, "sum(x); x * 2; x[1]", {"x": (3,)}, 1),     # several outputs, a scalar among them
    (compile_jvp, "sum(x * x)", {"x": ("n",)}, 2),
    (compile_jvp, "sum(x * y); x * y", {"x": ("n",), "y": ("n",)}, 4),
    (compile_vjp, "sum(x * x)", {"x": ("n",)}, 2),
    (compile_vjp, "sum(x * y); x * y", {"x": ("n",), "y": ("n",)}, 4),
    (compile_grad, "sum(x * x) + a", {"x": ("n",), "a": ()}, 2),
])
@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=needs_c)])
def test_call_plan_returns_what_the_first_call_returns(make, expr, shapes, args, backend):
    f = make(expr, shapes=shapes, backend=backend)
    rng = np.random.default_rng(3)
    arrays = []
    for name in f.inputs:
        decl = f.signature.declared[name]
        arrays.append(rng.normal(size=tuple(3 if isinstance(d, str) else d for d in decl)) if decl else 0.5)
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    assert len(arrays) == args
    first = f(*arrays)                      # the generic path, which makes the plan
    assert f._tensor_call.plan is type(f).__call__  # the plan is in place
    again = f(*arrays)                      # the plan
    by_name = f(**dict(zip(f.inputs, arrays)))
    _same(again, first)
    _same(by_name, first)
    for leaf in leaves(again):
        if isinstance(leaf, np.ndarray):
            assert leaf.flags.writeable and not any(np.shares_memory(leaf, a) for a in arrays)


def test_float64_scalars_take_the_numbers_path_and_give_the_same_result():
    """J(*x) with x a float64 array passes np.float64 scalars: the path of plain
    numbers (no arrays made), with the results of plain floats."""
    g = compile_grad("x * y + sin(x)")
    x = np.array([0.5, 2.0])
    got = g(*x)
    assert got == g(0.5, 2.0)
    assert type(got[0]) is float and all(type(d) is float for d in got[1])
