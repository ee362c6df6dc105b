"""expm1(a) and exp(a) of the same a from one argument reduction in C (issue 18's C
row of exp(x) - 1): c_backend.c_forms spells such a pair as the op table's
expm1_shared and exp_shared (c_exp's xc_expm1_shared, xc_exp_shared), for the C kernel
and the tape VM alike, so both give the same bits; an exp or expm1 alone keeps its own
form (libmvec's exp, xc_expm1). Also: the XC_ALWAYS macro is math_prelude's, whatever
helper uses it. Likewise the other forms c_forms shares between a value and its
derivative: sinh and cosh of one value (sinh_shared, cosh_shared); log1mexp(x) with its
slope -1/expm1(0.0 - x), that expm1 as expm1_neg_shared(x) from log1mexp's own
reduction; arcsinh's and arccosh's slopes from the value's square root."""

import ctypes
import math
import re

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad
from exprcompiler.backends import c_backend, c_build
from exprcompiler.frontend import to_trace
from exprcompiler.trace.ir import Instr, Trace

from test_c_exp import EPS, _dynamic_symbols, _worst, vectorized
from test_vm import same_bits

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

_RNG = np.random.default_rng(18)


@pytest.fixture(scope="module")
def helpers():
    """xc_exp_shared, xc_expm1_shared and xc_expm1 over arrays (test_c_exp.vectorized)."""
    return vectorized(("xc_exp_shared", "xc_expm1_shared", "xc_expm1"))


@pytest.fixture(scope="module")
def xc_exp(helpers):
    return helpers["xc_exp_shared"]


def test_exp_against_mpmath_over_the_whole_range(xc_exp):
    small = _RNG.choice([-1, 1], 1000) * 10.0 ** _RNG.uniform(-300, 0.3, 1000)
    xs = np.concatenate([_RNG.uniform(-708, 709.78, 3000), small, _RNG.uniform(-1.06, 1.06, 500),
                         _RNG.uniform(709.0, 709.78, 200), _RNG.uniform(-708.3, -690, 200)])
    assert _worst(xc_exp(xs), xs, mpmath.exp) <= 1.5


def test_exp_at_the_edges_and_below_the_normal_range(xc_exp):
    # e^x is subnormal from x = -708.4 to -745.1: gradual underflow, not 0 or garbage
    low = np.concatenate([-_RNG.uniform(708.4, 745.2, 400), [-745.1, -745.2]])
    got = xc_exp(low)
    want = np.array([float(mpmath.exp(mpmath.mpf(x))) for x in low.tolist()])
    assert np.all(np.abs(got - want) <= 2 * 5e-324) and np.all(got >= 0)
    x = np.array([-0.0, 0.0, 5e-324, -5e-324, -1e-310, np.inf, -np.inf, np.nan, 710.0, 1e308, -1e308,
                  -746.0, -800.0, 709.782712893384, np.nextafter(709.782712893384, 710)])
    got = xc_exp(x)
    with np.errstate(all="ignore"):
        want = np.exp(x)
    np.testing.assert_array_equal(got[:13], want[:13])
    assert got[13] == pytest.approx(want[13], rel=2 * EPS) and got[14] == np.inf


def test_the_shared_expm1_is_xc_expm1_bit_for_bit(helpers):
    """So a kernel's expm1 has the same value whether its exp is computed beside it or not."""
    xs = np.concatenate([_RNG.uniform(-800, 720, 20001), _RNG.uniform(-2, 2, 2001),
                         _RNG.choice([-1, 1], 2000) * 10.0 ** _RNG.uniform(-320, 2.8, 2000),
                         [-0.0, 0.0, np.inf, -np.inf, np.nan, 709.78, 709.79, -745.2, -40.0, -39.99]])
    with np.errstate(all="ignore"):
        assert same_bits(helpers["xc_expm1_shared"](xs), helpers["xc_expm1"](xs))


def _ops_of(trace: Trace) -> list:
    return [ins.op for ins in trace.instrs]


