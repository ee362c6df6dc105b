"""The call plan of arrays (call_plan.batch_plan, made by api.Compiled._plan_batch):
after two calls with float64 arrays, a function of scalars has a class of its own
whose __call__ runs the kernel itself (C: cffi pointers of the arrays as they are;
NumPy: the generated function, its results fitted) for shapes the general path has
seen, and hands every other call to the general path.

What is tested: the plan is what runs; its results are the general path's bits and
the reference interpreter's values, on every backend and kind; an entry made for one
tuple of shapes is not used for other shapes, dtypes, strides, layouts or alignment
(a C kernel sees no pointer that is not the array's, aligned, of the batch's length);
numbers among the arrays, NaN and huge inputs, threads; refusals keep their messages.
"""

from __future__ import annotations

import pickle
import threading

import _cffi_backend
import cffi
import numpy as np
import pytest

from exprcompiler import api, compiled_call, compile_expr, compile_grad, compile_hessian, compile_jacobian, compile_jvp, \
    compile_vjp
from exprcompiler.backends import c_run
from exprcompiler.jacobians import compile_hvp
from exprcompiler.trace import interpret

EXPR = "sin(x)*y + exp(x*y) - log(1 + x*x)"
BACKENDS = ["numpy", "c", "vm"]
_FFI = cffi.FFI()


def _leaves(r) -> list:
    if isinstance(r, (tuple, list)):
        return [x for item in r for x in _leaves(item)]
    return [r]


def _same(got, want) -> None:
    """The same nesting, types, shapes, dtypes and bits."""
    assert type(got) is type(want)
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
    elif isinstance(want, np.ndarray):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8))
    else:
        assert np.float64(got).tobytes() == np.float64(want).tobytes()


def _planned(g) -> bool:
    return type(g).__call__ is not api.Compiled.__call__


def _general(g, *args, **kwargs):
    return api.Compiled.__call__(g, *args, **kwargs)


def _reference(g, args) -> list:
    env = dict(zip(g.inputs, args))
    return [np.broadcast_to(v, np.broadcast_shapes(*(np.shape(a) for a in args))) for v in interpret(g.trace, env)]


class Spy:
    """The pointers cffi's from_buffer makes: (offset from alignment, length)."""

    def __init__(self, real):
        self.real, self.made = real, []

    def __call__(self, cdecl, buffer, require_writable=False):
        p = self.real(cdecl, buffer, require_writable)
        self.made.append((int(_FFI.cast("uintptr_t", p)) % _FFI.sizeof(cdecl.item), len(p)))
        return p


@pytest.fixture
def spy(monkeypatch):
    s = Spy(_cffi_backend.from_buffer)
    monkeypatch.setattr(_cffi_backend, "from_buffer", s)   # (before the functions are compiled)
    return s


def _unaligned(values) -> np.ndarray:
    a = np.ascontiguousarray(values, np.float64)
    raw = np.zeros(a.nbytes + 8, np.uint8)
    x = raw[1:1 + a.nbytes].view(np.float64).reshape(a.shape)
    x[...] = a
    assert x.flags.c_contiguous and not x.flags.aligned
    return x


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_plan_runs_after_two_calls_and_gives_the_general_paths_bits(backend):
    g = compile_grad(EXPR, backend=backend)
    rng = np.random.default_rng(1)
    x, y = rng.random(7), rng.random(7)
    first = g(x, y)
    assert not _planned(g)
    second = g(x, y)
    assert _planned(g) and type(g).__name__ == "Compiled" and isinstance(g, api.Compiled)
    for got in (first, second, g(x, y), g(x=x, y=y), g(y=y, x=x)):
        _same(got, _general(g, x, y))
    want = _reference(g, (x, y))
    np.testing.assert_allclose(np.array(_leaves(g(x, y))), np.array(want), rtol=1e-13, atol=1e-15)
    again = pickle.loads(pickle.dumps(g))   # by the recipe: a fresh object of the general class
    assert type(again) is api.Compiled
    _same(again(x, y), g(x, y))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["expr", "expr3", "jvp", "vjp", "hvp", "hessian", "jacobian"])
