"""Special functions for the NumPy side: erf, erfc, gamma, lgamma, digamma, polygamma.

Evaluators of the op table (so the reference interpreter uses them) and, through
`runtime`, the functions generated NumPy code calls; the C backend's helpers for
digamma and polygamma (backends/c_special.py) are the same algorithms, printed from
the constants defined here, so the two backends agree to the last bits of the libm
calls inside (log, sin, cos, pow). SciPy is not a dependency.

Choices, measured on this project's machine (one core, blocks of 16384 points as the
NumPy backend evaluates large batches):
- erf, erfc: `math.erf` over the block's list of floats, 51 ns a point (np.frompyfunc:
  68 ns, np.vectorize more; a NumPy pass such as x*x costs 0.4 ns, so a vectorized
  rational approximation of ~60 passes would be ~25 ns). CPython's math.erf is the C
  library's erf, so the values are bit for bit what the C backend's scalar calls give
  (libmvec's vector erf, in vectorized C loops, differs in the last bit).
- gamma, lgamma: vectorized here. CPython's math.lgamma loses relative accuracy near
  its zeros 1 and 2 (lgamma(1.001) to 2e-13) and math.gamma raises at poles; these
  agree with glibc's tgamma/lgamma (what C calls) to about 1e-15 relative, except
  near lgamma's zeros on the negative axis (x < -2), where glibc is accurate to the
  last bit and the reflection formula used here to 1e-15 absolute.
- digamma, polygamma: no C library has them; the same algorithm on both sides.

Algorithms: lgamma and gamma shift x into [1.5, 2.5) by the recurrence and sum the
Taylor series of lgamma at 2 (coefficients from zeta values); from 12 up, Stirling's
series; below 0, the reflection formula. polygamma(n, x) shifts x up to 10 + n by the
recurrence (from below 0 too, stepping over the poles) and sums the asymptotic series
(10 Bernoulli terms); below -50 it reflects with the n-th derivative of π·cot(πx), a
polynomial in cot(πx). Accuracy (tests/test_functions.py, against mpmath): 1e-13
relative, except near the function's own zeros (digamma's negative ones, lgamma's
below -2), where the error is 1e-15 of the terms that cancel; and below -50, orders
n >= 2 at points where the poles' contributions cancel (polygamma(2, -75.5)), where
the rounding of cot(πx) leaves about 1e-11 relative.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# -- constants, shared with the C helpers -----------------------------------------------------

TERMS = 10                                  # Bernoulli terms of the asymptotic series
# B_2, B_4, ..., B_20 exactly, as (numerator, denominator): written out rather than
# computed with fractions.Fraction at import, which cost ~2 ms of every `import exprcompiler`
# (tests/test_special_constants.py computes them again by the Akiyama–Tanigawa recurrence).
BERNOULLI = (
    (1, 6), (-1, 30), (1, 42), (-1, 30), (5, 66),
    (-691, 2730), (7, 6), (-3617, 510), (43867, 798), (-174611, 330),
)
MAX_ORDER = 30                              # polygamma(n, x): n in 0..30, else NaN
STIRLING_FROM = 12.0                        # lgamma and gamma: Stirling's series from here

# Stirling's series of lgamma: sum of B_2k / (2k (2k-1) x^(2k-1)), as coefficients of 1/x^(2k-1).
# (An int divided by an int is correctly rounded: the same floats as the exact fractions'.)
STIRLING = [p / (q * 2 * k * (2 * k - 1)) for k, (p, q) in enumerate(BERNOULLI[:8], start=1)]
HALF_LOG_2PI = 0.9189385332046728           # log(2π) / 2
SQRT_2PI = 2.5066282746310002

# lgamma(2 + h) = sum_k a_k h^k for |h| <= 1/2: a_1 = 1 - γ, a_k = (-1)^k (ζ(k) - 1) / k.
# (computed with mpmath at 40 digits; tests/test_functions.py computes them again)
LGAMMA_AT_2 = (
    0.42278433509846713, 0.3224670334241132, -0.0673523010531981,
    0.020580808427784546, -0.007385551028673986, 0.0028905103307415234,
    -0.001192753911703261, 0.0005096695247430425, -0.00022315475845357939,
    9.945751278180853e-05, -4.492623673813314e-05, 2.050721277567069e-05,
    -9.439488275268397e-06, 4.374866789907488e-06, -2.039215753801366e-06,
    9.55141213040742e-07, -4.492469198764566e-07, 2.1207184805554665e-07,
    -1.0043224823968099e-07, 4.7698101693639804e-08, -2.2711094608943164e-08,
    1.0838659214896955e-08, -5.183475041970047e-09, 2.4836745438024785e-09,
    -1.1921401405860912e-09, 5.731367241678862e-10, -2.7595228851242334e-10,
    1.330476437424449e-10,
)


def polygamma_threshold(n: int) -> float:
    """Where the asymptotic series of polygamma(n, .) starts: 10 terms reach 1e-17 there."""
    return 10.0 + n


# -- helpers ---------------------------------------------------------------------------------
def _floats(x) -> np.ndarray:
    return np.array(x, dtype=np.float64, copy=True, ndmin=0)


def _out(r: np.ndarray):
    return r[()] if r.ndim == 0 else r


def _horner(coefficients, t):
    """sum_k coefficients[k] t^k."""
    acc = np.full_like(t, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = acc * t + c
    return acc


def _lgamma_series(h):
    """lgamma(2 + h) for |h| <= 1/2: h · (a_1 + a_2 h + ...)."""
    return h * _horner(LGAMMA_AT_2, h)


def _stirling_correction(x):
    """lgamma(x) - [(x - 1/2) log x - x + log(2π)/2] for x >= 12."""
    r = 1.0 / x
    return r * _horner(STIRLING, r * r)


def _pi_shift(x):
    """(r, odd) with x = n + r, n the nearest integer (ties to even), |r| <= 1/2 and
    `odd` where n is odd: sin(πx) = ±sin(πr) without the rounding of π·x."""
    n = np.rint(x)
    return x - n, np.fmod(n, 2.0) != 0.0


# -- erf, erfc --------------------------------------------------------------------------------
def _libm_loop(f):
    def apply(x):
        x = np.asarray(x, dtype=np.float64)
        r = np.fromiter(map(f, x.ravel().tolist()), np.float64, count=x.size).reshape(x.shape)
        return _out(r)
    apply.__name__, apply.__doc__ = f.__name__, f"{f.__name__}(x), the C library's (through math.{f.__name__})"
    return apply


erf = _libm_loop(math.erf)
erfc = _libm_loop(math.erfc)


# -- lgamma, gamma ----------------------------------------------------------------------------
def _shifted(x):
    """For 0 < x < 12: (h, p, q) with Γ(x) = Γ(2 + h) · p / q, |h| <= 1/2."""
    n = np.maximum(np.floor(x - 1.5), 0.0)         # steps down to [1.5, 2.5)
    below = x < 1.5
    h = np.where(x < 0.5, x, np.where(below, x - 1.0, x - 2.0 - n))
    p = np.ones_like(x)
    for j in range(1, 11):
        p = np.where(j <= n, p * (x - j), p)
    q = np.where(x < 0.5, x * (x + 1.0), np.where(below, x, 1.0))
    return h, p, q


def _lgamma_positive(x):
    """lgamma for finite x > 0."""
    r = np.empty_like(x)
    big = x >= STIRLING_FROM
    xb = x[big]
    r[big] = (xb - 0.5) * np.log(xb) - xb + HALF_LOG_2PI + _stirling_correction(xb)
    small = ~big
    xs = x[small]
    h, p, _ = _shifted(xs)
    # log q by log1p where it is log(1 + h): lgamma(1 + h) = lgamma(2 + h) - log1p(h)
    # keeps its relative accuracy near its zero at 1.
    logq = np.where(xs < 0.5, np.log(xs) + np.log1p(xs), np.where(xs < 1.5, np.log1p(h), 0.0))
    r[small] = _lgamma_series(h) + np.log(p) - logq
    return r


def lgamma(x):
    """log|Γ(x)|, as C's lgamma: +inf at the poles (0, -1, -2, ...) and at ±inf."""
    x = _floats(x)
    with np.errstate(all="ignore"):
        r = np.full_like(x, np.nan)
        pos = (x > 0) & (x < np.inf)
        r[pos] = _lgamma_positive(x[pos])
        r[np.isinf(x) | ((x <= 0) & (x == np.floor(x)))] = np.inf
        # (-1/2, 0): lgamma(x + 1) - log|x|, as for small positive x (no sin(πx) to round)
        near = (x < 0) & (x > -0.5)
        xn = x[near]
        r[near] = _lgamma_series(xn) - np.log1p(xn) - np.log(-xn)
        # below: the reflection formula log(π / |sin(πx)|) - lgamma(1 - x)
        neg = (x <= -0.5) & (x != np.floor(x))
        xr = x[neg]
        rr, _ = _pi_shift(xr)
        r[neg] = math.log(math.pi) - np.log(np.abs(np.sin(math.pi * rr))) - _lgamma_positive(1.0 - xr)
    return _out(r)