def test_c_forms_spells_expm1_and_exp_of_one_value_shared():
    t = to_trace("expm1(x) + exp(x) + exp(y) + exp(2*x) + expm1(3*x) + x**2")
    formed = _ops_of(c_backend.c_forms(t))
    assert formed.count("exp_shared") == formed.count("expm1_shared") == 1
    assert formed.count("exp") == 2 and formed.count("expm1") == 1 and "square" in formed
    assert _ops_of(c_backend.squares(t)).count("exp") == 3   # (the tensor kernels' rule: as they were)
    # through copies: expm1 of a copy of x pairs with exp of x
    instrs = [Instr("input", (), (), ()), Instr("copy", (0,), (), ()), Instr("expm1", (1,), (), ()),
              Instr("exp", (0,), (), ()), Instr("add", (2, 3), (), ())]
    raw = Trace(instrs, ["x", None, None, None, None], [("y", 4)], "")
    assert _ops_of(c_backend.c_forms(raw))[2:4] == ["expm1_shared", "exp_shared"]
    assert _ops_of(c_backend.c_forms(to_trace("exp(x) * sin(x)"))).count("exp") == 1


def _libm_exps(g) -> set:
    return set(re.findall(r"\b(?:_ZGV\w+_)?(expm?1?)\b", _dynamic_symbols(c_build.build(g.source))))


def test_expm1_and_its_derivative_share_one_reduction():
    g = compile_grad("exp(x) - 1", backend="c", stable=True)
    assert "xc_expm1_shared(x)" in g.source and "xc_exp_shared(x)" in g.source
    assert not _libm_exps(g)   # neither libmvec's exp nor its expm1
    xs = np.concatenate([_RNG.uniform(-50, 709, 2001), [-0.0, 0.0, -1e-310, 1e-300, -745.5, -800.0, 710.0,
                                                         np.inf, -np.inf, np.nan]])
    value, (grad,) = g(xs)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(grad, np.exp(xs), rtol=2 * EPS, atol=5e-324)
        np.testing.assert_array_equal(value[-10:], np.expm1(xs[-10:]))
    assert math.copysign(1, value[-10]) == -1


def test_exp_and_expm1_alone_keep_their_own_forms():
    g = compile_grad("exp(x) * sin(x) + expm1(2*x)", backend="c")
    body = g.source.split("/* one point */")[1]
    assert re.search(r"(?<!_)\bexp\(x\)", body) and re.search(r"xc_exp_shared\(\w+\)", body)
    assert "exp" in _libm_exps(g)
    f = compile_expr("expm1(x)", backend="c")
    assert "xc_expm1(x)" in f.source and "_shared" not in f.source


def test_float32_kernels_keep_libm_exp():
    g = compile_grad("exp(x) - 1", backend="c", stable=True, dtype="float32")
    assert "return expf(x);" in g.source and "return expm1f(x);" in g.source
    xs = np.linspace(-20, 20, 4001, dtype=np.float32)
    v, (d,) = g(xs)
    np.testing.assert_allclose(v, np.expm1(xs.astype(np.float64)), rtol=3e-7, atol=0)
    np.testing.assert_allclose(d, np.exp(xs.astype(np.float64)), rtol=3e-7, atol=0)


def _c_and_vm_agree(g_c, g_vm, edges, draw=lambda n: _RNG.uniform(-30, 30, n)):
    """The C kernel's and the VM's bits, value and gradient, on 1, 5, 67 and 1,001 points
    (the last n % 4 through the loops' scalar ends), the first input's first points the
    edges."""
    for n in (1, 5, 67, 1001):
        xs = [draw(n) for _ in g_c.inputs]
        xs[0][:len(edges)] = edges[:n]
        with np.errstate(all="ignore"):
            a, b = g_c(*xs), g_vm(*xs)
        assert same_bits(a[0], b[0]) and all(same_bits(u, w) for u, w in zip(a[1], b[1])), n


@pytest.mark.parametrize("expr", ["exp(x) - 1", "1 - exp(x)", "sin(x) * (exp(x) - 1) + exp(y) * expm1(x*y)",
                                  "log(1 + (exp(x) - 1)**2)"])
def test_the_vm_gives_the_c_kernels_bits(expr):
    g_c = compile_grad(expr, backend="c", stable=True)
    g_vm = compile_grad(expr, backend="vm", stable=True)
    assert "exp_shared" in g_vm.source and "expm1_shared" in g_vm.source
    edges = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -1e-310, 1e-300, -745.5, -720.0, 709.5, 710.0]
    _c_and_vm_agree(g_c, g_vm, edges)
    point = [0.3, -2.5][:len(g_c.inputs)]
    a, b = g_c(*point), g_vm(*point)
    assert same_bits(a[0], b[0]) and all(same_bits(u, w) for u, w in zip(a[1], b[1]))


