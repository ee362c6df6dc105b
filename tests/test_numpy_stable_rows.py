"""Cheaper NumPy spellings of stable rewrites, with the bits of the forms they replace:
log1mexp's gradient as the second row of one runtime.log1mexp_slopes call, the third
row of log1mexp_rows negated (numpy_shares._log1mexp_slopes), a softplus and its sigmoid
as one runtime.softplus_pair call, hypot's divisor where(r == 0.0, 1.0, r) as
where_rare lending r itself (numpy_render._lent_wheres), and runtime.hypot's one
reduction where an argument is a constant."""

import numpy as np
import pytest

from exprcompiler import compile_grad, runtime, ufunc_loops

EDGES = np.array([0.0, -0.0, -5e-324, -1e-310, -1e-300, -2.0 ** -60, -1e-20, -1e-3, -0.5, -np.log(2),
                  np.nextafter(-np.log(2), 0.0), -3.0, -36.9, -37.5, -300.0, -709.0, -745.0, -746.0,
                  -800.0, -np.inf, np.nan, 1e-300, 0.5, 2.0, np.inf])


def bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64)


def _points():
    rng = np.random.default_rng(3)
    return np.concatenate([EDGES, rng.uniform(-3.0, -0.5, 3000), -rng.exponential(5.0, 3000)])


@pytest.fixture(params=[True, False], ids=["simd", "scalar"])
def loops(request, monkeypatch):
    """Both machines' paths: NumPy's SIMD expm1 and log1p loops, and the scalar ones."""
    for name in ("log1p", "expm1"):
        monkeypatch.setitem(ufunc_loops.SIMD, name, request.param)
    return request.param


def test_log1mexp_rows_are_the_pair_and_its_reciprocal(loops):
    x = _points()
    with np.errstate(all="ignore"):
        value, t = runtime.log1mexp_pair(x)
        rows = runtime.log1mexp_rows(x)
        assert len(rows) == 3
        assert (bits(rows[0]) == bits(value)).all() and (bits(rows[1]) == bits(t)).all()
        assert (bits(rows[2]) == bits(1.0 / t)).all()
        # each point's rows its own, whatever its block (one point at a time, and blocked)
        for k in (0, 1, 2):
            alone = np.array([runtime.log1mexp_rows(np.array([p]))[k][0] for p in EDGES])
            assert (bits(rows[k][:len(EDGES)]) == bits(alone)).all()
        big = np.resize(x, 200_000)
        for k, r in enumerate(runtime.log1mexp_rows(big)):
            assert (bits(r) == bits(np.resize(rows[k], big.size))).all()


def test_log1mexp_rows_float32():
    x = np.linspace(-5.0, -0.1, 101, dtype=np.float32)
    rows = runtime.log1mexp_rows(x)
    assert all(r.dtype == np.float32 for r in rows)
    assert (rows[2] == np.float32(1.0) / rows[1]).all()


@pytest.mark.parametrize("text, kw", [("log(1 - exp(x))", {"stable": True}), ("log1mexp(x)", {})])
def test_top_log1mexp_gradient_is_the_slope_row(loops, text, kw):
    """The gradient is runtime.log1mexp_slopes' second row: log1mexp_rows' -(1.0 / t) bit
    for bit where t is finite, the value (-e^x) where it overflows."""
    g = compile_grad(text, **kw)
    assert "log1mexp_slopes(" in g.source and "/" not in g.source.split("def ")[1]
    x = _points()
    with np.errstate(all="ignore"):
        value, (grad,) = g(x)
        want_value, t = runtime.log1mexp_pair(x)
        assert (bits(value) == bits(want_value)).all()
        want = np.where(t == np.inf, want_value, -(1.0 / t))
        assert (bits(grad) == bits(want)).all()
    inside = np.isfinite(grad) & (x < -1e-3) & (x > -700)
    h = 1e-6 * np.abs(x[inside])
    fd = (runtime.log1mexp(x[inside] + h) - runtime.log1mexp(x[inside] - h)) / (2 * h)
    np.testing.assert_allclose(grad[inside], fd, rtol=1e-6)


def test_inner_log1mexp_multiplies_by_its_slope():
    """An inner log1mexp's adjoint y multiplies the slope row (y·s: it was -(y / t))."""
    g = compile_grad("log1mexp(x)*y + log1mexp(y)")
    body = g.source.split("def ")[1]
    assert "log1mexp_slopes(y)" in body and "log1mexp_slopes(x)" in body and " / " not in body
    x = -np.random.default_rng(5).exponential(2.0, 500)
    y = x[::-1].copy()
    with np.errstate(all="ignore"):
        value, (gx, gy) = g(x, y)
        lx, sx = runtime.log1mexp_slopes(x)
        ly, sy = runtime.log1mexp_slopes(y)
    assert (bits(gx) == bits(y * sx)).all()
    assert (bits(gy) == bits(lx + sy)).all()


