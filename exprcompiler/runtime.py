"""Numerically careful NumPy kernels for ops NumPy lacks.

Used by the op table's evaluators (so the reference interpreter uses them) and
imported by generated NumPy code, so both compute exactly the same numbers.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp(-log(1 + exp(-x)))."""
    return np.exp(-np.logaddexp(0.0, -x))


def softplus(x):
    """log(1 + exp(x)) without overflow."""
    return np.logaddexp(0.0, x)


def relu(x):
    """max(x, 0); NaN stays NaN (np.maximum propagates it)."""
    return np.maximum(x, 0.0)


def xlogy(x, y):
    """x * log(y), defined as 0 where x == 0 (the limit), as scipy.special.xlogy."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = x * np.log(y)
    r = np.where(x == 0.0, 0.0, r)
    return r[()] if r.ndim == 0 else r
