"""C backend, helpers for the functions C's libm lacks: digamma, polygamma, frac, sinc,
the stable forms of the stability rewrites (logaddexp, log1mexp and its slope's expm1,
cosm1, sech2, sqrt1pm1, the square roots of arcsinh's and arccosh's slopes, arctanh's
slope's denominator),
log1p from c_log's own log, arcsinh, arccosh and arctanh from libmvec's log, which
are cheaper than libmvec's log1p and libm's scalar asinh, acosh and atanh, and tanh
from c_exp's own e^x - 1 (the op table's `c` for log1p, the three and tanh); log1mexp,
its slope's expm1, tanh and sech2 also in the shorter forms of c_backend's tiles of
points away from the edges (INNER).

Merged into c_backend.HELPERS, so both C generators (per-point and tensor) and
`exprc export` emit them where a kernel calls them. digamma and polygamma are the
algorithms of exprcompiler.special step for step (same order of operations, same
constants, printed here from special's tables at round-trip precision), so the two
backends differ only by what libm's log, sin, cos and pow differ by. erf, erfc,
tgamma, lgamma, cbrt, log2, log10, atan2, hypot, floor and ceil are libm's own (erfc
beside its derivative's exp(-x^2) c_erfc's, merged here: c_forms' erfc_shared).
"""

from __future__ import annotations

import math

from .. import special as S
from ..dtypes import KEEP_DOUBLE
from . import c_erfc, c_exp, c_log


def _array(values) -> str:
    return "{" + ", ".join(repr(float(v)) for v in values) + "}"


def _table(rows, width: int) -> str:
    """A C initializer of rows padded with zeros to `width`."""
    return "{\n" + ",\n".join("        " + _array(list(r) + [0.0] * (width - len(r))) for r in rows) + "\n    }"


def _horner(name: str, coefficients: str, count, t: str, pad: str = "    ") -> str:
    """C statements: double name = sum_k coefficients[k] t^k (k < count), as special._horner
    (`count` a number, or a C expression)."""
    last, first = (count - 1, count - 2) if isinstance(count, int) else (f"{count} - 1", f"{count} - 2")
    return (f"double {name} = {coefficients}[{last}];\n"
            f"{pad}for (int k = {first}; k >= 0; --k) {name} = {name} * {t} + {coefficients}[k];")


_ORDERS = S.MAX_ORDER + 1
_COT_WIDTH = S.MAX_ORDER + 2

# ψ(x) for x >= -50 by the recurrence and the asymptotic series (special._psi_shifted, n = 0).
_PSI0_SHIFTED = f"""static double xc_psi0_shifted(double x)
{{
    static const double b[{S.TERMS}] = {_array(S.DIGAMMA_ASYMPTOTIC)};
    double z = x, acc = 0.0;
    while (z < {S.polygamma_threshold(0)!r}) {{ acc += 1.0 / z; z = z + 1.0; }}
    const double u = 1.0 / (z * z);
    {_horner("s", "b", S.TERMS, "u")}
    return (log(z) - 0.5 / z - u * s) - acc;
}}"""

# ψ(x) (special.digamma): poles, the reflection below -50, the Taylor series at the root.
_DIGAMMA = f"""/* digamma: -inf at +0, +inf at -0, NaN at negative integers and -inf */
static double xc_digamma(double x)
{{
    static const double root[{len(S.DIGAMMA_AT_ROOT)}] = {_array(S.DIGAMMA_AT_ROOT)};
    const double t = (x - {S.DIGAMMA_ROOT[0]!r}) - {S.DIGAMMA_ROOT[1]!r};
    if (fabs(t) < {S.DIGAMMA_ROOT_RADIUS!r}) {{
        {_horner("p", "root", len(S.DIGAMMA_AT_ROOT), "t", pad=" " * 8)}
        return t * p;
    }}
    if (isnan(x) || x == -INFINITY || (x < 0 && x == floor(x))) return NAN;
    if (x >= -{S.NEG_SHIFT!r}) return xc_psi0_shifted(x);
    const double r = x - nearbyint(x);
    const double c = cos(3.141592653589793 * r) / sin(3.141592653589793 * r);
    return xc_psi0_shifted(1.0 - x) - 3.141592653589793 * c;   /* P_0(c) = c */
}}"""