def test_where_rare_lends_an_existing_array():
    y = np.array([1.0, 2.0, 3.0])
    assert runtime.where_rare(np.zeros(3, bool), 1.0, y) is y
    got = runtime.where_rare(np.array([False, True, False]), 7.0, y)
    assert got is not y and list(got) == [1.0, 7.0, 3.0] and list(y) == [1.0, 2.0, 3.0]
    # np.where(c, 1.0, ints) is float64: an integer y is not lent
    ints = np.arange(3)
    got = runtime.where_rare(np.zeros(3, bool), 1.0, ints)
    assert got.dtype == np.float64 and list(got) == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("text, stable", [("sqrt(1 + x**2)", True), ("hypot(x, y)", False)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hypot_divisor_lent_with_the_same_bits(text, stable, dtype):
    g = compile_grad(text, stable=stable, dtype=np.dtype(dtype).name)
    body = g.source.split("def ")[1]
    assert "np.where" not in body and body.count("where_rare(") == (2 if stable else 3)
    rng = np.random.default_rng(2)
    tiny = np.finfo(dtype).tiny
    big = np.sqrt(np.finfo(dtype).max)
    x = np.concatenate([[0.0, -0.0, tiny, tiny / 8, big, 4 * big, np.inf, -np.inf, np.nan],
                        rng.uniform(-10, 10, 2000)]).astype(dtype)
    args = [x] if len(g.inputs) == 1 else [x, np.roll(x, 3)]
    with np.errstate(all="ignore"):
        value, grads = g(*args)
        h = runtime.hypot(*args) if len(args) == 2 else runtime.hypot(x, 1.0)
        zero = h == 0.0
        for a, d in zip(args, grads):
            want = np.where(zero, 0.0, a / np.where(zero, 1.0, h))   # the np.where form's bits
            assert d.dtype == dtype and (d.view(f"i{d.itemsize}") == want.astype(dtype).view(f"i{d.itemsize}")).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hypot_with_a_constant_each_point_its_own(dtype):
    info = np.finfo(dtype)
    edges = np.array([0.0, -0.0, info.tiny, np.sqrt(info.max), 2 * np.sqrt(info.max), info.max,
                      np.inf, -np.inf, np.nan, 3.0, -7.5], dtype=dtype)
    others = {"ordinary": np.linspace(-10, 10, 40, dtype=dtype), "huge": np.full(40, info.max / 2, dtype=dtype)}
    with np.errstate(all="ignore"):
        for c in (1.0, 1e-200, 0.0):
            alone = np.array([runtime.hypot(np.array([p]), c)[0] for p in edges])
            want = np.hypot(edges, dtype(c))
            assert np.array_equal(alone, want, equal_nan=True) or np.allclose(alone, want, rtol=4 * info.eps,
                                                                              equal_nan=True)
            for name, o in others.items():
                got = runtime.hypot(np.r_[o, edges, o], c)
                assert got.dtype == dtype
                part = got[len(o):len(o) + len(edges)]
                assert (part.view(f"i{part.itemsize}") == alone.view(f"i{part.itemsize}")).all(), (c, name)
            # the constant first, and as a NumPy scalar: the same numbers
            assert np.array_equal(runtime.hypot(c, edges), alone, equal_nan=True)


SOFTPLUS_EDGES = np.array([0.0, -0.0, -36.9, -37.0, -37.5, -50.0, -745.0, -800.0, 5e-324, 30.0, 88.0, 89.0,
                           700.0, 709.0, 709.5, 710.0, 800.0, np.inf, -np.inf, np.nan, 1.5, -2.5])
SOFTPLUS_COMPANIONS = {"ordinary": np.linspace(-5, 5, 30), "tiny exp": np.r_[np.linspace(-5, 5, 30), -60.0],
                       "overflow": np.r_[np.linspace(-5, 5, 30), 750.0], "nan": np.r_[np.linspace(-5, 5, 30), np.nan]}


@pytest.fixture(params=[True, False], ids=["simd", "scalar"])
def log1p_loop(request, monkeypatch):
    monkeypatch.setitem(ufunc_loops.SIMD, "log1p", request.param)
    return request.param


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softplus_pair_is_the_three_calls(log1p_loop, dtype):
    rng = np.random.default_rng(4)
    x = np.concatenate([SOFTPLUS_EDGES, rng.uniform(-5, 5, 2000), rng.uniform(-800, 800, 2000)]).astype(dtype)
    with np.errstate(all="ignore"):
        E = runtime.exp_quiet(x)
        want = (runtime.softplus_of_exp(x, E), runtime.sigmoid_of_exp(E))
        got = runtime.softplus_pair(x)
        for g, w in zip(got, want):
            assert g.dtype == dtype and np.array_equal(g, w, equal_nan=True)
            assert (np.signbit(g) == np.signbit(w)).all()
        edges = SOFTPLUS_EDGES.astype(dtype)
        alone = [np.array([runtime.softplus_pair(np.array([p]))[k][0] for p in edges]) for k in (0, 1)]
        for name, others in SOFTPLUS_COMPANIONS.items():
            block = np.r_[others, edges, others].astype(dtype)
            rows = runtime.softplus_pair(block)
            for k in (0, 1):
                part = rows[k][len(others):len(others) + len(edges)]
                assert np.array_equal(part, alone[k], equal_nan=True), (name, k)
        big = np.resize(x, 200_000)
        for g, w in zip(runtime.softplus_pair(big), want):
            assert np.array_equal(g, np.resize(w, big.size), equal_nan=True)


@pytest.mark.parametrize("text", ["log(1 + exp(x))", "log1p(exp(x))"])
def test_a_softplus_and_its_gradient_are_one_call(text):
    g = compile_grad(text, stable=True)
    body = g.source.split("def ")[1]
    assert "softplus_pair(x)" in body and "exp_quiet(" not in body and "sigmoid_of_exp(" not in body
    x = np.concatenate([SOFTPLUS_EDGES, np.random.default_rng(6).uniform(-40, 40, 5000)])
    with np.errstate(all="ignore"):
        value, (grad,) = g(x)
        E = runtime.exp_quiet(x)
        assert np.array_equal(value, runtime.softplus_of_exp(x, E), equal_nan=True)
        assert np.array_equal(grad, runtime.sigmoid_of_exp(E), equal_nan=True)
    inside = np.abs(x) < 30
    h = 1e-6
    fd = (runtime.softplus(x[inside] + h) - runtime.softplus(x[inside] - h)) / (2 * h)
    np.testing.assert_allclose(grad[inside], fd, rtol=1e-7, atol=1e-12)