def test_xc_always_is_the_preludes(monkeypatch):
    """A helper marked XC_ALWAYS gets the macro from math_prelude, without naming it
    among its dependencies; defined once however many helpers use it."""
    monkeypatch.setitem(c_backend.HELPERS, "xc_test_twice",
                        ("static inline XC_ALWAYS double xc_test_twice(double x) { return 2.0 * x; }", ()))
    text = "\n".join(c_backend.math_prelude({"xc_test_twice"}))
    assert text.index("#define XC_ALWAYS") < text.index("xc_test_twice")
    lib = ctypes.CDLL(str(c_build.build(text + "\ndouble run(double x) { return xc_test_twice(x); }\n")))
    lib.run.argtypes, lib.run.restype = [ctypes.c_double], ctypes.c_double
    assert lib.run(1.5) == 3.0
    assert "XC_ALWAYS" not in "\n".join(c_backend.math_prelude({"xc_sign"}))
    text = "\n".join(c_backend.math_prelude({"xc_test_twice", "xc_expm1", "xc_exp_shared", "xc_log1mexp"}))
    assert text.count("#define XC_ALWAYS __attribute__((always_inline))") == 1


def test_split_kernels_with_the_pair_build_and_agree():
    """Every unit of a split kernel gets the prelude, XC_ALWAYS included."""
    terms = " + ".join(f"sin({k}*x + y) * (exp(x + y/{k}) - 1)" for k in range(1, 60))
    g = compile_grad(terms, backend="c", stable=True)
    assert "xc_split_run" in g.source and g.source.count("#define XC_ALWAYS __attribute__") >= 1
    assert "xc_exp_shared(" in g.source and "xc_expm1_shared(" in g.source
    xs = [_RNG.uniform(-1, 1, 203), _RNG.uniform(-1, 1, 203)]
    want = compile_grad(terms, backend="numpy", stable=True)(*xs)
    got = g(*xs)
    for a, b in zip([got[0], *got[1]], [want[0], *want[1]]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.max(np.abs(b)))


# -- log1mexp's value and slope from one reduction ----------------------------------------

def test_c_forms_spells_log1mexps_slope_from_its_steps():
    """expm1(0.0 - x) beside log1mexp(x) (its slope's denominator) becomes
    expm1_neg_shared(x); alone, or of another value, or of -x (not 0.0 - x: -0.0 at +0.0),
    it stays expm1."""
    formed = _ops_of(c_backend.c_forms(compile_grad("log(1 - exp(x))", backend="numpy", stable=True).trace))
    assert "log1mexp_slope" in formed and "expm1" not in formed   # (the slope is an op: no expm1 to share)
    assert "expm1_neg_shared" not in _ops_of(c_backend.c_forms(to_trace("expm1(0.0 - x) + log1mexp(y)")))
    assert "expm1_neg_shared" not in _ops_of(c_backend.c_forms(to_trace("expm1(0.0 - x) * 2")))
    assert _ops_of(c_backend.c_forms(to_trace("log1mexp(x) / expm1(0.0 - x)"))).count("expm1_neg_shared") == 1
    assert _ops_of(c_backend.squares(to_trace("log1mexp(x) / expm1(0.0 - x)"))).count("expm1") == 1


@pytest.fixture(scope="module")
def neg_shared():
    return vectorized(("xc_expm1_neg_shared",))["xc_expm1_neg_shared"]


def test_expm1_neg_shared_against_mpmath_and_at_the_edges(neg_shared):
    small = _RNG.choice([-1, 1], 1000) * 10.0 ** _RNG.uniform(-300, 0.3, 1000)
    xs = np.concatenate([-_RNG.uniform(0, 709.78, 2000), _RNG.uniform(0, 40, 500), small, -_RNG.uniform(0.6, 0.8, 300)])
    assert _worst(neg_shared(xs), xs, lambda x: mpmath.expm1(-x)) <= 3.0
    edges = np.array([0.0, -0.0, 5e-324, -5e-324, -1e-310, np.inf, -np.inf, np.nan, -709.78, -709.79, -710.0,
                      -746.0, -1e308, 1e308, 800.0])
    with np.errstate(all="ignore"):
        want = np.expm1(0.0 - edges)
    got = neg_shared(edges)
    np.testing.assert_array_equal(got[[0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14]],
                                  want[[0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14]])
    assert [math.copysign(1, v) for v in got[:2]] == [1, 1]   # 0.0 - x is +0.0 at both zeros
    assert got[8] == pytest.approx(want[8], rel=8 * EPS)      # |m|/e, e subnormal (a few bits fewer)