# polygamma(n, x) for n >= 1 (special._psi_shifted and special._psi), with per-order tables:
# the asymptotic coefficients, n!, π^(n+1) and the polynomial P_n of the cot derivative.
_ASYM = [S._ASYMPTOTIC[n] if n else [0.0] * (S.TERMS + 2) for n in range(_ORDERS)]
_POLYGAMMA = f"""static double xc_psin_shifted(int n, double x)
{{
    static const double asym[{_ORDERS}][{S.TERMS + 2}] = {_table(_ASYM, S.TERMS + 2)};
    static const double fact[{_ORDERS}] = {_array(float(math.factorial(n)) for n in range(_ORDERS))};
    const double *c = asym[n];
    double z = x, acc = 0.0;
    while (z < 10.0 + n) {{ acc += 1.0 / pow(z, n + 1.0); z = z + 1.0; }}
    const double u = 1.0 / (z * z);
    {_horner("s", "(c + 2)", S.TERMS, "u")}
    const double bracket = c[0] + c[1] / z + u * s;
    const double series = (n % 2 ? 1.0 : -1.0) / pow(z, (double)n) * bracket;
    return series - (n % 2 ? -1.0 : 1.0) * fact[n] * acc;
}}

/* polygamma(n, x): integer orders 0..{S.MAX_ORDER}, else NaN; at the poles odd orders +inf,
   even orders NaN (±inf at ±0) */
static double xc_polygamma(double order, double x)
{{
    static const double cot[{_ORDERS}][{_COT_WIDTH}] = {_table(S._COT, _COT_WIDTH)};
    static const double pi_power[{_ORDERS}] = {_array(math.pi ** (n + 1) for n in range(_ORDERS))};
    if (!(order >= 0 && order <= {S.MAX_ORDER}.0 && order == floor(order))) return NAN;
    const int n = (int)order;
    if (n == 0) return xc_digamma(x);
    if (isnan(x) || x == -INFINITY) return NAN;
    if (x < 0 && x == floor(x)) return n % 2 ? INFINITY : NAN;
    if (x >= -{S.NEG_SHIFT!r}) return xc_psin_shifted(n, x);
    const double r = x - nearbyint(x);
    const double c = cos(3.141592653589793 * r) / sin(3.141592653589793 * r);
    const double reflected = xc_psin_shifted(n, 1.0 - x);
    {_horner("p", "cot[n]", "n + 2", "c")}
    return (n % 2 ? -reflected : reflected) - pi_power[n] * p;
}}"""


def _in_double(code: str) -> str:
    """`code` as a float kernel keeps it (dtypes.KEEP_DOUBLE): polygamma's n! (up to 30!),
    its tables (the asymptotic and cot coefficients of order 25 and up are beyond a
    float's range: NaN) and its reflection (cot(pi r) at r = 1/2 is 4e-8 in float, which
    P_n amplifies: -10.3 for polygamma(8, -50.5), 1.4e-8) need double's range and digits;
    the NumPy backend computes it in float64 as well (dtypes)."""
    return f"{KEEP_DOUBLE[0]}\n{code}\n{KEEP_DOUBLE[1]}"


# log1p from a log, which costs less than libmvec's log1p (1.17 ns a point against
# 1.78, AVX2 variants, 4 lanes): log(u) with u = 1 + x rounded, plus (1 + x - u) / u,
# the first-order term of what the rounding lost. 1 + x - u is exact as x - (u - 1)
# (u - 1 is exact for u < 2^53; above, the term is below 2^-52 of log(u) anyway). The
# division is 1.0 / u so that a kernel's gradient 1 / (1 + x) reuses it. Where u is 1
# (|x| <= 2^-53) the term is x itself, and c - (0.0 - l) is c + l with -0.0 kept
# (log1p(-0.0)); where the sum is NaN but log(u) is not (x = -1, +inf), log(u) is the
# answer. (Selecting x where u is 1 instead cost another 0.07 ns a point.) xc_log1p
# takes c_log's inline log (u is never subnormal), xc_log1p_libm libmvec's, for
# xc_atanh, whose kernel waits on its divisions, not on the log: there the inline log
# cost 2.08 -> 2.22 ns a point (value and gradient, 4096 points in cache). With
# libmvec's, the log comes first: gcc keeps the statements' order around the call,
# which clobbers every vector register, so with the log last the division and the
# correction were computed before the call and stored across it.
def _log1p(name: str, log: str) -> str:
    return f"""/* log1p(x) as log(1 + x) plus what the rounding of 1 + x lost */
static inline double {name}(double x)
{{
    const double u = 1.0 + x, l = {log}(u), c = (x - (u - 1.0)) * (1.0 / u), t = c - (0.0 - l);
    return xc_select(t == t, t, l);
}}"""


# xc_log1p with c_log's own log, the sum taken inside it (xc_log_plus), before its
# selects of 1 + x = 0 and +inf, which replace the select of t == t: the same bits (at
# NaN x the input's NaN, where l's was taken).
_LOG1P = """/* log1p(x) as log(1 + x) plus what the rounding of 1 + x lost */
static inline double xc_log1p(double x)
{
    const double u = 1.0 + x;
    return xc_log_plus(u, (x - (u - 1.0)) * (1.0 / u));
}"""


