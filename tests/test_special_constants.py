"""special.py's exact constants, written out or made on first use, computed again here
exactly (fractions.Fraction). (That importing it builds none: test_import_cost.py.)"""

from __future__ import annotations

import math
from fractions import Fraction

from exprcompiler import special as S


def _bernoulli_even(count: int) -> list[Fraction]:
    """B_2, B_4, ..., B_2count exactly (Akiyama–Tanigawa)."""
    a, out = [], []
    for m in range(2 * count + 1):
        a.append(Fraction(1, m + 1))
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        if m >= 2 and m % 2 == 0:
            out.append(a[0])
    return out


EXACT = _bernoulli_even(S.TERMS)


def test_bernoulli_numbers_are_the_recurrences_in_lowest_terms():
    assert EXACT[:3] == [Fraction(1, 6), Fraction(-1, 30), Fraction(1, 42)]   # (the recurrence itself)
    assert list(S.BERNOULLI) == [(b.numerator, b.denominator) for b in EXACT]


def test_series_coefficients_are_the_exact_values_rounded():
    assert S.STIRLING == [float(b / (2 * k * (2 * k - 1))) for k, b in enumerate(EXACT[:8], start=1)]
    assert S.DIGAMMA_ASYMPTOTIC == [float(b / (2 * k)) for k, b in enumerate(EXACT, start=1)]
    for n in range(1, S.MAX_ORDER + 1):
        ds = [float(b * math.factorial(2 * k + n - 1) / math.factorial(2 * k)) for k, b in enumerate(EXACT, start=1)]
        assert S._ASYMPTOTIC[n] == [float(math.factorial(n - 1)), math.factorial(n) / 2.0] + ds


def test_cot_derivative_polynomials():
    """P_n(c) with d^n/du^n cot(u) = P_n(cot u): P_1 = -1 - c², P_2 = 2c + 2c³, and every
    order's against the recurrence on exact integers (the floats' recurrence rounds once
    its coefficients pass 2^53)."""
    assert S._COT[1] == [-1.0, 0.0, -1.0]
    assert S._COT[2] == [0.0, 2.0, 0.0, 2.0]
    p = [0, 1]
    for n in range(S.MAX_ORDER + 1):
        assert len(S._COT[n]) == len(p)
        assert all(abs(got - c) <= 1e-15 * abs(c) for got, c in zip(S._COT[n], p)), n
        d = [i * p[i] for i in range(1, len(p))]
        p = [0] * (len(p) + 1)
        for i, c in enumerate(d):
            p[i] -= c
            p[i + 2] -= c

