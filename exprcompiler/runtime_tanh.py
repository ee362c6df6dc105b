"""The NumPy runtime's sech2 (tanh's derivative) and the forms that give tanh(x) and
sech(x)² together: from t = np.tanh(x) where its loop is SIMD (ufunc_loops.SIMD), else
from one w = exp(-2|x|); and by those steps sigmoid's slope sigmoid(x)·sigmoid(-x) =
sech(x/2)²/4 (the op sigmoid_slope) and its derivative (sigmoid_slope_slope), alone or
both from one call (sigmoid_slopes).

Where it sits: re-exported by runtime.py; backends/numpy_shares._tanh_group decides
where generated code calls sech2_of_tanh, exp_neg2abs, tanh_of_exp and sech2_of_exp,
numpy_share_pairs._value_and_slope where it calls sigmoid_slopes.
The blocked running comes from runtime_blocks.py.
"""

from __future__ import annotations

import numpy as np

from .runtime_blocks import _blocked, _blocked_rows, _real, _redo, _scalar
from .ufunc_loops import SIMD


def sech2(x):
    """sech(x)² = 1 - tanh(x)², with no cancellation where tanh(x) is near ±1, no
    overflow: sech2_of_tanh(x, np.tanh(x)) where np.tanh's loop is SIMD (ufunc_loops.SIMD:
    the shared form's numbers), else 4w / (1 + w)², w = exp(-2|x|) (the C helper's)."""
    return _sech2_of_own_tanh(x) if SIMD["tanh"] else _sech2_of_own_exp(x)


@_blocked
def _sech2_of_own_tanh(x):
    x = _real(x)
    return sech2_of_tanh(x, np.tanh(x))


@_blocked
def _sech2_of_own_exp(x):
    return sech2_of_exp(exp_neg2abs(x))


# 1 - tanh(x)² at least this (|x| <= 2.06): taken as it is. np.tanh is within an ulp
# here (AVX-512), and 1 - t² magnifies t's error by up to 2/(1 - t²) = 32: within
# 3.1e-15 of the exact value (14 ulps; against mpmath at 4,000 points), where the
# stability catalogue asks 1e-13. The naive derivative's numbers there, at the naive
# form's cost where it is accurate (tanh(x)'s value and gradient on [-2, 2]); a larger
# bound gives fewer ulps at more cost (1/4: 3 ulps, |x| <= 1.32).
_SECH2_NEAR = 1.0 / 16


@_blocked
def sech2_of_tanh(x, t, out=None):
    """sech(x)² from x and t = tanh(x) (np.tanh's, where its loop is SIMD: the NumPy
    backend then computes tanh(x) and its derivative so): 1 - t² where that is at least
    _SECH2_NEAR (one reduction finds a block all so), (1/cosh x)² elsewhere (within
    about two ulps; 0 at ±inf, NaN at NaN), at the other points only where they are few,
    so each point's value is its own, whatever the others."""
    if (out is None and type(t) is np.ndarray and t.ndim and t.dtype.char in "fd" and type(x) is np.ndarray
            and x.dtype.char in "fd"):
        s = np.square(t)   # (the usual block: no conversions)
    else:
        x, t = _real(x), _real(t)
        s = np.square(t, out=np.empty_like(t) if out is None else out)
    np.subtract(1.0, s, out=s)
    if s.size and not np.minimum.reduce(s, axis=None) >= _SECH2_NEAR:   # (NaN fails too)
        far = np.greater_equal(s, _SECH2_NEAR, out=np.empty(s.shape, bool))   # (an array for one point too)
        np.logical_not(far, out=far)
        if 2 * np.count_nonzero(far) >= s.size:
            np.copyto(s, _sech2_cosh(x), where=far)
        else:
            _redo(s, far, _sech2_cosh, x)
    return _scalar(s)


def _sech2_cosh(x):
    """(1/cosh x)²: not 1/cosh², whose cosh² overflows from |x| = 355."""
    with np.errstate(over="ignore"):   # cosh overflows from |x| = 710.5, where sech² is 0
        c = np.cosh(x, out=np.empty_like(x))   # (an array for one point too: out= below)
    np.divide(1.0, c, out=c)
    return np.square(c, out=c)


@_blocked
def exp_neg2abs(x, out=None):
    """w = exp(-2|x|), in [0, 1]: sech2's, and tanh's where |x| is not small (tanh_of_exp)."""
    x = _real(x)
    w = np.abs(x, out=np.empty_like(x) if out is None else out)
    with np.errstate(over="ignore"):   # -2|x| is -inf from |x| = 9e307: exp gives 0
        np.multiply(w, -2.0, out=w)
    return _scalar(np.exp(w, out=w))


@_blocked
def sech2_of_exp(w, out=None):
    """sech(x)² from w = exp(-2|x|) (exp_neg2abs), as 4w / (1 + w)²: the C helper's
    4w / ((1 + w)(1 + w)), one 1 + w."""
    w = _real(w)
    p = np.add(w, 1.0, out=np.empty_like(w))
    np.multiply(p, p, out=p)
    r = np.multiply(w, 4.0, out=np.empty_like(w) if out is None else out)
    return _scalar(np.divide(r, p, out=r))