# log1p(0.0 - x), the rewritten log(1 - x), by the same steps from u = 1 - x (the
# rounding's error (1 - u) - x is exact for |x| <= 1), without the negation, and with
# one fma for the correction: 1.0 / u is the derivative's -1/(1 - x) (c_forms spells
# the gradient's 1.0 + (0.0 - x) as 1.0 - x), and the fma inside c_log's log
# (xc_log_fma: no select of t == t, as xc_log1p's sum). +0.0 at both zeros; -inf at 1,
# inf at -inf, NaN above 1 (log(u)'s). Value and
# gradient of log(1 - x) on 16,384 points in cache, the kernel alone, with libmvec's
# log: 1.76-1.91 ns a point with xc_log1p(0.0 - x), 1.65-1.80 with this (the naive
# form 1.48-1.64); see c_log for its own log.
_LOG1M_SHARED = """/* log1p(0.0 - x) as log(1 - x) plus what the rounding of 1 - x lost */
static inline double xc_log1m_shared(double x)
{
    const double u = 1.0 - x;
    return xc_log_fma(u, (1.0 - u) - x, 1.0 / u);
}"""

# The same for 0 <= y <= 1 (the exp(-|x|) of softplus and logaddexp) without the
# division: 1 / u as 1 - y, whose relative error y^2 / (1 + y) multiplies a term of at
# most 2^-53, at most 2^-53 y / ln 2 of the result (below an ulp). A division would
# cost what log1p does beyond log.
_LOG1P_UNIT = """/* log1p(y) for 0 <= y <= 1 (NaN: NaN) */
static inline double xc_log1p_unit(double y)
{
    const double u = 1.0 + y;
    return fma(y - (u - 1.0), 1.0 - y, log(u));
}"""

# sqrt(1 + x) - 1 without the division of x / (sqrt(1 + x) + 1), which the gradient's
# 0.5 / (that + 1) follows with a second one (vsqrtpd and vdivpd share the divider: the
# rewrite cost 1.39x the naive form). With u = 1 + x rounded and s = sqrt(u), the exact
# value is s - 1 + rho / (2 s) + O(rho^2 / s^3), where rho = 1 + x - s^2 = (x - (u - 1))
# - (s^2 - u), both exact (fma), and s - 1 is exact for s in [0.5, 2] (Sterbenz). 1 /
# (2 s) = 0.5 / (1 + t), t = s - 1, is taken as 0.5 (1 - t + t^2), relative error
# |t|^3, on a term at most 2^-52 s: below 2^-53 t^2 of the result for |t| <= 1; above,
# the term is left out (at most 2^-52 of the result). rho h and s - 1 may cancel (by
# at most about 3x, where s - 1 is an ulp), hence one rounding for the two (fma);
# -(1 - s), not s - 1, so that -0.0 gives -0.0.
_SQRT1PM1 = """/* sqrt(1 + x) - 1 without cancellation or division */
static inline double xc_sqrt1pm1(double x)
{
    const double u = 1.0 + x, s = sqrt(u), t = s - 1.0;
    const double rho = (x - (u - 1.0)) - fma(s, s, -u);
    const double h = xc_select(t <= 1.0, 0.5 * (1.0 - t * (1.0 - t)), 0.0);
    return xc_select(x == INFINITY, x, fma(rho, h, -(1.0 - s)));
}"""

# tanh(x) = sign(x) (-m) / (2 + m), m = expm1(-2|x|), within 2.5 ulps (m within an ulp
# and a half, 2 + m and the quotient each rounded once; 2 + m >= 1, no cancellation). sech2(x) =
# 4w / (1 + w)^2, w = exp(-2|x|), takes 1 + w as 2 + m, the same number to an ulp, by
# the same division as tanh's, so that a kernel with both (tanh and its stable
# derivative) divides once; m and w come from one reduction (c_exp), so it computes
# that once too. Against libmvec's tanh (2.28 ns a point) and then its expm1 and exp:
# see c_exp.
_TANH = """/* tanh from expm1: -0.0 at -0.0, +-1 at +-inf */
static inline XC_ALWAYS double xc_tanh(double x)
{
    const double m = xc_expm1_neg(-2.0 * fabs(x)), r = 1.0 / (2.0 + m);
    return copysign(-m * r, x);
}"""
_SECH2 = """/* 1 / cosh(x)^2 without overflow or cancellation */
static inline XC_ALWAYS double xc_sech2(double x)
{
    const double m = xc_expm1_neg(-2.0 * fabs(x)), r = 1.0 / (2.0 + m), w = xc_exp_neg(-2.0 * fabs(x));
    return 4.0 * w * (r * r);
}"""

