"""The C backend's own e^x - 1 and e^x (backends/c_exp.py): xc_expm1, xc_expm1_neg and
xc_exp_neg built alone (c_build, called through ctypes) against mpmath over wide
ranges and at the IEEE edges; the kernels of tanh, its stable derivative and log1mexp,
which now use them, call neither libmvec's expm1 nor its exp in float64, and keep
libm's float functions in float32."""

import ctypes
import math
import re
import shutil
import subprocess

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, runtime
from exprcompiler.backends import c_backend, c_build

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

EPS = 2.0 ** -52
TINY = 2.0 ** -1022
HELPERS = ("xc_expm1", "xc_expm1_neg", "xc_exp_neg")


def vectorized(names) -> dict:
    """name -> f(array) -> array: each C helper of `names` over an array, in one vectorized
    loop (as in a kernel)."""
    loops = [f"void run_{h}(long n, const double *x, double *y)\n{{\n    #pragma omp simd\n"
             f"    for (long i = 0; i < n; ++i) y[i] = {h}(x[i]);\n}}" for h in names]
    source = "\n".join(["#include <math.h>", *c_backend.math_prelude(set(names)), *loops, ""])
    lib = ctypes.CDLL(str(c_build.build(source)))
    return {h: array_call(getattr(lib, f"run_{h}")) for h in names}


def array_call(fn, dtype=np.float64):
    """f(array) -> array of a C loop `void fn(long n, const T *x, T *y)` (T dtype's C type)."""
    fn.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

    def f(x):
        x = np.ascontiguousarray(x, dtype=dtype)
        y = np.empty_like(x)
        fn(x.size, x.ctypes.data, y.ctypes.data)
        return y
    return f


@pytest.fixture(scope="module")
def helpers():
    return vectorized(HELPERS)


def _worst(got, xs, exact) -> float:
    """The largest relative error in units of 2^-52 (points whose exact value is 0 or
    below the normal range skipped)."""
    worst = 0.0
    with mpmath.workdps(40):
        for x, y in zip(xs.tolist(), got.tolist()):
            r = exact(mpmath.mpf(x))
            if r != 0 and abs(r) >= TINY:
                worst = max(worst, float(abs((y - r) / r)) / EPS)
    return worst


_RNG = np.random.default_rng(11)
_SMALL = _RNG.choice([-1, 1], 1500) * 10.0 ** _RNG.uniform(-300, 0.3, 1500)
_NEAR_HALF_LN2 = np.concatenate([_RNG.uniform(0.33, 0.36, 400), -_RNG.uniform(0.33, 0.36, 400),
                                 _RNG.uniform(1.02, 1.06, 200), -_RNG.uniform(1.02, 1.06, 200)])


def test_expm1_against_mpmath(helpers):
    xs = np.concatenate([_RNG.uniform(-50, 709.78, 1500), _SMALL, _NEAR_HALF_LN2, _RNG.uniform(709.0, 709.78, 200)])
    assert _worst(helpers["xc_expm1"](xs), xs, mpmath.expm1) <= 1.5


def test_expm1_at_the_edges(helpers):
    x = np.array([-0.0, 0.0, 5e-324, -5e-324, 1e-310, -2.0 ** -60, np.inf, -np.inf, np.nan, 710.0, 1e308,
                  -1e308, -40.0, -745.0, 709.782712893384, np.nextafter(709.782712893384, 710)])
    with np.errstate(all="ignore"):
        want = np.expm1(x)
    got = helpers["xc_expm1"](x)
    np.testing.assert_array_equal(got[:14], want[:14])
    assert [math.copysign(1, v) for v in got[:2]] == [-1, 1]   # expm1(-0.0) is -0.0
    assert got[14] == pytest.approx(want[14], rel=2 * EPS) and got[15] == np.inf


def test_exp_and_expm1_of_negatives_against_mpmath(helpers):
    ys = np.concatenate([-_RNG.uniform(0, 745.2, 1500), -np.abs(_SMALL), -np.abs(_NEAR_HALF_LN2),
                         -_RNG.uniform(690, 708.5, 200)])
    assert _worst(helpers["xc_exp_neg"](ys), ys, mpmath.exp) <= 1.5
    assert _worst(helpers["xc_expm1_neg"](ys), ys, mpmath.expm1) <= 1.5