_TANH_HALF = 1.0 / 3.0   # w = exp(-2|x|) above it: |tanh x| < 1/2


@_blocked
def tanh_of_exp(x, w, out=None):
    """tanh(x) from w = exp(-2|x|) (exp_neg2abs), as ±(1 - w)/(1 + w) where |tanh x| >= 1/2
    (w <= 1/3: no cancellation, within two ulps or so of the exact value; ±1 from
    |x| = 18.4, where w < 2^-53, and at ±inf), np.tanh's own value at the points nearer 0
    (±0 and NaN stay themselves). With sech2_of_exp, tanh(x) and its derivative cost an
    exp, a few passes and np.tanh at the points near 0, where np.tanh alone costs two and
    a half exps. Where those points are most of the block, np.tanh runs on all and the
    others are redone, so each point's value is its own."""
    x, w = _real(x), _real(w)
    r = np.empty_like(w) if out is None else out
    near = None
    if w.size and not np.maximum.reduce(w, axis=None) <= _TANH_HALF:   # some points near 0 (or NaN)
        near = w > _TANH_HALF
        if 2 * np.count_nonzero(near) >= w.size:   # each point's value is its own, whatever the others
            np.tanh(x, out=r)
            _redo(r, ~near, _tanh_far, x, w)
            return _scalar(r)
    _tanh_far(x, w, out=r)
    if near is not None:
        _redo(r, near, np.tanh, x)
    return _scalar(r)


def _tanh_far(x, w, out=None):
    """±(1 - w)/(1 + w) with x's sign."""
    p = np.add(w, 1.0)
    r = np.subtract(1.0, w, out=out)
    np.divide(r, p, out=r)
    return np.copysign(r, x, out=r)


# sigmoid(x)·sigmoid(-x) = sech(x/2)²/4 and its derivative -sech(x/2)²·tanh(x/2)/4 (the
# ops sigmoid_slope and sigmoid_slope_slope: the rule sigmoid_pair's form of
# sigmoid(u)·(1 - sigmoid(u)) and its derivative) by the steps of sech2 and tanh of
# h = x/2 that _tanh_group shares: the bits of the lines 0.5·x, tanh, sech2_of_tanh, 0.25·s
# and -0.25·(s·t), which the rule put in before these ops were (within 3.1e-15 of the
# exact value where 1 - t² is taken, see _SECH2_NEAR). The C kernel's form, w·(1 - w) and
# -sign(x)·w·(1 - w)·tanh(|x|/2), w = e/(1 + e), from one e = exp(-|x|) (and expm1(-|x|),
# the same reduction there) and one division (c_exp.xc_sigmoid_slope), costs NumPy more:
# value and derivative on a block of 16,384 points of |x| in [0.5, 3], in cache
# (process time, medians of 21, load 3-4), e·r² (r = 1/(1 + e)) with the sign by
# np.copysign of e - 1 61 µs (without the np.expm1 small |x| needs, 15 µs more), with
# np.tanh(x/2) for the sign 62, these steps 48 (the naive v·(1 - v) 54).
def sigmoid_slope(x):
    """sigmoid(x)·sigmoid(-x) as sech(x/2)²/4 (sech2's steps): sigmoid_slopes' first row."""
    return _scalar(np.multiply(sech2(np.multiply(_real(x), 0.5)), 0.25))


def sigmoid_slope_slope(x):
    """sigmoid_slope's derivative -sech(x/2)²·tanh(x/2)/4: sigmoid_slopes' second row."""
    return _scalar(sigmoid_slopes(x)[1])


@_blocked_rows
def sigmoid_slopes(x, out=None):
    """(sigmoid_slope(x), sigmoid_slope_slope(x)) from one tanh (or one exp(-|x|), where
    np.tanh's loop is not SIMD: then sech2_of_exp and tanh_of_exp, as _tanh_group's) of
    h = x/2, in place. `out`: two arrays."""
    x = _real(x)
    value, slope = (np.empty_like(x), np.empty_like(x)) if out is None else out   # (arrays for one point too)
    h = np.multiply(x, 0.5, out=value)
    if SIMD["tanh"]:
        t = np.tanh(h, out=slope)
        s = sech2_of_tanh(h, t)
    else:
        w = exp_neg2abs(h)
        t = tanh_of_exp(h, w, out=slope)
        s = sech2_of_exp(w, out=w)
    np.multiply(s, 0.25, out=value)
    np.multiply(s, t, out=slope)
    return value, np.multiply(slope, -0.25, out=slope)


__all__ = ["exp_neg2abs", "sech2", "sech2_of_exp", "sech2_of_tanh", "sigmoid_slope", "sigmoid_slope_slope",
           "sigmoid_slopes", "tanh_of_exp"]