# log(1 - e^x) (runtime.log1mexp) by one reduction of x itself (xc_l1me_reduce: t, p and
# s = 2^k of x = k ln 2 + (j/256) ln 2 + r, c_exp's steps) and one log with no branch:
# u = 1 - e^x rounded once, as fma(-s, p, 1 - s) (1 - e^x = (1 - s) - s p), and log(u)
# plus what that rounding lost, res / u, res = (1 - s - s p) - u by one fma of exact
# terms: a = 1 - s is exact for k >= -53 (x >= -36.7), a - u exact by Sterbenz (both in
# [0.5, 1] for k <= -1; a = 0 for k = 0), and below x = -36.7, where a rounds to 1,
# (1 - a) - s its rounding's error, exact too (1 - a is 0 or 2^-53, s a power of two).
# 1 / u as 1 + e (e = e^x = s + s p): for e <= 1/2 its relative error e^2 / (1 - e) on a
# term below 2^-53 of u costs below an ulp; for e > 1/2 (x > -ln 2, where 1 - e^x needs
# no log1p) res / u itself is below 2^-53 and the wrong factor costs it at most e^2
# 2^-53 absolute against |log(u)| >= ln 2. Rounded once (an fma with log(u)). Against
# mpmath (6,000 points a range, tests/test_c_stable_rows.py), worst ulps of the value,
# former form -> this: [-3, -0.5] 2.34 -> 1.88, [-40, -3] 1.90 -> 1.74, (-0.7, 0) 1.73
# -> 1.73, near -ln 2 1.20 -> 1.34 (libmvec's log's own error dominates there), tiny
# |x| and [-745, -40] unchanged (0.77, 0.99); the slope's bits unchanged for x <= 0. The
# former form (log(-expm1(x)) above -ln 2, log1p(-e^x) below, by a select of the log's
# argument: two results of one reduction of -|x|, the select, the correction of 1 - e's
# rounding only, NaN for x > 0 by a select) cost 1.40x the naive form on [-3, -0.5]; its
# log waited for the select, and its 12 operations beyond the reduction and the log
# were 0.5 ns a point of its 3.7. At x > 0 u < 0: NaN (log's own, where the former form
# had NAN); x = +-0: -inf; x = -inf: -0.0 (the value -e^x where 2^k needed c_exp's
# rescue, x < -693). Value and gradient of log(1 - exp(x)) on [-3, -0.5], 16,384 points
# in cache, ns a point (medians of 21-31, alternated, load 2.5-5): 3.47-3.75 -> 2.91-3.15
# (the naive form 2.43-2.73; 1.40-1.42x -> 1.13-1.20x). The log is c_log's (subnormal u
# scaled: xc_log_fma_sub), so that its kernels call no libmvec and run 8 lanes
# (c_tiles.WIDE_LANES): 2.90-2.98 -> 2.45-2.47 (1.11-1.16x -> 0.95x; load 8); within
# 1.04 ulps of log where libmvec's was within 1.51. In a float kernel
# (dtypes.c_source_float) the former form, by libm's expm1f, expf and logf.
_L1ME_RESCUE = c_exp.SHIFT - 1000 * c_exp.STEP   # t below it: 2^k rescued (xc_pow2_low)
_L1ME_STEPS = """/* t = xc_exp_k(a), p = xc_expm1_r and h = 2^k (xc_pow2_low) of a = x within [-746, 709] */
static inline XC_ALWAYS xc_exp_steps xc_l1me_reduce(double x)
{
    const double a = xc_select(x < -746.0, -746.0, xc_select(x > 709.0, 709.0, x));   /* NaN stays */
    const double t = xc_exp_k(a);
    const xc_exp_steps s = {t, xc_expm1_r(a, t), xc_pow2_low(t, 0)};
    return s;
}"""
# e^x by those steps (scaled back by 2^-64 where 2^k was rescued)
_L1ME_E = f"fma(q.h, q.p, q.h) * xc_select(q.t < {_L1ME_RESCUE!r}, {2.0 ** -64!r}, 1.0)"
_L1ME_FLOAT = """    if (sizeof(double) == 4) {   /* a float kernel: expm1f, expf, logf */
        const double y = -fabs(x), m = expm1(y), e = exp(y);
{body}
    }"""
_L1ME_FLOAT_VALUE = _L1ME_FLOAT.replace("{body}", """        const double u = 1.0 - e;
        const int above = x > -0.6931471805599453;
        const double l = log(xc_select(above, -m, u)), c = -((u - 1.0) + e) * (1.0 + e);
        return xc_select(x > 0.0, NAN, xc_select(above, 0.0, c) - (0.0 - l));""")
_LOG1MEXP = f"""/* log(1 - exp(x)) for x <= 0: log(u), u = 1 - e^x rounded once, plus what the rounding lost */
static inline XC_ALWAYS double xc_log1mexp(double x)
{{
{_L1ME_FLOAT_VALUE}
    const xc_exp_steps q = xc_l1me_reduce(x);
    const double a = 1.0 - q.h, u = fma(-q.h, q.p, a), e = {_L1ME_E};
    const double res = fma(-q.h, q.p, (a - u) + ((1.0 - a) - q.h));
    return xc_select(q.t < {_L1ME_RESCUE!r}, -e, xc_log_fma_sub(u, res, 1.0 + e));
}}"""