def _gamma_small(x):
    """Γ(x) for 0 < x < 12."""
    h, p, q = _shifted(x)
    return np.exp(_lgamma_series(h)) * p / q


def _stirling_parts(x):
    """(A, B) with Γ(x) = A · B for 12 <= x <= 200: A = sqrt(2π) v, B = v e^-x e^corr,
    v = x^(x/2 - 1/4). x^(x - 1/2) e^-x would overflow before Γ does; A and B do not,
    and a reflection divides by them one at a time (x/2 - 1/4 is exact for these x)."""
    v = np.power(x, 0.5 * x - 0.25)
    return SQRT_2PI * v, v * np.exp(-x) * np.exp(_stirling_correction(x))


def gamma(x):
    """Γ(x), as C's tgamma: ±inf at ±0, NaN at negative integers and -inf, +inf from
    171.62 (overflow), zeros of the right sign below about -184 (underflow)."""
    x = _floats(x)
    with np.errstate(all="ignore"):
        r = np.full_like(x, np.nan)
        small = (x > 0) & (x < STIRLING_FROM)
        r[small] = _gamma_small(x[small])
        big = x >= STIRLING_FROM
        a, b = _stirling_parts(np.minimum(x[big], 172.0))   # from 171.62 on, inf
        r[big] = a * b
        zero = x == 0
        r[zero] = 1.0 / x[zero]
        # below 0: π / (sin(πx) Γ(1 - x))
        neg = (x < 0) & (x != np.floor(x))
        xr = x[neg]
        rr, odd = _pi_shift(xr)
        s = np.where(odd, -1.0, 1.0) * np.sin(math.pi * rr)
        y = 1.0 - xr
        low = y < STIRLING_FROM
        out = np.empty_like(xr)
        out[low] = math.pi / (s[low] * _gamma_small(y[low]))
        a, b = _stirling_parts(np.minimum(y[~low], 200.0))   # Γ(x) underflows before 200
        out[~low] = math.pi / s[~low] / a / b
        r[neg] = out
    return _out(r)