def test_exp_of_negatives_below_the_normal_range(helpers):
    # e^y is subnormal from y = -708.4 to -745.1: gradual underflow, not 0 or garbage
    ys = np.concatenate([-_RNG.uniform(708.4, 745.2, 400), [-745.1, -745.2, -746.0, -800.0, -1e308, -np.inf]])
    got = helpers["xc_exp_neg"](ys)
    want = np.array([float(mpmath.exp(mpmath.mpf(y))) for y in ys.tolist()])
    assert np.all(np.abs(got - want) <= 2 * 5e-324) and np.all(got >= 0)
    assert got[-1] == 0.0 and got[-3] == 0.0 and helpers["xc_expm1_neg"](ys)[-1] == -1.0


def test_negatives_at_the_edges(helpers):
    y = np.array([-0.0, 0.0, -5e-324, -1e-310, np.nan, -np.inf])
    e, m = helpers["xc_exp_neg"](y), helpers["xc_expm1_neg"](y)
    np.testing.assert_array_equal(e, [1.0, 1.0, 1.0, 1.0, np.nan, 0.0])
    np.testing.assert_array_equal(m, [0.0, 0.0, -5e-324, -1e-310, np.nan, -1.0])


def test_log1mexp_against_mpmath_and_runtime():
    f = compile_expr("log(1 - exp(x))", backend="c", stable=True)
    assert "xc_log1mexp(x)" in f.source
    xs = np.concatenate([-_RNG.uniform(0, 750, 800), -np.abs(_SMALL), -_RNG.uniform(0.6, 0.8, 300)])

    def exact(x):
        return mpmath.log1p(-mpmath.exp(x)) if x < -0.5 else mpmath.log(-mpmath.expm1(x))
    assert _worst(f(xs), xs, exact) <= 2.0
    edges = np.array([-np.inf, -800.0, -745.5, -1e-300, -0.0, 0.0, 5e-324, 1.0, np.inf, np.nan])
    got = f(edges)
    with np.errstate(all="ignore"):
        want = runtime.log1mexp(edges)
    np.testing.assert_array_equal(got, want)
    assert all(math.copysign(1, v) == -1 for v in got[:3])   # log1p(-0.0): -0.0


def _dynamic_symbols(path) -> str:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm on this machine")
    return subprocess.run([nm, "-D", str(path)], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("compile_, expr", [(compile_grad, "tanh(x)"), (compile_expr, "log(1 - exp(x))"),
                                            (compile_expr, "exp(x) - 1"), (compile_grad, "log(1 - exp(x))")])
def test_kernels_call_no_libm_exp_in_float64(compile_, expr):
    # (tanh: the value and sech2; exp(x) - 1's value only: its derivative is exp(x))
    g = compile_(expr, backend="c", stable=True)
    called = re.findall(r"\b(?:_ZGV\w+_)?(expm?1?f?)\b", _dynamic_symbols(c_build.build(g.source)))
    assert not {"exp", "expm1"} & set(called), called


def test_float32_kernels_keep_libm():
    g = compile_grad("tanh(x)", backend="c", stable=True, dtype="float32")
    assert re.search(r"return expm1f\(y\);", g.source) and re.search(r"return expf\(y\);", g.source)
    xs = np.linspace(-20, 20, 4001, dtype=np.float32)
    v, (d,) = g(xs)
    np.testing.assert_allclose(v, np.tanh(xs.astype(np.float64)), rtol=3e-7, atol=0)
    np.testing.assert_allclose(d, 1 / np.cosh(xs.astype(np.float64)) ** 2, rtol=6e-7, atol=1e-38)



def _vector_calls(g) -> set:
    return set(re.findall(r"\b_ZGV\w+_(\w+)\b", _dynamic_symbols(c_build.build(g.source))))


@pytest.mark.parametrize("expr", ["sin(x) * tanh(x) + tanh(2*x) + tanh(3*x)",
                                  "sin(x)*(exp(x) - 1) + exp(2*x) - 1 + log(1 - exp(-x*x)) + log(1 - exp(-2*x*x))"])
def test_kernels_built_at_O1_stay_vectorized(monkeypatch, expr):
    """Large kernels and split units are built at -O1 (c_build.SIZED_FLAGS), where gcc
    inlines only small functions and those called once (here: several calls of each): a helper left as a call in the `omp simd` loop kept
    the whole loop scalar (scalar sin and cos too, and bits that differed from the VM's
    vector loops). Every helper of c_exp is inlined at every level."""
    if not {"sin", "cos"} & _vector_calls(compile_grad(expr, backend="c", stable=True)):
        pytest.skip("no libmvec vector loops on this machine")
    monkeypatch.setenv("EXPRCOMPILER_EXTRA_CFLAGS", "-O1")
    assert {"sin", "cos"} & _vector_calls(compile_grad(expr, backend="c", stable=True))