# expm1(0.0 - x), the denominator of log1mexp's slope, from xc_log1mexp's steps, so that
# a kernel with both reduces once (c_backend.c_forms): (1 - e^x) / e^x = u / e, one
# division (+0.0 at both zeros, inf from x = -709.79 on, as expm1's overflow; above 0,
# where log1mexp is NaN, e^-x - 1 within 2.2 ulps; -1 from x = 709, as expm1(-x)). For
# x <= 0 the former form's bits (u is the former |expm1(-|x|)| bit for bit, e its e^-|x|).
_EXPM1_NEG_SHARED = f"""/* expm1(0.0 - x) by xc_log1mexp's steps */
static inline XC_ALWAYS double xc_expm1_neg_shared(double x)
{{
{_L1ME_FLOAT.replace("{body}", "        return xc_select(x > 0.0, m, fabs(m) / e);")}
    const xc_exp_steps q = xc_l1me_reduce(x);
    const double a = 1.0 - q.h, u = fma(-q.h, q.p, a), e = {_L1ME_E};
    return u / e;
}}"""

# log1mexp's slope -1/expm1(0.0 - x) = -e^x/(1 - e^x) (the op log1mexp_slope) from
# xc_log1mexp's steps, so that a kernel with both reduces once (gcc computes u and e
# once): -e/u, one division, rounded once: -inf at both zeros (u = +0.0), -0.0 at -inf,
# and -e^x below -709.78 where expm1(-x) overflows (e a subnormal float, u = 1: the
# exact slope rounds to it). For x <= 0 the former form's bits (-e/|m|, the same e and
# u = |m|); above 0 (the value is NaN) e/(e - 1) = -1/expm1(-x) within 2 ulps, 1 from
# x = 709.
_LOG1MEXP_SLOPE = f"""/* -1/expm1(0.0 - x) by xc_log1mexp's steps: -e^x/(1 - e^x) */
static inline XC_ALWAYS double xc_log1mexp_slope(double x)
{{
{_L1ME_FLOAT.replace("{body}", "        return xc_select(x > 0.0, 1.0, -e) / fabs(m);")}
    const xc_exp_steps q = xc_l1me_reduce(x);
    const double a = 1.0 - q.h, u = fma(-q.h, q.p, a), e = {_L1ME_E};
    return -e / u;
}}"""

# The three above where |x| <= 690 (xc_exp_neg_inner_at: c_backend's tiles of inner
# points, INNER): a = x, 2^k needs no rescue (k >= -996) nor e^x's factor, and the value
# no select: the same bits in fewer steps.
_L1ME_STEPS_INNER = """/* xc_l1me_reduce(x) where |x| <= 690 */
static inline XC_ALWAYS xc_exp_steps xc_l1me_reduce_inner(double x)
{
    const double t = xc_exp_k(x);
    const xc_exp_steps s = {t, xc_expm1_r(x, t), xc_pow2(t, 0)};
    return s;
}"""


def _l1me_inner(name: str, code: str) -> str:
    """The double path of `code` (one of the three above) on xc_l1me_reduce_inner's steps."""
    float_path = code[code.index("    if (sizeof(double) == 4)"):code.index("    const xc_exp_steps q")]
    body = code.replace(f" {name}(", f" {name}_inner(", 1).replace(float_path, "    if (sizeof(double) == 4) return "
                                                                    f"{name}(x);   /* a float kernel */\n")
    body = body.replace("xc_l1me_reduce(x)", "xc_l1me_reduce_inner(x)").replace(_L1ME_E, "fma(q.h, q.p, q.h)")
    body = body.replace(f"xc_select(q.t < {_L1ME_RESCUE!r}, -e, xc_log_fma_sub(u, res, 1.0 + e))",
                        "xc_log_fma_sub(u, res, 1.0 + e)")
    return f"/* {name}(x) where xc_exp_neg_inner_at(x) */\n" + body.split("\n", 1)[1]


# tanh and sech2 on c_backend's tiles of points away from the edges (INNER): the same
# bits by c_exp's xc_expm1_neg_inner and xc_exp_neg_inner, which leave out the steps
# that only y below -690 needs (the bound, the rescue of 2^k). Value and gradient,
# 16,384 points in cache, ns a point (medians of 9, three runs alternated, load 8-9 on
# 2 cores; the naive form's in brackets): tanh on [-2, 2] 1.71-1.78 -> 1.53-1.57
# (1.48-1.50), sigmoid(x) (1 - sigmoid(x)) as sech2(x/2)/4 1.85-2.20 -> 1.73-1.96
# (1.55-1.78); with an edge point in every tile 2.52 -> 2.69.
def _inner_form(name: str, code: str, at: str) -> tuple[str, tuple]:
    """Helper `name`'s definition `code` as {name}_inner, on the points where `at` holds,
    and the helpers it uses (as HELPERS' entries)."""
    body = code.split("\n", 1)[1].replace(f" {name}(", f" {name}_inner(", 1)
    for full in ("xc_expm1_neg", "xc_exp_neg"):
        body = body.replace(f"{full}(", f"{full}_inner(")
    uses = tuple(h for h in ("xc_select", "xc_expm1_neg_inner", "xc_exp_neg_inner", "xc_log_fma")
                 if f"{h}(" in body)
    return f"/* {name}(x) where {at}(x) */\n{body}", uses


