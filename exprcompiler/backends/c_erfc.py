"""C backend, erfc of its own: xc_erfc (the op table's C spelling of erfc_shared, which
c_forms puts in for erfc(u) where the kernel also computes exp(-square(u)): erfc's and
erf's derivative), written so that gcc vectorizes it inline with no branch: one rational
function for every lane (no intervals, no table, no scalar libm call) times libmvec's exp
of -(u u), that very expression, so that gcc computes that exp once for both (its value
numbering merges the two calls before the loop is vectorized). erfc without it (a
value-only kernel) keeps libmvec's erfc, which is faster alone and closer (below).

Merged into c_special.HELPERS (and so into c_backend.HELPERS). Why: issue 18 lets a
stability rewrite cost at most 10% over the naive form where that is accurate, and the
rewrites of 1 - erf(x) into erfc(x) and of 1 + erf(x) into erfc(-x) cost 1.12-1.17x
their naive forms there (value and gradient on 10^6 points, one thread; the stability
bench, three runs alternated, load 2.5-3.4): libmvec's erfc costs 0.25-0.3 ns a point
more than its erf (1.53-1.67 against 1.30-1.41, AVX2's 4 lanes, the loop alone; its exp
of -x^2 0.85). With this one the kernel's erfc costs the rational function and no exp
of its own: those rows 0.96-1.01x (x in [-3, 0.5] and [-0.5, 3]; 2.35-2.43 -> 1.95-2.05
ms), and 0.97-1.02x on [1, 26] and [-26, -1], where the naive form is wrong (HEAD
1.15-1.20x; 2.40-2.53 -> 2.03-2.26 ms).
Alone (a loop of xc_erfc(x) without the gradient) it is slower than libmvec's erfc:
1.93-2.04 ns a point against 1.53-1.67 (benchmarks/bench_c_erfc.py): hence the shared
form only.

The method: erfc(a) = e^(-a^2) erfcx(a) for a = |x|, erfcx(a) = e^(a^2) erfc(a) (smooth,
1 at 0, about 1/(a sqrt(pi)) for large a), and erfc(x) = 2 - erfc(|x|) for x < 0, where
no digit cancels (the result is at least 1). erfcx(a) = (1 + a N(a)/D(a)) / (1 + sqrt(pi)
a) on all of [0, 27.5] (erfc(x) underflows from x = 27.23 on), N and D of degrees 9 and 11
with positive coefficients, fitted here (`python benchmarks/bench_c_erfc.py --fit`: mpmath
at 80 digits, linearized least squares on 400 Chebyshev points, reweighted towards the
minimax by Lawson's rule; rational Chebyshev approximation as in W. J. Cody, Math. Comp.
23 (1969), on one interval instead of his three): 9.5e-19 relative (0.05 ulps with the
coefficients rounded to double). Taken as (e D + e a N) / (D (1 + sqrt(pi) a)), one
division: the rounding errors of D (Horner's, up to 2-3 ulps) then nearly cancel between
numerator and denominator, and those of N weigh at most G/(1 + G) <= 0.16 (G = a N/D);
what is left is the five roundings after them and libmvec's exp.

Against mpmath (50 digits; 38,000 points on [-6, 27], near 0, 1/2, +-1, tiny |x|, the
subnormal results; tests/test_c_erfc.py): within 4.6 ulps, 0.64 on average, where
libmvec's erfc is within 1.5 (0.33). libmvec's exp itself, which the kernel's gradient
takes as well, is within 2.4 ulps (0.54 on average) of e^(-h), and the helper's other
steps add up to 2.2: the 2-ulp target of the task is out of reach with that exp. The
relative error is below 1.1e-15 everywhere, issue 18's bound 1e-13. Subnormal results
(x in [26.55, 27.23]) within 1.8 units of 2^-1074.

Tried and dropped: erfcx as P(a)/Q(a) of degrees 10 and 11 (its fit 9.2e-19, as good),
by Horner's scheme: P and Q each up to 4.5 2^-53 off for large a, where the top terms
dominate and every rounding counts: 7.2 ulps in all (0.90-0.96x the naive forms, the
same speed); by Estrin's scheme (simulated) no better (3.5 2^-53 for P/Q). Degrees 9 and
10: a fit of 5.1e-17 (0.46 ulps). Reversed Horner in 1/a for large a, which keeps P and Q
within an ulp, takes a second division (the divider is what one already costs).

e^(-x^2) is libmvec's exp of -h, h = x x rounded, corrected by the rounding's error lo
= x x - h (exact, one fma): e^(-x^2) = e^(-h) e^(-lo) = e^(-h) (1 - lo) to within lo^2
(|lo| <= 2^-53 h; without it, h 2^-53 relative, 1.5e-13 at x = 26). lo is taken as 0
below |x| = 1e-140, where x x and lo are subnormal or zero (microcode assists at each
operation that reads or makes one: the naive 1 - erfc(x) on |x| in [1e-300, 0.01] took
9.6 ms for 6.7 with them, 6.5 without).

In a float kernel (dtypes.c_source_float) the helper is libm's erfcf (libmvec's vector
erfcf where the kernel vectorizes), as before: `sizeof(double) == 4` is a constant.
"""

