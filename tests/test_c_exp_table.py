"""The table of backends/c_exp.py's argument reduction: its entries 2^(j/256) - 1 against
mpmath, its constants, and the C helpers' relative error where the reduction is most
delicate, near 0, where U[j] and expm1(r) of opposite signs cancel (j = +-1, 256 |x| /
ln 2 near 1/2 and 3/2), and where k changes (|x| near ln(2)/2): within 1.5 * 2^-52 there
as over the wide ranges of test_c_exp.py (a table of 128 entries was off by 1.6 * 2^-52
by j = 1)."""

import math

import mpmath
import numpy as np
import pytest

from exprcompiler.backends import c_build, c_exp

from test_c_exp import _worst, vectorized

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

_RNG = np.random.default_rng(256)
_STEP = math.log(2) / 256


def test_the_table_is_2_to_the_j_over_256_minus_1_rounded():
    assert len(c_exp.U) == 2 ** c_exp.TABLE_BITS == c_exp.STEP == 256
    with mpmath.workdps(50):
        for i, u in enumerate(c_exp.U):
            assert u == float(mpmath.mpf(2) ** (mpmath.mpf(i - 128) / 256) - 1), i
    assert c_exp.U[128] == 0.0 and math.copysign(1, c_exp.U[128]) == 1


def test_the_reduction_constants():
    with mpmath.workdps(50):
        step = mpmath.log(2) / 256
        assert c_exp.INV_LN2 == float(1 / step)
        assert c_exp.LN2_HI + c_exp.LN2_LO == float(step)
        # LN2_LO carries the 53 bits after LN2_HI's 33
        assert abs(mpmath.mpf(c_exp.LN2_HI) + c_exp.LN2_LO - step) < 2.0 ** -85 * step
    hi = c_exp.LN2_HI.hex()   # 33 significant bits, so that n LN2_HI is exact for |n| < 2^20
    assert len(hi.split(".")[1].split("p")[0].rstrip("0")) * 4 <= 32
    # the low 8 bits of t = SHIFT + n are n + 128 mod 256, the bits above k + 1023
    assert c_exp.SHIFT == 1.5 * 2 ** 52 + 128 + 1023 * 256


@pytest.fixture(scope="module")
def helpers():
    return vectorized(("xc_expm1", "xc_expm1_neg", "xc_exp_neg", "xc_exp_shared"))


def _near(centres, width, n):
    """n points within width * _STEP of each centre (in steps of ln(2)/256), both signs."""
    xs = np.concatenate([_RNG.uniform(c - width, c + width, n) * _STEP for c in centres])
    return np.concatenate([xs, -xs])


def test_expm1_where_the_table_and_the_polynomial_cancel(helpers):
    xs = np.concatenate([_near([0.5, 1.5, 2.5], 0.02, 700), _near([1.0, 2.0], 0.5, 700)])
    assert _worst(helpers["xc_expm1"](xs), xs, mpmath.expm1) <= 1.5
    ys = -np.abs(xs)
    assert _worst(helpers["xc_expm1_neg"](ys), ys, mpmath.expm1) <= 1.5


def test_both_sides_of_each_step_of_k(helpers):
    # |x| near (k + 1/2) ln 2, where n + 128 crosses a multiple of 256 (j = -128 <-> 127)
    xs = np.concatenate([_near([128.0 * (2 * k + 1)], 0.3, 300) for k in range(3)])
    xs = np.concatenate([xs, np.nextafter(0.5 * math.log(2), [0.0, 1.0])])
    assert _worst(helpers["xc_expm1"](xs), xs, mpmath.expm1) <= 1.5
    assert _worst(helpers["xc_exp_shared"](xs), xs, mpmath.exp) <= 1.5
    ys = -np.abs(xs)
    assert _worst(helpers["xc_exp_neg"](ys), ys, mpmath.exp) <= 1.5