_NEG_INNER_AT = """/* whether |x| <= 690: y = -|x| within [-690, 0] (xc_expm1_neg_inner, xc_exp_neg_inner), or
   log1mexp's x (xc_l1me_reduce_inner) */
static inline XC_ALWAYS int xc_exp_neg_inner_at(double x) { return fabs(x) <= 690.0; }"""
_NEG2_INNER_AT = """/* whether y = -2|x| is within [-690, 0] (xc_expm1_neg_inner, xc_exp_neg_inner) */
static inline XC_ALWAYS int xc_exp_neg2_inner_at(double x) { return fabs(x) <= 345.0; }"""
_INNER_OF = {"xc_tanh": (_TANH, "xc_exp_neg2_inner_at"), "xc_sech2": (_SECH2, "xc_exp_neg2_inner_at"),
             "xc_softplus": (c_exp.SOFTPLUS, "xc_exp_neg_inner_at"),
             "xc_sigmoid": (c_exp.SIGMOID, "xc_exp_neg_inner_at"),
             "xc_sigmoid_slope_shared": (c_exp.SIGMOID_SLOPE_SHARED, "xc_exp_neg_inner_at"),
             "xc_sigmoid_slope": (c_exp.SIGMOID_SLOPE, "xc_exp_neg_inner_at"),
             "xc_sigmoid_slope_slope": (c_exp.SIGMOID_SLOPE_SLOPE, "xc_exp_neg_inner_at")}
_L1ME = {"xc_log1mexp": _LOG1MEXP, "xc_expm1_neg_shared": _EXPM1_NEG_SHARED, "xc_log1mexp_slope": _LOG1MEXP_SLOPE}
# helper -> (its form on the points where the test holds, the test of its argument), as c_exp.INNER
INNER = {**{name: (f"{name}_inner", "xc_exp_neg_inner_at") for name in _L1ME},
         **{name: (f"{name}_inner", at) for name, (_, at) in _INNER_OF.items()}}
_L1ME_USES = ("xc_select", "xc_exp_k", "xc_expm1_r", "xc_pow2", "xc_exp_reduce")
_INNER_HELPERS = {
    "xc_exp_neg_inner_at": (_NEG_INNER_AT, ()),
    "xc_exp_neg2_inner_at": (_NEG2_INNER_AT, ()),
    "xc_l1me_reduce_inner": (_L1ME_STEPS_INNER, _L1ME_USES),
    **{f"{name}_inner": (_l1me_inner(name, code), (name, "xc_l1me_reduce_inner")) for name, code in _L1ME.items()},
    **{f"{name}_inner": _inner_form(name, code, at) for name, (code, at) in _INNER_OF.items()},
}

