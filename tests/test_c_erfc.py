"""The C backend's own erfc (backends/c_erfc.py, xc_erfc, the C spelling of the op
erfc_shared that c_forms puts in beside erfc's derivative): its rational function against
mpmath, the helper built alone (c_build, called through ctypes, in a vectorized loop as
in a kernel) against mpmath on dense grids over [-6, 27], tiny |x|, subnormal results
and the IEEE edges, against libmvec's erfc for comparison; and the C kernels that call
erfc (value, gradient, float32, the catalogue's rows `1 - erf(x)`, `1 + erf(x)`,
`1 - erfc(x)` through the stability rewrites) against libm's and NumPy's."""

import ctypes
import math
import re
import shutil
import subprocess

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad
from exprcompiler.backends import c_backend, c_build, c_erfc, c_helpers

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

from test_c_exp import array_call  # noqa: E402 (after the skip: that module needs a compiler too)

TINY = 2.0 ** -1022
SUB = 2.0 ** -1074
# the worst measured (session 52, 38,000 points): 4.6 ulps; libmvec's erfc 1.5. libmvec's
# exp of -x^2, which the helper shares with the gradient, is itself up to 2.4 ulps off.
ULPS = 5.0


def _loop(name: str, call: str) -> str:
    return (f"void {name}(long n, const double *x, double *y)\n{{\n    #pragma omp simd\n"
            f"    for (long i = 0; i < n; ++i) y[i] = {call};\n}}")


@pytest.fixture(scope="module")
def erfcs():
    """"new" (xc_erfc) and "old" (libmvec's erfc, as kernels called it before): f(array)."""
    source = "\n".join(["#include <math.h>", "#pragma omp declare simd notinbranch", "double exp(double);",
                        "#pragma omp declare simd notinbranch", "double erfc(double);",
                        *c_helpers.ALWAYS_INLINE, *c_backend.math_prelude({"xc_select"}), c_erfc.ERFC,
                        _loop("run_new", "xc_erfc(x[i])"), _loop("run_old", "erfc(x[i])"), ""])
    lib = ctypes.CDLL(str(c_build.build(source)))
    return {"new": array_call(lib.run_new), "old": array_call(lib.run_old)}


def _ulps(got, xs) -> np.ndarray:
    """|got - erfc(x)| in ulps of the exact value (at the normal range's bottom, 2^-1074
    for subnormal values)."""
    out = []
    with mpmath.workdps(50):
        for x, y in zip(xs.tolist(), got.tolist()):
            r = mpmath.erfc(mpmath.mpf(x))
            exponent = max(int(mpmath.floor(mpmath.log(r, 2))), -1022) if r else -1022
            out.append(float(abs(mpmath.mpf(y) - r) / mpmath.mpf(2) ** (exponent - 52)))
    return np.array(out)


_RNG = np.random.default_rng(52)


def test_rational_against_mpmath():
    """(1 + a N(a)/D(a)) / (1 + sqrt(pi) a) with the double coefficients, computed exactly,
    is erfcx(a) = e^(a^2) erfc(a) to within 0.05 ulps on [0, 27.5] (the fit's 9.5e-19 and
    the coefficients' rounding to double): the rest of the error is the steps'."""
    def poly(c, a):
        return mpmath.polyval([mpmath.mpf(v) for v in reversed(c)], a)
    worst = 0
    with mpmath.workdps(40):
        sqrt_pi = mpmath.mpf(c_erfc.SQRT_PI[0]) + mpmath.mpf(c_erfc.SQRT_PI[1])
        assert abs(sqrt_pi - mpmath.sqrt(mpmath.pi)) < mpmath.mpf(2) ** -106
        for a in np.concatenate([np.linspace(0, 27.5, 700), _RNG.uniform(0, 3, 300)]).tolist():
            a = mpmath.mpf(a)
            r = (1 + a * poly(c_erfc.N, a) / poly(c_erfc.D, a)) / (1 + sqrt_pi * a)
            worst = max(worst, abs(r / (mpmath.erfc(a) * mpmath.exp(a * a)) - 1))
    assert worst < 0.05 * 2.0 ** -52
    assert all(c > 0 for c in c_erfc.N + c_erfc.D)   # Horner's sums never cancel


@pytest.mark.parametrize("lo, hi", [(-6.0, 27.0), (-3.0, 0.5), (-0.5, 3.0), (0.0, 1.0), (1.0, 6.0), (6.0, 26.5)])
def test_against_mpmath(erfcs, lo, hi):
    xs = _RNG.uniform(lo, hi, 2500)
    assert _ulps(erfcs["new"](xs), xs).max() <= ULPS


def test_tiny_and_near_the_steps(erfcs):
    """Tiny |x| (erfc within an ulp or two of 1), and around 0, 1/2, 1, BOUND and the
    underflow (subnormal results, up to 27.3)."""
    tiny = _RNG.choice([-1.0, 1.0], 1000) * 10.0 ** _RNG.uniform(-310, -1, 1000)
    near = np.concatenate([c + _RNG.uniform(-1e-3, 1e-3, 200) for c in (0.0, 0.5, 1.0, -1.0, 5.9, -5.9)])
    xs = np.concatenate([tiny, near])
    assert _ulps(erfcs["new"](xs), xs).max() <= ULPS


def test_subnormal_results(erfcs):
    """From x = 26.55 erfc(x) is below 2^-1022: within 2 units of 2^-1074 there, 0 from
    27.3 on."""
    xs = np.concatenate([_RNG.uniform(26.4, 27.3, 1500), np.linspace(27.3, 27.9, 50)])
    got = erfcs["new"](xs)
    with mpmath.workdps(50):
        exact = [mpmath.erfc(mpmath.mpf(x)) for x in xs.tolist()]
    for x, y, r in zip(xs.tolist(), got.tolist(), exact):
        if r < TINY:
            assert abs(mpmath.mpf(y) - r) <= 2 * SUB, x
        else:
            assert abs(mpmath.mpf(y) / r - 1) <= ULPS * 2.0 ** -52, x