# -- digamma, polygamma -----------------------------------------------------------------------
@lru_cache(maxsize=None)
def _asymptotic_coefficients(n: int) -> tuple:
    """The asymptotic series of polygamma(n, z), n >= 1, as
    (-1)^(n+1) / z^n · [c_0 + c_1 / z + sum_k d_k / z^(2k)]: returns (c_0, c_1, d_1 .. d_10)
    with c_0 = (n-1)!, c_1 = n!/2, d_k = B_2k (2k+n-1)! / (2k)! (one correctly rounded
    division of integers: the float nearest the exact value)."""
    ds = tuple(p * math.factorial(2 * k + n - 1) / (q * math.factorial(2 * k))
               for k, (p, q) in enumerate(BERNOULLI, start=1))
    return (float(math.factorial(n - 1)), math.factorial(n) / 2.0) + ds


@lru_cache(maxsize=None)
def _cot_derivative(n: int) -> tuple:
    """Coefficients of P_n with d^n/du^n cot(u) = P_n(cot u): P_0 = c,
    P_{k+1}(c) = -(1 + c²) P_k'(c)."""
    if n == 0:
        return (0.0, 1.0)
    p = _cot_derivative(n - 1)
    d = [i * p[i] for i in range(1, len(p))] + [0.0, 0.0]   # P' (degree lowered by one)
    q = [0.0] * (len(p) + 1)
    for i in range(len(d)):
        q[i] -= d[i]
        if i + 2 < len(q):
            q[i + 2] -= d[i]
    return tuple(q)


def __getattr__(name: str):
    """_COT and _ASYMPTOTIC, every order's tables (the C helpers print them all), made
    when first asked for: building them at import cost ~2 ms of every `import
    exprcompiler`, and NumPy's polygamma needs only the orders it is called with."""
    if name == "_COT":
        value = [list(_cot_derivative(n)) for n in range(MAX_ORDER + 1)]
    elif name == "_ASYMPTOTIC":
        value = [None] + [list(_asymptotic_coefficients(n)) for n in range(1, MAX_ORDER + 1)]
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


DIGAMMA_ASYMPTOTIC = [p / (q * 2 * k) for k, (p, q) in enumerate(BERNOULLI, start=1)]  # B_2k / 2k