# arcsinh, arccosh and arctanh (the op table's `c`) by libmvec's log: glibc's asinh,
# acosh and atanh cost 4-5 ns a point here. acosh(x) = log1p((x - 1) + sqrt((x - 1)(x +
# 1))) (x - 1 exact near 1) and atanh(a) = log1p(2a / (1 - a)) / 2 (1 - a exact from
# 1/2) are each log1p(t) of a t >= 0 without cancellation, as xc_log1p takes it: log(u),
# u = 1 + t, plus the rounding's error (t - (u - 1)) / u, exact for u < 2^53.
# asinh(a) = log(u) for u = a + h, h = sqrt(1 + a^2), both rounded, plus e / u, e = a +
# sqrt(1 + a^2) - u: what the two roundings lost, a - (u - h) (exact: h >= a) and (1 +
# a^2 - h^2) / (2h) (the rounded square's residual, by two fmas); 1 / u as h - a (the
# two multiply to 1; where h - a cancels, for large a, e / u is far below the result's
# ulp: within 0.71 ulps on [2^24, 2^28]). Its one division, 1 / h, is the slope's
# 1 / hypot(1, x) (xc_hypot1_shared's expression, so a kernel with both divides once),
# and the log waits for no division. Value and slope of log(x + sqrt(x^2 + 1)) on [0.5,
# 10], 16,384 points in cache: 1.19-1.22x the naive form's time with log1p(a + a^2 / (1 +
# h)) -> 1.00-1.05x (one division fewer, still before the log: 1.18-1.20x); arcsinh alone
# 3.2 -> 2.8 ns a point. Within 1.76 ulps of mpmath from 1e-300 to 1e300 (log1p's form:
# 2.00), float32 2.4 float ulps (2.96): tests/test_c_asinh_one_division.py. acosh's
# correction by x - h for 1 / u, one division fewer, did not pay (1.07-1.09x -> 1.07x;
# with the root's residual too, 1.13x).
# From 2^28 on, where the 1/(4a^2) left out is below 2^-58 of the result, log(2a) =
# log(a) + ln 2 instead (a^2 overflows from 1e154), by the same one log: u = a, the
# correction ln 2. acosh is NaN below 1 by a select (below -1, t may cancel to a finite
# number); atanh inf at 1, NaN above. Odd ones by copysign (-0.0 at -0.0); within 3 ulps
# against mpmath (libm's: 1), NaN at NaN (tests/test_stability_cost.py).
_ASINH = """/* asinh by one log: log(u) for u = |x| + hypot(1, x) rounded, plus what u lost; log(2|x|) from 2^28 */
static inline double xc_asinh(double x)
{
    const double a = fabs(x), s = a * a, h = sqrt(1.0 + s);
    const int big = a > 268435456.0;
    const double r = 1.0 / xc_select(big, a, h), u = xc_select(big, a, a + h);
    const double e = fma(0.5 * fma(a, a, fma(-h, h, 1.0)), r, a - (u - h));
    return copysign(xc_select(big, 0.6931471805599453, e * (h - a)) + log(u), x);
}"""
# log1p(t)'s correction of u = 1 + t, (t - (u - 1)) / u, times x - r instead: 1/u exactly
# (u = x + r, r = sqrt(x^2 - 1)), x - r rounded close enough where the correction counts
# (near 1; from 2^26 x - r may be 0, the correction below 2^-53 of log(u) >= 18). No
# division: value and slope 1.09-1.15x the naive form -> 1.08-1.12x (16,384 points in
# cache, six rounds alternated, load 3-5; 10^6 points 1.08-1.10 -> 1.07-1.11); no point
# of 33,000 from 1 + 2^-52 to 1e300 changed (all within 3 ulps of mpmath).
_ACOSH = """/* acosh by one log: log1p of a positive argument, log(2x) from 2^28; NaN below 1 */
static inline double xc_acosh(double x)
{
    const double d = x - 1.0, r = sqrt(d * (x + 1.0)), t = d + r;
    const int big = x > 268435456.0;
    const double u = xc_select(big, x, 1.0 + t);
    const double c = xc_select(big, 0.6931471805599453, (t - (u - 1.0)) * (x - r));
    return xc_select(x >= 1.0, c + log(u), NAN);
}"""

# The derivatives' denominators hypot(1, x) and sqrt(x - 1) sqrt(x + 1) from the same
# square root as xc_asinh's and xc_acosh's (gcc computes it once in a kernel with both:
# c_backend.c_forms; and 1 / hypot(1, x) too, xc_asinh's one division), within an ulp and
# a half; from 2^28 on, where the 1/(2x^2) left out is below 2^-55, |x| itself (x^2
# overflows from 1e154). Value and slope, 16,384 points in cache: arcsinh 4.0-4.2 ->
# 3.4-3.5 ns a point (libmvec's hypot), arccosh 4.4-4.5 -> 3.0-3.1 (two square roots);
# the naive forms 2.8-2.9.
_HYPOT1_SHARED = """/* hypot(1, x) by xc_asinh's steps */
static inline double xc_hypot1_shared(double x)
{
    const double a = fabs(x), s = a * a;
    return xc_select(a > 268435456.0, a, sqrt(1.0 + s));
}"""
_ACOSH_ROOT_SHARED = """/* sqrt(x - 1) sqrt(x + 1) by xc_acosh's steps; NaN below 1 */
static inline double xc_acosh_root_shared(double x)
{
    const double d = x - 1.0, r = sqrt(d * (x + 1.0));
    return xc_select(x >= 1.0, xc_select(x > 268435456.0, x, r), NAN);
}"""
_ATANH = """/* atanh as log1p(2|x| / (1 - |x|)) / 2: inf at +-1, NaN beyond */
static inline double xc_atanh(double x)
{
    const double a = fabs(x);
    return copysign(0.5 * xc_log1p_libm((a + a) / (1.0 - a)), x);
}"""

