"""C backend, e^x - 1 and e^x of its own: xc_expm1 (the op table's C spelling of expm1),
xc_expm1_shared and xc_exp_shared (those of expm1_shared and exp_shared: expm1 and exp
of one value in one kernel, c_backend.c_forms), xc_sinh_shared and xc_cosh_shared (sinh
and cosh of one value, likewise) and, for c_special's tanh, sech2 and log1mexp,
xc_expm1_neg and xc_exp_neg; written so that gcc vectorizes them inline (no libm call).

Merged into c_special.HELPERS (and so into c_backend.HELPERS). Why: libmvec's expm1
costs 1.33 ns a point where its exp costs 0.90 (AVX2, 4 lanes, one thread), so the
stable expm1(x) cost 10-15% more than the naive exp(x) - 1 even where the latter is
accurate, and sech2, tanh's stable derivative, called both. Here one argument
reduction and one polynomial give both, and a kernel calling both computes them once.
Value and gradient kernels on 4096 points (in cache; ns a point, libmvec -> these):
expm1(x) 1.64 -> 1.18 (exp(x) - 1: 1.18), tanh with its stable derivative 2.96 -> 1.58,
tanh with 1 - tanh^2 2.03 -> 1.38, log1mexp 8.50 -> 4.93; on 2 * 10^5 points, expm1(x)
with its derivative exp(x) (libmvec's exp beside xc_expm1 -> one reduction for both,
xc_exp_reduce) 2.52 -> 1.67 (exp(x) - 1 on libmvec's exp: 1.24-1.30).

The method (as glibc's and fdlibm's): x = k ln 2 + r with k the integer nearest x / ln
2, taken from the low bits of t = x / ln 2 + 1.5 * 2^52 (xc_exp_k); r = x - k ln 2 with
ln 2 in two parts, the first of 16 bits so that k times it is exact, and so is its
difference with x (|r| <= ln(2) / 2); expm1(r) = r + r^2 q(r) (xc_expm1_r); 2^k built in
the exponent field (xc_pow2). Then e^x - 1 = 2^k expm1(r) + (2^k - 1) and e^x = 2^k
expm1(r) + 2^k, each one fma of exact terms (2^k - 1 is exact for |k| <= 53): relative
error at most 1.5 * 2^-52 over wide ranges against mpmath (tests/test_c_exp.py; libmvec's
expm1 was up to 1.9 * 2^-52 on the same kind of points).

q is the polynomial of degree 9 with q(0) = 1/2 fitted (least squares on 400 Chebyshev
nodes in mpmath, weighted by r^3 / expm1(r)) to (expm1(r) - r) / r^2 on |r| <= 0.3466:
relative error 0.13 * 2^-52 (degree 10: 0.002 * 2^-52, at one fma more).

In a float kernel (dtypes.c_source_float makes the source single precision) the bit
layout below is wrong, so there the helpers call libm's expm1f and expf, as before:
`sizeof(double) == 4` is a constant, so gcc keeps only one of the two paths.
"""

from __future__ import annotations

# (expm1(r) - r) / r^2 ~ sum Q[j] r^j, |r| <= 0.3466 (see the docstring)
Q = (0.5, 0.16666666666666546, 0.04166666666661843, 0.00833333333342643, 0.00138888889211074,
     0.00019841269624027623, 2.48015156264183e-05, 2.7557503069866963e-06, 2.762250308904602e-07,
     2.502081182794312e-08)
SHIFT = 6755399441055744.0        # 1.5 * 2^52: x + SHIFT rounds x to an integer, kept in the low bits
INV_LN2 = 1.4426950408889634
LN2_HI = 0.693145751953125        # 16 bits
LN2_LO = 1.4286068203094173e-06   # ln 2 - LN2_HI


def _horner(t: str) -> str:
    text = repr(Q[-1])
    for c in reversed(Q[:-1]):
        text = f"fma({text}, {t}, {c!r})"
    return text


_EXP_K = f"""/* x / ln 2 to the nearest integer k, as 1.5 * 2^52 + k (exact for |x| < 2^50) */
static inline XC_ALWAYS double xc_exp_k(double x) {{ return fma(x, {INV_LN2!r}, {SHIFT!r}); }}"""

# (r r) q, not r (r q), which waits for q: 7% slower (value and gradient of expm1 in
# cache). r r is subnormal for |r| < 1.5e-154, which costs a microcode assist (the
# value and gradient of expm1 on 10^6 x in [1e-300, 1e-3], half of them below, took
# 1.4x the time of exp(x) - 1, against 1.1x with r (r q); libmvec's expm1 1.9x).
_EXPM1_R = f"""/* expm1(r), r = x - k ln 2 for t = xc_exp_k(x) (|r| <= ln(2) / 2): r + r^2 q(r) */
static inline XC_ALWAYS double xc_expm1_r(double x, double t)
{{
    const double k = t - {SHIFT!r};
    const double r = fma(-k, {LN2_LO!r}, fma(-k, {LN2_HI!r}, x));
    return fma(r * r, {_horner("r")}, r);
}}"""

