"""The NumPy backend's cheaper spellings (backends/numpy_render.py): masks and where's
conditions as boolean comparisons, sums as np.add.reduce, one exp(-|u|) shared by
sigmoid/softplus/logaddexp of u, exp(-2|x|) by tanh and sech2 (where np.tanh is a scalar
loop: tests/test_runtime_loops.py has the other machines' form), 1 + x by log1p and its
derivative. Each must give the same bits as the generic spelling (trace.render.Renderer),
at NaN, ±inf and ±0 too, and keep float32 float32 (tanh from the shared exp: within two
ulps of np.tanh). Also the runtime helpers behind them: log1p and expm1 against NumPy's,
and each helper run by blocks against one call, with NumPy's log1p, expm1 and tanh loops
taken as SIMD and as scalar (ufunc_loops.SIMD)."""

import numpy as np
import pytest

from exprcompiler import compile_grad, ufunc_loops
from exprcompiler.backends import numpy_backend
from exprcompiler.trace.render import Renderer

EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-310, -2.5, 3.0])

CASES = [  # expression, shapes, the names whose arrays get the edge values
    ("h = relu(X @ W + b); sum(h * h) + sum(relu(v))", {"X": ("n", 3), "W": (3, 2), "b": (2,), "v": (8,)}),
    ("sum(maximum(v, u) * v) + sum(minimum(u, 0.5)) + sum(relu(u) * v)", {"v": (8,), "u": (8,)}),
    ("sum(where(v > u, v * u, u)) + mean(abs(v)) + sum(relu(v - u) * v)", {"v": (8,), "u": (8,)}),
    ("sum(relu(A) * A, axis=1, keepdims=True)[0, 0] + sum(A)", {"A": (8, 3)}),
    ("sum(logaddexp(v, u) + hypot(u, v) + xlogy(u, v) + log(v))", {"v": (8,), "u": (8,)}),
    ("sum(log1p(v) * u + expm1(u))", {"v": (8,), "u": (8,)}),   # log1p_of_sum: runtime.log1p's bits
]


class _Generic(Renderer):
    """trace.render.Renderer with the NumPy renderer's extra interface, doing nothing."""
    helpers, respelled = frozenset(), frozenset()

    def __init__(self, trace, spell, name_of, named=None, shared=None, taken=(), uses=None, rhs_all=False,
                 slots=None, dead=None, **given):   # (given: what generate has read of the trace, reads and codes)
        super().__init__(trace, spell, name_of, named=named, rhs_all=rhs_all, slots=slots, **given)

    def lines_before(self, i):
        return []


def _inputs(shapes, n=8):
    rng = np.random.default_rng(1)
    out = {}
    for k, shape in shapes.items():
        shape = tuple(n if isinstance(d, str) else d for d in shape)
        a = rng.normal(size=shape)
        a.reshape(-1)[:min(a.size, EDGES.size)] = EDGES[:a.size]
        out[k] = a
    return out


def _both(trace):
    """The generated function as the backend writes it, and with the generic spelling."""
    source, _ = numpy_backend.generate(trace)
    fn = numpy_backend.load(source, "f")
    real = numpy_backend.NumpyRenderer
    try:
        numpy_backend.NumpyRenderer = _Generic
        plain_source, _ = numpy_backend.generate(trace)
    finally:
        numpy_backend.NumpyRenderer = real
    return fn, numpy_backend.load(plain_source, "f"), source, plain_source


def _flat(results):
    return [np.asarray(r) for r in (results if isinstance(results, tuple) else (results,))]


@pytest.mark.parametrize("expr, shapes", CASES)
def test_the_cheaper_spellings_give_the_generic_bits(expr, shapes):
    g = compile_grad(expr, shapes=shapes)
    fn, plain, source, plain_source = _both(g.trace)
    assert source != plain_source  # the case exercises a rewritten spelling
    args = _inputs(shapes)
    with np.errstate(all="ignore"):
        got = _flat(fn(*[args[k] for k in g.inputs]))
        want = _flat(plain(*[args[k] for k in g.inputs]))
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a.view(np.uint64) if a.ndim else a.reshape(1).view(np.uint64),
                              b.view(np.uint64) if b.ndim else b.reshape(1).view(np.uint64))


