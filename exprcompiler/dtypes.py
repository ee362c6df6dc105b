"""The element type of a compiled function: float64 (the default) or float32.

Where it sits: beside the backends. `compile_*(..., dtype="float32")` resolves the
name here (`resolve`: None stands for float64, so the float64 path is the one that
existed before, plus a few `is None` tests); the backends ask this module for what
differs in single precision:

- C: the generated source is the float64 source with every `double` a `float`, every
  libm call its float variant (sin -> sinf, also in the libmvec declarations, so
  the loops still vectorize: 8 floats a vector instead of 4 doubles) and every
  floating literal a float literal (`0.5f`: an unsuffixed literal would make the
  arithmetic around it double). The rewrite (`c_source_float`) works on C tokens,
  comments left alone, so it applies to every C generator (per-point, split,
  tensor, the special helpers) without a second copy of any of them; the source
  differs, so the kernel cache keys differ. Two widths follow the element: the
  branch-free select's bit mask (`unsigned long long` -> `unsigned int`: a 64-bit
  mask beside 32-bit floats kept gcc from vectorizing the loops well, the float
  kernel ran 2-3x slower than the double one) and the split kernel's XC_VL (c_split:
  the points of one vector iteration, counted in doubles; a vector holds twice as
  many floats). Measured as benchmarks/bench_float32.py measures (one thread, inputs
  in the dtype, out= preallocated, medians) on the value and gradient of
  randexpr.random_program(n, 6, seed=1) at 10^5 points: n = 80 (sigmoid's select)
  float64 54 ms, float32 175 ms with the 64-bit mask, 14 ms with the 32-bit one;
  n = 300 (split) float64 244 ms, float32 550 ms before both changes, 94 ms after.
- NumPy: the generated code is the same. NumPy keeps float32 through Python float
  constants (a Python float is "weak", NEP 50), and runtime's helpers keep their
  argument's precision (comparison masks, a mean's count, the stable forms), so
  converting the inputs is enough; the results are cast once where the call
  assembles them, for the functions special.py computes in float64 (digamma, gamma,
  erf, ...). Tensor functions of float32 take the general call path (tensor_call),
  not the float64 call plan.
- One point: a call with plain numbers runs the kernel on float32 values (a packed
  float buffer in C, NumPy float32 scalars), returning Python floats. `.at()`
  keeps the optimizers' convention: float64 vectors in and out, float32 inside.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import numpy as np

F64 = np.dtype(np.float64)
F32 = np.dtype(np.float32)


def real(dtype) -> np.dtype:
    """The NumPy dtype a function computes in, from its resolved `dtype` (None: float64)."""
    return F64 if dtype is None else dtype


def c_type(dtype) -> str:
    """The C element type of a kernel in `dtype` (None: float64): "double" or "float"."""
    return "double" if dtype is None or np.dtype(dtype) == F64 else "float"


def resolve(dtype) -> Optional[np.dtype]:
    """None for float64 (the default path, as before dtype= existed), np.dtype(float32)
    for float32; anything else refused, naming what was given."""
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:  # not a dtype at all
        dt = np.dtype(np.void)
    if dt == F64:
        return None
    if dt == F32:
        return F32
    raise ValueError(f"dtype={dtype!r} is not supported: use 'float64' (the default) or 'float32'")


# <math.h>'s double functions, each with a float variant named with an `f`.
LIBM = frozenset("""acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2
expm1 log log10 log1p log2 logb pow sqrt cbrt fabs hypot erf erfc lgamma tgamma ceil floor
nearbyint rint round trunc fmod remainder copysign fdim fmax fmin fma nextafter""".split())
_FLOAT_NAMES = frozenset(f + "f" for f in LIBM)

# C text a float kernel keeps in double (KEEP_DOUBLE): helpers whose steps need double's
# range, called with float arguments (promoted) and their results rounded to float once,
# as the NumPy backend computes special.py's functions in float64 (c_special's polygamma:
# n! and its tables' coefficients overflow a float, its reflection's cot cancels)
KEEP_DOUBLE = ("/* in double in a float kernel too */", "/* (end of double) */")

_TOKEN = re.compile(r"""
    (?P<keep>/\*\ in\ double\ in\ a\ float\ kernel\ too\ \*/.*?/\*\ \(end\ of\ double\)\ \*/)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<header>\#include[^\n]*)
  | (?P<mask>unsigned\s+long\s+long)\b
  | (?P<lanes>\#define\s+XC_VL\s+)(?P<n>\d+)
  | (?P<name>[A-Za-z_]\w*)
  | (?P<real>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)(?![fFlL\w])
  | (?P<other>\d\w*|.)""", re.S | re.X)


def c_source_float(text: str) -> str:
    """The C source `text` (or a declaration) in single precision: `double` -> `float`,
    libm calls -> their float variants, floating literals suffixed `f`, the select's
    mask and the split kernel's lanes to a float's width (see the top). A local
    variable that happens to be called like a float variant (a user's `sinf`: the
    mangling only avoids the functions a float64 kernel calls) is renamed first."""
    taken = {m.group("name") for m in _TOKEN.finditer(text) if m.group("name")}
    rename = {}
    for clash in sorted(taken & _FLOAT_NAMES):
        new = clash + "_"
        while new in taken:
            new += "_"
        taken.add(new)
        rename[clash] = new

    def token(m: re.Match) -> str:
        word = m.group("name")
        if word is not None:
            if word == "double":
                return "float"
            if word in LIBM:
                return word + "f"
            return rename.get(word, word)
        if m.group("keep") is not None:
            return m.group(0)
        if m.group("real") is not None:
            return m.group("real") + "f"
        if m.group("mask") is not None:  # a bit mask the width of a float
            return "unsigned int"
        if m.group("lanes") is not None:  # the split kernel's lanes: floats, not doubles
            return m.group("lanes") + str(2 * int(m.group("n")))
        return m.group(0)
    return _TOKEN.sub(token, text)


def as_array(name: str, value: Any, dtype: np.dtype) -> np.ndarray:
    """An input of a float32 function: numbers or arrays of real numbers converted once
    (float64 arrays rounded to float32); the same refusals as float64's (call_args)."""
    if type(value) is np.ndarray and value.dtype.kind in "biuf":
        return value.astype(dtype, copy=False)  # itself when it is float32 already
    from .call_args import _as_array
    return _as_array(name, value).astype(dtype, copy=False)


def check_out_dtype(k: int, o, dtype) -> None:
    """An `out=` array of a function of `dtype` (None: float64) must be of that dtype."""
    want = real(dtype)
    if isinstance(o, np.ndarray) and o.dtype != want:
        raise ValueError(f"out= array {k}: the function computes {want.name} (dtype={want.name!r}); "
                         f"got an array of {o.dtype}: pass {want.name} arrays or compile with "
                         f"dtype={o.dtype.name!r}" + ("" if o.dtype in (F32, F64) else " (if supported)"))


def numpy_point(fn):
    """run(values) -> the outputs as floats: the generated NumPy function on float32
    scalars (the math-module variant would compute in double)."""
    from .backends.numpy_backend import _flatten

    def run(values):
        with np.errstate(all="ignore"):
            return [float(r) for r in _flatten((fn(*(np.float32(v) for v in values)),))]
    return run


__all__ = ["resolve", "c_source_float", "as_array", "check_out_dtype", "numpy_point", "real", "c_type", "F32", "F64"]
