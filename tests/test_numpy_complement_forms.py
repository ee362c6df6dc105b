"""The NumPy backend's forms of the stability rewrites' complements, where the naive
form's passes suffice: log(1 - x) as log1p(0.0 - x) from w = 1 - x (log1m_of_diff),
1 - exp(x) as 0.0 - expm1(x) with its derivative's exp (neg_expm1_pair), and no line
for what only shared spellings would read (numpy_shares.dead_rows: the -x of a
sigmoid(-x) that a pair takes from exp(x)). Each gives the bits of the spelling it
replaces, but log1m_of_diff, which is log(1 - x) where that is within a few ulps. Also
log1mexp's helpers, which skip np.errstate where no point can raise: nothing raised."""

import re

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler import runtime as R
from exprcompiler.backends import numpy_shares
from exprcompiler.runtime_blocks import _BLOCK
from exprcompiler.runtime_log1p import _W_HIGH, _W_LOW

from test_numpy_render import EDGES, _both, _loops


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


def _same_values(a, b):
    """The same numbers, signed zeros included, NaN wherever the other is NaN (its sign
    bit aside: NumPy's log and log1p set it otherwise)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a[a == a]), np.signbit(b[b == b]))


def _cases(x):
    """x, its float32 copy, one of its points as a 0-d array, and a block as a (4, n/4) array."""
    return [x, x.astype(np.float32), np.asarray(x[5]), x[:4 * (_BLOCK // 4)].reshape(4, -1)]


def _body(text, **kw):
    g = compile_grad(text, **kw)
    return g, g.source.split("def ")[1]


# -- the -x of a sigmoid(-x) from a pair, and other lines no one reads ----------------


@pytest.mark.parametrize("text", ["sigmoid(x)/(1 - sigmoid(x))", "sigmoid(x) + 3*sigmoid(-x)",
                                  "softplus(x) + sigmoid(-x)", "logaddexp(x, y) * sigmoid(-(x - y))"])
def test_lines_only_shared_spellings_read_are_not_written(text, monkeypatch):
    """The generated code writes no line that nothing reads, and gives the bits of the
    code that writes them (dead_rows as it was: logaddexp_rows' partials only)."""
    g, body = _body(text, stable=True)
    lines = [line.strip().split(" = ", 1) for line in body.split("\n") if " = " in line]
    reads = " ".join(rhs for _, rhs in lines) + " " + body[body.index("return"):]
    for name, _ in lines:   # (an adjoint may be rebound: read by its next line)
        assert re.search(rf"\b{name}\b", reads), (name, body)
    assert " = -x\n" not in body and " = -v" not in body
    kept = numpy_shares.dead_rows

    def old(trace, shared, uses):   # only logaddexp_rows' partials
        return kept(trace, {i: s for i, s in shared.items() if s[2] == "logaddexp_rows"}, uses)

    monkeypatch.setattr("exprcompiler.backends.numpy_backend.dead_rows", old)
    monkeypatch.setattr("exprcompiler.backends.numpy_render.dead_rows", old)
    h = compile_grad(text, stable=True)
    assert len(h.source) > len(g.source)
    rng = np.random.default_rng(3)
    args = [np.concatenate([EDGES, rng.uniform(-40, 40, 3 * _BLOCK)]) for _ in g.inputs]
    with np.errstate(all="ignore"):
        got, want = g(*args), h(*args)
    _same_bits(got[0], want[0])
    for a, b in zip(got[1], want[1]):
        _same_bits(a, b)


# -- 1 - exp(x): neg_expm1_pair -------------------------------------------------------


def _points(rng, n=3 * _BLOCK + 17):
    """Both signs, a block all above log 2 (1 - exp(x) there), a block near 0, the edges."""
    x = rng.uniform(-50, 50, n)
    x[_BLOCK:2 * _BLOCK] = rng.uniform(0.7, 60, _BLOCK)
    x[2 * _BLOCK:2 * _BLOCK + 2000] = rng.uniform(-0.7, 0.7, 2000)
    x[rng.integers(0, n, 60)] = rng.choice(np.concatenate([EDGES, [800.0, -800.0, np.log(2), 1e-300]]), 60)
    return x


@pytest.mark.parametrize("simd", [True, False])
def test_neg_expm1_pair_is_minus_expm1_and_exp(simd, monkeypatch):
    _loops(monkeypatch, simd)
    rng = np.random.default_rng(21)
    for x in _cases(_points(rng)):
        with np.errstate(all="ignore"):
            value, slope = R.neg_expm1_pair(x)
            want = np.subtract(0.0, R.expm1(x))
            _same_bits(value, want)
            _same_bits(slope, np.exp(x))
    with np.errstate(all="ignore"):   # a block mostly near 0, and one mostly far, with the others redone
        for x in (np.r_[np.full(900, 2.0), rng.uniform(-0.5, 0.5, 100)], np.r_[np.full(100, 2.0), np.zeros(900)]):
            _same_bits(R.neg_expm1_pair(x)[0], np.subtract(0.0, R.expm1(x)))


@pytest.mark.parametrize("text", ["1 - exp(x)", "(1 - exp(x)) * exp(x)"])
def test_one_minus_exp_is_one_call_with_no_expm1_line(text):
    g, body = _body(text, stable=True)
    assert "p1 = neg_expm1_pair(x)" in body and body.count("_pair") == 1, body
    assert "expm1(" not in body.replace("neg_expm1_pair(", "") and "0.0 -" not in body, body
    fn, plain, _, _ = _both(g.trace)
    rng = np.random.default_rng(22)
    x = np.concatenate([EDGES, _points(rng)])
    with np.errstate(all="ignore"):
        got, want = fn(x), plain(x)
    _same_bits(got[0], want[0])
    _same_bits(got[1][0], want[1][0])


def test_an_expm1_read_elsewhere_keeps_its_pair():
    """expm1(x) read by more than 0.0 - expm1(x): the plain expm1_pair, and its line."""
    _, body = _body("(1 - exp(x)) * (exp(x) - 1)", stable=True)
    assert "expm1_pair(x)" in body and "neg_expm1_pair" not in body, body


# -- log(1 - x): log1m_of_diff --------------------------------------------------------


def _diff_points(rng, n=3 * _BLOCK + 17):
    """Far from 0 and near it (w = 1 - x either side of (_W_LOW, _W_HIGH)), blocks mostly
    of one kind, and the edges: x = 1 (w = 0), above 1, ±0, tiny, ±inf, NaN."""
    x = np.concatenate([rng.uniform(-10, 0.99, n // 3), rng.uniform(-0.08, 0.08, n // 3),
                        10.0 ** rng.uniform(-300, 0, n - 2 * (n // 3))])
    x[:n // 2] *= rng.choice([-1.0, 1.0], n // 2)
    x[rng.integers(0, n, 80)] = rng.choice(np.concatenate([EDGES, [1.0, 1 - 2 ** -53, 2.0, 1 - _W_LOW,
                                                                   1 - _W_HIGH, 5e-324]]), 80)
    return x


@pytest.mark.parametrize("simd", [True, False])
def test_log1m_of_diff_is_log_where_accurate_and_log1p_elsewhere(simd, monkeypatch):
    """log(w) at the points where w = 1 - x is outside (_W_LOW, _W_HIGH), the bits of
    log1p_of_sum(0.0 - x, w) at the others, each point's own whatever the others (blocks
    of every mix), the specials and warnings of log1p, float32 kept."""
    _loops(monkeypatch, simd)
    rng = np.random.default_rng(23)
    for x in _cases(_diff_points(rng)) + [np.r_[np.full(90, -3.0), np.full(10, 0.01)],
                                          np.r_[np.full(10, -3.0), np.full(90, 0.01)], np.full(7, 0.5)]:
        with np.errstate(all="ignore"):
            w = 1.0 - x
            got = R.log1m_of_diff(x, w)
            far = (w >= _W_HIGH) | (w <= _W_LOW)
            want = np.where(far, np.log(w), R.log1p_of_sum(np.subtract(0.0, x), w))
        _same_bits(got, want.astype(got.dtype)[()])
    with np.errstate(all="ignore"):
        x = np.array([0.0, -0.0, 1.0, 2.0, np.inf, -np.inf, np.nan, -1e-300])
        got = R.log1m_of_diff(x, 1.0 - x)
    _same_values(got, np.array([0.0, 0.0, -np.inf, np.nan, np.nan, np.inf, np.nan, 1e-300]))
    for bad in ([1.0, -3.0], [2.0, -3.0]):
        with pytest.warns(RuntimeWarning):
            R.log1m_of_diff(np.array(bad), 1.0 - np.array(bad))


def test_log1m_of_diff_is_within_a_few_ulps_of_log_one_minus_x():
    """Against mpmath: 2.1e-15 at most (w's rounding over |log w| >= 0.06, and the log's),
    the points nearest the bounds included."""
    rng = np.random.default_rng(24)
    x = np.concatenate([rng.uniform(1 - _W_HIGH - 0.01, 1 - _W_HIGH, 300),
                        rng.uniform(1 - _W_LOW, 1 - _W_LOW + 0.01, 300),
                        rng.uniform(-0.07, 0.07, 100), rng.uniform(-1e6, 0.999, 100)])
    got = R.log1m_of_diff(x, 1.0 - x)
    with mpmath.workdps(40):
        exact = np.array([float(mpmath.log(1 - mpmath.mpf(v))) for v in x])
    assert np.max(np.abs(got - exact) / np.abs(exact)) <= 2.1e-15


def test_log_one_minus_x_takes_w_directly():
    """log(1 - x), rewritten log1p(0.0 - x): w1 = 1.0 - x, no 0.0 - x line; the derivative
    -1/(1 - x) is the naive one's bits, the value within 2.1e-15 of it."""
    g, body = _body("log(1 - x)", stable=True)
    assert "w1 = 1.0 - x" in body and "log1m_of_diff(x, w1)" in body and "0.0 -" not in body, body
    x = _diff_points(np.random.default_rng(25))
    with np.errstate(all="ignore"):
        value, (d,) = g(x)
        naive_value, (naive_d,) = compile_grad("log(1 - x)")(x)
        want = np.log1p(-x)
    _same_bits(d, naive_d)
    ok = np.isfinite(want) & (want != 0)
    assert np.max(np.abs(value[ok] - want[ok]) / np.abs(want[ok])) <= 2.1e-15
    assert np.array_equal(np.isnan(value), np.isnan(want)) and np.array_equal(value[~ok & ~np.isnan(want)],
                                                                          want[~ok & ~np.isnan(want)])


def test_a_difference_read_elsewhere_keeps_log1p_of_sum():
    """0.0 - x read by more than the log1p and its 1 + (0.0 - x): log1p_of_sum as before."""
    _, body = _body("log(1 - x) * (0 - x)", stable=True)
    assert "log1p_of_sum(v1, w1)" in body and "log1m_of_diff" not in body, body


@pytest.mark.parametrize("simd", [True, False])
def test_run_by_blocks_they_give_one_calls_bits(simd, monkeypatch):
    _loops(monkeypatch, simd)
    rng = np.random.default_rng(26)
    x, y = _diff_points(rng), _points(rng)
    with np.errstate(all="ignore"):
        _same_bits(R.log1m_of_diff(x, 1.0 - x), R.log1m_of_diff.__wrapped__(x, 1.0 - x))
        for a, b in zip(R.neg_expm1_pair(y), R.neg_expm1_pair.__wrapped__(y)):
            _same_bits(a, b)


# -- log1mexp: no np.errstate where no point can raise ----------------------------------


@pytest.mark.parametrize("simd", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log1mexp_raises_nothing_with_errors_raising(simd, dtype, monkeypatch):
    """Under np.errstate(all="raise"), log1mexp and log1mexp_pair raise nothing: on blocks
    inside their quiet range (no errstate of their own there: both branches run on every
    point of a block, so that range keeps exp(x) below 1 and normal, exp(-x) finite), and
    on blocks with the edges at or below 0 (errstate there), whose values are those of the
    blocks split."""
    from exprcompiler.runtime_elementwise import _quiet_range
    _loops(monkeypatch, simd)
    least, most = _quiet_range(np.dtype(dtype))
    rng = np.random.default_rng(27)
    with np.errstate(all="ignore"):
        quiet = np.concatenate([[least * 0.999, most * 1.001], rng.uniform(-3, -0.5, 500),
                                -(10.0 ** rng.uniform(np.log10(-most) + 0.01, np.log10(-least) - 0.01, 500))])
        quiet = quiet.astype(dtype)
        edges = np.concatenate([quiet[:50], np.array([0.0, -0.0, -800.0, -1e-300, -5e-324, -np.inf],
                                                     dtype=dtype)])
        apart = [R.log1mexp_pair(edges[k:k + 1]) for k in range(edges.size)]
    with np.errstate(all="raise"):
        for x in (quiet, quiet[::7], edges):
            R.log1mexp(x)
            value, slope = R.log1mexp_pair(x)
    _same_values(value, np.concatenate([a[0] for a in apart]))
    _same_values(slope, np.concatenate([a[1] for a in apart]))