# The shift is written for both widths only so that a float kernel's copy compiles
# without a warning: there it is never called.
_POW2 = """/* 2^k for t = 1.5 * 2^52 + k, -1022 <= k <= 1023: k + 1023 in the exponent field */
static inline XC_ALWAYS double xc_pow2(double t)
{
    union { double d; unsigned long long u; } s = {t};
    s.u = (s.u + 1023) << (sizeof(double) == 8 ? 52 : 23);
    return s.d;
}"""

# Below j = -1000, 2^j may be no normal double: there the scale is 2^(j + 64), and a
# caller scales its result by 2^-64 after the fma (one rounding into the subnormals).
_POW2_LOW = f"""/* 2^j for u = 1.5 * 2^52 + j, j <= 1023, or 2^(j + 64) where j < -1000 */
static inline XC_ALWAYS double xc_pow2_low(double u)
{{
    return xc_pow2(u + xc_select(u < {SHIFT - 1000!r}, 64.0, 0.0));
}}"""

# e^x - 1 = 2 (2^(k-1) p + 2^(k-1) - 1/2) from the steps of x (h = 2^(k-1): halves,
# because 2^1024, k = 1024 from x = 709.44 on, is no double; exact doubling). At k = 0
# the value is p itself, which keeps the subnormals (2 * (p / 2) would round them), with
# the sign of x (p is +0.0 at -0.0: r^2 q + r).
_EXPM1_OF = f"""/* e^x - 1 from t = xc_exp_k(a), p = expm1(r) and h = 2^(k-1) of x */
static inline XC_ALWAYS double xc_expm1_of(double x, double t, double p, double h)
{{
    return xc_select(t == {SHIFT!r}, copysign(p, x), 2.0 * fma(h, p, h - 0.5));
}}"""

# expm1(x) alone: x within [-40, 710] (beyond, the value is -1 or +inf already: e^-40
# is below 2^-54), so 2^(k-1) is a normal double.
_EXPM1 = """/* e^x - 1 without cancellation, from one fma of exact terms */
static inline XC_ALWAYS double xc_expm1(double x)
{
    if (sizeof(double) == 4) return expm1(x);   /* a float kernel: expm1f */
    const double a = xc_select(x < -40.0, -40.0, xc_select(x > 710.0, 710.0, x));   /* NaN stays */
    const double t = xc_exp_k(a);
    return xc_expm1_of(x, t, xc_expm1_r(a, t), xc_pow2(t - 1.0));
}"""

# expm1(x) and e^x of one x from the same steps (the op table's expm1_shared and
# exp_shared, which c_backend.c_forms spells where a kernel computes both: expm1 and its
# derivative), so that gcc merges the two inlined copies: x within [-746, 710] (e^-746
# rounds to 0, e^710 overflows), and h = 2^(k-1), or 2^(k+63) below k = -999
# (xc_pow2_low), where e^x is then scaled by 2^-63 after the fma and e^x - 1 is -1 all
# the same (as from x < -38 on): the values of xc_expm1, bit for bit. These steps cost
# two operations more than xc_expm1's, so an expm1 alone keeps those, and an exp alone
# keeps libmvec's (5-20% faster than xc_exp_shared).
_EXP_STEPS = """/* t = xc_exp_k(a), p = expm1(r) and h = 2^(k-1) (xc_pow2_low) of x within [-746, 710] */
typedef struct { double t, p, h; } xc_exp_steps;
static inline XC_ALWAYS xc_exp_steps xc_exp_reduce(double x)
{
    const double a = xc_select(x < -746.0, -746.0, xc_select(x > 710.0, 710.0, x));   /* NaN stays */
    const double t = xc_exp_k(a);
    const xc_exp_steps s = {t, xc_expm1_r(a, t), xc_pow2_low(t - 1.0)};
    return s;
}"""
_EXPM1_SHARED = """/* e^x - 1 by xc_exp_reduce's steps */
static inline XC_ALWAYS double xc_expm1_shared(double x)
{
    if (sizeof(double) == 4) return expm1(x);   /* a float kernel: expm1f */
    const xc_exp_steps s = xc_exp_reduce(x);
    return xc_expm1_of(x, s.t, s.p, s.h);
}"""
_EXP_SHARED = f"""/* e^x by xc_exp_reduce's steps: 2 (h p + h), or 2^-63 (h p + h) where h is 2^(k+63) */
static inline XC_ALWAYS double xc_exp_shared(double x)
{{
    if (sizeof(double) == 4) return exp(x);   /* a float kernel: expf */
    const xc_exp_steps s = xc_exp_reduce(x);
    return fma(s.h, s.p, s.h) * xc_select(s.t < {SHIFT - 999!r}, {2.0 ** -63!r}, 2.0);
}}"""