@pytest.mark.parametrize("expr", ["log(1 - exp(x))", "log(-expm1(x))", "log1p(-exp(x))",
                                  "log(1 - exp(x)) * sin(y) + log1mexp(y)"])
def test_log1mexp_and_its_slope_share_one_reduction_and_the_vm_agrees(expr):
    g_c = compile_grad(expr, backend="c", stable=True)
    g_vm = compile_grad(expr, backend="vm", stable=True)
    assert "xc_log1mexp_slope(" in g_c.source and "xc_expm1(" not in g_c.source.split("/* one point */")[1]
    edges = [0.0, -0.0, -math.inf, math.inf, math.nan, -5e-324, -1e-310, -1e-300, -709.78, -709.79, -745.5, 0.5]
    _c_and_vm_agree(g_c, g_vm, edges, lambda n: -np.abs(_RNG.uniform(-40, 40, n)))


def test_log1mexps_slope_against_mpmath():
    g = compile_grad("log(1 - exp(x))", backend="c", stable=True)
    xs = np.concatenate([-_RNG.uniform(0, 709, 1500), -10.0 ** _RNG.uniform(-300, 0.5, 1000),
                         -_RNG.uniform(0.6, 0.8, 300)])
    _, (slope,) = g(xs)
    assert _worst(slope, xs, lambda x: -1 / mpmath.expm1(-x)) <= 4.0
    _, (at,) = g(np.array([0.0, -0.0, -np.inf, -710.0, -745.0]))
    # below -709.78 -e^x, a subnormal float, where expm1(-x) overflows (-1/inf was -0.0)
    np.testing.assert_array_equal(at, [-np.inf, -np.inf, -0.0, -np.exp(-710.0), -5e-324])
    assert math.copysign(1, at[2]) == -1


# -- sinh and cosh of one value from one reduction ----------------------------------------

def test_c_forms_spells_sinh_and_cosh_of_one_value_shared():
    formed = _ops_of(c_backend.c_forms(to_trace("sinh(x) + cosh(x) + sinh(y) + cosh(2*y) + exp(x)")))
    assert formed.count("sinh_shared") == formed.count("cosh_shared") == 1
    assert formed.count("sinh") == 1 and formed.count("cosh") == 1 and formed.count("exp") == 1
    assert "sinh_shared" not in _ops_of(c_backend.squares(to_trace("sinh(x) * cosh(x)")))


@pytest.fixture(scope="module")
def hyperbolic():
    return vectorized(("xc_sinh_shared", "xc_cosh_shared"))


def test_shared_sinh_and_cosh_against_mpmath(hyperbolic):
    small = _RNG.choice([-1, 1], 1500) * 10.0 ** _RNG.uniform(-307, 0.5, 1500)
    xs = np.concatenate([_RNG.uniform(-30, 30, 3000), small, _RNG.choice([-1, 1], 500) * _RNG.uniform(700, 710.47, 500),
                         _RNG.uniform(-0.36, 0.36, 500)])
    assert _worst(hyperbolic["xc_sinh_shared"](xs), xs, mpmath.sinh) <= 2.0
    assert _worst(hyperbolic["xc_cosh_shared"](xs), xs, mpmath.cosh) <= 2.0


def test_shared_sinh_and_cosh_at_the_edges(hyperbolic):
    x = np.array([0.0, -0.0, 5e-324, -5e-324, -1e-310, 1e-300, np.inf, -np.inf, np.nan, 710.4758600739439,
                  -710.4758600739439, 710.475860073944, 710.5, -711.0, 1e308, -1e308])
    with np.errstate(all="ignore"):
        s, c = hyperbolic["xc_sinh_shared"](x), hyperbolic["xc_cosh_shared"](x)
        np.testing.assert_array_equal(s[:9], np.sinh(x[:9]))
        np.testing.assert_array_equal(c[:9], np.cosh(x[:9]))
        np.testing.assert_array_equal(s[11:], np.sinh(x[11:]))
        np.testing.assert_array_equal(c[11:], np.cosh(x[11:]))
    assert [math.copysign(1, v) for v in s[:2]] == [1, -1]
    np.testing.assert_allclose(s[9:11], np.sinh(x[9:11]), rtol=2 * EPS)   # the largest finite values
    np.testing.assert_allclose(c[9:11], np.cosh(x[9:11]), rtol=2 * EPS)