# name -> (C definition, helpers it uses), as c_backend.HELPERS
HELPERS = {
    "xc_frac": ("/* x - floor(x), as runtime.frac */\n"
                "static inline double xc_frac(double x) { return x - floor(x); }", ()),
    # np.sinc: sin(πx)/(πx), with πx = 0 replaced by the machine epsilon (value 1)
    "xc_sinc": ("static inline double xc_sinc(double x)\n{\n"
                "    double y = 3.141592653589793 * x;\n"
                "    if (y == 0) y = 2.220446049250313e-16;\n"
                "    return sin(y) / y;\n}", ()),
    "xc_psi0_shifted": ("/* digamma for x >= -50, as special._psi_shifted */\n" + _PSI0_SHIFTED, ()),
    "xc_digamma": (_DIGAMMA, ("xc_psi0_shifted",)),
    "xc_psin_shifted": (_in_double(_POLYGAMMA.split("\n\n/* polygamma")[0]), ()),
    "xc_polygamma": (_in_double("/* polygamma" + _POLYGAMMA.split("\n\n/* polygamma")[1]),
                     ("xc_digamma", "xc_psin_shifted")),
    # The stable forms of the stability rewrites, step for step as runtime's.
    # Selections by xc_select (c_backend: no branch, so the loop still vectorizes).
    # (its log1p(exp(-|d|)) as softplus(-|d|), c_exp's, without a libmvec call: the
    # exp is then the one its slopes' sigmoids take, and the loop runs WIDE_LANES; with
    # libmvec's exp beside their own, value and gradient of log(exp(a) + exp(b)) took
    # 1.2-1.3x the time: c_tiles.WIDE_LANES)
    "xc_logaddexp": ("/* log(exp(x) + exp(y)) as max(x, y) + log1p(exp(-|x - y|)), NumPy's npy_logaddexp's\n"
                     "   values (x + log 2 at a tie, equal infinities too) */\n"
                     "static inline double xc_logaddexp(double x, double y)\n{\n"
                     "    const double r = xc_select(x > y, x, y) + xc_softplus(-fabs(x - y));\n"
                     "    return xc_select(x == y, x + 0.6931471805599453, r);\n}", ("xc_select", "xc_softplus")),
    "xc_l1me_reduce": (_L1ME_STEPS, _L1ME_USES + ("xc_pow2_low",)),
    **{name: (code, ("xc_select", "xc_l1me_reduce") + ("xc_log_fma_sub",) * (name == "xc_log1mexp"))
       for name, code in _L1ME.items()},
    "xc_log1p": (_LOG1P, ("xc_log_plus",)),
    "xc_log1p_libm": (_log1p("xc_log1p_libm", "log"), ("xc_select",)),
    "xc_log1m_shared": (_LOG1M_SHARED, ("xc_log_fma",)),
    "xc_log1p_unit": (_LOG1P_UNIT, ()),
    "xc_asinh": (_ASINH, ("xc_select",)),
    "xc_acosh": (_ACOSH, ("xc_select",)),
    "xc_atanh": (_ATANH, ("xc_log1p_libm",)),
    "xc_hypot1_shared": (_HYPOT1_SHARED, ("xc_select",)),
    # hypot's partial x / hypot(x, y) (the op hypot_slope) where the kernel's h is not
    # found (c_forms.hypot_quotients divides by h where it is): the quotient's steps
    "xc_hypot_slope": ("/* x / hypot(x, y), 0 where hypot is 0 (h: a hint, unused), as runtime.hypot_slope */\n"
                       "static inline double xc_hypot_slope(double x, double y, double h)\n{\n"
                       "    const double r = hypot(x, y);\n    (void)h;\n"
                       "    return xc_select(r == 0.0, 0.0, x / xc_select(r == 0.0, 1.0, r));\n}", ("xc_select",)),
    "xc_acosh_root_shared": (_ACOSH_ROOT_SHARED, ("xc_select",)),
    # arctanh's slope's denominator (ops_special's one_minus_square): the product's
    # steps, so that the kernel gcc makes is the one the product inline made
    "xc_one_minus_square": ("/* 1 - x^2 as (1 - x)(1 + x), as runtime.one_minus_square */\n"
                            "static inline double xc_one_minus_square(double x) { return (1.0 - x) * (1.0 + x); }", ()),
    "xc_cosm1": ("static inline double xc_cosm1(double x) "
                 "{ const double s = sin(0.5 * x); return 0.0 - 2.0 * (s * s); }", ()),
    "xc_tanh": (_TANH, ("xc_expm1_neg",)),
    "xc_sech2": (_SECH2, ("xc_expm1_neg", "xc_exp_neg")),
    "xc_sqrt1pm1": (_SQRT1PM1, ("xc_select",)),
    **_INNER_HELPERS,
    **c_exp.HELPERS,
    **c_log.HELPERS,
    **c_erfc.HELPERS,
}

# libm functions with two arguments among c_backend.VECTOR_MATH (their vector variants take two)
VECTOR_MATH_BINARY = ("atan2", "hypot", "pow")
# libm functions the new ops call that glibc's libmvec has vector variants of (2.35+)
# (asinh, acosh, atanh: the ops now call xc_asinh, xc_acosh, xc_atanh; still listed, as a
# function is declared only where a kernel's text calls it)
VECTOR_MATH = ("erf", "erfc", "cbrt", "log2", "log10", "asinh", "acosh", "atanh", "atan2", "hypot")

__all__ = ["HELPERS", "INNER", "VECTOR_MATH", "VECTOR_MATH_BINARY"]