# For y <= 0 (-inf and NaN too): e^y - 1 and e^y from the same steps, so that a kernel
# calling both (sech2, log1mexp) computes them once: y within [-746, 0], s = 2^k (k <= 0:
# no halving, and one bound: fewer operations than xc_exp_reduce's).
_EXPM1_NEG = """/* e^y - 1 for y <= 0 */
static inline XC_ALWAYS double xc_expm1_neg(double y)
{
    if (sizeof(double) == 4) return expm1(y);   /* a float kernel: expm1f */
    const double a = xc_select(y < -746.0, -746.0, y), t = xc_exp_k(a), s = xc_pow2_low(t);
    return fma(s, xc_expm1_r(a, t), s - 1.0);
}"""
_EXP_NEG = f"""/* e^y for y <= 0 */
static inline XC_ALWAYS double xc_exp_neg(double y)
{{
    if (sizeof(double) == 4) return exp(y);   /* a float kernel: expf */
    const double a = xc_select(y < -746.0, -746.0, y), t = xc_exp_k(a), s = xc_pow2_low(t);
    return fma(s, xc_expm1_r(a, t), s) * xc_select(t < {SHIFT - 1000!r}, {2.0 ** -64!r}, 1.0);
}}"""

# sinh(x) and cosh(x) of one x (the op table's sinh_shared and cosh_shared, which
# c_backend.c_forms spells where a kernel computes both: sinh and its derivative) from
# one reduction of a = |x| within [0, 710.5] (from 710.48 on both overflow), with
# q = 2^(k-2), so that e^a / 2 = 2 (q p + q) is finite wherever the result is (k = 1025
# at the top). With r = 1/e^a: cosh = e^a/2 + r/2, and sinh = (e^a - 1)/2 (1 + r), from
# e^a - 1 as in xc_expm1_of (no cancellation), at k = 0 p (1/2 + r/2), which keeps the
# subnormals. libmvec's sinh and cosh cost 2.7 ns a point where these two cost 1.2 and
# the naive (exp(x) - exp(-x))/2 with its derivative 1.6 (16,384 points in cache, load 8).
_HYP_STEPS = f"""/* t = xc_exp_k(b), p = expm1(r) and q = 2^(k-2) of b = |x| within [0, 710.5] */
static inline XC_ALWAYS xc_exp_steps xc_hyp_reduce(double x)
{{
    const double a = fabs(x), b = xc_select(a > 710.5, 710.5, a);   /* NaN stays */
    const double t = xc_exp_k(b);
    const xc_exp_steps s = {{t, xc_expm1_r(b, t), xc_pow2(t - 2.0)}};
    return s;
}}"""
_SINH_SHARED = f"""/* sinh by xc_hyp_reduce's steps: (e^a - 1)/2 (1 + 1/e^a), with x's sign */
static inline XC_ALWAYS double xc_sinh_shared(double x)
{{
    if (sizeof(double) == 4) return sinh(x);   /* a float kernel: sinhf */
    const xc_exp_steps s = xc_hyp_reduce(x);
    const double half = 2.0 * fma(s.h, s.p, s.h), r = 0.5 / half;
    const double mh = 2.0 * fma(s.h, s.p, s.h - 0.25);
    return copysign(xc_select(s.t == {SHIFT!r}, s.p * (0.5 + 0.5 * r), mh * (1.0 + r)), x);
}}"""
_COSH_SHARED = """/* cosh by xc_hyp_reduce's steps: e^a/2 + 1/(2 e^a) */
static inline XC_ALWAYS double xc_cosh_shared(double x)
{
    if (sizeof(double) == 4) return cosh(x);   /* a float kernel: coshf */
    const xc_exp_steps s = xc_hyp_reduce(x);
    const double half = 2.0 * fma(s.h, s.p, s.h), r = 0.5 / half;
    return half + 0.5 * r;
}"""

# name -> (C definition, helpers it uses), as c_backend.HELPERS. Every helper here is
# XC_ALWAYS (c_backend.math_prelude defines it): inlined at every optimisation level.
_STEPS = ("xc_select", "xc_exp_k", "xc_expm1_r", "xc_pow2_low")
HELPERS = {
    "xc_exp_k": (_EXP_K, ()),
    "xc_expm1_r": (_EXPM1_R, ()),
    "xc_pow2": (_POW2, ()),
    "xc_pow2_low": (_POW2_LOW, ("xc_select", "xc_pow2")),
    "xc_expm1_of": (_EXPM1_OF, ("xc_select",)),
    "xc_expm1": (_EXPM1, ("xc_select", "xc_exp_k", "xc_expm1_r", "xc_pow2", "xc_expm1_of")),
    "xc_exp_reduce": (_EXP_STEPS, _STEPS),
    "xc_expm1_shared": (_EXPM1_SHARED, ("xc_exp_reduce", "xc_expm1_of")),
    "xc_exp_shared": (_EXP_SHARED, ("xc_select", "xc_exp_reduce")),
    "xc_expm1_neg": (_EXPM1_NEG, _STEPS),
    "xc_exp_neg": (_EXP_NEG, _STEPS),
    "xc_hyp_reduce": (_HYP_STEPS, ("xc_select", "xc_exp_k", "xc_expm1_r", "xc_pow2", "xc_exp_reduce")),
    "xc_sinh_shared": (_SINH_SHARED, ("xc_select", "xc_hyp_reduce")),
    "xc_cosh_shared": (_COSH_SHARED, ("xc_hyp_reduce",)),
}

__all__ = ["HELPERS"]