def test_relu_adjoint_is_a_boolean_mask_and_bias_adjoints_reduce_directly():
    g = compile_grad("h = relu(X @ W + b); mean(h @ w)", ["W", "b", "w"],
                     shapes={"X": ("n", 3), "W": (3, 2), "b": (2,), "w": (2,)})
    assert "> 0.0)" in g.source and "gt(" not in g.source.split("def ")[1]
    assert "np.add.reduce(" in g.source and "np.sum(" not in g.source
    assert "np.sum(" in compile_grad("sum(A*A)", shapes={"A": (2, 2)}).source  # every element: as it was


@pytest.mark.parametrize("expr, float_mask", [("relu(x)", True), ("2 * relu(x)", True),
                                               ("relu(x) * relu(y)", False)])
def test_a_mask_times_a_python_float_keeps_the_float_mask(expr, float_mask):
    """A seed (1.0) or a constant times the mask stays gt(): float * bool would be
    float64 in a float32 function. An array times it takes the boolean mask."""
    g = compile_grad(expr)
    assert ("gt(" in g.source.split("def ")[1]) == float_mask
    g32 = compile_grad(expr, dtype="float32")
    x = np.array([-1.0, 0.0, 2.0, np.nan], dtype=np.float32)
    value, grads = g32(*[x] * len(g32.inputs))
    assert all(d.dtype == np.float32 for d in grads)


