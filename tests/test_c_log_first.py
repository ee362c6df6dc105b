"""c_special's xc_log1p and xc_log1m_shared take their log by c_log's inline log with the
correction added inside it (xc_log_plus, xc_log_fma: before the log's own selects of 0
and +inf), so no value is kept across a call and the gradient's division (1 / (1 + x))
is the correction's, made once. Here: one inline log and one division in the emitted
helpers, and the stable log(1 + x) and log(1 - x) kernels' values and gradients against
mpmath and the tape VM's bits."""

import re

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import c_build

from test_vm import same_bits

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

_RNG = np.random.default_rng(43)
_EDGES = np.array([-0.0, 0.0, -1.0, 1.0, np.inf, -np.inf, np.nan, 2.0 ** -54, -2.0 ** -54, 1e-310, -1.5, 1.5])


def _helper(source: str, name: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.search(rf"static inline (?:XC_ALWAYS )?double {name}\(.*?\n}}", code, re.S).group(0)


@pytest.mark.parametrize("text, name, log", [("log(1 + x)", "xc_log1p", "xc_log_plus(u, "),
                                             ("log(1 - x)", "xc_log1m_shared", "xc_log_fma(u, ")])
def test_one_inline_log_and_one_division(text, name, log):
    source = compile_grad(text, backend="c", stable=True).source
    body = _helper(source, name)
    assert body.count(log) == 1 and body.count("1.0 / u") == 1
    assert re.search(rf"static inline XC_ALWAYS double {log[:-4]}\(", source)   # (inline: no call)


@pytest.mark.parametrize("text, sign, lo, hi", [("log(1 + x)", 1.0, 0.1, 10.0), ("log(1 - x)", -1.0, -10.0, -0.1)])
def test_stable_log_rows_against_mpmath(text, sign, lo, hi):
    """The bench's accurate range, small |x| (where the rewrite matters) and x near the
    pole: value within 2 ulps of mpmath, gradient sign/(1 + sign x) within an ulp."""
    g = compile_grad(text, backend="c", stable=True)
    assert ("xc_log1p(" if sign > 0 else "xc_log1m_shared(") in g.source
    xs = np.concatenate([_RNG.uniform(lo, hi, 200), _RNG.choice([-1, 1], 100) * 10.0 ** _RNG.uniform(-300, -1, 100),
                         sign * (-1 + 10.0 ** _RNG.uniform(-15, -1, 50))])
    v, (d,) = g(xs)
    with mpmath.workdps(50):
        for x, y, dy in zip(xs.tolist(), v.tolist(), d.tolist()):
            want, slope = mpmath.log1p(sign * mpmath.mpf(x)), sign / (1 + sign * mpmath.mpf(x))
            assert abs(y - want) <= 2 * 2.0 ** -52 * abs(want), x
            assert abs(dy - slope) <= 2.0 ** -52 * abs(slope), x


@pytest.mark.parametrize("text", ["log(1 + x)", "log(1 - x)", "log(1 - x) * log(1 + x)"])
def test_the_vm_gives_the_c_kernels_bits(text):
    g_c = compile_grad(text, backend="c", stable=True)
    g_vm = compile_grad(text, backend="vm", stable=True)
    for n in (1, 5, 67, 1001):
        xs = _RNG.uniform(-3, 3, n)
        xs[:len(_EDGES)] = _EDGES[:n]
        with np.errstate(all="ignore"):
            a, b = g_c(xs), g_vm(xs)
        assert same_bits(a[0], b[0]) and same_bits(a[1][0], b[1][0]), n


def test_log1p_edges_kept():
    """log1p(-0.0) is -0.0, -inf at -1, inf at inf, NaN below -1 (the select after the sum)."""
    g = compile_grad("log(1 + x)", backend="c", stable=True)
    with np.errstate(all="ignore"):
        v, _ = g(np.array([-0.0, 0.0, -1.0, np.inf, -1.5, np.nan]))
    assert same_bits(v, np.array([-0.0, 0.0, -np.inf, np.inf, np.nan, np.nan]))