def test_edges(erfcs):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 5e-324, -5e-324, 28.0, -28.0, 27.9, 1e30, -1e30,
                  1e200, -1e200, 1.8e308, -1.8e308, -6.0, -5.9, -27.0])
    got = erfcs["new"](x)
    want = np.array([math.erfc(v) if not math.isnan(v) else math.nan for v in x.tolist()])
    assert np.array_equal(got, want, equal_nan=True), list(zip(x, got, want))
    assert got[0] == 1.0 and got[1] == 1.0 and got[2] == 0.0 and got[3] == 2.0


def test_old_and_new_side_by_side(erfcs):
    """The figures the module's docstring gives (libmvec's erfc within 1.6 ulps here)."""
    xs = np.concatenate([_RNG.uniform(-6, 27, 4000), _RNG.uniform(0, 1, 1000)])
    new, old = _ulps(erfcs["new"](xs), xs), _ulps(erfcs["old"](xs), xs)
    assert new.max() <= ULPS and old.max() <= 2.0
    assert np.mean(new) < 1.0


# The kernels (whichever erfc the op table's `c` names: these hold for both).
_POINTS = np.concatenate([np.linspace(-6, 27.5, 3001), _RNG.uniform(-3, 3, 1000), [0.0, -0.0, 1e-300, -1e-300]])


def test_kernel_value_and_gradient_against_libm():
    """math.erfc per point (glibc's, within an ulp; scipy's flushes the subnormal results
    from 26.6 on to 0)."""
    f = compile_grad("erfc(x)", backend="c")
    value, (grad,) = f(_POINTS)
    want = np.array([math.erfc(v) for v in _POINTS.tolist()])
    assert np.allclose(value, want, rtol=(ULPS + 1) * 2.0 ** -52, atol=3 * SUB)
    assert np.array_equal(value == 0, want == 0)
    slope = -2.0 / math.sqrt(math.pi) * np.exp(-_POINTS ** 2)
    assert np.allclose(grad, slope, rtol=1e-13, atol=1e-300)


def test_only_kernels_with_the_gaussian_take_xc_erfc():
    """erfc(u) beside exp(-square(u)) (its derivative's, or erf's) is c_erfc's; alone, or
    beside the exp of another value, libmvec's (faster alone, and closer)."""
    assert "xc_erfc(" in compile_grad("erfc(x)", backend="c").source
    assert "xc_erfc(" in compile_grad("erf(x) * erfc(x)", backend="c").source
    for text in (compile_expr("erfc(x)", backend="c").source, compile_expr("erfc(x) + exp(-x*x*2)", backend="c").source,
                 compile_grad("erfc(y) * x", backend="c", wrt=["x"]).source):
        assert "xc_erfc(" not in text and "erfc(" in text


def test_float32_kernel():
    xs = np.linspace(-4, 10, 4001).astype(np.float32)
    f = compile_expr("erfc(x)", backend="c", dtype="float32")
    got = f(xs)
    assert got.dtype == np.float32
    want = np.array([math.erfc(v) for v in xs.astype(np.float64).tolist()])
    ok = want >= np.finfo(np.float32).tiny
    assert np.all(np.abs(got[ok] / want[ok] - 1) <= 4 * 2.0 ** -23)


def _dynamic_symbols(path) -> str:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm on this machine")
    return subprocess.run([nm, "-D", str(path)], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("level", ["", "-O1"])
@pytest.mark.parametrize("expr", ["1 - erf(x)", "1 + erf(x)"])
def test_stable_rows_call_no_erfc_and_stay_vectorized(monkeypatch, expr, level):
    """The stable forms' kernels call no erfc of libm's or libmvec's (xc_erfc inline),
    and libmvec's exp in vector form wherever a kernel of exp(-x^2) alone does, also
    where kernels are built at -O1 (c_build.SIZED_FLAGS: xc_erfc is XC_ALWAYS, so that
    the loop stays vectorized)."""
    if level:
        monkeypatch.setenv("EXPRCOMPILER_EXTRA_CFLAGS", level)
    g = compile_grad(expr, backend="c", stable=True)
    assert "xc_erfc(" in g.source
    symbols = _dynamic_symbols(c_build.build(g.source))
    assert not re.search(r"\berfc", symbols) and not re.search(r"_ZGV\w+_erfc", symbols)
    plain = _dynamic_symbols(c_build.build(compile_grad("exp(-x*x)", backend="c").source))
    vector = re.compile(r"_ZGV\w+_exp\b")
    assert bool(vector.search(symbols)) == bool(vector.search(plain))


@pytest.mark.parametrize("expr, lo, hi", [("1 - erf(x)", -3, 26), ("1 + erf(x)", -26, 3), ("1 - erfc(x)", -3, 3),
                                          ("erf(x) - 1", -3, 26)])
def test_catalogue_rows_against_numpy(expr, lo, hi):
    xs = np.concatenate([np.linspace(lo, hi, 2001), [0.0, -0.0]])
    c = compile_grad(expr, backend="c", stable=True)
    ref = compile_grad(expr, backend="numpy", stable=True)
    (cv, (cg,)), (nv, (ng,)) = c(xs), ref(xs)
    assert np.allclose(cv, nv, rtol=(ULPS + 1) * 2.0 ** -52, atol=3 * SUB)
    assert np.allclose(cg, ng, rtol=1e-13, atol=1e-300)
