"""C backend, helpers for the three-term stable forms hypot3 and logaddexp3 (the op
table's ops_special), and for over_norm, hypot3's partials (ops.py), with hypot3_slope0, 1,
2 and hypot3_guard where a kernel has them as they are; runtime_nary.py is their NumPy side.

Merged into c_backend.HELPERS, as c_special's are, so both C generators, the tape VM
and `exprc export` emit them where a kernel calls them. Both select by masks
(xc_select), with no branch and no scalar libm call, so that a loop holding them
still vectorizes (c_backend's note on xc_select).

xc_logaddexp3 takes the very steps of the op's derivative (ops_special._softmax3: the
largest, m the first argument equal to it, the exps of the two others' t - m, their
sum, one division), spelled as a one-function kernel spells them
(c_backend.SelectRenderer: a where on an inlined comparison is xc_select(x == big,
...)), so that after inlining gcc computes the two exps and the division once for the
value and its three partials (-fno-math-errno: exp is a pure function): the value
costs a log, an addition and a product beyond them.
Spelled otherwise (xc_where(xc_eq(x, big), ...)), the same steps are other values to
gcc, which then computes each exp twice.
Likewise the sum of squares of xc_hypot3 is the one its partials' scale reads
(ops_special._over_norm3), with the same operations in the same order.
"""

from __future__ import annotations

# sqrt(x² + y² + z²): the naive sum of squares s where it is at least 2^-970 (tiny/eps)
# and finite, the naive form's bits there (runtime_nary.hypot3's); elsewhere the terms
# scaled first by a power of two (exact): 2^600 where s is below that (every |term|
# below 2^-485), 2^-600 where s overflowed (or is NaN); inf where a term is infinite
# (C's hypot's, math.hypot's), NaN or not (fabs(x) == INFINITY: with isinf, gcc 12
# vectorizes no loop). Hexadecimal constants: a float kernel (dtypes.c_source_float)
# leaves them double, and takes its own lines before them: the terms scaled by a power
# of two by the largest (2^-66 from 2^60 on: 3 (2^62)^2 < FLT_MAX; 2^100 below 2^-60:
# the least subnormal's square, 2^-98, stays normal), so that the sum of squares neither
# overflows nor loses the subnormals' digits (hypotf(hypotf(x, y), z), as it was, rounds
# twice: 1.4e-45 at three terms of 1.4e-45 where the norm is 2.4e-45 (NumPy's 2.8e-45),
# and inf where two float maxima overflowed the inner hypotf and the third term is NaN).
_HYPOT3 = """/* sqrt(x^2 + y^2 + z^2) without overflow or underflow, as runtime.hypot3 */
static inline double xc_hypot3(double x, double y, double z)
{
    if (sizeof(double) == 4) {   /* a float kernel: float's scales (the constants are exact floats) */
        const double ax = fabs(x), ay = fabs(y), az = fabs(z), axy = xc_select(ax > ay, ax, ay);
        const double m = xc_select(axy > az, axy, az);   /* (NaN: another term, or NaN; the sum is NaN) */
        const double k = xc_select(m >= 1152921504606846976.0, 1.3552527156068805e-20,
                                   xc_select(m < 8.673617379884035e-19, 1.2676506002282294e30, 1.0));
        const double a = x * k, b = y * k, c = z * k;
        const double h = sqrt(a * a + b * b + c * c) / k;
        return xc_select((fabs(x) == INFINITY) | (fabs(y) == INFINITY) | (fabs(z) == INFINITY), INFINITY, h);
    }
    const double s = x * x + y * y + z * z;
    const int low = s < 0x1p-970, naive = (s >= 0x1p-970) & (s < INFINITY);
    const double k = xc_select(naive, 1.0, xc_select(low, 0x1p600, 0x1p-600));
    const double back = xc_select(naive, 1.0, xc_select(low, 0x1p-600, 0x1p600));
    const double a = x * k, b = y * k, c = z * k;
    const double h = sqrt(a * a + b * b + c * c) * back;
    return xc_select((fabs(x) == INFINITY) | (fabs(y) == INFINITY) | (fabs(z) == INFINITY), INFINITY, h);
}"""

# x / h as hypot3's partials take it (runtime_nary.over_norm): x·k·(1/(h·k)), k a power of
# two by the sum of squares s. A kernel's three calls on one h and s (hypot3's partials)
# are the same operations to gcc, which computes k and the reciprocal once.
_OVER_NORM = """/* x / h with one reciprocal that several quotients by h share, as runtime.over_norm */
static inline double xc_over_norm(double x, double h, double s)
{
    const double k = xc_select(s <= 0x1p120, 0x1p60, 0x1p-60);
    return x * k * (1.0 / (h * k));
}"""