from __future__ import annotations

# (1 + sqrt(pi) a) erfcx(a) - 1 ~ a N(a) / D(a) on [0, 27.5]: coefficients of a^0, a^1, ...
# (see the docstring)
N = (0.6440746838100039, 1.2661075373914243, 1.235492899324455, 0.7700135258570725, 0.33467974050458865,
     0.10478720868634915, 0.023630821404273663, 0.003714137198530109, 0.0003721467479976193,
     1.840561660725793e-05)
D = (1.0, 3.5183925006745493, 5.796974203472975, 5.91678784246039, 4.167305880972078, 2.1330637074794456,
     0.8126115204601176, 0.23144386532834668, 0.04857480996066375, 0.007209637206780258,
     0.0006885244115334766, 3.2623106033930614e-05)
SQRT_PI = (1.772453850905516, -7.666586499825799e-17)   # sqrt(pi) in two parts (hi + lo)
BOUND = 28.0   # from |x| = BOUND on (and at +-inf) erfc is 0 or 2, whatever the steps gave


def horner(coefficients, var: str) -> str:
    """A C expression: the polynomial with `coefficients` (of var^0, var^1, ...) in `var`,
    by Horner's scheme in fmas."""
    text = repr(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        text = f"fma({text}, {var}, {c!r})"
    return text


# lo is NaN at +-inf (fma(inf, inf, -inf)) and the quotient NaN from 1e28 on (inf / inf):
# the select of |x| >= BOUND replaces both (erfc(28) is 0 in double), where a NaN x keeps
# the steps' NaN (its comparisons are false). -0.0: x < 0 is false, and erfc(0) = 1
# exactly (h = lo = 0, e = 1, n = 0, d = c = 1).
ERFC = f"""/* erfc(x) as (e D + e a N)/(D (1 + sqrt(pi) a)), e = e^(-x^2), of a = |x|, 2 minus that for x < 0; e^(-x^2) by exp of
   -(x x), the rounding of x x corrected */
static inline XC_ALWAYS double xc_erfc(double x)
{{
    if (sizeof(double) == 4) return erfc(x);   /* a float kernel: erfcf */
    const double h = x * x, e = exp(-h), a = fabs(x), t = xc_select(a < 1e-140, 0.0, x);
    const double lo = fma(t, t, -(t * t));   /* x x - h; 0 below 1e-140 */
    const double n = a * {horner(N, "a")};
    const double d = {horner(D, "a")};
    const double c = fma({SQRT_PI[1]!r}, a, fma({SQRT_PI[0]!r}, a, 1.0));
    const double s = fma(e, d, e * n) / (d * c), v = xc_select(a >= {BOUND!r}, 0.0, fma(-lo, s, s));
    return xc_select(x < 0.0, 2.0 - v, v);
}}"""

# name -> (C definition, helpers it uses), as c_backend.HELPERS
HELPERS = {"xc_erfc": (ERFC, ("xc_select",))}

__all__ = ["BOUND", "D", "ERFC", "HELPERS", "N", "SQRT_PI", "horner"]
