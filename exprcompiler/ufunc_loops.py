"""Which of NumPy's log1p, expm1 and tanh loops are SIMD kernels on this machine.

Where it sits: read by runtime_log1p.py, runtime_exps.py and runtime_tanh.py (log1p,
expm1, softplus_of_exp, sech2: NumPy's ufunc itself where its loop is SIMD, a helper
built on log and exp where it is a scalar libm loop) and backends/numpy_shares.py (tanh
and its derivative: np.tanh and sech2_of_tanh, or both from one exp). Decided once, at
import, from what NumPy says it dispatches (numpy.lib.introspect.opt_func_info, NumPy
2.0 on); nothing is timed. Tests set an entry to take the other machine's path.

Why: NumPy 2.x dispatches these three, for float64 and float32, to AVX-512 kernels
where the CPU has them (X86_V4; tanh also to AVX2, X86_V3), and to a scalar libm loop
elsewhere. Per block of 16,384 float64 points (the NumPy runner's blocks; CPU time,
median of 7):
- AVX-512 machine, NumPy 2.4: log 16 µs, log1p 18, exp 11, expm1 18, tanh 22, one
  cheap pass (add, square) 3.3, a division 9.7. runtime's corrected log1p took 50
  (log and four passes), tanh and sech² from one exp 120: NumPy's own ufuncs are
  cheaper.
- AVX2 machine (scalar loops): log1p and expm1 twice log's and exp's cost, tanh two and
  a half exps: the helpers are cheaper.
"""

from __future__ import annotations

LOOPS = ("log1p", "expm1", "tanh")


def _simd() -> dict[str, bool]:
    """{ufunc name: whether NumPy runs its float64 loop as a SIMD kernel here}: False
    where NumPy calls it the baseline (a scalar loop) or cannot say (NumPy 1.x)."""
    try:
        from numpy.lib.introspect import opt_func_info
        info = opt_func_info()   # the whole table (µs); a name filter costs a regex over it
    except (ImportError, AttributeError):
        return dict.fromkeys(LOOPS, False)
    current = {name: info.get(name, {}).get("dd", {}).get("current", "baseline") for name in LOOPS}
    return {name: not target.startswith("baseline") for name, target in current.items()}


SIMD = _simd()

__all__ = ["LOOPS", "SIMD"]