# Near digamma's positive zero x0 = 1.4616... (where lgamma and gamma have their minimum)
# the recurrence cancels (ψ(x0 + 10) - sum of 1/(x0 + j)): there ψ is its Taylor series
# at x0, in t = x - x0 with x0 as a sum of two doubles, accurate relative to ψ.
# (computed with mpmath at 40 digits; tests/test_functions.py computes them again)
DIGAMMA_ROOT = (1.4616321449683622, 9.549995429965697e-17)
DIGAMMA_AT_ROOT = (
    0.9676722454476212, -0.4427631689835921, 0.258499760955651,
    -0.16394270544240652, 0.10782405069126237, -0.07219956125645471,
    0.04880428816414311, -0.03316112647484736, 0.022597648232218104,
    -0.01542476590494896, 0.010538791616612175, -0.007204534386356869,
    0.004926781395729853, -0.003369801655439328, 0.002305126326734928,
    -0.0015769367714301972, 0.0010788252019162967, -0.0007380709389960052,
    0.000504953265834602, -0.0003454680251063077, 0.00023635601564027053,
    -0.00016170622091974803, 0.0001106337276874741, -7.569179582195066e-05,
)
DIGAMMA_ROOT_RADIUS = 0.25


def _psi_shifted(n: int, x):
    """polygamma(n, x) for x >= -NEG_SHIFT, not a pole: the recurrence
    ψ⁽ⁿ⁾(x) = ψ⁽ⁿ⁾(x + 1) - (-1)^n n! / x^(n+1) up to the threshold, then the series.
    (A negative x steps over the poles it lies between; those terms are summed exactly
    as written, which keeps high orders accurate where the reflection formula cancels:
    polygamma(30, -0.5).)"""
    top = polygamma_threshold(n)
    z, acc = x.copy(), np.zeros_like(x)
    while True:
        low = z < top
        if not low.any():
            break
        zl = z[low]
        acc[low] += 1.0 / zl if n == 0 else 1.0 / np.power(zl, n + 1.0)
        z[low] = zl + 1.0
    u = 1.0 / (z * z)
    if n == 0:
        series = np.log(z) - 0.5 / z - u * _horner(DIGAMMA_ASYMPTOTIC, u)
        return series - acc
    c = _asymptotic_coefficients(n)
    bracket = c[0] + c[1] / z + u * _horner(c[2:], u)
    series = (1.0 if n % 2 else -1.0) / np.power(z, float(n)) * bracket
    return series - (-1.0 if n % 2 else 1.0) * math.factorial(n) * acc


NEG_SHIFT = 50.0   # below -50 the reflection formula (the recurrence's steps grow with |x|)


def _psi(n: int, x):
    r = np.full_like(x, np.nan)
    pole = (x < 0) & (x == np.floor(x)) & (x > -np.inf)
    r[pole] = np.inf if n % 2 else np.nan     # odd orders tend to +inf from both sides
    near = (x >= -NEG_SHIFT) & ~pole           # -0.0 too: ψ(-0) = +inf by the recurrence's 1/x
    r[near] = _psi_shifted(n, x[near])
    far = (x < -NEG_SHIFT) & (x != np.floor(x))
    xr = x[far]
    rr, _ = _pi_shift(xr)                      # cot has period 1
    cot = np.cos(math.pi * rr) / np.sin(math.pi * rr)
    reflected = _psi_shifted(n, 1.0 - xr)
    r[far] = (-reflected if n % 2 else reflected) - math.pi ** (n + 1) * _horner(_cot_derivative(n), cot)
    return r


def digamma(x):
    """ψ(x) = Γ'(x)/Γ(x): -inf at +0, +inf at -0, NaN at negative integers and -inf."""
    x = _floats(x)
    with np.errstate(all="ignore"):
        r = _psi(0, x)
        t = (x - DIGAMMA_ROOT[0]) - DIGAMMA_ROOT[1]
        root = np.abs(t) < DIGAMMA_ROOT_RADIUS
        r[root] = t[root] * _horner(DIGAMMA_AT_ROOT, t[root])
    return _out(r)


def polygamma(n, x):
    """ψ⁽ⁿ⁾(x), the n-th derivative of digamma, for integer orders 0 <= n <= 30 (NaN
    for other n). At the poles (0, -1, ...) odd orders are +inf, even orders NaN (±inf
    at ±0 as the limit from that side)."""
    n, x = np.broadcast_arrays(_floats(n), _floats(x))
    r = np.full(x.shape, np.nan)
    with np.errstate(all="ignore"):
        for order in np.unique(n[(n >= 0) & (n <= MAX_ORDER) & (n == np.floor(n))]):
            at = n == order
            r[at] = digamma(x[at]) if order == 0 else _psi(int(order), x[at])
    return _out(r)


__all__ = ["erf", "erfc", "gamma", "lgamma", "digamma", "polygamma", "MAX_ORDER"]
