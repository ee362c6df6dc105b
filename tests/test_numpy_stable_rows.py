"""Cheaper NumPy spellings of stable rewrites, with the bits of the forms they replace:
log1mexp's gradient as the second row of one runtime.log1mexp_slopes call, the third
row of log1mexp_rows negated (numpy_share_pairs._value_and_slope), a softplus and its sigmoid
as one runtime.softplus_pair call, hypot's divisor where(r == 0.0, 1.0, r) as
where_rare lending r itself (numpy_render._lent_wheres), and runtime.hypot's one
reduction where an argument is a constant; and (the last section) the stable rows'
helpers' block paths, and arcsin's slope as one_minus_square."""

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


# -- the stable rows' block paths (issue 18) -----------------------------------------------
# expm1_pair, neg_expm1_pair, log1m_of_diff, sigmoid_pair_of_exp, sigmoid_pair_of_exp_at and
# log1mexp_slopes take a generated function's block (a float array below
# runtime_blocks._BIG, no out=) to a front form that _blocked's wrapper tests for first
# (_blocked(front=...)); log1p_of_sum its np.log1p test inline. These check the
# mechanism's routing, and that the front form gives the helper's own steps' bits,
# warnings and dtypes at every kind of point: usual and mixed blocks, NaN, infinities,
# overflowed exps, tiny arguments, signed zeros, float32, 2-D blocks, large arrays (by
# blocks) and out=.
import warnings  # noqa: E402

from exprcompiler import runtime as R  # noqa: E402
from exprcompiler import runtime_blocks, runtime_log1p  # noqa: E402
from exprcompiler.runtime_blocks import _BIG  # noqa: E402
from exprcompiler.ufunc_loops import SIMD  # noqa: E402

SPECIALS = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300, -1e-300, 5e-324, 2.0 ** -60, -(2.0 ** -60),
            0.6931471805599453, 0.6931471805599452, 710.0, -750.0, 1e300, -1e300, 0.0625, -0.0625, 1.0, -1.0]
FRONTED = ("expm1_pair", "neg_expm1_pair", "log1m_of_diff", "sigmoid_pair_of_exp", "sigmoid_pair_of_exp_at",
           "log1mexp_slopes", "sigmoid_rows", "sigmoid_neg_rows", "softplus_sigmoid_rows", "neg_softplus_sigmoid_rows",
           "exp_neg_abs", "sigmoid_pair_e", "softplus_pair_e", "neg_softplus_pair_e")


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    # bit for bit, NaN's sign included, ±0 apart
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (a, b)


def _blocks(dtype):
    """Blocks as a generated function hands them: the usual ones of the bench rows'
    ranges, mixed ones, and ones with the special points among ordinary ones."""
    rng = np.random.default_rng(18)
    out = [rng.uniform(1, 10, 4096), rng.uniform(-3, 3, 4096), rng.uniform(-10, -0.1, 4096),
           rng.uniform(0.1, 10, 4096), rng.uniform(-0.2, 0.2, 4096), rng.uniform(-800, 800, 4096),
           rng.uniform(-3, -0.5, 4096)]
    for base in list(out):
        b = base.copy()
        b[rng.integers(0, b.size, len(SPECIALS))] = SPECIALS
        out.append(b)
    out.append(np.array(SPECIALS))
    out.append(rng.uniform(0.1, 10, (64, 33)))   # a 2-D block (tensor programs)
    with np.errstate(over="ignore"):
        return [b.astype(dtype) for b in out]


def _unblocked(f):
    return f.__wrapped__


def _calls(x):
    """(name, the helper's call, its own steps' call: no front, no blocks) on block x."""
    with np.errstate(all="ignore"):
        E = np.exp(x)
        e = np.exp(-np.abs(x))
    w, m = 1.0 + x, 1.0 - x
    return [
        ("expm1_pair", lambda: R.expm1_pair(x), lambda: R.expm1_pair.__wrapped__(x)),
        ("neg_expm1_pair", lambda: R.neg_expm1_pair(x), lambda: R.neg_expm1_pair.__wrapped__(x)),
        ("log1p_of_sum", lambda: R.log1p_of_sum(x, w), lambda: runtime_log1p._log1p(x) if SIMD["log1p"]
         else runtime_log1p._log1p_of_sum(x, w)),
        ("log1m_of_diff", lambda: R.log1m_of_diff(x, m), lambda: R.log1m_of_diff.__wrapped__(x, m)),
        ("sigmoid_pair_of_exp", lambda: R.sigmoid_pair_of_exp(E), lambda: R.sigmoid_pair_of_exp.__wrapped__(E)),
        ("sigmoid_pair_of_exp_at", lambda: R.sigmoid_pair_of_exp_at(x, E),
         lambda: R.sigmoid_pair_of_exp_at.__wrapped__(x, E)),
        ("log1mexp_slopes", lambda: R.log1mexp_slopes(x), lambda: R.log1mexp_slopes.__wrapped__(x)),
    ] + [(name, lambda f=getattr(R, name): f(x), lambda f=getattr(R, name): f.__wrapped__(x))
         for name in ("sigmoid_rows", "sigmoid_neg_rows", "softplus_sigmoid_rows", "neg_softplus_sigmoid_rows",
                      "exp_neg_abs")] \
      + [(name, lambda f=getattr(R, name): f(x, e), lambda f=getattr(R, name): f.__wrapped__(x, e))
         for name in ("sigmoid_pair_e", "softplus_pair_e", "neg_softplus_pair_e")]


