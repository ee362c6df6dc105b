"""The C backend's own log (backends/c_log.py): its table of 1/c and log(c) and its
constants against mpmath, xc_log_normal built alone (a vectorized loop, through ctypes)
within 1.05 ulps of mpmath over wide ranges, next to 1 and across the table's
subintervals, IEEE edges as np.log's; the stable log(1 + x) and log(1 - x) kernels,
which now take it, call no libm log in float64 (logf in float32), and the tape VM
gives their bits."""

import math
import re

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import c_build, c_log

from test_c_exp import _dynamic_symbols, vectorized
from test_vm import same_bits

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

_RNG = np.random.default_rng(7)
_TOP = 2 ** 52 - 1


@pytest.fixture(scope="module")
def log():
    return vectorized(["xc_log_normal"])["xc_log_normal"]


def _bits_to_double(u: int) -> float:
    return float(np.array(u, dtype=np.uint64).view(np.float64))


def _subinterval(i: int) -> tuple[float, float]:
    """The z of entry i: bits from OFF + i 2^45 to OFF + (i + 1) 2^45 (the last excluded)."""
    return _bits_to_double(c_log.OFF + (i << 45)), _bits_to_double(c_log.OFF + ((i + 1) << 45) - 1)


def _worst_ulps(got, xs) -> float:
    worst = 0.0
    with mpmath.workdps(40):
        for x, y in zip(xs.tolist(), got.tolist()):
            want = mpmath.log(mpmath.mpf(x))
            if want == 0:
                assert y == 0.0, x
                continue
            worst = max(worst, float(abs(mpmath.mpf(y) - want)) / math.ulp(float(want)))
    return worst


def test_the_table_and_its_subintervals():
    assert len(c_log.INVC) == len(c_log.LOGC) == 2 ** c_log.TABLE_BITS == 128
    one = [i for i in range(128) if _subinterval(i)[0] <= 1.0 <= _subinterval(i)[1]]
    assert one == [79] and c_log.INVC[79] == 1.0 and c_log.LOGC[79] == 0.0
    assert _subinterval(79) == (1 - 2.0 ** -9, 1 + 2.0 ** -8 - 2.0 ** -52)
    with mpmath.workdps(50):
        for i, (ic, lc) in enumerate(zip(c_log.INVC, c_log.LOGC)):
            exact = -mpmath.log(mpmath.mpf(ic))
            assert lc == float(exact), i
            if i != 79:   # log(c) within 0.002 ulps of its double: the table adds next to no error
                assert abs(exact - lc) <= 0.002 * math.ulp(lc), i
            lo, hi = _subinterval(i)
            assert max(abs(lo * ic - 1), abs(hi * ic - 1)) <= 2.0 ** -8 * (1 + 2.0 ** -20), i


def test_the_constants():
    assert _bits_to_double(c_log.OFF) == 0.689453125
    with mpmath.workdps(50):
        ln2 = mpmath.log(2)
        assert abs(mpmath.mpf(c_log.LN2_HI) + c_log.LN2_LO - ln2) < 2.0 ** -100
    # k LN2_HI exact for |k| <= 1075 (11 bits): LN2_HI has at most 42 significant bits
    n = int(math.ldexp(math.frexp(c_log.LN2_HI)[0], 53))
    assert n.bit_length() - ((n & -n).bit_length() - 1) <= 42
    assert c_log.Q[0] == -0.5


def test_log_against_mpmath(log):
    xs = np.concatenate([10.0 ** _RNG.uniform(-307, 308, 3000), _RNG.uniform(0.3, 3.0, 3000),
                         1 + _RNG.choice([-1, 1], 1500) * 10.0 ** _RNG.uniform(-16, -1.5, 1500),
                         np.nextafter(1.0, [2.0, 0.0]), [2.2250738585072014e-308, 1.7976931348623157e308]])
    assert _worst_ulps(log(xs), xs) <= 1.05


def test_log_across_the_subintervals(log):
    # both ends of every entry's subinterval, and points within, where log(c) and r
    # cancel most (next to 1) and where k changes (z = OFF, 2 OFF)
    ends = [z for i in range(128) for z in _subinterval(i)]
    inner = [float(_RNG.uniform(*_subinterval(i))) for i in range(70, 90) for _ in range(60)]
    xs = np.array(ends + inner)
    xs = np.concatenate([xs, xs * 2.0 ** 40, xs * 2.0 ** -600])
    assert _worst_ulps(log(xs), xs) <= 1.05


def test_log_at_the_edges(log):
    x = np.array([0.0, -0.0, -1.0, -5e-324, -np.inf, np.inf, np.nan, 1.0, 2.0, 0.5, 2.2250738585072014e-308,
                  1.7976931348623157e308, np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0)])
    with np.errstate(all="ignore"):
        assert same_bits(log(x), np.log(x))


@pytest.mark.parametrize("text", ["log(1 + x)", "log(1 - x)", "atanh(x) + log(1 + x)"])
def test_kernels_call_no_libm_log_in_float64(text):
    g = compile_grad(text, backend="c", stable=True)
    # (c_log's log with the correction added inside it: xc_log_plus, xc_log_fma)
    assert "xc_log_plus(u, " in g.source or "xc_log_fma(u, " in g.source
    called = set(re.findall(r"\b(?:_ZGV\w+_)?(logf?)\b", _dynamic_symbols(c_build.build(g.source))))
    # atanh keeps libmvec's log (xc_log1p_libm: c_special)
    assert called == ({"log"} if "atanh" in text else set()), called


def test_float32_kernels_keep_logf():
    g = compile_grad("log(1 + x) + log(1 - x)", backend="c", stable=True, dtype="float32")
    assert "= logf(x);" in g.source
    xs = np.linspace(-0.9, 0.9, 1001, dtype=np.float32)
    v, (d,) = g(xs)
    x64 = xs.astype(np.float64)
    np.testing.assert_allclose(v, np.log1p(x64) + np.log1p(-x64), rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(d, 1 / (1 + x64) - 1 / (1 - x64), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("text", ["log(1 + x)", "log(1 - x) * exp(x)"])
def test_the_vm_gives_the_c_kernels_bits(text):
    g_c = compile_grad(text, backend="c", stable=True)
    g_vm = compile_grad(text, backend="vm", stable=True)
    edges = np.array([-0.0, 0.0, -1.0, 1.0, np.inf, -np.inf, np.nan, 2.0 ** -54, 1e-310, -1e300, 1e300, 0.0078])
    for n in (1, 5, 67, 1001):   # the last n % 4 points through the loops' scalar ends
        xs = np.concatenate([edges, np.exp(_RNG.uniform(-30, 30, n)) * _RNG.choice([-1, 1], n)])[:n]
        with np.errstate(all="ignore"):
            a, b = g_c(xs), g_vm(xs)
        assert same_bits(a[0], b[0]) and same_bits(a[1][0], b[1][0]), n
    a, b = g_c(0.3), g_vm(0.3)
    assert same_bits(a[0], b[0]) and same_bits(a[1][0], b[1][0])