def test_float32_masks_and_sums_stay_float32():
    shapes = {"X": ("n", 3), "W": (3, 2), "b": (2,)}
    g = compile_grad("h = relu(X @ W + b); mean(h * h)", ["W", "b"], shapes=shapes, dtype="float32")
    args = {k: v.astype(np.float32) for k, v in _inputs(shapes).items()}
    args["X"][np.isnan(args["X"]) | np.isinf(args["X"])] = 1.0
    value, (dW, db) = g(**args)
    assert dW.dtype == np.float32 and db.dtype == np.float32
    g64 = compile_grad("h = relu(X @ W + b); mean(h * h)", ["W", "b"], shapes=shapes)
    _, (dW64, db64) = g64(**{k: v.astype(np.float64) for k, v in args.items()})
    np.testing.assert_allclose(dW, dW64, rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(db, db64, rtol=2e-5, atol=1e-5)


def test_a_value_and_its_derivative_share_one_exp():
    for expr, lines in (("log(1 + exp(x))", ["p1 = softplus_pair(x)", "v1 = p1[0]", "x_bar = p1[1]"]),
                        ("sigmoid(x)", ["p1 = sigmoid_rows(x)", "v1 = p1[0]", "x_bar = p1[1]"]),
                        ("log(exp(a) + exp(b))", ["p1 = logaddexp_rows(a, b)", "v1 = p1[0]", "b_bar = p1[2]"])):
        body = compile_grad(expr, stable=True).source.split("def ")[1]
        assert [ln.strip() for ln in body.splitlines()[1:4]] == lines
        assert sum(body.count(f) for f in ("exp_quiet(", "exp_neg_abs(", "np.exp(", "sigmoid(", "softplus(",
                                           "logaddexp_rows(", "softplus_pair(", "sigmoid_rows(")) == 1
    body = compile_grad("hypot(x, y) + e1", stable=True).source.split("def ")[1]
    assert "t1 = v1 == 0.0" in body and "where_rare(t1, 0.0, y / t2)" in body   # a boolean condition
    g = compile_grad("logaddexp(e1, e2)", wrt=["e1"])   # the e variables avoid the user's names
    assert "e3 = exp_neg_abs(" in g.source and g(1.0, 3.0)[0] == np.logaddexp(1.0, 3.0)
    body = compile_grad("log(exp(a) + exp(b))", wrt=["a"], stable=True).source.split("def ")[1]
    assert "exp_neg_abs(" in body and "sigmoid_e(" in body and "logaddexp_rows" not in body   # one partial


def test_xlogy_shares_the_log_of_its_derivative():
    from exprcompiler import runtime
    # (x*log(x)'s value and gradient alone are one xlogx_rows call: tests/test_numpy_xlogx.py)
    g = compile_grad("sin(x*log(x))", stable=True)
    body = g.source.split("def ")[1]
    assert body.count("np.log(") == 1 and "xlogy" not in body
    x = np.tile(np.array([0.0, -0.0, 1e-300, 0.5, 2.0, np.inf, np.nan, -1.0]), 5000)   # a batch of blocks
    with np.errstate(all="ignore"):
        v, (d,) = g(x)
        xlogx = runtime.xlogy(x, x)
        assert np.array_equal(v, np.sin(xlogx), equal_nan=True)
        slope = np.cos(xlogx)
        assert np.array_equal(d, np.where(x == 0, 0.0, slope * (x / x)) + slope * np.log(x), equal_nan=True)


def test_xlogy_with_a_shared_log_keeps_the_sign_of_its_zero():
    """share_logs's where(x == 0, 0.0, x * log(y)) beside a -0.0 of the trace: the two
    constants compare equal, and were kept once, so x = 0 gave -0.0 (the C backend and
    runtime.xlogy give 0.0). Found by the backend fuzz."""
    from exprcompiler import runtime
    x = np.array([0.0, -0.0, 1e-300, 0.5])
    with np.errstate(all="ignore"):
        for text, y in (("xlogy(x, x * -0.0)", x * -0.0), ("xlogy(x, -0.0 - x)", -0.0 - x)):
            v, _ = compile_grad(text)(x)
            want = runtime.xlogy(x, y)
            assert np.array_equal(v, want, equal_nan=True) and np.array_equal(np.signbit(v), np.signbit(want)), text


def test_shared_exps_agree_with_the_op_calls():
    """sigmoid(-x) from E = exp(x) is 1/(1 + E), the op's own call E'/(1 + E') with
    E' = exp(-x): both within an ulp or so of the exact value, so within a few ulps of
    each other where the result is a normal float (1/(1 + E) is 0 from x = 709.78, where
    E' is still subnormal); softplus and sigmoid(x) bit for bit."""
    rng = np.random.default_rng(2)
    for expr, rtol in (("sum(softplus(v))", 0.0), ("sum(sigmoid(v))", 9e-16), ("sum(log(1 - sigmoid(v)))", 0.0)):
        g = compile_grad(expr, shapes={"v": (8,)}, stable=True)
        fn, plain, source, _ = _both(g.trace)
        assert "exp_quiet(" in source or "softplus_pair(" in source or "sigmoid_rows(" in source
        for v in (_inputs({"v": (8,)})["v"], rng.uniform(-40, 40, 40000), rng.uniform(-800, 800, 40000)):
            with np.errstate(all="ignore"):
                got, want = _flat(fn(v)), _flat(plain(v))
            for a, b in zip(got, want):
                assert a.dtype == b.dtype and a.shape == b.shape
                np.testing.assert_allclose(a, b, rtol=rtol, atol=2.2250738585072014e-308 if rtol else 0.0)


def test_where_rare_is_np_where():
    """where_rare(c, x, y) returns y itself only where np.where would give y's values,
    dtype and shape; otherwise it is np.where."""
    from exprcompiler.runtime import where_rare
    y, y32 = np.arange(4.0), np.arange(4.0, dtype=np.float32)
    none, some = np.zeros(4, bool), np.array([False, True, False, False])
    assert where_rare(none, 0.0, y) is y and where_rare(none, np.float64(2), y32) is not y32
    for c in (none, some):
        for x, yy in ((0.5, y), (0.5, y32), (np.float64(2.0), y32), (np.ones(4), y32), (np.ones((2, 4)), y),
                      (np.float64(3.0), 5.0)):
            want = np.where(c, x, yy)
            got = where_rare(c, x, yy)
            assert np.asarray(got).dtype == want.dtype and np.shape(got) == want.shape
            assert np.array_equal(got, want)


def _same_or_close(got, want, rtol):
    """NaN, ±inf and the sign of zero exactly, the rest within rtol."""
    special = ~np.isfinite(want) | (want == 0)
    assert np.array_equal(np.signbit(got[special]), np.signbit(want[special]))
    assert np.array_equal(got[special], want[special], equal_nan=True)
    np.testing.assert_allclose(got[~special], want[~special], rtol=rtol, atol=0)


def _loops(monkeypatch, simd: bool):
    """Take NumPy's log1p, expm1 and tanh loops as SIMD (or not), whatever they are here."""
    for name in ufunc_loops.LOOPS:
        monkeypatch.setitem(ufunc_loops.SIMD, name, simd)


def test_tanh_and_its_derivative_share_one_exp(monkeypatch):
    """Where np.tanh is a scalar loop, tanh(x) and sech2(x) from one w = exp(-2|x|):
    sech2's bits, tanh within about two ulps of np.tanh (its own at |tanh x| < 1/2), over
    blocks of mostly small, mostly large and mixed points, and at the edges."""
    from exprcompiler import runtime
    _loops(monkeypatch, False)
    g = compile_grad("tanh(x)", stable=True)
    body = g.source.split("def ")[1]
    assert [ln.strip() for ln in body.splitlines()[1:4]] == [
        "e1 = exp_neg2abs(x)", "v1 = tanh_of_exp(x, e1)", "x_bar = sech2_of_exp(e1)"]
    rng = np.random.default_rng(3)
    edges = np.array([0.0, -0.0, 5e-324, -5e-324, 0.3, -0.55, 0.5493061443340548, 19.0, -710.0, 1e308,
                      np.inf, -np.inf, np.nan])
    for x in (edges, rng.uniform(-0.6, 0.6, 100001), rng.uniform(-2, 2, 100001), rng.uniform(-40, 40, 100001),
              np.concatenate([rng.uniform(-3, 3, 70000), np.tile(edges, 10)])):
        with np.errstate(all="ignore"):
            value, (d,) = g(x)
            _same_or_close(value, np.tanh(x), 4.5e-16)
            assert np.array_equal(d, runtime.sech2(x), equal_nan=True)
    x32 = rng.uniform(-3, 3, 1000).astype(np.float32)
    value, (d,) = compile_grad("tanh(x)", stable=True, dtype="float32")(x32)
    assert value.dtype == d.dtype == np.float32
    _same_or_close(value, np.tanh(x32), 5e-7)


@pytest.mark.parametrize("simd", [True, False])
@pytest.mark.parametrize("name, ref, lo, hi", [("log1p", np.log1p, -1.0, 20.0), ("expm1", np.expm1, -3.0, 3.0)])
def test_log1p_and_expm1_helpers_give_numpys_values(name, ref, lo, hi, simd, monkeypatch):
    """runtime.log1p (log with the rounding error of 1 + x) and runtime.expm1 (exp(x) - 1
    away from 0), or NumPy's own where its loops are SIMD: NumPy's values within about an
    ulp, its specials and signed zeros exactly, its warnings, float32 kept; the same bits
    run block by block or whole."""
    from exprcompiler import runtime, runtime_log1p
    _loops(monkeypatch, simd)
    f = getattr(runtime, name)
    blocked = runtime_log1p._log1p_of_sum if name == "log1p" else f
    rng = np.random.default_rng(4)
    edges = np.array([0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-17, 0.5, 0.7, -0.7, 1.0, -1.0, 2.0, 710.0,
                      -710.0, 2.0 ** 53, 1e308, -1e308, np.inf, -np.inf, np.nan, -1.5])
    wide = np.concatenate([rng.uniform(lo, hi, 50000), 10.0 ** rng.uniform(-300, 2, 50000),
                           -(10.0 ** rng.uniform(-300, 0, 50000)), np.tile(edges, 100)])
    with np.errstate(over="ignore"):   # ±1e308 to float32: ±inf
        wide32 = wide.astype(np.float32)
    for x in (edges, wide, rng.uniform(lo, hi, 100001), wide32):
        with np.errstate(all="ignore"):
            got, want = f(x), ref(x)
        assert got.dtype == want.dtype and got.shape == want.shape
        # (two ulps: NumPy's log loops are not correctly rounded on every CPU, which the
        # correction cannot see: the AVX-512 one is an ulp off at 1 - 2^-52, where near
        # |x| ~ 1e-16 the log is the larger term, and its float32 one an ulp or two, while
        # np.log1p's float32 is itself an ulp off the other way at some points)
        _same_or_close(got, want, 4.5e-16 if x.dtype == np.float64 else 4.5e-7)
        with np.errstate(all="ignore"):
            assert np.array_equal(got, f(x) if simd else getattr(blocked, "__wrapped__", f)(x, None),
                                  equal_nan=True)
    for v in edges:
        with np.errstate(all="ignore"):
            got, want = f(v), ref(v)
        assert type(got) is type(want)
        _same_or_close(np.array([got]), np.array([want]), 2.5e-16)
    with pytest.warns(RuntimeWarning):
        f(np.array([-2.0, 0.5]) if name == "log1p" else np.array([1000.0, 0.1]))


@pytest.mark.parametrize("simd", [True, False])
def test_blocked_helpers_give_the_bits_of_one_call(simd, monkeypatch):
    """Each helper run block by block (runtime_blocks._blocked) gives what one call on
    the whole array gives, with blocks of special values among ordinary ones."""
    from exprcompiler import runtime as R
    from exprcompiler.runtime_blocks import _BLOCK
    from exprcompiler.runtime_log1p import _log1p_of_sum
    from exprcompiler.runtime_tanh import _sech2_of_own_exp, _sech2_of_own_tanh
    _loops(monkeypatch, simd)
    rng = np.random.default_rng(5)
    n = 3 * _BLOCK + 17
    x = rng.uniform(-30, 30, n)
    y = rng.uniform(-30, 30, n)
    x[rng.integers(0, n, 40)] = rng.choice(EDGES, 40)
    y[:_BLOCK] = x[:_BLOCK]   # a block of ties
    with np.errstate(invalid="ignore"):   # inf - inf among the ties
        d = x - y
    e, E = R.exp_neg_abs(d), R.exp_quiet(x)
    calls = [(R.sigmoid, x), (R.softplus, x), (R.logaddexp, x, y), (R.sigmoid_of_exp, E), (R.softplus_of_exp, x, E),
             (R.sigmoid_e, d, e), (R.sigmoid_neg_e, d, e), (R.exp_neg_abs, d), (R.softplus_e, d, e),
             (R.logaddexp_e, x, y, e), (R.xlogy, x, y), (R.hypot, x * 1e160, y), (R.log1mexp, -np.abs(x)),
             (R.cosm1, x), (_sech2_of_own_exp, x), (_sech2_of_own_tanh, x), (R.sech2_of_tanh, x, np.tanh(x)),
             (R.sqrt1pm1, x), (R.exp_neg2abs, x), (R.sech2_of_exp, e), (R.tanh_of_exp, x, R.exp_neg2abs(x)),
             (_log1p_of_sum, x, 1.0 + x), (_log1p_of_sum, x, None), (R.sigmoid_pair_of_exp, E),
             (R.sigmoid_pair_e, d, e), (R.expm1_pair, x)]
    with np.errstate(all="ignore"):
        assert np.array_equal(R.sigmoid_neg_e(d, e), R.sigmoid_e(y - x, e), equal_nan=True)
    for f, *args in calls:
        with np.errstate(all="ignore"):
            # (a pair helper's two results as the rows of one array)
            got, want = np.asarray(f(*args)), np.asarray(f.__wrapped__(*args))
            got32 = np.asarray(f(*[a if a is None else a.astype(np.float32) for a in args]))
        assert got.dtype == want.dtype and got.shape == want.shape, f.__name__
        assert np.array_equal(got, want, equal_nan=True), f.__name__
        assert got32.dtype == np.float32, f.__name__


def _imported_and_read(source: str) -> tuple[set, set]:
    import ast
    tree = ast.parse(source)
    imported = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for a in node.names}
    read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return imported, read


@pytest.mark.parametrize("stable", [False, True])
def test_generated_source_imports_only_what_it_calls(stable):
    """Every runtime name the generated module imports is called in it (the catalogue's
    formulas, whose stable forms fuse lines into shared helpers: x*log(x)'s derivative
    row left where_rare and where_rare_kept imported with no line calling them)."""
    from exprcompiler.stability.catalogue import CATALOGUE
    for entry in CATALOGUE:
        source = compile_grad(entry.expr, shapes=entry.shape_map, stable=stable).source
        imported, read = _imported_and_read(str(source))
        assert imported <= read, (entry.expr, stable, imported - read)