def _loops(monkeypatch, simd: bool):
    for k in SIMD:
        monkeypatch.setitem(SIMD, k, simd)


def _run(call):
    """The call's results and the warnings it raised (as errstate 'warn' gives them)."""
    with warnings.catch_warnings(record=True) as seen, np.errstate(all="warn"):
        warnings.simplefilter("always")
        got = call()
    return got, sorted(str(w.message) for w in seen)


@pytest.mark.parametrize("simd", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_block_path_gives_the_helpers_own_bits_and_warnings(simd, dtype, monkeypatch):
    _loops(monkeypatch, simd)
    for x in _blocks(dtype):
        for name, new, old in _calls(x):
            got, warned = _run(new)
            want, wanted = _run(old)
            assert warned == wanted, (name, warned, wanted)
            for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                _same(a, b)


def _spied(on=0):
    """A helper of one or two arguments run through _blocked with a front, recording
    which form each call took."""
    seen = []

    def front(*args):
        seen.append(("front", args[on].shape))
        return args[on] + 1.0

    def helper(*args, out=None):
        seen.append(("helper", np.shape(args[on]), out is not None))
        r = np.add(args[on], 1.0, out=out)
        return r
    if on:
        def steps(u, x, out=None):
            return helper(u, x, out=out)
    else:
        def steps(x, out=None):
            return helper(x, out=out)
    return runtime_blocks._blocked(steps, front=front, on=on), seen


@pytest.mark.parametrize("on", [0, 1])
def test_blocked_front_routing(on):
    """_blocked(front=...): a float array of its own below _BIG takes the front form; a
    large array runs by blocks through the helper with out=; scalars, 0-d arrays,
    integer and empty arrays, and a caller's out= the helper alone."""
    f, seen = _spied(on)
    call = (lambda x, **kw: f(x, **kw)) if on == 0 else (lambda x, **kw: f(0.5, x, **kw))
    for x in (np.ones(100), np.ones(16384, np.float32), np.ones((64, 33)), np.ones(_BIG - 1)):
        seen.clear()
        _same(call(x), x + 1.0)
        assert seen == [("front", x.shape)], seen
    big = np.ones(_BIG + 5)
    seen.clear()
    _same(call(big), big + 1.0)
    assert seen and all(s[0] == "helper" and s[2] for s in seen), seen
    for x in (np.float64(2.0), 2.0, np.array(2.0), np.arange(5), np.ones(0)):
        seen.clear()
        call(x)
        assert [s[0] for s in seen] == ["helper"], (x, seen)
    seen.clear()
    r = np.empty(10)
    call(np.ones(10), out=r)
    assert seen == [("helper", (10,), True)], seen
    strided = np.ones(2 * _BIG + 10)[::2]   # large, not C-contiguous: not by blocks, the helper alone
    seen.clear()
    call(strided)
    assert seen == [("helper", strided.shape, False)], seen


@pytest.mark.parametrize("name", FRONTED)
def test_stable_rows_helpers_have_a_front(name):
    """These helpers route a block through _blocked's front (the helper's own steps
    are __wrapped__, the front form is a different function)."""
    f = getattr(R, name)
    assert f.front is not f.__wrapped__ and callable(f.front)


def test_log1mexp_slopes_block_is_log1mexp_rows(monkeypatch):
    """Where the loops are SIMD, log1mexp_slopes of a block is log1mexp_rows' value and
    negated reciprocal (log(1 - exp(x)) rewritten, with its gradient)."""
    for k in ("expm1", "log1p"):
        monkeypatch.setitem(SIMD, k, True)
    x = np.random.default_rng(6).uniform(-3, -0.5, 16384)
    value, slope = R.log1mexp_slopes(x)
    with np.errstate(all="ignore"):
        _same(value, R.log1mexp_rows(x)[0])
        _same(slope, -R.log1mexp_rows(x)[2])


def test_log1p_of_sum_block_takes_np_log1p_alone(monkeypatch):
    """Where np.log1p is SIMD, a block with no tiny |x| is np.log1p(x) with no call of
    the guard (_tiny_safe), whose test is inline."""
    monkeypatch.setitem(SIMD, "log1p", True)

    def fail(*args, **kwargs):
        raise AssertionError("_tiny_safe called on a usual block")
    monkeypatch.setattr(runtime_log1p, "_tiny_safe", fail)
    x = np.random.default_rng(3).uniform(0.1, 10, 16384)
    _same(R.log1p_of_sum(x, 1.0 + x), np.log1p(x))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_arrays_scalars_and_out_keep_their_paths(dtype):
    """Large arrays still run by blocks (the same bits as unblocked), scalars and out=
    as before."""
    rng = np.random.default_rng(4)
    x = rng.uniform(-5, 5, _BIG + 7).astype(dtype)
    x[::997] = -0.0
    with np.errstate(all="ignore"):
        E = np.exp(x)
        for f, args in ((R.expm1_pair, (x,)), (R.neg_expm1_pair, (x,)), (R.log1m_of_diff, (x, 1.0 - x)),
                        (R.log1mexp_slopes, (x,)), (R.sigmoid_pair_of_exp, (E,)), (R.sigmoid_pair_of_exp_at, (x, E))):
            got, want = f(*args), _unblocked(f)(*args)
            for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                _same(a, b)
        y = np.array([0.5, 2.0, -0.0], dtype)
        outs = (np.empty_like(y), np.empty_like(y))
        R.expm1_pair(y, out=outs)
        _same(outs[0], np.asarray(R.expm1(y)))
        _same(outs[1], np.exp(y))
        r = np.empty_like(y)
        R.log1m_of_diff(y, 1.0 - y, out=r)
        _same(r, R.log1m_of_diff(y, 1.0 - y))
        s, t = R.sigmoid_pair_of_exp(np.exp(y), out=(np.empty_like(y), np.empty_like(y)))
        _same(s, R.sigmoid_pair_of_exp(np.exp(y))[0])
        _same(t, R.sigmoid_pair_of_exp(np.exp(y))[1])
    for v in (0.3, 2.0, -0.0):   # one point: scalars, as before
        a, b = R.expm1_pair(np.float64(v))
        assert float(a) == float(np.expm1(v)) or abs(float(a) - float(np.expm1(v))) <= 2.3e-16 * abs(float(a))
        assert float(b) == float(np.exp(v))


@pytest.mark.parametrize("expr", ["arcsin(x)", "arccos(x)"])
def test_arcsin_slope_is_one_minus_square(expr):
    """arcsin's and arccos' stable slope divide by one_minus_square(x), (1 - x)(1 + x) in
    one array (runtime.one_minus_square: its product in place), not by the product of
    two new arrays: the same bits (needs the rule one_minus_square to build the op,
    stability/rules.py)."""
    g = compile_grad(expr, stable=True)
    assert "one_minus_square(x)" in g.source, g.source
    x = np.random.default_rng(5).uniform(-0.999, 0.999, 1001)
    x[:4] = [0.0, -0.0, 1 - 2.0 ** -52, -(1 - 2.0 ** -52)]
    want = 1.0 / np.sqrt((1.0 - x) * (1.0 + x))
    got = np.asarray(g(x)[1][0])
    _same(got, want if expr == "arcsin(x)" else -want)


# -- a sigmoid's value and slope, and the cross-entropy's four rows, from one call ------
# (issue 18: numpy_share_exps._slope_entries and _both_signs). Each row has the bits of the
# lines it replaces (the generated code before: an exp line, a pair, the product), so
# the accuracy is theirs (test_numpy_softplus_pairs checks it against mpmath).
def _same_flat(a, b):
    """_same for 0-d and non-contiguous arrays too (their points in C order)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    _same(np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1))


def _bits_of_lines(x):
    """{helper: the rows its call replaces, from the helpers HEAD's generated code called}."""
    with np.errstate(all="ignore"):
        E = R.exp_quiet(x)
        s, t = R.sigmoid_pair_of_exp(E)
        s_at, t_at = R.sigmoid_pair_of_exp_at(x, E)
        e = np.exp(np.negative(np.abs(x)))   # (exp_neg_abs's old steps)
        sp, spn, sn, snn = R.softplus_pair_e(x, e) + R.neg_softplus_pair_e(x, e)
        pair = R.sigmoid_pair_e(x, e)
        return {"sigmoid_rows": (s, s * t), "sigmoid_neg_rows": (t_at, -(t_at * s_at)), "exp_neg_abs": (e,),
                "softplus_sigmoid_rows": (sp, spn) + pair, "neg_softplus_sigmoid_rows": (sn, snn) + pair}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("simd", [True, False])
def test_one_call_rows_have_the_replaced_lines_bits(dtype, simd, monkeypatch):
    _loops(monkeypatch, simd)
    rng = np.random.default_rng(51)
    mixed = rng.uniform(-40, 40, 3 * _BIG // 2)
    mixed[rng.integers(0, mixed.size, len(SPECIALS))] = SPECIALS
    with np.errstate(over="ignore"):
        cases = _blocks(dtype) + [mixed.astype(dtype), mixed.astype(dtype)[::3],   # large (by blocks), strided
                                  np.asarray(mixed[7], dtype), np.array([np.nan, 709.5, 89.0, -745.5], dtype)]
    for x in cases:
        for name, rows in _bits_of_lines(x).items():
            with np.errstate(all="ignore"):
                got = getattr(R, name)(x)
            got = got if isinstance(got, tuple) else (got,)
            assert len(got) == len(rows), name
            for a, b in zip(got, rows):
                _same_flat(a, b)
            if x.ndim == 1 and x.size < _BIG and len(rows) > 1:   # and into out=
                outs = tuple(np.empty_like(x) for _ in rows)
                with np.errstate(all="ignore"):
                    getattr(R, name)(x, out=outs)
                for a, b in zip(outs, rows):
                    _same(a, b)


def test_exp_neg_abs_sets_the_sign_bit_as_abs_and_negative():
    x = np.array(SPECIALS + [-np.nan, 3.5, -2.25, 745.2, -745.2])
    with np.errstate(over="ignore"):
        cases = (x, x.astype(np.float32), x[::2], x.reshape(5, 5).T, np.asarray(x[2]), x.astype(np.float16),
                 x.astype(">f8"), x.astype("<f8"))
    for v in cases:
        with np.errstate(all="ignore"):
            want = np.exp(np.negative(np.abs(v)))
            got = R.exp_neg_abs(v)
        assert got.dtype == v.dtype   # (byte order kept, as before)
        _same_flat(got.astype(want.dtype), want)
    out = np.empty(2 * x.size)[::2]
    R.exp_neg_abs(x, out=out)
    _same(out.copy(), R.exp_neg_abs(x))


ROWS_CODE = [("1 - sigmoid(x)", "p1 = sigmoid_neg_rows(x)"), ("sigmoid(x)", "p1 = sigmoid_rows(x)"),
             ("3*sigmoid(2*x)", "p1 = sigmoid_rows(v1)"), ("1 - sigmoid(x*y)", "p1 = sigmoid_neg_rows(v1)"),
             ("-(0.3*log(sigmoid(x)) + 0.7*log(1 - sigmoid(x)))", "p1 = neg_softplus_sigmoid_rows(x)"),
             ("softplus(x) + softplus(-x)", "p1 = softplus_sigmoid_rows(x)")]


@pytest.mark.parametrize("expr, line", ROWS_CODE)
def test_generated_code_takes_the_rows_in_one_call(expr, line):
    """One call of the input, no exp line, no -x, no pair; within an ulp or two of the
    stable form spelled without shared calls (forward mode), at the edges too."""
    g = compile_grad(expr, stable=True)
    body = str(g.source).split("def f_grad")[1]
    assert line in body and body.count("_rows(") == 1, body
    assert not any(f in body for f in ("exp_quiet(", "exp_neg_abs(", "_pair", "= -x")), body
    rng = np.random.default_rng(52)
    args = [np.concatenate([EDGES, -EDGES, rng.uniform(-40, 40, 3000)]) for _ in g.inputs]
    with np.errstate(all="ignore"):
        got = g(*args)
        want = compile_grad(expr, stable=True, mode="forward")(*args)
    for a, b in zip([got[0], *got[1]], [want[0], *want[1]]):
        np.testing.assert_allclose(a, b, rtol=4.5e-16, atol=5e-324)


@pytest.mark.parametrize("expr", ["sigmoid(x) * sigmoid(-x)", "sigmoid(x) + sigmoid(-x)",
                                  "sigmoid(x) + (1 - sigmoid(x))**2", "log(sigmoid(x)) * sigmoid(x)"])
def test_a_slope_read_elsewhere_keeps_the_pair(expr):
    """Where the other sigmoid or the product is read elsewhere (or returned), no rows
    call: the pair, as before; values against forward mode."""
    g = compile_grad(expr, stable=True)
    body = str(g.source).split("def f_grad")[1]
    assert "sigmoid_rows(" not in body and "sigmoid_neg_rows(" not in body, body
    x = np.concatenate([EDGES, np.random.default_rng(53).uniform(-40, 40, 2000)])
    with np.errstate(all="ignore"):
        got, want = g(x), compile_grad(expr, stable=True, mode="forward")(x)
    for a, b in zip([got[0], *got[1]], [want[0], *want[1]]):
        np.testing.assert_allclose(a, b, rtol=2e-15, atol=5e-324)