@pytest.mark.parametrize("expr", ["(exp(x) - exp(-x))/2", "sinh(x) * cosh(y) + cosh(x)", "0.5*(exp(x) - exp(-x)) * y"])
def test_sinh_and_its_derivative_share_one_reduction_and_the_vm_agrees(expr):
    g_c = compile_grad(expr, backend="c", stable=True)
    g_vm = compile_grad(expr, backend="vm", stable=True)
    assert "xc_sinh_shared(x)" in g_c.source and "xc_cosh_shared(x)" in g_c.source
    edges = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -1e-310, 1e-300, 710.47, -710.6, 0.3, -0.4]
    _c_and_vm_agree(g_c, g_vm, edges)


def test_float32_kernels_keep_libm_sinh_and_cosh():
    g = compile_grad("(exp(x) - exp(-x))/2", backend="c", stable=True, dtype="float32")
    assert "return sinhf(x);" in g.source and "return coshf(x);" in g.source
    xs = np.linspace(-20, 20, 4001, dtype=np.float32)
    v, (d,) = g(xs)
    np.testing.assert_allclose(v, np.sinh(xs.astype(np.float64)), rtol=3e-7, atol=1e-38)
    np.testing.assert_allclose(d, np.cosh(xs.astype(np.float64)), rtol=3e-7, atol=0)


# -- arcsinh's and arccosh's slopes from the value's square root ---------------------------

def test_c_forms_takes_arcsinhs_and_arccoshs_slopes_from_the_values_steps():
    formed = _ops_of(c_backend.c_forms(compile_grad("arcsinh(x) + arccosh(y)", backend="numpy").trace))
    assert "hypot1_shared" in formed and "acosh_root_shared" in formed and "hypot" not in formed
    body = compile_grad("arcsinh(x) + arccosh(y)", backend="c").source.split("/* one point */")[1]
    assert "hypot(" not in body and "sqrt(y - 1.0)" not in body   # (the replaced terms are dead)
    alone = _ops_of(c_backend.c_forms(to_trace("hypot(1.0, x) + sqrt(x - 1.0) * sqrt(x + 1.0) + arcsinh(y)")))
    assert "hypot1_shared" not in alone and "acosh_root_shared" not in alone


@pytest.fixture(scope="module")
def roots():
    return vectorized(("xc_hypot1_shared", "xc_acosh_root_shared"))


def test_the_slopes_roots_against_mpmath_and_at_the_edges(roots):
    xs = np.concatenate([_RNG.uniform(-30, 30, 2000),
                         _RNG.choice([-1, 1], 2000) * 10.0 ** _RNG.uniform(-300, 300, 2000)])
    assert _worst(roots["xc_hypot1_shared"](xs), xs, lambda x: mpmath.sqrt(1 + x * x)) <= 1.0
    ys = np.concatenate([1 + 10.0 ** _RNG.uniform(-15, 0, 1000), 10.0 ** _RNG.uniform(0, 300, 2000)])
    assert _worst(roots["xc_acosh_root_shared"](ys), ys, lambda x: mpmath.sqrt(x * x - 1)) <= 1.5
    edges = np.array([0.0, -0.0, 5e-324, np.inf, -np.inf, np.nan, 1.0, 2.0 ** 28, 1e308, -1e308, 0.5, -3.0])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(roots["xc_hypot1_shared"](edges), np.hypot(1.0, edges))
        np.testing.assert_array_equal(roots["xc_acosh_root_shared"](edges), np.sqrt(edges - 1) * np.sqrt(edges + 1))


@pytest.mark.parametrize("expr", ["log(x + sqrt(x**2 + 1))", "log(x + sqrt(x**2 - 1))", "arcsinh(x) * arccosh(y)"])
def test_arcsinh_and_arccosh_slopes_and_the_vm_agrees(expr):
    g_c = compile_grad(expr, backend="c", stable=True)
    g_vm = compile_grad(expr, backend="vm", stable=True)
    assert "_shared(" in g_c.source and "hypot(" not in g_c.source.split("/* one point */")[1]
    edges = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, 5e-324, 2.0 ** 28, 1e300, -1e300, 0.5, 1 + 1e-15]
    _c_and_vm_agree(g_c, g_vm, edges)
