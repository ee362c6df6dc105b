"""log(1 - x) in C (issue 18's C row of log(1 - x)): rewritten, it is log1p(0.0 - x),
which c_backend.c_forms spells as the op log1m_shared(x) (c_special.xc_log1m_shared,
from u = 1 - x with no negation), and the gradient's 1.0 + (0.0 - x) as 1.0 - x, the
value's own u, so that the kernel divides once; the same in the tape VM (one rule for
both), values within an ulp of mpmath, the other backend's gradient."""

import math

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import c_backend, c_build
from exprcompiler.frontend import to_trace

from test_c_exp import _worst, vectorized
from test_c_exp_pair import _c_and_vm_agree
from test_vm import same_bits

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

_RNG = np.random.default_rng(1801)


@pytest.fixture(scope="module")
def log1m():
    return vectorized(("xc_log1m_shared",))["xc_log1m_shared"]


def test_log1m_against_mpmath(log1m):
    tiny = _RNG.choice([-1, 1], 800) * 10.0 ** _RNG.uniform(-300, -1, 800)
    xs = np.concatenate([tiny, _RNG.uniform(-10, 1, 2000), _RNG.uniform(0.5, 1, 500),
                         1 - 10.0 ** _RNG.uniform(-16, -1, 300), -(10.0 ** _RNG.uniform(1, 300, 300))])
    # (units of 2^-52: an ulp or so, libmvec's log's; xc_log1p(0.0 - x)'s worst here is the same)
    assert _worst(log1m(xs), xs, lambda x: mpmath.log1p(-x)) <= 1.5


def test_log1m_at_the_edges(log1m):
    x = np.array([0.0, -0.0, 5e-324, -5e-324, 1.0, -np.inf, np.inf, 1.5, np.nan, np.nextafter(1.0, 0.0)])
    with np.errstate(all="ignore"):
        want = np.log1p(np.subtract(0.0, x))
    got = log1m(x)
    assert same_bits(got[:-1], want[:-1])
    assert [math.copysign(1, v) for v in got[:2]] == [1, 1]   # +0.0 at both zeros, as log(1 - x)
    assert got[-1] == pytest.approx(math.log(2.0 ** -53), rel=2 ** -52)


def test_c_forms_spells_log1p_of_a_negation_and_its_denominator_from_1_minus_x():
    text = "log1p(0.0 - x) + 1 / (1.0 + (0.0 - x)) + log1p(0.0 - y) + 1 / (1.0 + (0.0 - z))"
    formed = c_backend.c_forms(to_trace(text))
    ins = formed.instrs
    ops = [i.op for i in ins]
    assert ops.count("log1m_shared") == 2 and "log1p" not in ops
    # 1.0 + (0.0 - x) is 1.0 - x, x's log1m being there; z has none, so its sum stays
    subs = [(ins[i.args[0]].value, ins[i.args[1]].name) for i in ins
            if i.op == "sub" and ins[i.args[0]].op == "const" and ins[i.args[1]].op == "input"]
    assert (1.0, "x") in subs and (1.0, "z") not in subs
    assert ops.count("add") == 3 + 1   # the three between the terms, and z's 1.0 + (0.0 - z)


@pytest.mark.parametrize("expr", ["log(1 - x)", "log(1 - x) * y + log(1 - y)"])
def test_log_1_minus_x_c_kernel_and_vm_agree(expr):
    g_c = compile_grad(expr, backend="c", stable=True)
    g_vm = compile_grad(expr, backend="vm", stable=True)
    body = g_c.source.split("/* one point */")[1]
    assert "xc_log1m_shared(" in body and "xc_log1p(" not in body and "(1.0 - x)" in body
    edges = [0.0, -0.0, 1.0, -math.inf, math.inf, math.nan, 5e-324, -1e-310, 0.999999, 1.5, -1e300]
    _c_and_vm_agree(g_c, g_vm, edges, lambda n: _RNG.uniform(-10, 1, n))


def test_log_1_minus_x_value_and_gradient_against_the_other_backend_and_mpmath():
    xs = np.concatenate([_RNG.uniform(-10, 0.99, 500), _RNG.choice([-1, 1], 200) * 10.0 ** _RNG.uniform(-300, -1, 200)])
    v, (d,) = compile_grad("log(1 - x)", backend="c", stable=True)(xs)
    assert _worst(v, xs, lambda x: mpmath.log1p(-x)) <= 1.5
    np.testing.assert_allclose(d, compile_grad("log(1 - x)", stable=True)(xs)[1][0], rtol=2 ** -52, atol=0)
    _, (at,) = compile_grad("log(1 - x)", backend="c", stable=True)(np.array([1.0, -np.inf, 2.0]))
    np.testing.assert_array_equal(at, [-np.inf, 0.0, 1.0])
