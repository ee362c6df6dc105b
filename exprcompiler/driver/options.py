"""Options as one declarative table per method: default, kind and a one-line doc.

Part of the driver (see driver/__init__.py): each method class carries its table;
`minimize` validates what it is given against it (`resolve`), and `exprc minimize`
builds its flags and help text from the same tables, so the three never disagree.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple


class Option(NamedTuple):
    default: Any
    kind: Any   # "positive", "fraction" (0 <= v < 1), "nonnegative", "count", "flag", or a tuple of choices
    doc: str


# options of every method: the stopping rules and the progress bar
COMMON = {
    "maxiter": Option(1000, "count", "at most this many iterations"),
    "maxfev": Option(None, "count", "at most this many value-and-gradient evaluations (None: no limit)"),
    "gtol": Option(1e-6, "nonnegative", "converged when ‖∇f‖₂ <= gtol"),
    "ftol": Option(0.0, "nonnegative", "converged when |f_{k-1} − f_k| <= ftol·max(1, |f_k|) (0: off)"),
    "quiet": Option(False, "flag", "no progress bar"),
}


def _check(method: str, name: str, option: Option, value):
    kind = option.kind
    where = f"{method}: option {name}"
    if isinstance(kind, tuple):
        if value not in kind:
            shown = ", ".join(repr(c) for c in kind)
            raise ValueError(f"{where} = {value!r} is not one of {shown}")
        return value
    if kind == "flag":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be True or False, got {value!r}")
        return value
    if kind == "count":
        if value is None and option.default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
            raise ValueError(f"{where} must be a positive whole number, got {value!r}")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    value = float(value)
    bad = {"positive": value <= 0, "nonnegative": value < 0, "fraction": not 0 <= value < 1}[kind]
    if bad:
        need = {"positive": "> 0", "nonnegative": ">= 0", "fraction": "in [0, 1)"}[kind]
        raise ValueError(f"{where} must be {need}, got {value!r}")
    return value


def resolve(method: str, table: dict, given: dict) -> tuple[dict, dict]:
    """(the method's options, the common options), defaults filled in and checked."""
    unknown = [k for k in given if k not in table and k not in COMMON]
    if unknown:
        own = ", ".join(table) or "none"
        raise ValueError(f"{method} has no option {unknown[0]!r} (its options: {own}; "
                         f"every method's: {', '.join(COMMON)})")
    own = {k: _check(method, k, opt, given.get(k, opt.default)) for k, opt in table.items()}
    common = {k: _check(method, k, opt, given.get(k, opt.default)) for k, opt in COMMON.items()}
    return own, common


def describe(table: dict) -> str:
    return "; ".join(f"{k}={opt.default!r}: {opt.doc}" for k, opt in table.items())
