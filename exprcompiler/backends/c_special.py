"""C backend, helpers for the functions C's libm lacks: digamma, polygamma, frac, sinc,
and the stable forms of the stability rewrites (logaddexp, log1mexp, cosm1, sech2, sqrt1pm1).

Merged into c_backend.HELPERS, so both C generators (per-point and tensor) and
`exprc export` emit them where a kernel calls them. digamma and polygamma are the
algorithms of exprcompiler.special step for step (same order of operations, same
constants, printed here from special's tables at round-trip precision), so the two
backends differ only by what libm's log, sin, cos and pow differ by. erf, erfc,
tgamma, lgamma, cbrt, log2, log10, atan2, hypot, floor and ceil are libm's own.
"""

from __future__ import annotations

import math

from .. import special as S


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
    "xc_psin_shifted": (_POLYGAMMA.split("\n\n/* polygamma")[0], ()),
    "xc_polygamma": ("/* polygamma" + _POLYGAMMA.split("\n\n/* polygamma")[1], ("xc_digamma", "xc_psin_shifted")),
    # The stable forms of the stability rewrites, step for step as runtime's.
    # Selections by xc_select (c_backend: no branch, so the loop still vectorizes).
    "xc_logaddexp": ("/* log(exp(x) + exp(y)) as max(x, y) + log1p(exp(-|x - y|)), NumPy's npy_logaddexp's\n"
                     "   values (x + log 2 at a tie, equal infinities too) */\n"
                     "static inline double xc_logaddexp(double x, double y)\n{\n"
                     "    const double r = xc_select(x > y, x, y) + log1p(exp(-fabs(x - y)));\n"
                     "    return xc_select(x == y, x + 0.6931471805599453, r);\n}", ("xc_select",)),
    "xc_log1mexp": ("/* log(1 - exp(x)), as runtime.log1mexp (both branches computed, one kept) */\n"
                    "static inline double xc_log1mexp(double x)\n"
                    "{\n    const double a = log(-expm1(x)), b = log1p(-exp(x));\n"
                    "    return xc_select(x > -0.6931471805599453, a, b);\n}",
                    ("xc_select",)),
    "xc_cosm1": ("static inline double xc_cosm1(double x) "
                 "{ const double s = sin(0.5 * x); return 0.0 - 2.0 * (s * s); }", ()),
    "xc_sech2": ("static inline double xc_sech2(double x) "
                 "{ const double w = exp(-2.0 * fabs(x)); return 4.0 * w / ((1.0 + w) * (1.0 + w)); }", ()),
    "xc_sqrt1pm1": ("static inline double xc_sqrt1pm1(double x) "
                    "{ return xc_select(x == INFINITY, x, x / (sqrt(1.0 + x) + 1.0)); }", ("xc_select",)),
}

# libm functions with two arguments among c_backend.VECTOR_MATH (their vector variants take two)
VECTOR_MATH_BINARY = ("atan2", "hypot", "pow")
# libm functions the new ops call that glibc's libmvec has vector variants of (2.35+)
VECTOR_MATH = ("erf", "erfc", "cbrt", "log2", "log10", "asinh", "acosh", "atanh", "atan2", "hypot")

__all__ = ["HELPERS", "VECTOR_MATH", "VECTOR_MATH_BINARY"]