def test_every_kind_gives_the_general_paths_bits(backend, kind):
    make = {"expr": lambda: compile_expr(EXPR, backend=backend),
            "expr3": lambda: compile_expr(["x*y", "sin(x)", "y"], backend=backend),
            "jvp": lambda: compile_jvp("sin(x)*y", backend=backend),
            "vjp": lambda: compile_vjp(["sin(x)*y", "x + y"], backend=backend),
            "hvp": lambda: compile_hvp("sin(x)*y**2", backend=backend),
            "hessian": lambda: compile_hessian("sin(x)*y**2", backend=backend),
            "jacobian": lambda: compile_jacobian(["x*y", "exp(x) - y"], backend=backend)}[kind]
    f = make()
    rng = np.random.default_rng(2)
    for n in (1, 5, 5, 5, 33):
        args = [rng.random(n) for _ in f.inputs]
        _same(f(*args), make()(*args))      # a fresh object's first call: the general path
        _same(f(**dict(zip(f.inputs, args))), _general(f, *args))


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_entry_is_not_used_for_other_shapes_dtypes_strides_or_layouts(backend):
    g = compile_grad(EXPR, backend=backend)
    fresh = compile_grad(EXPR, backend=backend)
    rng = np.random.default_rng(3)
    x, y = rng.random(6), rng.random(6)
    g(x, y)
    g(x, y)
    assert _planned(g)
    grid = rng.random((6, 6))
    calls = [
        (rng.random(5), rng.random(5)),                       # another length
        (rng.random((2, 3)), rng.random((2, 3))),             # another shape of as many points
        (rng.random(12)[::2], y),                             # strided: same shape, not contiguous
        (grid[:, 0], grid[0]),                                # a column and a row
        (np.asfortranarray(rng.random((2, 3))), rng.random((2, 3))),
        (rng.random(6).astype(np.float32), y),                # another dtype
        (np.arange(6), y),                                    # integers
        (rng.random(6).astype(">f8"), y),                     # float64, swapped bytes
        (rng.random((6, 1)), rng.random((1, 4))),             # broadcasting to a new batch
        (rng.random(1), y), (x, rng.random(1)),               # size 1: stride 0
        (np.array(0.25), y), (x, 0.5), (np.float64(0.5), y), (x, 2),   # numbers among the arrays
        (np.array(0.25), np.array(0.5)),                      # 0-d: floats come back
        (np.empty(0), np.empty(0)),                           # no point
        (_unaligned(x), y), (x, _unaligned(y)),               # misaligned
        ([0.1, 0.2], [0.3, 0.4]),                             # lists
        (np.broadcast_to(rng.random(1), (6,)), y),            # read-only, stride 0
        (x, y),                                               # the first shapes again
    ]
    for args in calls:
        for _ in range(2):
            got = g(*args)
            _same(got, fresh(*args))
            _same(got, _general(g, *args))
            _same(g(**dict(zip(g.inputs, args))), got)
        want = _reference(g, [np.asarray(a, dtype=np.float64) for a in args])
        np.testing.assert_allclose(np.array(_leaves(got), dtype=float).reshape(len(want), -1),
                                   np.array(want).reshape(len(want), -1), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", ["c", "vm"])
def test_c_pointers_are_the_arrays_aligned_and_of_the_batchs_length(spy, backend):
    g = compile_grad(EXPR, backend=backend)
    rng = np.random.default_rng(4)
    x, y = rng.random(9), rng.random(9)
    g(x, y)
    g(x, y)
    assert _planned(g)
    for args, lengths in [((x, y), [9, 9, 9, 9, 9]), ((x, y[:1]), [9, 1, 9, 9, 9]),
                          ((_unaligned(x), y), [9, 9, 9, 9, 9]), ((rng.random(18)[::2], y), [9, 9, 9, 9, 9]),
                          ((x, 0.5), [9, 1, 9, 9, 9])]:
        spy.made.clear()
        _same(g(*args), compile_grad(EXPR, backend=backend)(*args))
        made = spy.made[:5]   # (the fresh function's pointers come after)
        assert [offset for offset, _ in made] == [0] * 5
        assert [length for _, length in made] == lengths


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_inf_and_huge_inputs_and_an_error_state_that_raises(backend):
    g = compile_grad("log(x) + sqrt(y) / x + exp(x*y)", backend=backend)
    x = np.array([0.0, -1.0, np.nan, np.inf, 1e308, 710.0, -0.0])
    y = np.array([1.0, np.inf, 2.0, -1.0, 1e308, 1.0, 4.0])
    want = compile_grad("log(x) + sqrt(y) / x + exp(x*y)", backend=backend)(x, y)
    with np.errstate(all="raise"):   # IEEE results returned, not raised, as the general path
        for _ in range(3):
            _same(g(x, y), want)
    assert _planned(g)


@pytest.mark.parametrize("backend", BACKENDS)
def test_calls_with_numbers_keep_their_paths_around_the_plan(backend):
    """Numbers before and after the plan of arrays: the one-point call (NumPy's variant,
    C's entry) is part of the plan; a point of numbers gives floats."""
    g = compile_grad(EXPR, backend=backend)
    fresh = compile_grad(EXPR, backend=backend)
    x, y = np.linspace(0.1, 1, 4), np.linspace(1, 2, 4)
    want = fresh(0.3, 0.7)
    _same(g(0.3, 0.7), want)
    g(x, y)
    g(x, y)
    assert _planned(g)
    for _ in range(3):
        got = g(0.3, 0.7)
        assert type(got[0]) is float
        _same(got, want)
        _same(g(x=0.3, y=0.7), want)
        _same(g(np.float64(0.3), 0.7), want)
    _same(g(x, y), fresh(x, y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_refusals_keep_their_messages(backend):
    class Lazy:   # what holds_dask sees as a Dask array (read off the type's module)
        pass
    Lazy.__module__ = "dask.array.core"

    def refusals(g):
        x, y = np.ones(3), np.full(3, 2.0)
        calls = [lambda: g(x, np.ones(4)), lambda: g(x), lambda: g(x, x, x), lambda: g(x, z=x),
                 lambda: g(x, x, x=x), lambda: g("a", x), lambda: g(x, x + 1j), lambda: g(x, None),
                 lambda: g(x, [[1.0], [1.0, 2.0]]), lambda: g(x, 2 ** 1100),
                 lambda: g(x, x, out=(np.empty(3),)), lambda: g(x, x, out=(np.empty(3), (np.empty(3), np.empty(2)))),
                 lambda: g(x, x, out=(np.empty(3), (np.empty(3), np.empty(6)[::2]))),
                 lambda: g(x, x, out=(np.empty(3), (x, np.empty(3)))),
                 lambda: g(Lazy(), x, out=(np.empty(3),) * 3), lambda: g(x, y, out=(x, (y, np.empty(3))))]
        said = []
        for call in calls:
            try:
                call()
                said.append("no error")
            except Exception as e:
                said.append(f"{type(e).__name__}: {e}")
        return said
    g = compile_grad(EXPR, backend=backend)
    want = refusals(compile_grad(EXPR, backend=backend))   # a fresh object: the general path
    # (out= an input itself, the same array in and out: allowed)
    assert [k for k, said in enumerate(want) if said == "no error"] == [13, 15]
    g(np.ones(3), np.ones(3))
    g(np.ones(3), np.ones(3))
    assert _planned(g)
    assert refusals(g) == want


def test_threads_fixed_and_chosen():
    """c_run's entry: a fixed thread count at every size; threads=None only below
    PARALLEL_FROM points (above, ThreadChoice's general path)."""
    g1, g2 = compile_grad(EXPR, backend="c", threads=1), compile_grad(EXPR, backend="c")
    p1, p2 = g1._batch_entry, g2._batch_entry
    x = np.ones(c_run.PARALLEL_FROM)
    assert p1.entry([x, x], x.shape) == (x.shape, x.size, 1, 1, 1)
    assert p2.entry([x, x], x.shape) is None
    assert p2.entry([x[:10], x[:1]], (10,)) == ((10,), 10, 1, 1, 0)
    assert p2.entry([x[:10].reshape(10, 1), x[:3]], (10, 3)) is None   # copied by run
    assert p2.entry([x[:1], x[:1]], ()) is None
    rng = np.random.default_rng(5)
    X, Y = rng.random(3000), rng.random(3000)
    want = g2(X, Y)
    results, errors = [], []

    def work():
        try:
            for _ in range(50):
                results.append(g1(X, Y))
        except Exception as e:   # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 200
    for r in results:
        _same(r, want)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_many_shapes_and_results_that_are_the_inputs(backend):
    """More shape tuples than the plan keeps (it starts again), and NumPy results that
    are an input itself or a constant (fitted as the general path fits them)."""
    for make in (lambda: compile_expr(["x", "x*0 + 2", "x*y"], backend=backend),
                 lambda: compile_grad("x*x + y", backend=backend)):   # (d/dy: the number 1.0)
        f, fresh = make(), make()
        rng = np.random.default_rng(6)
        for n in [3, 3] + list(range(1, 40)) + [3]:
            for x, y in [(rng.random(n), rng.random(n)), (rng.random(1), rng.random(n))]:   # x: fitted
                f(x, y)   # (new shapes: the general path, which enters them)
                got, want = f(x, y), fresh(x, y)
                _same(got, want)
                assert [r is x for r in _leaves(got)] == [r is x for r in _leaves(want)]
                assert [np.shares_memory(r, x) for r in _leaves(got)] == \
                    [np.shares_memory(r, x) for r in _leaves(want)]
        assert _planned(f) and len(f._seen) <= compiled_call._SEEN


def test_the_plans_text_takes_plain_names_as_keywords():
    """As the point plan: plain input names are the plan's keyword parameters (a call
    by name is bound by CPython), names its text uses stay keys of **kwargs."""
    import sympy
    for names, keywords in [(("x", "y"), 2), (("m", "b"), 0), (("lambda", "x.1"), 0)]:
        a, b = sympy.symbols(names)
        g = compile_grad(sympy.sin(a) * b, backend="c")
        args = [np.linspace(0.1, 1, 5), np.linspace(1, 2, 5)]
        want = g(*args)
        g(*args)
        assert _planned(g)
        assert type(g).__call__.__code__.co_kwonlyargcount - 1 == keywords
        _same(g(**dict(zip(g.inputs, args))), want)
        _same(g(args[0], **{g.inputs[1]: args[1]}), want)
        with pytest.raises(TypeError, match=f"argument '{g.inputs[0]}' given twice"):
            g(*args, **{g.inputs[0]: args[0]})
