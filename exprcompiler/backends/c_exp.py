"""C backend, e^x - 1 and e^x of its own: xc_expm1 (the op table's C spelling of expm1)
and, for c_special's tanh, sech2 and log1mexp, xc_expm1_neg and xc_exp_neg; written so
that gcc vectorizes them inline (no libm call).

Merged into c_special.HELPERS (and so into c_backend.HELPERS). Why: libmvec's expm1
costs 1.33 ns a point where its exp costs 0.90 (AVX2, 4 lanes, one thread), so the
stable expm1(x) cost 10-15% more than the naive exp(x) - 1 even where the latter is
accurate, and sech2, tanh's stable derivative, called both. Here one argument
reduction and one polynomial give both, and a kernel calling both computes them once.
Value and gradient kernels on 4096 points (in cache; ns a point, libmvec -> these):
expm1(x) 1.64 -> 1.18 (exp(x) - 1: 1.18), tanh with its stable derivative 2.96 -> 1.58,
tanh with 1 - tanh^2 2.03 -> 1.38, log1mexp 8.50 -> 4.93.

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

# expm1(x): x within [-40, 710] (beyond, the value is -1 or +inf already: e^-40 is
# below 2^-54), then 2 (2^(k-1) p + 2^(k-1) - 1/2): halves, because 2^1024 (k = 1024
# from x = 709.44 on) is no double; exact doubling. At k = 0 the value is p itself,
# which keeps the subnormals (2 * (p / 2) would round them), with the sign of x (p is
# +0.0 at -0.0: r^2 q + r).
_EXPM1 = f"""/* e^x - 1 without cancellation, from one fma of exact terms */
static inline XC_ALWAYS double xc_expm1(double x)
{{
    if (sizeof(double) == 4) return expm1(x);   /* a float kernel: expm1f */
    const double a = xc_select(x < -40.0, -40.0, xc_select(x > 710.0, 710.0, x));   /* NaN stays */
    const double t = xc_exp_k(a), p = xc_expm1_r(a, t), h = xc_pow2(t - 1.0);
    return xc_select(t == {SHIFT!r}, copysign(p, x), 2.0 * fma(h, p, h - 0.5));
}}"""

# For y <= 0 (-inf and NaN too): e^y - 1 and e^y from the same steps, so that a kernel
# calling both (sech2, log1mexp) computes them once. y within [-746, 0] (e^-746 rounds
# to 0); below k = -1000, 2^k may be no normal double, so s is 2^(k + 64) there and
# e^y is scaled by 2^-64 after the fma (e^y - 1 is -1 with either).
_EXP_NEG_S = f"""/* 2^k for y <= 0 and t = xc_exp_k(y), or 2^(k + 64) where k < -1000 */
static inline XC_ALWAYS double xc_exp_neg_s(double t)
{{
    return xc_pow2(t + xc_select(t < {SHIFT - 1000!r}, 64.0, 0.0));
}}"""
_EXPM1_NEG = """/* e^y - 1 for y <= 0 */
static inline XC_ALWAYS double xc_expm1_neg(double y)
{
    if (sizeof(double) == 4) return expm1(y);   /* a float kernel: expm1f */
    const double a = xc_select(y < -746.0, -746.0, y), t = xc_exp_k(a), s = xc_exp_neg_s(t);
    return fma(s, xc_expm1_r(a, t), s - 1.0);
}"""
_EXP_NEG = f"""/* e^y for y <= 0 */
static inline XC_ALWAYS double xc_exp_neg(double y)
{{
    if (sizeof(double) == 4) return exp(y);   /* a float kernel: expf */
    const double a = xc_select(y < -746.0, -746.0, y), t = xc_exp_k(a), s = xc_exp_neg_s(t);
    return fma(s, xc_expm1_r(a, t), s) * xc_select(t < {SHIFT - 1000!r}, {2.0 ** -64!r}, 1.0);
}}"""

# Every helper here is inlined whatever the level: at -O1 (large kernels, split units:
# c_build.SIZED_FLAGS) gcc inlines only small functions, and one call left in an
# `omp simd` loop keeps the whole loop scalar (scalar libm for every other function of
# the kernel, and bits that differ from the VM's vector loops).
_ALWAYS = """/* inlined at every optimisation level (an omp simd loop with a call stays scalar) */
#ifndef XC_ALWAYS
#if defined(__GNUC__)
#define XC_ALWAYS __attribute__((always_inline))
#else
#define XC_ALWAYS
#endif
#endif"""

# name -> (C definition, helpers it uses), as c_backend.HELPERS
HELPERS = {
    "xc_always": (_ALWAYS, ()),
    "xc_exp_k": (_EXP_K, ("xc_always",)),
    "xc_expm1_r": (_EXPM1_R, ("xc_always",)),
    "xc_pow2": (_POW2, ("xc_always",)),
    "xc_expm1": (_EXPM1, ("xc_always", "xc_select", "xc_exp_k", "xc_expm1_r", "xc_pow2")),
    "xc_exp_neg_s": (_EXP_NEG_S, ("xc_always", "xc_select", "xc_pow2")),
    "xc_expm1_neg": (_EXPM1_NEG, ("xc_always", "xc_select", "xc_exp_k", "xc_expm1_r", "xc_exp_neg_s")),
    "xc_exp_neg": (_EXP_NEG, ("xc_always", "xc_select", "xc_exp_k", "xc_expm1_r", "xc_exp_neg_s")),
}

__all__ = ["HELPERS"]
