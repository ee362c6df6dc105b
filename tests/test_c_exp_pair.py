"""expm1(a) and exp(a) of the same a from one argument reduction in C (issue 18's C
row of exp(x) - 1): c_backend.c_forms spells such a pair as the op table's
expm1_shared and exp_shared (c_exp's xc_expm1_shared, xc_exp_shared), for the C kernel
and the tape VM alike, so both give the same bits; an exp or expm1 alone keeps its own
form (libmvec's exp, xc_expm1). Also: the XC_ALWAYS macro is math_prelude's, whatever
helper uses it."""

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


@pytest.mark.parametrize("expr", ["exp(x) - 1", "1 - exp(x)", "sin(x) * (exp(x) - 1) + exp(y) * expm1(x*y)",
                                  "log(1 + (exp(x) - 1)**2)"])
def test_the_vm_gives_the_c_kernels_bits(expr):
    g_c = compile_grad(expr, backend="c", stable=True)
    g_vm = compile_grad(expr, backend="vm", stable=True)
    assert "exp_shared" in g_vm.source and "expm1_shared" in g_vm.source
    edges = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -1e-310, 1e-300, -745.5, -720.0, 709.5, 710.0]
    for n in (1, 5, 67, 1001):   # (the last n % 4 points through the loops' scalar ends)
        xs = [_RNG.uniform(-30, 30, n) for _ in g_c.inputs]
        xs[0][:len(edges)] = edges[:n]
        with np.errstate(all="ignore"):
            a, b = g_c(*xs), g_vm(*xs)
        assert same_bits(a[0], b[0]) and all(same_bits(u, w) for u, w in zip(a[1], b[1])), n
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
