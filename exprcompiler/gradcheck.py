"""`check_grad`: the generated gradient against central finite differences.

Beside the pipeline (api.py compiles the two functions it compares): the third of the
three checks every derivative gets, with sympy.diff and forward against reverse mode.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from .api import compile_expr, compile_grad


def check_grad(expr, at: Union[Mapping[str, Any], Sequence[Any]], wrt=None, *,
               step: Optional[float] = None, shapes=None, dtype=None) -> float:
    """Max relative error between the reverse-mode gradient and central finite
    differences at the point `at` (a mapping name -> value, or values in input order).
    The denominator is floored at 1, so a zero gradient is compared absolutely.
    For tensor inputs (`shapes=`) each element is perturbed in turn.

    `dtype="float32"`: the float32 gradient is checked, against differences of the
    float64 function (differences in float32 lose half their digits to rounding), at
    the point rounded to float32: expect errors near 1e-6 to 1e-4, not 1e-9 (the
    tests take 1e-3)."""
    g = compile_grad(expr, wrt, shapes=shapes, dtype=dtype)
    f = compile_expr(g.primal)  # always float64: the reference
    if isinstance(at, Mapping):
        point = {name: np.asarray(at[name], dtype=float) for name in g.inputs if name in at}
        missing = [n for n in g.inputs if n not in at]
        if missing:
            raise TypeError(f"check_grad: no value for {', '.join(missing)}")
    else:
        point = {name: np.asarray(v, dtype=float) for name, v in zip(g.inputs, at)}
    if g.dtype != np.float64:  # where the float32 function is evaluated, exactly
        point = {name: v.astype(g.dtype).astype(float) for name, v in point.items()}
    _, grad = g(**point)
    worst = 0.0
    eps = np.finfo(float).eps
    for name, analytic in zip(g.wrt, grad):
        x = point[name]
        h = (step if step is not None else eps ** (1 / 3)) * np.maximum(1.0, np.abs(x))
        if g.tensor:
            fd = _element_differences(f, point, name, h)
        else:  # points of a batch are independent: perturb them all at once
            up = f(**{**point, name: x + h})
            down = f(**{**point, name: x - h})
            with np.errstate(all="ignore"):
                fd = (np.asarray(up) - np.asarray(down)) / (2 * h)
        with np.errstate(all="ignore"):
            analytic = np.asarray(analytic, dtype=float)
            err = np.abs(analytic - fd) / np.maximum(1.0, np.maximum(np.abs(analytic), np.abs(fd)))
        if np.isnan(err).any():
            return float("nan")  # a NaN gradient or difference is never "close"
        worst = max(worst, float(np.max(err)))
    return worst


def _element_differences(f, point: dict, name: str, h) -> np.ndarray:
    """Central differences of a scalar f with respect to each element of point[name]."""
    x = point[name]
    h = np.broadcast_to(h, x.shape)
    fd = np.empty(x.shape)
    for k in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[k] += h[k]
        down[k] -= h[k]
        with np.errstate(all="ignore"):
            fd[k] = (f(**{**point, name: up}) - f(**{**point, name: down})) / (2 * h[k])
    return fd
