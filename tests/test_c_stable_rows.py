"""The C stable forms made cheaper for issue 18's budget (benchmarks/bench_c_stable_rows.py):
kernels without a libmvec call on 8 lanes (c_tiles.WIDE_LANES: softplus and sigmoid
from c_exp's exp and c_log's log, log1mexp's log c_log's, subnormals too: xc_log_fma_sub),
log1mexp, its slope and its slope's expm1 by one reduction of x and one log of
u = 1 - e^x rounded once (c_special), e^x - 1 and e^x on tiles of inner points from
2^k itself (c_exp.xc_expm1_inner, xc_exp_inner; subnormal x inner too, -0.0 not), and
the tiles' test as an OR of 64-bit lanes (c_tiles.tiles), the tiles asking for their
inputs ahead (c_tiles.PREFETCH_AHEAD), arccosh's log1p correction without a division
(c_special._ACOSH). Accuracy against mpmath over wide ranges and the edges, both
backends; bits of the inner forms against the full forms; a point's bits independent
of its tile and of where the batch ends."""

import math

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import c_build, c_special, c_tiles

from test_c_exp import vectorized
from test_c_exp_inner import _same, assert_tiles_agree
from test_vm import same_bits

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

_RNG = np.random.default_rng(1818)
EPS = 2.0 ** -52
TINY = 2.2250738585072014e-308


def _log1mexp(x):
    """log(1 - e^x) at 60 digits, each form where it loses nothing."""
    with mpmath.workdps(60):
        x = mpmath.mpf(x)
        return mpmath.log(-mpmath.expm1(x)) if x > -0.5 else mpmath.log1p(-mpmath.exp(x))


def _slope(x):
    with mpmath.workdps(60):
        x = mpmath.mpf(x)
        return -1 / mpmath.expm1(-x)


def _ulps(got, xs, exact) -> float:
    """The largest error in ulps of the exact value (exact values 0, or below the normal
    range, skipped)."""
    worst = 0.0
    for x, y in zip(np.asarray(xs).tolist(), np.asarray(got).tolist()):
        r = exact(x)
        if r == 0 or abs(r) < TINY or not mpmath.isfinite(r):
            continue
        worst = max(worst, float(abs(mpmath.mpf(y) - r) / math.ulp(float(r))) if math.isfinite(y) else math.inf)
    return worst