# hypot3's partial before its guard, where a kernel has no hypot3 of its arguments to divide
# by (c_forms.hypot_quotients divides by it where it has): over_norm's steps on its own
# value and sum of squares (runtime.hypot3_slope0, 1, 2); and the guard, 0 where the norm is 0.
_HYPOT3_SLOPE = """/* {v} / hypot3(x, y, z), {v} where it is 0, as runtime.hypot3_slope{i} */
static inline double xc_hypot3_slope{i}(double x, double y, double z)
{{
    const double r = xc_hypot3(x, y, z);
    return xc_over_norm({v}, xc_select(r == 0.0, 1.0, r), x * x + y * y + z * z);
}}"""
_HYPOT3_GUARD = """/* q, 0 where h == 1 and s == 0 (a norm of 0 and its sum of squares), as runtime.hypot3_guard */
static inline double xc_hypot3_guard(double q, double h, double s)
{
    return xc_select((h == 1.0) & (s == 0.0), 0.0, q);
}"""

# log(exp(x) + exp(y) + exp(z)) as m + log1p(s), m the first argument equal to the largest,
# big (big itself where that is z, or NaN), s = exp(u - m) + exp(w - m) for u and w the
# two others, in order (u - m taken as 0 where u == big and u - m is NaN: inf - inf); log1p(s)
# as log(v) + (s - (v - 1))/v with v = 1 + s (the rounding of v, s - (v - 1), is exact
# for s <= 1 and within an ulp of it above, where it is below 2^-52 of the log). -inf,
# inf and NaN come out of the sum m + ...: all -inf gives -inf.
_LOGADDEXP3 = """/* log(exp(x) + exp(y) + exp(z)), the largest taken out (the steps of its derivative) */
static inline double xc_logaddexp3(double x, double y, double z)
{
    const double big = xc_maximum(xc_maximum(x, y), z);
    const double m = xc_select(x == big, x, xc_select(y == big, y, big));
    const double u = xc_select(x == big, y, x), w = xc_select(x == big, z, xc_select(y == big, z, y));
    const double du = u - m, dw = w - m;
    const double s = exp(xc_select(u == big, xc_select(du == du, du, 0.0), du))
                     + exp(xc_select(w == big, xc_select(dw == dw, dw, 0.0), dw));
    const double v = 1.0 + s, r = 1.0 / v;
    return m + (log(v) + (s - (v - 1.0)) * r);
}"""

# xc_hypot3 on c_backend's tiles of points away from the edges (INNER): where the sum of
# squares s is within [2^-970, inf), the scale and its inverse are 1 and no term is
# infinite, so xc_hypot3 is sqrt(s) itself, the same operations in the same order: its
# bits. The steps left out (the scaled terms, their sum again, the test of infinite
# terms) were the whole of what the stable value and gradient cost over the naive ones
# (4096 points in cache, ns a point: naive 1.65-1.66, stable 1.76-1.82, on tiles 1.67).
_HYPOT3_INNER = """/* xc_hypot3(x, y, z) where xc_hypot3_inner_at(x, y, z) */
static inline XC_ALWAYS double xc_hypot3_inner(double x, double y, double z)
{
    if (sizeof(double) == 4) return xc_hypot3(x, y, z);   /* a float kernel: its own lines */
    return sqrt(x * x + y * y + z * z);
}"""
_HYPOT3_INNER_AT = """/* whether xc_hypot3's sum of squares is within [2^-970, inf) (xc_hypot3_inner) */
static inline XC_ALWAYS int xc_hypot3_inner_at(double x, double y, double z)
{
    const double s = x * x + y * y + z * z;
    return (s >= 0x1p-970) & (s < INFINITY);
}"""
# helper -> (its form on the points where the test holds, the test of its arguments), as
# c_exp.INNER
INNER = {"xc_hypot3": ("xc_hypot3_inner", "xc_hypot3_inner_at")}

# name -> (C definition, helpers it uses), as c_backend.HELPERS
HELPERS = {
    "xc_hypot3": (_HYPOT3, ("xc_select",)),
    "xc_hypot3_inner": (_HYPOT3_INNER, ("xc_hypot3",)),
    "xc_hypot3_inner_at": (_HYPOT3_INNER_AT, ()),
    "xc_logaddexp3": (_LOGADDEXP3, ("xc_maximum", "xc_select")),
    "xc_over_norm": (_OVER_NORM, ("xc_select",)),
    **{f"xc_hypot3_slope{i}": (_HYPOT3_SLOPE.format(i=i, v="xyz"[i]), ("xc_hypot3", "xc_over_norm", "xc_select"))
       for i in range(3)},
    "xc_hypot3_guard": (_HYPOT3_GUARD, ("xc_select",)),
}

__all__ = ["HELPERS", "INNER"]