def _negative_points(n: int, rng=_RNG) -> np.ndarray:
    """x < 0 from -745 to -1e-300: uniform near -ln 2 and on [-3, 0], every binade."""
    mag = 2.0 ** rng.uniform(-996, math.log2(745.0), n)
    return -np.concatenate([mag, rng.uniform(0, 3, n), math.log(2) + rng.uniform(-0.01, 0.01, n),
                            rng.uniform(36.0, 38.0, n // 4)])


@pytest.fixture(scope="module")
def log1mexp_kernels():
    return {backend: compile_grad("log(1 - exp(x))", backend=backend, stable=True,
                                  **({"threads": 1} if backend == "c" else {})) for backend in ("c", "numpy")}


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_log1mexp_value_and_slope_against_mpmath(log1mexp_kernels, backend):
    xs = _negative_points(1500)
    value, (slope,) = log1mexp_kernels[backend](xs)
    assert _ulps(value, xs, _log1mexp) <= 2.5
    assert _ulps(slope, xs, _slope) <= 3.0


def test_log1mexp_backends_agree(log1mexp_kernels):
    xs = np.concatenate([_negative_points(3000), [-800.0, -709.9, -709.7, -693.5, -1e-320, -5e-324]])
    (v, (d,)), (w, (e,)) = log1mexp_kernels["c"](xs), log1mexp_kernels["numpy"](xs)
    np.testing.assert_allclose(v, w, rtol=6e-16, atol=0)
    np.testing.assert_allclose(d, e, rtol=8e-16, atol=0)


def test_log1mexp_edges():
    g = compile_grad("log(1 - exp(x))", backend="c", stable=True)
    x = np.array([0.0, -0.0, -np.inf, np.nan, 1.0, 30.0, np.inf, -745.5, -720.0, -5e-324])
    with np.errstate(all="ignore"):
        value, (slope,) = g(x)
    assert value[0] == value[1] == -np.inf and slope[0] == slope[1] == -np.inf
    assert value[2] == 0.0 and np.signbit(value[2]) and slope[2] == 0.0 and np.signbit(slope[2])
    assert np.isnan(value[3:7]).all() and np.isnan(slope[3])
    np.testing.assert_allclose(slope[4:7], -1.0 / np.expm1(-x[4:7]), rtol=4.5e-16)
    # below -709.78 both are -e^x (a subnormal float), to the ulp of the subnormals
    exact = -np.exp(x[7:9])
    np.testing.assert_allclose(value[7:9], exact, rtol=0, atol=5e-324)
    np.testing.assert_allclose(slope[7:9], exact, rtol=0, atol=5e-324)
    assert value[9] == pytest.approx(math.log(5e-324), rel=1e-15)


@pytest.fixture(scope="module")
def helpers():
    names = [n for pair in c_special.INNER.items() for n in (pair[0], pair[1][0])]
    return vectorized((*names, "xc_expm1", "xc_expm1_shared", "xc_exp_shared", "xc_expm1_inner", "xc_exp_inner",
                       "xc_exp_inner_at", "xc_exp_neg_inner_at"))


def _everywhere(n: int, bound: float, rng=_RNG) -> np.ndarray:
    mag = 2.0 ** rng.uniform(-1074, math.log2(bound), n)
    return np.concatenate([rng.uniform(-bound, bound, n), rng.choice([-1, 1], n) * mag,
                           rng.uniform(-0.0014, 0.0014, n), [0.0, 5e-324, -5e-324, bound, -bound, 2.0 ** -1022]])


def test_the_exp_inner_points_take_the_subnormals(helpers):
    """xc_exp_inner_at holds from 5e-324 up, and at +0.0, not at -0.0 (where the full form
    gives -0.0 and fma(1, p, +0.0) +0.0)."""
    at = helpers["xc_exp_inner_at"]
    assert at(np.array([5e-324, -5e-324, 1e-310, -2.0 ** -1022, 0.0, 690.0, -690.0])).tolist() == [1.0] * 7
    assert at(np.array([-0.0, np.nextafter(690.0, 1e3), np.nan, np.inf, -np.inf])).tolist() == [0.0] * 5


def test_the_inner_forms_are_the_full_forms_bit_for_bit(helpers):
    xs = _everywhere(20000, 690.0)
    assert (helpers["xc_exp_inner_at"](xs) == 1.0).all()
    for full in ("xc_expm1", "xc_expm1_shared"):
        assert same_bits(helpers["xc_expm1_inner"](xs), helpers[full](xs)), full
    assert same_bits(helpers["xc_exp_inner"](xs), helpers["xc_exp_shared"](xs))
    # log1mexp, its slope and its slope's expm1 on |x| <= 690, both signs (NaN above 0)
    xs = _everywhere(20000, 690.0)
    assert (helpers["xc_exp_neg_inner_at"](xs) == 1.0).all()
    with np.errstate(all="ignore"):
        for name in ("xc_log1mexp", "xc_log1mexp_slope", "xc_expm1_neg_shared"):
            inner, at = c_special.INNER[name]
            assert at == "xc_exp_neg_inner_at"
            assert same_bits(helpers[inner](xs), helpers[name](xs)), name


def test_the_slope_and_its_expm1_on_both_sides(helpers):
    """The slope -e^x/u and expm1(0.0 - x) = u/e^x (xc_expm1_neg_shared, beside log1mexp in
    a kernel: c_forms) on both sides of 0 (above, where log1mexp is NaN, within 2.2 ulps: u
    and e each rounded once, then the quotient; 12,000 points of either side: 2.11 and 2.17).
    Points of its own generator: the bound held at 2.0 only by the draws other tests left."""
    rng = np.random.default_rng(1401)
    xs = np.concatenate([_negative_points(400, rng), rng.uniform(0.0, 40.0, 400), 2.0 ** rng.uniform(-1000, 9.4, 300),
                         [708.0, 709.5, 800.0]])

    def expm1_neg(x):
        with mpmath.workdps(60):
            return mpmath.expm1(-mpmath.mpf(x))
    with np.errstate(all="ignore"):
        assert _ulps(helpers["xc_expm1_neg_shared"](xs), xs, expm1_neg) <= 2.3
        assert _ulps(helpers["xc_log1mexp_slope"](xs), xs, _slope) <= 3.0
        edges = np.array([0.0, -0.0, -np.inf, np.inf, np.nan, -710.0])
        assert same_bits(helpers["xc_expm1_neg_shared"](edges)[:4], np.array([0.0, 0.0, np.inf, -1.0]))
        assert np.isnan(helpers["xc_expm1_neg_shared"](edges)[4]) and helpers["xc_expm1_neg_shared"](edges)[5] == np.inf


@pytest.mark.parametrize("expr", ["log(1 - exp(x))", "exp(x) - 1", "1 - exp(x)", "expm1(x) * y"])
def test_a_points_bits_do_not_depend_on_its_tile(expr):
    g = compile_grad(expr, backend="c", stable=True)
    assert "_point_inner" in g.source
    n = 64 * 30 + 5
    xs = [_RNG.permutation(_everywhere(1000, 600.0))[:n] for _ in g.inputs]
    if "log" in expr:
        xs[0] = -np.abs(xs[0])
    edged = [x.copy() for x in xs]
    hit = np.arange(7, n, 64 * 2)
    edges = [-0.0, np.nan, 700.0, -720.0, np.inf, -np.inf, 1e300]
    for x in edged:
        x[hit] = np.resize(edges, hit.size)
    kept = np.ones(n, bool)
    kept[hit] = False
    with np.errstate(all="ignore"):
        assert _same(g(*xs), g(*edged), kept)


def test_the_tiles_test_is_an_or_of_64_bit_lanes():
    source = compile_grad("exp(x) - 1", backend="c", stable=True).source
    assert "long long edge = 0;" in source and "#pragma omp simd reduction(|: edge)" in source
    assert "reduction(&: inner)" not in source
    assert "long long edge = 0;" in "\n".join(c_tiles.tiles("", "f", "in0[i]", "in0[i]"))


def test_log1mexp_takes_one_log_of_one_argument():
    """No select between log(-expm1(x)) and log1p(-e^x) (the former form): one argument,
    one log, c_log's own (no libmvec call: the kernel runs c_tiles.WIDE_LANES lanes)."""
    source = compile_grad("log(1 - exp(x))", backend="c", stable=True).source
    inner = source[source.index("double xc_log1mexp_inner("):]
    inner = inner[:inner.index("\n}")]
    assert inner.count("xc_log_fma_sub(") == 1 and "above" not in inner and "xc_select" not in inner
    assert f"#define XC_LANES_f_grad_point_inner simdlen({c_tiles.WIDE_LANES})" in source


def test_exp_minus_one_against_mpmath():
    """Within 2 ulps (c_exp: a relative error within 1.5 * 2^-52; 1.92 ulps on 20,000
    points of [-1, 1]), on points of the test's own generator (the bound was 1.5, which
    held only for the draws the file's other tests left)."""
    g = compile_grad("exp(x) - 1", backend="c", stable=True, threads=1)
    xs = _everywhere(1500, 700.0, np.random.default_rng(1960))
    with np.errstate(all="ignore"):
        value, (grad,) = g(xs)

    def expm1(x):
        with mpmath.workdps(60):
            return mpmath.expm1(mpmath.mpf(x))

    def exp(x):
        with mpmath.workdps(60):
            return mpmath.exp(mpmath.mpf(x))
    assert _ulps(value, xs, expm1) <= 2.0
    assert _ulps(grad, xs, exp) <= 1.5
    assert same_bits(g(np.array([0.0, -0.0]))[0], np.array([0.0, -0.0]))


def _acosh(x):
    with mpmath.workdps(60):
        return mpmath.acosh(mpmath.mpf(x))


def _acosh_slope(x):
    with mpmath.workdps(60):
        x = mpmath.mpf(x)
        return 1 / mpmath.sqrt((x - 1) * (x + 1))


def test_arccosh_corrects_its_log_without_a_division():
    """log1p(t)'s correction times x - r, which is 1/u (c_special._ACOSH): no division."""
    source = compile_grad("arccosh(x)", backend="c", stable=True).source
    body = source[source.index("double xc_acosh("):]
    body = body[body.index("{"):body.index("\n}")]
    assert "/" not in body and "(t - (u - 1.0)) * (x - r)" in body


def test_arccosh_against_mpmath():
    g = compile_grad("arccosh(x)", backend="c", stable=True, threads=1)
    xs = np.concatenate([1.0 + 2.0 ** _RNG.uniform(-52, -1, 1500), _RNG.uniform(1.0, 10.0, 1500),
                         2.0 ** _RNG.uniform(3.3, 30.0, 1000), 2.0 ** _RNG.uniform(30.0, 1000.0, 500),
                         [1.0 + 2.0 ** -52, 268435456.0, np.nextafter(268435456.0, 1e300), 1.5, 1e300]])
    value, (slope,) = g(xs)
    assert _ulps(value, xs, _acosh) <= 3.0
    assert _ulps(slope, xs, _acosh_slope) <= 2.5
    with np.errstate(all="ignore"):
        value, (slope,) = g(np.array([1.0, 0.5, -2.0, np.nan, np.inf, 1.0 + 2.0 ** -52]))
    assert value[0] == 0.0 and slope[0] == np.inf and np.isnan(value[1:4]).all() and value[4] == np.inf
    assert value[5] == pytest.approx(float(_acosh(1.0 + 2.0 ** -52)), rel=2e-16)


def test_the_tiles_ask_for_their_inputs_ahead():
    """c_tiles.tiles: the contiguous loop asks for the cache lines of the inputs its test
    reads, PREFETCH_AHEAD tiles ahead, by an address computed as a number; the strided
    loop (an input at a stride) does not."""
    source = compile_grad("expm1(x) * y", backend="c", stable=True).source
    asks = [line for line in source.splitlines() if "XC_PREFETCH((const void *)" in line]
    assert asks and all("(size_t)(in0 + i0)" in line for line in asks)
    assert f"({c_tiles.PREFETCH_AHEAD} * XC_TILE + k)" in asks[0]
    loop = "\n".join(c_tiles.tiles("", "f", "in0[i * st0], in1[i], &out0[i]", "in0[i * st0], in1[i]"))
    assert "(size_t)(in1 + i0)" in loop and "(in0 + i0)" not in loop


@pytest.mark.parametrize("expr", ["sigmoid(x)*(1 - sigmoid(x))", "exp(x) - 1"])
def test_a_points_bits_do_not_depend_on_the_batchs_length(expr):
    """Batches that end anywhere in a tile, or within PREFETCH_AHEAD tiles: the same bits as
    the points in a longer batch."""
    g = compile_grad(expr, backend="c", stable=True, threads=1)
    assert "XC_PREFETCH(" in g.source
    xs = _RNG.uniform(-20.0, 20.0, 64 * 9 + 3)
    value, (grad,) = g(xs)
    for n in (1, 5, 63, 64, 65, 255, 256, 257, 64 * 5 + 1):
        x = xs[:n].copy()
        v, (d,) = g(x)
        assert same_bits(v, value[:n]) and same_bits(d, grad[:n]), n


def _softplus(x):
    with mpmath.workdps(60):
        return mpmath.log1p(mpmath.exp(mpmath.mpf(x)))


def _sigmoid(x):
    with mpmath.workdps(60):
        return 1 / (1 + mpmath.exp(-mpmath.mpf(x)))


def _sigmoid_slope(x):
    with mpmath.workdps(60):
        e = mpmath.exp(-abs(mpmath.mpf(x)))
        return e / (1 + e) ** 2


def _wide_points(n: int) -> np.ndarray:
    """Both signs: uniform on [-40, 40] and [-760, 760], every binade (subnormals too),
    and the edges of the exp's tests and of its range."""
    return np.concatenate([_RNG.uniform(-40.0, 40.0, n), _everywhere(n // 2, 745.0),
                           _RNG.uniform(-760.0, 760.0, n // 4),
                           [-0.0, 690.0, -690.0, np.nextafter(690.0, 1e3), 708.0, -708.0, 709.5, -744.0, 36.0, -37.5]])


def test_softplus_and_sigmoid_against_mpmath():
    """c_special's xc_softplus and xc_sigmoid (c_exp's exp and c_log's log inline): value
    and gradient of log(1 + exp(x)) and of 1/(1 + exp(-x)), tiles and their edges."""
    xs = _wide_points(1500)
    value, (grad,) = compile_grad("log(1 + exp(x))", backend="c", stable=True, threads=1)(xs)
    assert _ulps(value, xs, _softplus) <= 2.0
    assert _ulps(grad, xs, _sigmoid) <= 2.5
    value, (grad,) = compile_grad("1/(1 + exp(-x))", backend="c", stable=True, threads=1)(xs)
    assert _ulps(value, xs, _sigmoid) <= 2.5
    assert _ulps(grad, xs, _sigmoid_slope) <= 3.1   # (c_exp.xc_sigmoid_slope_shared; two divisions: 3.6)


def test_softplus_and_sigmoid_edges():
    g = compile_grad("log(1 + exp(x))", backend="c", stable=True)
    x = np.array([-np.inf, np.inf, np.nan, -0.0, 0.0, -800.0, 800.0, 5e-324])
    with np.errstate(all="ignore"):
        value, (grad,) = g(x)
    assert same_bits(value[[0, 1, 5, 6]], np.array([0.0, np.inf, 0.0, 800.0]))
    assert same_bits(grad[[0, 1, 5, 6]], np.array([0.0, 1.0, 0.0, 1.0]))
    assert np.isnan(value[2]) and np.isnan(grad[2])
    assert value[3] == value[4] == math.log(2.0) and grad[3] == grad[4] == 0.5 and value[7] == math.log(2.0)


def test_the_backends_agree_on_softplus_and_sigmoid():
    xs = _wide_points(2000)
    for expr in ("log(1 + exp(x))", "1/(1 + exp(-x))"):
        (v, (d,)), (w, (e,)) = (compile_grad(expr, backend=b, stable=True)(xs) for b in ("c", "numpy"))
        np.testing.assert_allclose(v, w, rtol=7e-16, atol=0)
        np.testing.assert_allclose(d, e, rtol=1e-15, atol=1e-300)


def test_log1mexp_at_subnormal_arguments_of_its_log():
    """u = 1 - e^x is a subnormal for |x| < 2^-1022: c_log's log scales it (xc_log_fma_sub)."""
    g = compile_grad("log(1 - exp(x))", backend="c", stable=True, threads=1)
    xs = -np.concatenate([2.0 ** _RNG.uniform(-1074, -1022, 500), [5e-324, 1e-310, 2.0 ** -1022, 2.0 ** -1030]])
    value, (slope,) = g(xs)
    assert _ulps(value, xs, _log1mexp) <= 1.0
    assert same_bits(g(np.array([-5e-324]))[0], np.array([math.log(5e-324)]))


@pytest.mark.parametrize("expr, wide", [
    ("sigmoid(x)*(1 - sigmoid(x))", True), ("exp(x) - 1", False), ("log(1 - exp(x))", True),
    ("log(1 + exp(x))", True), ("1/(1 + exp(-x))", True), ("x/(1 + exp(-x))", True),
    ("sigmoid(x) * log(x)", False), ("tanh(x) * sin(y)", False)])
def test_kernels_without_libmvec_run_wide_loops(expr, wide):
    """c_tiles.WIDE_LANES lanes in both copies' loops where neither calls libmvec (whose
    8-lane variants may give other bits than the 4-lane ones), gcc's own elsewhere and
    where the only INNER calls are c_exp's (e^x - 1: see WIDE_LANES)."""
    source = compile_grad(expr, backend="c", stable=True).source
    lanes = f" simdlen({c_tiles.WIDE_LANES})" if wide else ""
    assert f"#define XC_LANES_f_grad_point{lanes}\n" in source
    assert f"#define XC_LANES_f_grad_point_inner{lanes}\n" in source
    skew = "(sizeof((p)[0]) == 8 ?" in source[source.index("#define XC_SKEW_f_grad_point(p)"):].split("\n")[0]
    assert skew == wide
    assert "#pragma omp simd XC_LANES_f_grad_point_inner" in source


@pytest.mark.parametrize("expr", ["log(1 + exp(x))", "1/(1 + exp(-x))", "log(1 - exp(x))",
                                  "sigmoid(x)*(1 - sigmoid(x))", "log(1 - sigmoid(x))"])
def test_wide_kernels_give_the_same_bits_in_every_tile_and_one_point_at_a_time(expr):
    """The wide kernels call no libm function: the same bits on the tiles, in the edge
    tiles, on two threads, in the VM and one point at a time (a scalar libm call gave
    other bits than libmvec's vector one: log1mexp's log, softplus's exp and log)."""
    g = compile_grad(expr, backend="c", stable=True)
    vm = compile_grad(expr, backend="vm", stable=True)
    assert "_point_inner" in g.source
    n = 64 * 20 + 3
    xs = [_RNG.permutation(_wide_points(1000))[:n]]
    if "1 - exp" in expr:
        xs[0] = -np.abs(xs[0])
    assert_tiles_agree(g, vm, xs, [[np.nan, 700.0, -720.0, np.inf, -np.inf, 1e300, -746.5]], 5,
                       range(0, n, 7))


def test_xlogx_gradient_selects_once():
    """c_forms._zero_at_zero: where(x == 0, where(t == t, t + 0, 0), t), t = x/x, as
    where(x == 0, 0, t): one select; the VM's bits (the same rule), NumPy's values."""
    g = compile_grad("x*log(x)", backend="c", stable=True)
    assert "xc_select(x == 0.0, 0.0, t1)" in g.source and "t1 == t1" not in g.source
    xs = np.concatenate([_RNG.uniform(0.0, 3.0, 300), 2.0 ** _RNG.uniform(-1074, 1000, 300),
                         [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, -1.0]])
    with np.errstate(all="ignore"):
        got = g(xs)
        value, (grad,) = compile_grad("x*log(x)", backend="numpy", stable=True)(xs)
        assert _same(got, compile_grad("x*log(x)", backend="vm", stable=True)(xs))
    np.testing.assert_allclose(got[0], value, rtol=5e-16, atol=0)
    finite = np.isfinite(grad)   # log(x) + 1: to the ulps of its terms (it cancels near 1/e)
    with np.errstate(all="ignore"):
        assert (np.abs(got[1][0] - grad)[finite] <= 5e-16 * (1.0 + np.abs(np.log(xs)))[finite]).all()
    assert np.array_equal(np.isnan(got[1][0]), np.isnan(xs) | np.isinf(xs) | (xs < 0))


@pytest.mark.parametrize("expr", ["1/(1 + exp(-x))", "log(1 + exp(x))"])
def test_wide_kernels_bits_do_not_depend_on_where_the_arrays_start(expr):
    """A wide kernel's first tile ends on a cache line of its first output (XC_SKEW_*):
    arrays at any offset give each point the same bits."""
    g = compile_grad(expr, backend="c", stable=True, threads=1)
    assert "(sizeof((p)[0]) == 8 ?" in g.source
    xs = _RNG.permutation(_wide_points(1000))[:64 * 6 + 5]
    value, (grad,) = g(xs)
    for start in (1, 3, 7, 8, 65):
        x = np.empty(xs.size + 16)[start:start + xs.size - start]   # another address mod 64
        x[:] = xs[start:]
        with np.errstate(all="ignore"):
            v, (d,) = g(x)
        assert same_bits(v, value[start:]) and same_bits(d, grad[start:]), start
